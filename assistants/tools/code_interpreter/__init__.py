"""Code Interpreter tool: stateful Python sessions in a bubblewrap sandbox."""

from .interpreter import CodeInterpreter, ExecResult, SandboxUnavailable

__all__ = ["CodeInterpreter", "ExecResult", "SandboxUnavailable"]

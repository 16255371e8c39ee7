"""The app's side of a model worker: starts it, streams chats through it, and turns a crash into a clear error."""

from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assistants.providers.base import Cancelled, ChatResult, OnText, ProviderError, ToolCall

# After a cancel, how long the worker may take to stop between two tokens before it is killed (a long prompt
# being read cannot be interrupted; a fresh worker is cheaper than making the user wait).
CANCEL_GRACE_S = 0.3
LOAD_TIMEOUT_S = 300.0
_EOF = object()
# Why a plain child (`python -m assistants.providers.model_worker`) with newline JSON over pipes, not multiprocessing:
# spawn would re-import the parent's `__main__` (Streamlit's script runner, pytest) and fork would copy a threaded
# process; our own child imports only what it needs (ready in well under a second), its exit status names the signal
# that killed it, and its stderr is kept for the error message. llama_cpp is imported only there, never here.
_ROOT = str(Path(__file__).resolve().parents[2])  # the project folder, so `-m assistants...` imports in the child

_SIGNAL_HINTS = {
    "SIGILL": ("an instruction this CPU or VM refuses: usually llama-cpp-python compiled for another CPU, or with AMX "
               "on a VM that does not enable it. Reinstall it with the portable build flags from the README "
               "(\"Local models\"), or pick another model."),
    "SIGKILL": ("killed from outside, usually by the system's out-of-memory killer: this model may need more memory "
                "than is free. Close other programs or pick a smaller model."),
    # On this project's AMX test VM the native build's crash is a SIGSEGV, not a SIGILL: both causes are named.
    "SIGSEGV": ("a memory fault inside llama.cpp: a llama-cpp-python compiled for another CPU or with AMX (reinstall "
                "it with the portable build flags from the README, \"Local models\"), or a GGUF file that is damaged "
                "or not supported by this llama-cpp-python (download it again, or pick another model)."),
    "SIGBUS": ("the model file changed or vanished while it was in use (a download or delete in progress?). "
               "Run again once the file is complete."),
}


def worker_env() -> dict:
    """The environment a model worker runs in."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
    # llama.cpp's OpenMP threads spin while waiting by default; on a machine also running the app, the API server
    # and code sandboxes, a spinning thread steals the core its partner needs: first tokens measured 4-6 s instead
    # of 0.5-1.5 s, and 3-5x fewer tokens a second, on two busy cores. The user's own setting wins.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def crash_message(label: str, returncode: int | None, stderr_tail: str, phase: str) -> str:
    """What happened to the worker and what to try, in words."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = _SIGNAL_HINTS.get(name, "Try again; if it keeps happening, pick another model.")
        what = f"crashed ({name})" if name != "SIGKILL" else "was killed (SIGKILL)"
    else:
        what = f"exited unexpectedly (exit status {returncode})"
        hint = "Try again; if it keeps happening, pick another model."
    detail = f" Its last words: {stderr_tail}" if stderr_tail else ""
    return (f"The local model process {what} while {phase} '{label}' — {hint} "
            f"The next run starts a fresh model process.{detail}")


class ModelWorker:
    """One model in its own supervised process, shared by every thread of this process (one chat at a time)."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int = 0, *, label: str = "", command: list[str] | None = None):
        self.path, self.n_ctx, self.n_threads = Path(path), n_ctx, n_threads
        self.label = label or self.path.stem
        self.command = list(command or [sys.executable, "-m", "assistants.providers.model_worker"])
        self.info: dict = {}
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)
        self._lock = threading.Lock()  # one chat at a time: a llama.cpp context is not thread-safe
        self._next_id = 0

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def busy(self) -> bool:
        """Whether a chat is using the worker now."""
        return self._lock.locked()

    # -- process --------------------------------------------------------------------------------
    def _start(self, cancel: threading.Event) -> None:
        env = worker_env()
        self._lines = queue.Queue()
        self._stderr.clear()
        proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=_ROOT, text=True, encoding="utf-8", errors="replace", bufsize=1,
                                start_new_session=True)  # a Ctrl-C meant for the app is not the worker's
        self._proc = proc
        threading.Thread(target=self._read_stdout, args=(proc, self._lines), daemon=True, name="model-out").start()
        threading.Thread(target=self._read_stderr, args=(proc,), daemon=True, name="model-err").start()
        self._send({"op": "load", "path": str(self.path), "n_ctx": self.n_ctx, "n_threads": self.n_threads})
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while True:
            try:
                message = self._lines.get(timeout=0.05)
            except queue.Empty:
                if cancel.is_set():
                    self.close()
                    raise Cancelled() from None
                if time.monotonic() > deadline:
                    self.close()
                    raise ProviderError(f"The local model '{self.label}' did not load within {LOAD_TIMEOUT_S:.0f} s.") from None
                continue
            if message is _EOF:
                raise self._crashed("loading")
            if message.get("event") == "ready":
                self.info = message["info"]
                return
            if message.get("event") == "error":
                self.close()
                raise ProviderError(f"Could not load the local model '{self.label}' ({self.path.name}): {message['message']}. "
                                    "The file may be incomplete or a model this llama-cpp-python does not support; "
                                    "download it again, update llama-cpp-python, or pick another model.")

    @staticmethod
    def _read_stdout(proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in proc.stdout:
            try:
                lines.put(json.loads(line))
            except ValueError:
                continue  # not protocol (the worker keeps fd 1 for native prints away from it; belt and braces)
        lines.put(_EOF)

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:  # drained, or a chatty llama.cpp would block on a full pipe
            if line.strip():
                self._stderr.append(line.strip()[:300])

    def _send(self, message: dict) -> None:
        try:
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, AttributeError):
            pass  # the worker is gone; its end of output says so

    def _crashed(self, phase: str) -> ProviderError:
        proc, self._proc = self._proc, None
        try:
            returncode = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        time.sleep(0.02)  # let the stderr reader take the last lines
        tail = next((line for line in reversed(self._stderr) if not line.startswith(("llama_", "load", "print_info"))), "")
        return ProviderError(crash_message(self.label, returncode, tail, phase))

    def close(self) -> None:
        """Stop the worker (its model's memory goes with it)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def start(self) -> None:
        """Start the worker and load its model now, if it is not running (benchmarks: loading is not a request's time)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start(threading.Event())

    # -- chat -----------------------------------------------------------------------------------
    def chat(self, request: dict, *, on_text: OnText, cancel: threading.Event) -> ChatResult:
        """Stream one reply from the worker; a cancel stops it within CANCEL_GRACE_S (or kills it)."""
        with self._lock:
            if cancel.is_set():
                raise Cancelled()
            if self._proc is None or self._proc.poll() is not None:
                if self._proc is not None:
                    self._proc = None  # died while idle: start a fresh one without blaming this run
                self._start(cancel)
            try:
                return self._chat_once(request, on_text, cancel)
            except _DiedBeforeAnswering:
                # Found dead before a word of this chat (killed while idle, just before we wrote): one fresh
                # worker; if the request itself kills it, the second death is reported.
                self._start(cancel)
                try:
                    return self._chat_once(request, on_text, cancel)
                except _DiedBeforeAnswering as again:
                    raise again.error from None

    def _chat_once(self, request: dict, on_text: OnText, cancel: threading.Event) -> ChatResult:
        self._next_id += 1
        cid = self._next_id
        self._send({"op": "chat", "id": cid, "request": request})
        return self._receive(cid, on_text, cancel)

    def _receive(self, cid: int, on_text: OnText, cancel: threading.Event) -> ChatResult:
        answered = False
        stop_by = None  # set once a cancel was sent
        caller_error: BaseException | None = None
        while True:
            if stop_by is None and cancel.is_set():
                stop_by = self._ask_to_stop(cid)
            if stop_by is not None and time.monotonic() > stop_by:
                self.close()  # still generating (a long prompt being read): a fresh worker is quicker
                raise caller_error or Cancelled()
            try:
                message = self._lines.get(timeout=0.02 if stop_by else 0.05)
            except queue.Empty:
                continue
            if message is _EOF:
                if stop_by is not None:
                    self.close()  # reaps it
                    raise caller_error or Cancelled()
                error = self._crashed("generating with")
                raise error if answered else _DiedBeforeAnswering(error)
            if message.get("id") != cid:
                continue  # from an earlier chat that was given up on
            answered = True
            event = message["event"]
            if event == "text":
                if stop_by is None:
                    try:
                        on_text(message["text"])
                    except BaseException as exc:  # the caller gave up (e.g. the run was cancelled): stop the worker too
                        caller_error = exc
                        stop_by = self._ask_to_stop(cid)
            elif event == "done":
                if caller_error is not None:
                    raise caller_error
                if stop_by is not None:
                    raise Cancelled()
                return _chat_result(message["result"])
            elif event == "cancelled":
                raise caller_error or Cancelled()
            elif event == "error":
                if caller_error is not None:
                    raise caller_error
                raise ProviderError(message["message"], code=message.get("code") or "server_error")

    def _ask_to_stop(self, cid: int) -> float:
        self._send({"op": "cancel", "id": cid})
        return time.monotonic() + CANCEL_GRACE_S


class _DiedBeforeAnswering(Exception):
    """The worker ended before sending anything for this chat; `error` is the crash as a ProviderError."""

    def __init__(self, error: ProviderError):
        super().__init__(error.message)
        self.error = error


def _chat_result(data: dict) -> ChatResult:
    calls = [ToolCall(**c) for c in data.pop("tool_calls")]
    return ChatResult(tool_calls=calls, **data)


_WORKERS: dict[tuple, ModelWorker] = {}
_WORKERS_LOCK = threading.Lock()


def worker_for(path: Path, n_ctx: int, n_threads: int = 0, *, label: str = "", command: list[str] | None = None) -> ModelWorker:
    """The process-wide worker of one model (and settings): every Runtime and thread in this process shares it."""
    key = (str(path), n_ctx, n_threads, tuple(command or ()))
    with _WORKERS_LOCK:
        worker = _WORKERS.get(key)
        if worker is None:
            worker = _WORKERS[key] = ModelWorker(path, n_ctx, n_threads, label=label, command=command)
        return worker


def live_workers() -> list[ModelWorker]:
    """Workers whose process is running now."""
    with _WORKERS_LOCK:
        return [w for w in _WORKERS.values() if w.pid is not None]


class ModelInUse(ProviderError):
    """A model's worker is answering a run right now, so its file cannot go."""


@contextmanager
def workers_stopped(path: Path) -> Iterator[list[ModelWorker]]:
    """Stop this process's workers of one model file and keep them from starting again until the block ends.

    For deleting (or replacing) the file: each worker's chat lock is held through the block, so no run can start
    the model in between; a worker answering a run now is not killed mid-answer: ModelInUse instead.
    """
    target = os.path.realpath(path)
    with _WORKERS_LOCK:
        mine = [w for w in _WORKERS.values() if os.path.realpath(w.path) == target]
    held: list[ModelWorker] = []
    try:
        for worker in mine:
            if not worker._lock.acquire(blocking=False):
                raise ModelInUse(f"The model '{worker.label}' is answering a run right now. Wait for the run to end "
                                 "(or cancel it), then try again.", code="model_in_use")
            held.append(worker)
        for worker in held:
            worker.close()
        yield held
    finally:
        for worker in held:
            worker._lock.release()


@atexit.register
def _close_all() -> None:
    with _WORKERS_LOCK:
        for worker in _WORKERS.values():
            worker.close()

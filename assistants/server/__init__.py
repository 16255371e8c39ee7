"""The Assistants-API-compatible REST server: `python -m assistants.server`."""

from assistants.server.app import create_app, main

__all__ = ["create_app", "main"]

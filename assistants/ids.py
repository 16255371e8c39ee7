"""Object ids in OpenAI's style (`asst_`, `thread_`, `msg_`, ...) and timestamps."""

import secrets
import time

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_id(prefix: str) -> str:
    """A random 24-character id with the given prefix (`file-` keeps OpenAI's dash)."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(24))
    return f"{prefix}{body}" if prefix.endswith(("-", "_")) else f"{prefix}_{body}"


def now() -> int:
    """Unix seconds, as every `*_at` field uses."""
    return int(time.time())

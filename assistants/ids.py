"""Object ids in OpenAI's style (`asst_`, `thread_`, `msg_`, ...) and timestamps."""

import secrets
import time

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


_SPACE = len(_ALPHABET) ** 24
_BITS = _SPACE.bit_length()


def new_id(prefix: str) -> str:
    """A random 24-character id with the given prefix (`file-` keeps OpenAI's dash).

    One draw of random bits per id (not one per character: each draw is a system call), redrawn when it falls
    past 62**24 so every id is equally likely."""
    number = secrets.randbits(_BITS)
    while number >= _SPACE:
        number = secrets.randbits(_BITS)
    chars = []
    for _ in range(24):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    body = "".join(chars)
    return f"{prefix}{body}" if prefix.endswith(("-", "_")) else f"{prefix}_{body}"


def now() -> int:
    """Unix seconds, as every `*_at` field uses."""
    return int(time.time())

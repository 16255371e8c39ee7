"""Where the server listens: the no-keys-means-loopback rule, and a socket bound with errors a person can act on."""

from __future__ import annotations

import errno
import socket

from assistants.config import Settings
from assistants.server.deps import is_loopback


class ListenError(Exception):
    """The server cannot listen where it was asked to; the message says why and what to do."""


def bare_host(host: str) -> str:
    """`[::1]` as written in URLs -> `::1` as sockets take it."""
    host = host.strip()
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def url_host(host: str) -> str:
    """An address as it goes in a URL (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host else host


def bind_problem(host: str, settings: Settings) -> str | None:
    """Why the server must not listen on `host` (no API keys and not loopback), or None."""
    if settings.api_keys or _only_loopback(bare_host(host)) is not False:
        return None  # loopback, or a name nothing resolves: listen() says so
    return (f"Refusing to listen on {host} without API keys: anyone who can reach that address could use your "
            "models, files and code sandbox. Set PLAYGROUND_API_KEYS=key1,key2 (clients send one as their api_key), "
            "or listen on 127.0.0.1 (or ::1).")


def _only_loopback(host: str) -> bool | None:
    """Whether every address `host` stands for is loopback; None when it stands for none."""
    if is_loopback(host):
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return None
    return all(is_loopback(a) for a in addresses) if addresses else None


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (not yet listening: uvicorn does that), or ListenError saying what to do."""
    host = bare_host(host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid host name"
        raise ListenError(f"Cannot listen on '{host}': it is not an address of this machine and no host name "
                          f"resolves it ({reason}). Use --host 127.0.0.1 or --host ::1.") from None
    except OverflowError:
        raise ListenError(f"Port {port} is out of range: use a port between 1 and 65535.") from None
    # A name with both kinds of address (localhost) gets IPv4, where most clients try first.
    family, kind, proto, _, address = sorted(infos, key=lambda i: i[0] != socket.AF_INET)[0]
    try:
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenError(_why(exc, host, port)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(_why(exc, host, port)) from None
    return sock


def _why(exc: OSError, host: str, port: int) -> str:
    where = f"{url_host(host)}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (f"Cannot listen on {where}: the port is already in use (another server, perhaps another "
                "`python -m assistants.server`, is listening there). Stop it, or choose another port with --port.")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"Cannot listen on {where}: this machine has no address {host}. Use --host 127.0.0.1 or ::1, or one "
                "of the machine's own addresses (with PLAYGROUND_API_KEYS set).")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"Cannot listen on {where}: not allowed (ports below 1024 need administrator rights). "
                "Choose a port above 1024 with --port, e.g. --port 8000.")
    if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
        return (f"Cannot listen on {where}: IPv6 is switched off on this machine. Use --host 127.0.0.1 instead.")
    return f"Cannot listen on {where}: {exc.strerror or exc}."

"""SQLite connections lent to threads and taken back when the thread ends, so descriptors stay bounded."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

IDLE_MAX = 4  # connections kept open for the next threads; the rest are closed


class ConnectionPool:
    """A thread keeps one connection while it lives; a dead thread's connection goes back to the pool.

    Streamlit reruns and server requests run on short-lived threads: a connection per thread for ever
    leaked a descriptor (three with WAL) per thread. Open connections are now the live threads using
    the store plus at most IDLE_MAX idle ones, however many threads come and go.
    """

    def __init__(self, opener: Callable[[], sqlite3.Connection], idle_max: int = IDLE_MAX):
        self._opener = opener
        self._idle_max = idle_max
        self._lock = threading.Lock()
        self._lent: dict[threading.Thread, sqlite3.Connection] = {}
        self._idle: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """This thread's connection, lent from the pool on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            self._reclaim()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._opener()
        with self._lock:
            self._lent[threading.current_thread()] = conn
        self._local.conn = conn
        return conn

    def reclaim(self) -> None:
        """Take back the connections of threads that ended (also called by the sweeper)."""
        with self._lock:
            self._reclaim()

    def _reclaim(self) -> None:
        for thread, conn in list(self._lent.items()):
            if thread.is_alive():
                continue
            del self._lent[thread]
            try:
                if conn.in_transaction:  # the thread died mid-write: nothing of it may stay
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if len(self._idle) < self._idle_max and not self._closed:
                self._idle.append(conn)
            else:
                conn.close()

    def open_count(self) -> int:
        with self._lock:
            return len(self._lent) + len(self._idle)

    def close(self) -> None:
        with self._lock:
            for conn in [*self._lent.values(), *self._idle]:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._lent.clear()
            self._idle.clear()
            self._local = threading.local()

"""File bytes in PostgreSQL: 1 MiB chunks in `file_blobs`, written in one transaction with the file's row.

An upload holds one connection (and its open transaction) while its bytes arrive, so uploads get a small pool of
their own: a slow client can never starve the run workers and requests of the main pool. Downloads read one chunk
per statement on the main pool, so no connection waits on a slow reader.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from assistants.errors import RateLimited

BLOB_CHUNK = 1 << 20
UPLOAD_CONNECTIONS = 4  # uploads in progress at once per instance; more wait up to UPLOAD_WAIT_S
UPLOAD_WAIT_S = 60


class PgBlobUpload:
    """One upload's open transaction: chunks go in as they fill; `commit` adds the file row and commits all at once."""

    def __init__(self, store, pool: ConnectionPool, file_id: str):
        self._store, self._pool, self.file_id = store, pool, file_id
        try:
            self._conn: psycopg.Connection | None = pool.getconn(timeout=UPLOAD_WAIT_S)
        except PoolTimeout:
            raise RateLimited(f"{UPLOAD_CONNECTIONS} uploads are in progress on this server already; try again in a "
                              "minute.", param="file", code="too_many_uploads") from None
        self._buffer = bytearray()
        self._seq = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= BLOB_CHUNK:
            self._put(bytes(self._buffer[:BLOB_CHUNK]))
            del self._buffer[:BLOB_CHUNK]

    def _put(self, chunk: bytes) -> None:
        # file_blobs' foreign key is deferred: the chunks go in before the row they belong to.
        self._conn.execute("INSERT INTO file_blobs (file_id, seq, data) VALUES (%s, %s, %b)",
                           (self.file_id, self._seq, chunk))
        self._seq += 1

    def commit(self, row: dict) -> None:
        """Store the last chunk and the file's row, and commit: the file exists whole or not at all."""
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        conn = self._conn
        # The writer lock only now, for the row: seq order stays commit order, and other writes never wait on a upload.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._store.write_lock,))
        conn.execute(*self._store._insert_sql("files", row))
        conn.commit()
        self._release()

    def abort(self) -> None:
        """Roll everything back (idempotent; also after commit, when there is nothing left to do)."""
        if self._conn is None:
            return
        try:
            self._conn.rollback()
        except psycopg.Error:  # a broken connection rolled back on its own; the pool discards it
            pass
        self._release()

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        self._buffer = bytearray()
        if conn is not None:
            self._pool.putconn(conn)


class PgBlobQueries:
    """The PostgresStore's file-bytes methods (mixed in: uses its `_pool`, `_local`, `url` and `write_lock`)."""

    _upload_pool_lock = threading.Lock()

    def begin_blob(self, file_id: str) -> PgBlobUpload:
        """An upload of a new file's bytes, in a transaction of its own (see PgBlobUpload)."""
        if getattr(self._local, "conn", None) is not None:  # its commit would wait for this thread's own writer lock
            raise RuntimeError("a file cannot be stored inside another write transaction; store it before or after")
        return PgBlobUpload(self, self._upload_pool(), file_id)

    def blob_chunks(self, file_id: str) -> Iterator[bytes]:
        """A file's bytes, one chunk per statement, in order; ends early if the file is deleted meanwhile."""
        seq = 0
        while True:
            with self._pool.connection() as conn:
                row = conn.execute("SELECT data FROM file_blobs WHERE file_id = %s AND seq = %s", (file_id, seq),
                                   binary=True).fetchone()
            if row is None:
                return
            seq += 1
            yield bytes(row[0])

    def _upload_pool(self) -> ConnectionPool:
        with self._upload_pool_lock:
            pool = getattr(self, "_uploads", None)
            if pool is None:
                pool = ConnectionPool(self.url, min_size=0, max_size=UPLOAD_CONNECTIONS, open=False,
                                      name="playground-uploads", check=ConnectionPool.check_connection,
                                      kwargs={"autocommit": False, "connect_timeout": 10})
                pool.open(wait=False)
                self._uploads = pool
            return pool

    def close_blob_pool(self) -> None:
        with self._upload_pool_lock:
            pool, self._uploads = getattr(self, "_uploads", None), None
        if pool is not None:
            pool.close()

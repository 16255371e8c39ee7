"""The PostgreSQL store (psycopg 3 + psycopg_pool): the same `Store` interface as SQLite, for many instances.

Write transactions are serialised by advisory locks, as SQLite's `BEGIN IMMEDIATE` serialises them, but finer:
- a write about one thread (`write(thread_id)`: a run's own steps, messages and status changes, which touch only
  that thread's rows) takes WRITE_LOCK shared and the thread's lock: writes about different threads run side by
  side, writes about the same thread one after another;
- any other write takes WRITE_LOCK exclusively: it sees no interleaved writer, as before;
- run events are appended at COMMIT, in one round trip with it, under EVENTS_LOCK: the run event log's sequence
  numbers are then handed out in commit order (a reader that resumes after seq N never misses a row committed later
  with a smaller number), and that lock is held for the server's work only, never across a round trip.
The locks are taken in that order (WRITE_LOCK, a thread's, rows, EVENTS_LOCK) and the holder of EVENTS_LOCK waits
for nothing but its own INSERT: no two writers can deadlock. A transaction starts lazily: BEGIN and the locks go
with its first statement (one round trip), and a write that only appends events costs one round trip in all.
"""

from __future__ import annotations

import json
import re
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from assistants.errors import BadRequest
from assistants.store import COLUMN_ONLY, COLUMNS, DatabaseUnavailable, _col, check_page, list_page, split_fields
from assistants.store.pg_blobs import PgBlobQueries
from assistants.store.pg_queries import APPEND_SQL, CHANNEL, STEP_USAGE_SQL, Listener, PgRunQueries
from assistants.store.pg_responses import PgResponseQueries
from assistants.store.pg_schema import migrate
from assistants.store.pg_settings import PgSettingsQueries
from assistants.store.versions import VersionQueries

WRITE_LOCK = 7_413_002
EVENTS_LOCK = 7_413_003
THREAD_LOCKS = 7_413  # the class (first key) of the per-thread locks: (THREAD_LOCKS, hashtext(thread_id))
POOL_MAX = 20  # workers + request threads + sweeper + tailer; a read holds a connection for one statement only
CONNECT_TIMEOUT_S = 10
READ_ATTEMPTS = 3  # a read on a connection found broken is sent again on another
# What to do about the usual reasons a connection is refused (README: "Run several instances").
HINTS = (
    ("password authentication failed", ". Check the user and password in the URL."),
    ("does not exist", ". Create it first (README: Run several instances)."),
    ("Connection refused", ". Is PostgreSQL running there, and listening on that address and port?"),
    ("timeout expired", ". Is the host reachable (firewall, listen_addresses)?"),
)


def redact(url: str) -> str:
    """The URL with its password removed (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _scrub(text: str, url: str) -> str:
    password = urlsplit(url).password
    if not password:
        return text
    return text.replace(password, "***").replace(unquote(password), "***")


# JSON's \u0000 (not preceded by an escaped backslash): PostgreSQL's jsonb cannot hold NUL in a string.
_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _dumps(obj) -> str:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    # SQLite keeps a NUL typed into a message; PostgreSQL would refuse the whole write, so it becomes U+FFFD.
    return _NUL.sub(lambda m: m.group(1) + "\\ufffd", text) if "\\u0000" in text else text


def _jsonb(obj) -> Jsonb:
    return Jsonb(obj, dumps=_dumps)


def _check_if_spoken_to(conn: psycopg.Connection) -> None:
    """The pool's check of a connection it lends: a round trip only when the server has said something meanwhile.

    An idle autocommit connection (never a LISTEN one) hears from the server only when its backend goes away: a
    terminated backend (a restart, a failover, pg_terminate_backend) sends its error and closes the socket. Pinging
    every connection lent instead cost one round trip per statement, a third of all of them.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    waiting = select.poll()  # not select.select: a busy server's descriptors pass FD_SETSIZE (1024)
    waiting.register(conn.fileno(), select.POLLIN)
    if waiting.poll(0):
        ConnectionPool.check_connection(conn)


class _Transaction:
    """A write transaction on a pooled autocommit connection, begun with its first statement.

    What a transaction sends goes as few strings as it can, each one round trip in PostgreSQL's simple-query
    protocol (statements separated by `;`, arguments bound here as literals): BEGIN and the transaction's locks go
    with its first statement, the writes nobody reads the result of wait for the next statement or the COMMIT, and
    the run events appended meanwhile are written at COMMIT, in the same string, under EVENTS_LOCK. One string costs
    one wait for the server, where a pipeline of the same statements waits several times; each wait gives the GIL
    up, which a busy process pays for in CPU. A statement alone, after the first, goes as usual (bound by the server,
    prepared when repeated). Anything else is the connection's (`__getattr__`).
    """

    def __init__(self, conn: psycopg.Connection, thread_id: str | None):
        self.conn = conn
        self.thread_id = thread_id
        self.begun = False
        self.events: list[tuple[str, str, str, float]] = []
        self.deferred: list[str] = []  # writes nobody reads the result of (as text): sent with the next statement
        self._literals = psycopg.ClientCursor(conn)

    def __getattr__(self, name: str):
        return getattr(self.conn, name)

    def text(self, sql: str, args=None) -> str:
        """A statement with its arguments bound as literals (psycopg's own quoting)."""
        return self._literals.mogrify(sql, args) if args is not None else sql

    def _waiting(self) -> list[str]:
        """BEGIN and the locks if not sent yet, then the deferred writes; they count as sent from now on."""
        texts = []
        if not self.begun:
            texts.append("BEGIN")
            if self.thread_id is None:
                texts.append(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
            else:
                texts.append(self.text("SELECT pg_advisory_xact_lock_shared(%s::bigint), pg_advisory_xact_lock(%s, "
                                       "hashtext(%s))", (WRITE_LOCK, THREAD_LOCKS, self.thread_id)))
            self.begun = True
        texts += self.deferred
        self.deferred = []
        return texts

    def _send(self, texts: list[str]) -> psycopg.Cursor:
        """What waits to be sent, then `texts`, as one string: one round trip; the cursor on the first of `texts`'
        results (`nextset` for the next)."""
        waiting = self._waiting()
        # Literals differ each time: nothing to prepare.
        cursor = self.conn.execute("; ".join([*waiting, *texts]), prepare=False)
        for _ in waiting:
            cursor.nextset()
        return cursor

    def execute(self, query, params=None, **kwargs) -> psycopg.Cursor:
        if self.begun and not self.deferred:
            return self.conn.execute(query, params, **kwargs)
        return self._send([self.text(query, params)])

    def execute_each(self, statements: list[tuple[str, list]]) -> list[tuple[list | None, int]]:
        """Statements sent together (with what waits to be sent): one round trip; each one's (rows or None,
        rowcount)."""
        cursor = self._send([self.text(sql, args) for sql, args in statements])
        results = []
        for _ in statements:
            results.append((cursor.fetchall() if cursor.description else None, cursor.rowcount))
            cursor.nextset()
        return results

    def defer(self, statements: list[tuple[str, list]]) -> None:
        """Writes whose results nobody reads: sent with the transaction's next statement or its COMMIT, in order (a
        failing one raises there: at the latest when the `write` block ends)."""
        self.deferred.extend(self.text(sql, args) for sql, args in statements)

    def cursor(self, *args, **kwargs) -> psycopg.Cursor:
        if not self.begun or self.deferred:
            self._send([])
        return self.conn.cursor(*args, **kwargs)

    def append_events(self, rows: list[tuple[str, str, str]], created_at: float) -> None:
        self.events.extend((run_id, event, data, created_at) for run_id, event, data in rows)

    def commit(self) -> None:
        if not self.begun and not self.events and not self.deferred:
            return  # nothing was sent: nothing to commit
        texts = []
        if not self.begun and not self.deferred:
            texts, self.begun = ["BEGIN"], True  # events only: they need no lock but their own
        if self.events:
            run_ids, events, data, created = (list(column) for column in zip(*self.events, strict=True))
            # The payload is a pointer (each run), not the event: NOTIFY is neither durable nor large.
            texts.append(self.text(APPEND_SQL, (EVENTS_LOCK, run_ids, events, data, created, CHANNEL)))
        self._send([*texts, "COMMIT"])

    def rollback(self) -> None:
        self.deferred = []  # never sent
        conn = self.conn
        if self.begun and not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:  # a broken connection: the pool discards it, the server rolled back
                pass


class PostgresStore(PgRunQueries, PgResponseQueries, PgBlobQueries, PgSettingsQueries, VersionQueries):
    """Objects as JSONB with indexed columns; pooled autocommit connections, explicit write transactions."""

    write_lock = WRITE_LOCK

    def __init__(self, url: str, *, migrate_schema: bool = True, pool_max: int = POOL_MAX):
        self.url = url
        self.safe_url = redact(url)
        self._check_reachable()
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_max, open=False, name="playground",
                                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
                                    check=_check_if_spoken_to)
        self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
        self._local = threading.local()
        self._listener: Listener | None = None
        self._listener_lock = threading.Lock()
        if migrate_schema:
            with self._pool.connection() as c:
                migrate(c)

    def _check_reachable(self) -> None:
        """Connect once up front: the pool would retry quietly, this says why it cannot (never the password)."""
        try:
            psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S).close()
        except psycopg.Error as exc:
            reason = " ".join(_scrub(str(exc), self.url).split()) or type(exc).__name__
            hint = next((h for needle, h in HINTS if needle in reason), "")
            raise DatabaseUnavailable(f"cannot use PostgreSQL at {self.safe_url} (PLAYGROUND_DATABASE_URL): "
                                      f"{reason}{hint}") from None

    # -- connections and transactions -------------------------------------------------------
    @contextmanager
    def write(self, thread_id: str | None = None) -> Iterator[_Transaction]:
        """A short write transaction; nests (an inner `write` joins the outer one).

        `thread_id`: everything the transaction reads and writes belongs to that thread (or is never written by a
        write about a thread), so it need not wait for writes about other threads (see the module's docstring).
        """
        tx = getattr(self._local, "conn", None)
        if tx is not None:
            yield tx
            return
        self._local.callbacks = []
        with self._pool.connection() as conn:
            tx = self._local.conn = _Transaction(conn, thread_id)
            try:
                yield tx
                tx.commit()
            except BaseException:
                self._local.callbacks = []
                tx.rollback()
                raise
            finally:
                self._local.conn = None
        callbacks, self._local.callbacks = self._local.callbacks, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current write commits (at once outside a transaction); dropped on rollback."""
        if getattr(self._local, "conn", None) is not None:
            self._local.callbacks.append(callback)
        else:
            callback()

    def listener(self) -> Listener:
        """This store's one LISTEN connection (run events, settings), started on first use."""
        with self._listener_lock:
            if self._listener is None:
                self._listener = Listener(self.url)
            return self._listener

    def _rows(self, sql: str, args=()) -> list[tuple]:
        """A query's rows: on this thread's write transaction if there is one, else on a pooled connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn.execute(sql, args).fetchall()
        for attempt in range(1, READ_ATTEMPTS + 1):
            conn = None
            try:
                with self._pool.connection() as conn:
                    return conn.execute(sql, args).fetchall()
            except psycopg.OperationalError:
                # A backend terminated just now (its goodbye had not reached the pool's check): the pool drops the
                # broken connection, and a read is safe to send again on another.
                if conn is None or not conn.broken or attempt == READ_ATTEMPTS:
                    raise

    def _exec(self, sql: str, args=(), thread_id: str | None = None) -> int:
        """A write statement inside a write transaction (`thread_id`: a write about that thread); the rows it
        changed."""
        if getattr(self._local, "conn", None) is None:
            return self._alone(sql, args, thread_id).rowcount
        with self.write(thread_id) as c:
            return c.execute(sql, args).rowcount

    def _alone(self, sql: str, args, thread_id: str | None = None) -> psycopg.Cursor:
        """One write statement in a transaction of its own: BEGIN, its locks, it and COMMIT in one round trip (the
        locks are held for the server's work only)."""
        with self._pool.connection() as conn:
            tx = _Transaction(conn, thread_id)
            try:
                cursor = tx._send([tx.text(sql, args), "COMMIT"])
            except BaseException:
                tx.rollback()
                raise
            return cursor

    # -- the versions' dialect (store/versions.py) ------------------------------------------
    OVERRIDE_SEQ = "OVERRIDING SYSTEM VALUE"

    def _vrows(self, sql: str, args=()) -> list[tuple]:
        """A query written with `?` placeholders; its rows (none for a statement that returns none)."""
        sql = sql.replace("?", "%s")
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            cur = conn.execute(sql, args)
            return cur.fetchall() if cur.description else []
        with self._pool.connection() as conn:
            cur = conn.execute(sql, args)
            return cur.fetchall() if cur.description else []

    @staticmethod
    def _vjson(obj) -> Jsonb:
        return _jsonb(obj)

    @staticmethod
    def _vload(value):
        return value  # JSONB arrives decoded

    def _write_rows(self, sql: str, args=()) -> list[tuple]:
        """A write statement's RETURNING rows, inside a write transaction."""
        if getattr(self._local, "conn", None) is None:
            return self._alone(sql, args).fetchall()
        with self.write() as c:
            return c.execute(sql, args).fetchall()

    def open_connections(self) -> int:
        return self._pool.get_stats().get("pool_size", 0)

    def reclaim_connections(self) -> None:
        """Nothing to do: a connection goes back to the pool after each statement or transaction."""

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.close_blob_pool()
        self._pool.close()

    # -- generic object operations --------------------------------------------------------
    def insert_all(self, objects: list[tuple[str, dict]]) -> None:
        """Store new objects (table, object), in this order, in one write: the INSERTs go in one round trip."""
        with self.write() as tx:
            tx.defer([self._insert_sql(table, obj) for table, obj in objects])

    def insert(self, table: str, obj: dict, thread_id: str | None = None) -> dict:
        """Store a new object; inside a write transaction the INSERT goes with its next statement or COMMIT (a
        constraint it breaks raises there, at the latest when the `write` block ends)."""
        tx = getattr(self._local, "conn", None)
        if tx is None:
            self._alone(*self._insert_sql(table, obj), thread_id)
        else:
            tx.defer([self._insert_sql(table, obj)])
        return obj

    @staticmethod
    def _insert_sql(table: str, obj: dict) -> tuple[str, list]:
        """The INSERT statement (and its arguments) that stores a new object."""
        cols = COLUMNS[table]
        names = ", ".join(("id", "created_at", "data", *cols))
        marks = ", ".join(["%s"] * (3 + len(cols)))
        data = {k: v for k, v in obj.items() if k not in COLUMN_ONLY.get(table, ())}
        return (f"INSERT INTO {table} ({names}) VALUES ({marks})",
                [obj["id"], obj.get("created_at") or 0, _jsonb(data)] + [_col(obj, c) for c in cols])

    def put(self, table: str, obj: dict, **where) -> dict:
        """Replace a stored object (matched by id and `where`) with `obj`."""
        cols = COLUMNS[table]
        sets = ", ".join(["data = %s"] + [f"{c} = %s" for c in cols])
        cond, args = self._where(table, {"id": obj["id"], **where})
        self._exec(f"UPDATE {table} SET {sets} WHERE {cond}", [_jsonb(obj)] + [_col(obj, c) for c in cols] + args)
        return obj

    def update_fields(self, table: str, obj_id: str, fields: dict, *, lease_before: float | None = None,
                      returning: bool = False, **where) -> int | dict | None:
        """Set only these fields (`data || {...}`, top-level keys) if `where` holds; return the rows changed
        (`returning`: the changed object, or None)."""
        sql, args = self._update_sql(table, obj_id, fields, lease_before, returning, where)
        if returning:  # the object as changed, read back in the same round trip
            rows = self._write_rows(sql, args)
            return rows[0][0] if rows else None
        return self._exec(sql, args)

    def update_each(self, updates: list[tuple[str, str, dict, dict, bool]]) -> list[int | dict | None]:
        """Several `update_fields` (table, id, fields, where, returning) in one write and one round trip; each
        result as `update_fields` gives it."""
        statements = [self._update_sql(table, obj_id, fields, None, returning, where)
                      for table, obj_id, fields, where, returning in updates]
        with self.write() as tx:
            results = tx.execute_each(statements)
        return [(rows[0][0] if rows else None) if update[4] else count
                for update, (rows, count) in zip(updates, results, strict=True)]

    def _update_sql(self, table: str, obj_id: str, fields: dict, lease_before: float | None, returning: bool,
                    where: dict) -> tuple[str, list]:
        json_fields, computed, columns = split_fields(table, fields)
        col_sets, col_args = [f"{name} = %s" for name, _ in columns], [value for _, value in columns]
        patch = (["%s"] if json_fields else []) + [f"jsonb_build_object('{key}', {STEP_USAGE_SQL})" for key in computed]
        sets = ([f"data = data || {' || '.join(patch)}"] if patch else []) + col_sets
        cond, wargs = self._where(table, {"id": obj_id, **where})
        if lease_before is not None:
            cond += " AND (lease_until IS NULL OR lease_until < %s)"
            wargs.append(lease_before)
        head = ([_jsonb(json_fields)] if json_fields else []) + [obj_id] * len(computed)
        return (f"UPDATE {table} SET {', '.join(sets)} WHERE {cond}" + (" RETURNING data" if returning else ""),
                head + col_args + wargs)

    def get_each(self, wanted: list[tuple[str, str]]) -> list[dict | None]:
        reads = ", ".join(f"(SELECT data FROM {table} WHERE id = %s)" for table, _ in wanted)
        return list(self._rows(f"SELECT {reads}", [obj_id for _, obj_id in wanted])[0])

    def get(self, table: str, obj_id: str, **where) -> dict | None:
        cond, args = self._where(table, {"id": obj_id, **where})
        rows = self._rows(f"SELECT data FROM {table} WHERE {cond}", args)
        return rows[0][0] if rows else None

    def delete(self, table: str, obj_id: str | None = None, **where) -> int:
        filters = dict(where)
        if obj_id is not None:
            filters["id"] = obj_id
        cond, args = self._where(table, filters)
        return self._exec(f"DELETE FROM {table} WHERE {cond}", args)

    def all(self, table: str, *, order: str = "asc", **where) -> list[dict]:
        cond, args = self._where(table, where)
        direction = "ASC" if order == "asc" else "DESC"
        return [r[0] for r in self._rows(f"SELECT data FROM {table} WHERE {cond} ORDER BY seq {direction}", args)]

    def count(self, table: str, **where) -> int:
        cond, args = self._where(table, where)
        return self._rows(f"SELECT COUNT(*) FROM {table} WHERE {cond}", args)[0][0]

    def page(self, table: str, *, limit: int = 20, order: str = "desc", after: str | None = None,
             before: str | None = None, **where) -> dict:
        """One page of a list, answering like OpenAI: data, first_id, last_id, has_more."""
        check_page(limit, order)
        base_cond, base_args = self._where(table, where)
        conds, args = [base_cond], list(base_args)
        asc = order == "asc"
        reverse = False
        if after:
            conds.append("seq > %s" if asc else "seq < %s")
            args.append(self._cursor_seq(table, after, "after", where))
        if before:
            conds.append("seq < %s" if asc else "seq > %s")
            args.append(self._cursor_seq(table, before, "before", where))
            if not after:
                reverse, asc = True, not asc  # the page nearest the cursor, then the requested order
        direction = "ASC" if asc else "DESC"
        rows = self._rows(f"SELECT data FROM {table} WHERE {' AND '.join(conds)} ORDER BY seq {direction} LIMIT %s",
                          [*args, limit + 1])
        return list_page([r[0] for r in rows[:limit]], len(rows) > limit, reverse)

    def _cursor_seq(self, table: str, cursor: str, param: str, where: dict) -> int:
        cond, args = self._where(table, {"id": cursor, **where})
        rows = self._rows(f"SELECT seq FROM {table} WHERE {cond}", args)
        if not rows:
            raise BadRequest(f"The '{param}' cursor '{cursor}' is not an object in this list.", param=param)
        return rows[0][0]

    @staticmethod
    def _where(table: str, filters: dict) -> tuple[str, list]:
        """SQL for equality filters: a column where the table has one, else the object's JSON field."""
        conds, args = [], []
        cols = COLUMNS.get(table, ())
        for key, value in filters.items():
            if value is None:
                continue
            if key == "id" or key in cols:
                values = [value] if not isinstance(value, (list, tuple, set)) else list(value)
                conds.append(f"{key} = ANY(%s)" if len(values) != 1 else f"{key} = %s")
                args.extend([values] if len(values) != 1 else values)
            else:  # compared as JSON, so numbers and booleans match like strings do
                values = [value] if not isinstance(value, (list, tuple, set)) else list(value)
                if not values:
                    conds.append("FALSE")
                    continue
                conds.append(f"data->'{key}' IN ({', '.join(['%s::jsonb'] * len(values))})")
                args.extend(_jsonb(v) for v in values)
        return (" AND ".join(conds) or "TRUE"), args

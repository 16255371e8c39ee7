"""Persistence: SQLite here (the embedded default), PostgreSQL in postgres.py; `open_store` picks one."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from assistants.errors import BadRequest
from assistants.store.migrations import ACTIVE_RUN_STATUSES, migrate
from assistants.store.pool import ConnectionPool
from assistants.store.reports import ReportQueries
from assistants.store.responses import ResponseQueries
from assistants.store.interface import STEP_USAGE
from assistants.store.runs import STEP_USAGE_SQL, RunQueries
from assistants.store.settings import SettingsQueries
from assistants.store.versions import VersionQueries

__all__ = ["ACTIVE_RUN_STATUSES", "DatabaseUnavailable", "IntegrityError", "Store", "open_store"]


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be used (unreachable, refused us, a newer schema); says why, no password."""

# A constraint said no (one active run per thread, a parent row gone): what callers catch, whatever the database.
try:
    import psycopg

    IntegrityError: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)
except ImportError:  # PostgreSQL support not installed: SQLite only
    IntegrityError = (sqlite3.IntegrityError,)


def open_store(settings):
    """The store the settings name: PostgreSQL for a `postgresql://` PLAYGROUND_DATABASE_URL, else SQLite."""
    url = getattr(settings, "database_url", "")
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("PLAYGROUND_DATABASE_URL must start with postgresql:// (leave it empty for SQLite)")
        from assistants.store.postgres import PostgresStore

        return PostgresStore(url)
    return Store(settings.db_path)

# The indexed columns of each object table, filled from the object's own fields on every write.
COLUMNS: dict[str, tuple[str, ...]] = {
    "assistants": (),
    "threads": (),
    "messages": ("thread_id", "run_id"),
    "runs": ("thread_id", "assistant_id", "status", "owner", "lease_until"),
    "run_steps": ("thread_id", "run_id"),
    "files": ("purpose",),
    "vector_stores": (),
    "vector_store_files": ("vector_store_id", "status", "batch_id"),
    "file_batches": ("vector_store_id", "status"),
    "model_calls": ("run_id",),
}


def _col(obj: dict, name: str):
    """A column's value: the object's field, or its engine-private `_name` twin."""
    return obj.get(name, obj.get("_" + name))


# Keys of a run stored only in their column, never in its JSON (the lease changes without the run changing).
COLUMN_ONLY = {"runs": ("_owner", "_lease_until")}


def split_fields(table: str, fields: dict) -> tuple[dict, list[str], list[tuple[str, object]]]:
    """`update_fields`' fields by where they go, for either dialect to write: the JSON keys set to a value, the JSON
    keys the database computes (STEP_USAGE), and the columns set (a column-only field under its column's name; a
    field with a column of its own goes to both)."""
    cols, column_only = COLUMNS[table], COLUMN_ONLY.get(table, ())
    json_fields, computed, columns = {}, [], []
    for key, value in fields.items():
        if key in column_only:
            columns.append((key[1:], value))
        elif value is STEP_USAGE:
            computed.append(key)
        else:
            json_fields[key] = value
            if key in cols:
                columns.append((key, value))
    return json_fields, computed, columns


def check_page(limit, order) -> None:
    """A 400 for a list's limit or order that OpenAI would refuse (both stores' `page`)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
        raise BadRequest("limit must be an integer between 1 and 100.", param="limit")
    if order not in ("asc", "desc"):
        raise BadRequest("order must be 'asc' or 'desc'.", param="order")


def list_page(data: list[dict], has_more: bool, reverse: bool) -> dict:
    """A page as OpenAI answers it: data (walked away from a `before` cursor if reverse), first_id, last_id, has_more."""
    if reverse:
        data.reverse()
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


_NO_BLOBS = "On SQLite, file bytes live in a folder (PLAYGROUND_FILES_DIR or <data dir>/files), not in the database."


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Store(RunQueries, ReportQueries, ResponseQueries, SettingsQueries, VersionQueries):
    """A SQLite database in WAL mode: pooled connections, `BEGIN IMMEDIATE` for every write."""

    def __init__(self, path: Path | str, *, migrate_schema: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool = ConnectionPool(self._open)
        self._after = threading.local()
        if migrate_schema:
            migrate(self.conn())

    # -- connections and transactions -------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("PRAGMA busy_timeout=30000")
        c.execute("PRAGMA foreign_keys=ON")
        return c

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: transactions are explicit)."""
        return self._pool.get()

    def open_connections(self) -> int:
        return self._pool.open_count()

    def reclaim_connections(self) -> None:
        self._pool.reclaim()

    @contextmanager
    def write(self, thread_id: str | None = None) -> Iterator[sqlite3.Connection]:
        """A short write transaction; nests (an inner `write` joins the outer one). `thread_id` (what PostgreSQL's
        finer locks use) changes nothing here: SQLite has one writer."""
        c = self.conn()
        if c.in_transaction:
            yield c
            return
        self._after.callbacks = []
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            self._after.callbacks = []
            if c.in_transaction:  # also when COMMIT itself failed (a deferred foreign key): never leave it open
                c.execute("ROLLBACK")
            raise
        callbacks, self._after.callbacks = self._after.callbacks, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current write commits (at once outside a transaction); dropped on rollback."""
        if self.conn().in_transaction:
            self._after.callbacks.append(callback)
        else:
            callback()

    def close(self) -> None:
        self._pool.close()

    def on_events(self, callback: Callable[[str | None, int | None], None]) -> bool:
        """SQLite has no notifications: False, the event tailer keeps polling the log."""
        return False

    # -- the versions' dialect (store/versions.py) ------------------------------------------
    def _vrows(self, sql: str, args=()) -> list[tuple]:
        return self.conn().execute(sql, args).fetchall()

    @staticmethod
    def _vjson(obj) -> str:
        return _dumps(obj)

    @staticmethod
    def _vload(value):
        return json.loads(value)

    def begin_blob(self, file_id: str):
        raise RuntimeError(_NO_BLOBS)

    def blob_chunks(self, file_id: str) -> Iterator[bytes]:
        raise RuntimeError(_NO_BLOBS)

    # -- generic object operations --------------------------------------------------------
    def insert_all(self, objects: list[tuple[str, dict]]) -> None:
        """Store new objects (table, object), in this order, in one write."""
        with self.write():
            for table, obj in objects:
                self.insert(table, obj)

    def insert(self, table: str, obj: dict, thread_id: str | None = None) -> dict:
        """Store a new object (`thread_id`: as `write`'s, nothing here)."""
        cols = COLUMNS[table]
        names = ", ".join(("id", "created_at", "data", *cols))
        marks = ", ".join("?" * (3 + len(cols)))
        data = {k: v for k, v in obj.items() if k not in COLUMN_ONLY.get(table, ())}
        values = [obj["id"], obj.get("created_at") or 0, _dumps(data)] + [_col(obj, c) for c in cols]
        with self.write() as c:
            c.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)
        return obj

    def put(self, table: str, obj: dict, **where) -> dict:
        """Replace a stored object (matched by id and `where`) with `obj`."""
        cols = COLUMNS[table]
        sets = ", ".join(["data = ?"] + [f"{c} = ?" for c in cols])
        cond, args = self._where({"id": obj["id"], **where})
        with self.write() as c:
            c.execute(f"UPDATE {table} SET {sets} WHERE {cond}", [_dumps(obj)] + [_col(obj, c) for c in cols] + args)
        return obj

    def update_each(self, updates: list[tuple[str, str, dict, dict, bool]]) -> list[int | dict | None]:
        """Several `update_fields` (table, id, fields, where, returning) in one write; each result as
        `update_fields` gives it (PostgreSQL sends them in one round trip)."""
        with self.write():
            return [self.update_fields(table, obj_id, fields, returning=returning, **where)
                    for table, obj_id, fields, where, returning in updates]

    def update_fields(self, table: str, obj_id: str, fields: dict, *, lease_before: float | None = None,
                      returning: bool = False, **where) -> int | dict | None:
        """Set only these fields of a stored object (compare-and-set on `where`); return the rows changed
        (`returning`: the changed object, or None).

        Field-level, so a concurrent change to another field (metadata set while a reply streams) is kept.
        """
        cols = COLUMNS[table]
        json_fields, computed, columns = split_fields(table, fields)
        paths = ([f"'$.\"{key}\"', json(?)" for key in json_fields]
                 + [f"'$.\"{key}\"', {STEP_USAGE_SQL}" for key in computed])
        json_args = ([json.dumps(value, separators=(",", ":"), ensure_ascii=False) for value in json_fields.values()]
                     + [obj_id] * len(computed))
        col_sets, col_args = [f"{name} = ?" for name, _ in columns], [value for _, value in columns]
        sets = ([f"data = json_set(data, {', '.join(paths)})"] if paths else []) + col_sets
        # A filter on a field without a column of its own (a step's or a message's status) reads the JSON.
        named = {(k if k in cols or k == "id" else f"json_extract(data, '$.{k}')"): v for k, v in where.items()}
        cond, wargs = self._where({"id": obj_id, **named})
        if lease_before is not None:
            cond += " AND (lease_until IS NULL OR lease_until < ?)"
            wargs.append(lease_before)
        with self.write() as c:
            changed = c.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE {cond}", json_args + col_args + wargs).rowcount
            if returning:
                return self.get(table, obj_id) if changed else None
            return changed

    def get_each(self, wanted: list[tuple[str, str]]) -> list[dict | None]:
        """Objects by (table, id), read in one statement; None for each one missing."""
        reads = ", ".join(f"(SELECT data FROM {table} WHERE id = ?)" for table, _ in wanted)
        row = self.conn().execute(f"SELECT {reads}", [obj_id for _, obj_id in wanted]).fetchone()
        return [json.loads(value) if value is not None else None for value in row]

    def get(self, table: str, obj_id: str, **where) -> dict | None:
        cond, args = self._where({"id": obj_id, **where})
        row = self.conn().execute(f"SELECT data FROM {table} WHERE {cond}", args).fetchone()
        return json.loads(row[0]) if row else None

    def delete(self, table: str, obj_id: str | None = None, **where) -> int:
        filters = dict(where)
        if obj_id is not None:
            filters["id"] = obj_id
        cond, args = self._where(filters)
        with self.write() as c:
            return c.execute(f"DELETE FROM {table} WHERE {cond}", args).rowcount

    def all(self, table: str, *, order: str = "asc", **where) -> list[dict]:
        cond, args = self._where(where)
        direction = "ASC" if order == "asc" else "DESC"
        rows = self.conn().execute(f"SELECT data FROM {table} WHERE {cond} ORDER BY seq {direction}", args)
        return [json.loads(r[0]) for r in rows]

    def count(self, table: str, **where) -> int:
        cond, args = self._where(where)
        return self.conn().execute(f"SELECT COUNT(*) FROM {table} WHERE {cond}", args).fetchone()[0]

    def page(self, table: str, *, limit: int = 20, order: str = "desc", after: str | None = None,
             before: str | None = None, **where) -> dict:
        """One page of a list, answering like OpenAI: data, first_id, last_id, has_more."""
        check_page(limit, order)
        base_cond, base_args = self._where(where)
        conds, args = [base_cond], list(base_args)
        asc = order == "asc"
        reverse = False
        if after:
            seq = self._cursor_seq(table, after, "after", where)
            conds.append("seq > ?" if asc else "seq < ?")
            args.append(seq)
        if before:
            seq = self._cursor_seq(table, before, "before", where)
            conds.append("seq < ?" if asc else "seq > ?")
            args.append(seq)
            if not after:
                # The page nearest the cursor: walk away from it, then restore the requested order.
                reverse = True
                asc = not asc
        direction = "ASC" if asc else "DESC"
        sql = f"SELECT data FROM {table} WHERE {' AND '.join(conds)} ORDER BY seq {direction} LIMIT ?"
        rows = self.conn().execute(sql, [*args, limit + 1]).fetchall()
        return list_page([json.loads(r[0]) for r in rows[:limit]], len(rows) > limit, reverse)

    def _cursor_seq(self, table: str, cursor: str, param: str, where: dict) -> int:
        cond, args = self._where({"id": cursor, **where})
        row = self.conn().execute(f"SELECT seq FROM {table} WHERE {cond}", args).fetchone()
        if row is None:
            raise BadRequest(f"The '{param}' cursor '{cursor}' is not an object in this list.", param=param)
        return row[0]

    @staticmethod
    def _where(filters: dict) -> tuple[str, list]:
        conds, args = [], []
        for key, value in filters.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple, set)):
                conds.append(f"{key} IN ({', '.join('?' * len(value))})" if value else "0")
                args.extend(value)
            else:
                conds.append(f"{key} = ?")
                args.append(value)
        return (" AND ".join(conds) or "1"), args

"""Numbered schema migrations, each recorded in `schema_migrations` once applied."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

ACTIVE_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")


def _object_table(name: str, extra: str = "", unique_id: bool = True) -> str:
    uniq = "UNIQUE" if unique_id else ""
    cols = f", {extra}" if extra else ""
    return (
        f"CREATE TABLE {name} (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL {uniq}, "
        f"created_at INTEGER NOT NULL, data TEXT NOT NULL{cols})"
    )


def m001_core(conn: sqlite3.Connection) -> None:
    """Assistants, threads, messages, runs and run steps."""
    active = ", ".join(f"'{s}'" for s in ACTIVE_RUN_STATUSES)
    for sql in (
        _object_table("assistants"),
        _object_table("threads"),
        _object_table("messages", "thread_id TEXT NOT NULL, run_id TEXT"),
        "CREATE INDEX messages_thread ON messages(thread_id, seq)",
        _object_table("runs", "thread_id TEXT NOT NULL, assistant_id TEXT, status TEXT NOT NULL, owner TEXT"),
        "CREATE INDEX runs_thread ON runs(thread_id, seq)",
        # The database itself guarantees at most one active run per thread.
        f"CREATE UNIQUE INDEX runs_one_active ON runs(thread_id) WHERE status IN ({active})",
        _object_table("run_steps", "thread_id TEXT NOT NULL, run_id TEXT NOT NULL"),
        "CREATE INDEX run_steps_run ON run_steps(run_id, seq)",
    ):
        conn.execute(sql)


def m002_files_and_vector_stores(conn: sqlite3.Connection) -> None:
    """Files, vector stores, their files and batches."""
    for sql in (
        _object_table("files", "purpose TEXT NOT NULL"),
        _object_table("vector_stores"),
        _object_table("vector_store_files", "vector_store_id TEXT NOT NULL, status TEXT NOT NULL, batch_id TEXT",
                      unique_id=False),
        "CREATE UNIQUE INDEX vsf_unique ON vector_store_files(vector_store_id, id)",
        "CREATE INDEX vsf_file ON vector_store_files(id)",
        _object_table("file_batches", "vector_store_id TEXT NOT NULL, status TEXT NOT NULL"),
    ):
        conn.execute(sql)


def m003_search_index(conn: sqlite3.Connection) -> None:
    """The file-search chunk index (FTS5 + embeddings)."""
    from assistants.store.search_schema import SCHEMA

    for sql in SCHEMA:
        conn.execute(sql)


def m004_model_calls(conn: sqlite3.Connection) -> None:
    """Per model call: the request sent and the response received, for the run log."""
    conn.execute(_object_table("model_calls", "run_id TEXT NOT NULL"))
    conn.execute("CREATE INDEX model_calls_run ON model_calls(run_id, seq)")


def m005_search_index_cjk(conn: sqlite3.Connection) -> None:
    """File search: CJK text indexed a character per token; existing chunks are re-indexed."""
    from assistants.store.search_schema import upgrade_schema

    upgrade_schema(conn)  # a no-op where m003 already created the current schema


def m006_search_index_nfkc(conn: sqlite3.Connection) -> None:
    """File search: indexed text in NFKC form (ligatures, full-width Latin, half-width kana); re-indexed."""
    from assistants.store.search_schema import renormalize

    renormalize(conn)


def m007_leases_events_foreign_keys(conn: sqlite3.Connection) -> None:
    """Runs get a lease (owner, lease_until); the run event log; foreign keys with ON DELETE CASCADE.

    SQLite cannot add a foreign key to a table, so messages, runs, steps and model calls are rebuilt
    (rows whose thread or run is already gone are left behind: they were orphans).
    """
    active = ", ".join(f"'{s}'" for s in ACTIVE_RUN_STATUSES)
    thread_fk = "REFERENCES threads(id) ON DELETE CASCADE"
    run_fk = "REFERENCES runs(id) ON DELETE CASCADE"
    rebuilds = (
        ("runs", f"thread_id TEXT NOT NULL {thread_fk}, assistant_id TEXT, status TEXT NOT NULL, owner TEXT, "
                 "lease_until REAL", "thread_id IN (SELECT id FROM threads)",
         ["CREATE INDEX runs_thread ON runs(thread_id, seq)",
          f"CREATE UNIQUE INDEX runs_one_active ON runs(thread_id) WHERE status IN ({active})",
          f"CREATE INDEX runs_lease ON runs(lease_until) WHERE status IN ({active})"]),
        ("messages", f"thread_id TEXT NOT NULL {thread_fk}, run_id TEXT", "thread_id IN (SELECT id FROM threads)",
         ["CREATE INDEX messages_thread ON messages(thread_id, seq)",
          "CREATE INDEX messages_run ON messages(run_id) WHERE run_id IS NOT NULL"]),
        ("run_steps", f"thread_id TEXT NOT NULL, run_id TEXT NOT NULL {run_fk}", "run_id IN (SELECT id FROM runs)",
         ["CREATE INDEX run_steps_run ON run_steps(run_id, seq)"]),
        ("model_calls", f"run_id TEXT NOT NULL {run_fk}", "run_id IN (SELECT id FROM runs)",
         ["CREATE INDEX model_calls_run ON model_calls(run_id, seq)"]),
    )
    for table, extra, keep, indexes in rebuilds:
        old_cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        conn.execute(_object_table(f"{table}__new", extra))
        conn.execute(f"INSERT INTO {table}__new ({', '.join(old_cols)}) SELECT {', '.join(old_cols)} FROM {table} "
                     f"WHERE {keep}")
        conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {table}__new RENAME TO {table}")
        for sql in indexes:
            conn.execute(sql)
    conn.execute(f"CREATE TABLE run_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                 f"run_id TEXT NOT NULL {run_fk} DEFERRABLE INITIALLY DEFERRED, "
                 f"event TEXT NOT NULL, data TEXT NOT NULL, created_at REAL NOT NULL)")
    conn.execute("CREATE INDEX run_events_run ON run_events(run_id, seq)")
    conn.execute("CREATE INDEX run_events_age ON run_events(created_at)")


# The Responses API's tables. Older versions made them on first use, without foreign keys, so m008 may find them.
_RESPONSE_TABLES = {
    "responses": (
        "CREATE TABLE {name} (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
        "created_at INTEGER NOT NULL, thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE, "
        "run_id TEXT NOT NULL, waiting_calls TEXT NOT NULL DEFAULT '', data TEXT NOT NULL)",
        "thread_id IN (SELECT id FROM threads)",
        ["CREATE INDEX responses_run ON responses(run_id)",
         "CREATE INDEX responses_thread ON responses(thread_id, seq)"]),
    "conversation_items": (
        "CREATE TABLE {name} (message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE, "
        "thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE, item_id TEXT NOT NULL, data TEXT NOT NULL)",
        "message_id IN (SELECT id FROM messages) AND thread_id IN (SELECT id FROM threads)",
        ["CREATE INDEX conversation_items_thread ON conversation_items(thread_id)"]),
}


def _shape(conn: sqlite3.Connection, table: str) -> tuple[set, set]:
    """A table's columns and foreign keys (child column, parent table, parent column, on delete)."""
    cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    fks = {(r[3], r[2], r[4], r[6]) for r in conn.execute(f"PRAGMA foreign_key_list({table})")}
    return cols, fks


def m008_responses(conn: sqlite3.Connection) -> None:
    """The Responses API's records and conversation items, with foreign keys: deleting a conversation (a thread)
    deletes its responses and items, deleting a message its item.

    Idempotent: a table made on first use by an older version is rebuilt when its columns or foreign keys differ
    (its rows copied; those whose thread or message is already gone are left behind, as in m007).
    """
    for table, (create, keep, indexes) in _RESPONSE_TABLES.items():
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        if exists:
            conn.execute(create.format(name=f"{table}__new"))
            wanted = _shape(conn, f"{table}__new")
            if _shape(conn, table) == wanted:
                conn.execute(f"DROP TABLE {table}__new")
            else:
                shared = ", ".join(c for c in _shape(conn, table)[0] if c in wanted[0])
                conn.execute(f"INSERT INTO {table}__new ({shared}) SELECT {shared} FROM {table} WHERE {keep}")
                conn.execute(f"DROP TABLE {table}")
                conn.execute(f"ALTER TABLE {table}__new RENAME TO {table}")
        else:
            conn.execute(create.format(name=table))
        for sql in indexes:
            conn.execute(sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS"))


def m010_settings(conn: sqlite3.Connection) -> None:
    """The settings document every instance shares (one row per key; a removed key keeps its row, value NULL)."""
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT, version INTEGER NOT NULL, "
                 "updated_at REAL NOT NULL)")


def m011_ci_affinity(conn: sqlite3.Connection) -> None:
    """Which instance holds each thread's Code Interpreter session, while that instance says it is alive."""
    conn.execute("CREATE TABLE ci_sessions (thread_id TEXT PRIMARY KEY REFERENCES threads(id) ON DELETE CASCADE, "
                 "instance_id TEXT NOT NULL, last_used_at REAL NOT NULL, alive_until REAL)")
    conn.execute("CREATE INDEX ci_sessions_instance ON ci_sessions(instance_id)")


def m012_message_versions(conn: sqlite3.Connection) -> None:
    """Archived conversation tails (store/versions.py): they go with their thread."""
    conn.execute(VERSIONS_TABLE.format(seq="INTEGER PRIMARY KEY AUTOINCREMENT", json="TEXT"))


# Shared with PostgreSQL's m009 (pg_schema.py): only the seq column and the JSON type differ.
VERSIONS_TABLE = ("CREATE TABLE message_versions (seq {seq}, "
                  "thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE, point TEXT NOT NULL, "
                  "number INTEGER NOT NULL, created_at BIGINT NOT NULL, run_ids {json} NOT NULL, data {json} NOT NULL, "
                  "UNIQUE (thread_id, point, number))")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    m001_core,
    m002_files_and_vector_stores,
    m003_search_index,
    m004_model_calls,
    m005_search_index_cjk,
    m006_search_index_nfkc,
    m007_leases_events_foreign_keys,
    m008_responses,
    m010_settings,
    m011_ci_affinity,
    m012_message_versions,
]


def _applied(conn: sqlite3.Connection) -> set[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at INTEGER)")
    return {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}


def applied_version(conn: sqlite3.Connection) -> int:
    """How many of MIGRATIONS this database has (they are recorded by name, not by position)."""
    names = _applied(conn)
    return sum(step.__name__ in names for step in MIGRATIONS)


def migrate(conn: sqlite3.Connection, upto: int | None = None) -> int:
    """Apply the migrations not yet recorded by name (each in its own IMMEDIATE transaction); return how many are applied."""
    import time

    wanted = MIGRATIONS if upto is None else MIGRATIONS[:upto]
    for step in wanted:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if step.__name__ not in _applied(conn):
                step(conn)
                conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                             (step.__name__, int(time.time())))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied_version(conn)

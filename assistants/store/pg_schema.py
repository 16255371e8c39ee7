"""The PostgreSQL schema: named migrations, recorded in `schema_migrations` like SQLite's."""

from __future__ import annotations

import time
from collections.abc import Callable

from assistants.store import DatabaseUnavailable
from assistants.store.migrations import ACTIVE_RUN_STATUSES, VERSIONS_TABLE

# Every instance runs migrations at start: one at a time, whoever comes first (a session-level advisory lock).
MIGRATION_LOCK = 7_413_001
# What a text-search configuration indexes: the English Snowball stemmer without its stopword list, like FTS5's
# porter tokenizer (the query side drops stopwords itself, see chunk_index.query_terms).
TS_CONFIG = "playground_text"


def _object_table(name: str, extra: str = "", unique_id: bool = True) -> str:
    cols = f", {extra}" if extra else ""
    return (f"CREATE TABLE {name} (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            f"id TEXT NOT NULL {'UNIQUE' if unique_id else ''}, created_at BIGINT NOT NULL, data JSONB NOT NULL{cols})")


def m001_core(c) -> None:
    """Assistants, threads, messages, runs (a lease, one active per thread), steps; cascading foreign keys."""
    active = ", ".join(f"'{s}'" for s in ACTIVE_RUN_STATUSES)
    thread_fk = "REFERENCES threads(id) ON DELETE CASCADE"
    run_fk = "REFERENCES runs(id) ON DELETE CASCADE"
    for sql in (
        _object_table("assistants"),
        _object_table("threads"),
        _object_table("messages", f"thread_id TEXT NOT NULL {thread_fk}, run_id TEXT"),
        "CREATE INDEX messages_thread ON messages(thread_id, seq)",
        "CREATE INDEX messages_run ON messages(run_id) WHERE run_id IS NOT NULL",
        _object_table("runs", f"thread_id TEXT NOT NULL {thread_fk}, assistant_id TEXT, status TEXT NOT NULL, "
                              "owner TEXT, lease_until DOUBLE PRECISION"),
        "CREATE INDEX runs_thread ON runs(thread_id, seq)",
        # The database itself guarantees at most one active run per thread.
        f"CREATE UNIQUE INDEX runs_one_active ON runs(thread_id) WHERE status IN ({active})",
        f"CREATE INDEX runs_lease ON runs(lease_until) WHERE status IN ({active})",
        _object_table("run_steps", f"thread_id TEXT NOT NULL, run_id TEXT NOT NULL {run_fk}"),
        "CREATE INDEX run_steps_run ON run_steps(run_id, seq)",
        _object_table("model_calls", f"run_id TEXT NOT NULL {run_fk}"),
        "CREATE INDEX model_calls_run ON model_calls(run_id, seq)",
    ):
        c.execute(sql)


def m002_files_and_vector_stores(c) -> None:
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
        c.execute(sql)


def m003_run_events(c) -> None:
    """The run event log: seq is handed out under the writer lock, so it is commit order (see postgres.py)."""
    c.execute("CREATE TABLE run_events (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
              "run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, "
              "event TEXT NOT NULL, data TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)")
    c.execute("CREATE INDEX run_events_run ON run_events(run_id, seq)")
    c.execute("CREATE INDEX run_events_age ON run_events(created_at)")


def m004_search_index(c) -> None:
    """The file-search chunk index: a tsvector per chunk (GIN) and its embedding."""
    c.execute(f"CREATE TEXT SEARCH DICTIONARY {TS_CONFIG}_stem (TEMPLATE = snowball, Language = english)")
    c.execute(f"CREATE TEXT SEARCH CONFIGURATION {TS_CONFIG} (COPY = english)")
    c.execute(f"ALTER TEXT SEARCH CONFIGURATION {TS_CONFIG} ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, "
              f"word, hword, hword_part, numword, numhword, hword_numpart WITH {TS_CONFIG}_stem")
    c.execute("""CREATE TABLE fs_chunks (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        vector_store_id TEXT NOT NULL,
        file_id TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        filename TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        text TEXT NOT NULL,
        embedding BYTEA,
        tsv TSVECTOR NOT NULL)""")
    c.execute("CREATE UNIQUE INDEX fs_chunks_store_file ON fs_chunks (vector_store_id, file_id, chunk_index)")
    c.execute("CREATE INDEX fs_chunks_tsv ON fs_chunks USING GIN (tsv)")


def m005_responses(c) -> None:
    """The Responses API's records and conversation items; they go with their thread (and an item with its message)."""
    c.execute("CREATE TABLE responses (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
              "created_at BIGINT NOT NULL, thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE, "
              "run_id TEXT NOT NULL, waiting_calls TEXT[] NOT NULL DEFAULT '{}', data JSONB NOT NULL)")
    c.execute("CREATE INDEX responses_run ON responses(run_id)")
    c.execute("CREATE INDEX responses_thread ON responses(thread_id, seq)")
    c.execute("CREATE INDEX responses_waiting ON responses USING GIN (waiting_calls)")
    c.execute("CREATE TABLE conversation_items (message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE, "
              "thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE, item_id TEXT NOT NULL, "
              "data JSONB NOT NULL)")
    c.execute("CREATE INDEX conversation_items_thread ON conversation_items(thread_id)")


def m006_file_blobs(c) -> None:
    """Uploaded files' bytes in 1 MiB chunks (when no PLAYGROUND_FILES_DIR is set); they go with their file's row.

    Deferred foreign key: an upload writes its chunks first and its row last, all in one transaction.
    """
    c.execute("CREATE TABLE file_blobs (file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE "
              "DEFERRABLE INITIALLY DEFERRED, seq INTEGER NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (file_id, seq))")



def m007_settings(c) -> None:
    """The settings document every instance shares (one row per key; a removed key keeps its row, value NULL)."""
    c.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value JSONB, version BIGINT NOT NULL, "
              "updated_at DOUBLE PRECISION NOT NULL)")


def m008_ci_affinity(c) -> None:
    """Which instance holds each thread's Code Interpreter session, while that instance says it is alive."""
    c.execute("CREATE TABLE ci_sessions (thread_id TEXT PRIMARY KEY REFERENCES threads(id) ON DELETE CASCADE, "
              "instance_id TEXT NOT NULL, last_used_at DOUBLE PRECISION NOT NULL, alive_until DOUBLE PRECISION)")
    c.execute("CREATE INDEX ci_sessions_instance ON ci_sessions(instance_id)")


def m009_message_versions(c) -> None:
    """Archived conversation tails (store/versions.py): they go with their thread."""
    c.execute(VERSIONS_TABLE.format(seq="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", json="JSONB"))


MIGRATIONS: list[Callable] = [m001_core, m002_files_and_vector_stores, m003_run_events, m004_search_index,
                              m005_responses, m006_file_blobs, m007_settings, m008_ci_affinity,
                              m009_message_versions]


class SchemaTooNew(DatabaseUnavailable):
    """The database was migrated by a newer version of the Playground than this one."""


def migrate(conn) -> int:
    """Apply the migrations this database lacks (by name), one instance at a time; return how many are applied.

    A database holding migrations this code does not know was upgraded by a newer version: refuse to run on it.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT)")
        applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
        unknown = applied - {m.__name__ for m in MIGRATIONS}
        if unknown:
            raise SchemaTooNew(f"the database has migrations this version does not know ({', '.join(sorted(unknown))}): "
                               "it was upgraded by a newer Playground; upgrade this instance to the same version")
        for step in MIGRATIONS:
            if step.__name__ not in applied:
                step(conn)
                conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)",
                             (step.__name__, int(time.time())))
    return len(MIGRATIONS)

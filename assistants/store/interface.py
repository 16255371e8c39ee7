"""The `Store` interface everything outside `assistants/store/` goes through; a PostgreSQL store implements it too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol


class _StepUsage:
    """An `update_fields` value on a run: the sum of its steps' usage, summed by the database in the same statement
    (so the two can never disagree, and ending a run costs no separate read)."""

    def __repr__(self) -> str:
        return "STEP_USAGE"


STEP_USAGE = _StepUsage()


class StoreInterface(Protocol):
    """Objects as wire JSON with indexed columns, compare-and-set updates, leases, the run event log, named queries."""

    # -- transactions ----------------------------------------------------------------------------
    def write(self, thread_id: str | None = None) -> AbstractContextManager[Any]:
        """A short write transaction; an inner one joins it. `thread_id`: it reads and writes only that thread's
        objects (and what no such write changes), so it need not wait for writes about other threads."""
    def after_commit(self, callback: Callable[[], None]) -> None: """Run after the current write commits."""
    def close(self) -> None: """Close every connection."""
    def reclaim_connections(self) -> None: """Take back the connections of threads that ended."""

    # -- objects ---------------------------------------------------------------------------------
    def insert_all(self, objects: list[tuple[str, dict]]) -> None: """Store new objects (table, object) in order."""
    def insert(self, table: str, obj: dict, thread_id: str | None = None) -> dict:
        """Store a new object (`thread_id`: it belongs to that thread's run, as `write(thread_id)`)."""
    def put(self, table: str, obj: dict, **where) -> dict: """Replace a stored object (objects only one writer changes)."""
    def update_each(self, updates: list[tuple[str, str, dict, dict, bool]]) -> list[int | dict | None]:
        """Several update_fields (table, id, fields, where, returning) in one write (and one round trip)."""
    def update_fields(self, table: str, obj_id: str, fields: dict, *, lease_before: float | None = None,
                      returning: bool = False, **where) -> int | dict | None:
        """Set these fields if `where` holds (compare-and-set); rows changed (`returning`: the object, or None)."""
    def get_each(self, wanted: list[tuple[str, str]]) -> list[dict | None]:
        """Objects by (table, id), read in one statement; None for each one missing."""
    def get(self, table: str, obj_id: str, **where) -> dict | None: """One object, or None."""
    def delete(self, table: str, obj_id: str | None = None, **where) -> int: """Delete matching objects."""
    def all(self, table: str, *, order: str = "asc", **where) -> list[dict]: """Every matching object in order."""
    def count(self, table: str, **where) -> int: """How many objects match."""
    def page(self, table: str, *, limit: int = 20, order: str = "desc", after: str | None = None,
             before: str | None = None, **where) -> dict: """One page of a list, as OpenAI answers it."""

    # -- runs: leases and the event log ----------------------------------------------------------
    def append_events(self, rows: list[tuple[str, str, str]], created_at: float) -> None: """Append run events."""
    def events_after(self, seq: int, run_ids: list[str], limit: int = 2000) -> list[tuple[int, str, str, str]]:
        """Events of these runs after a sequence number, in commit order."""
    def run_with_seq(self, run_id: str, thread_id: str) -> tuple[dict | None, int]:
        """The run and its newest event's number, read together (None, 0: no such run)."""
    def last_event_seq(self, run_id: str | None = None) -> int: """The newest event's sequence number."""
    def prune_events(self, before: float) -> int: """Forget old events of ended runs."""
    def renew_leases(self, owner: str, run_ids: list[str], until: float) -> None: """Extend an owner's run leases."""
    def renew_json_leases(self, table: str, owner: str, until: float) -> None: """Extend an owner's job leases."""
    def lapsed_leases(self, at: float) -> list[tuple[str, str]]: """Active runs whose lease ran out."""
    def take_over_queued(self, owner: str, until: float, at: float, limit: int = 16) -> list[str]:
        """Reserve queued runs whose lease ran out (PostgreSQL: FOR UPDATE SKIP LOCKED)."""
    def on_events(self, callback: Callable[[str | None, int | None], None]) -> bool:
        """Call back (with the run, None: any) when any process commits run events; False when it cannot say (poll)."""
    def record_ci_session(self, thread_id: str, instance_id: str, at: float, alive_until: float) -> None:
        """This instance now holds the thread's Code Interpreter session."""
    def ci_session(self, thread_id: str) -> tuple[str, float | None] | None:
        """(instance id, alive until) of the thread's session holder, or None."""
    def renew_ci_sessions(self, instance_id: str, live: list[str], until: float) -> list[str]:
        """Heartbeat of an instance's live sessions (its ended ones stop being alive); those still its own."""
    def adopt_ci_runs(self, instance_id: str, until: float, at: float, limit: int) -> list[str]:
        """Reserve queued runs of threads whose live session this instance holds."""
    def due_to_expire(self, at: int) -> list[str]: """Queued or waiting runs past expires_at."""
    def run_statuses(self, run_ids: list[str]) -> dict[str, str]: """Status by run id (deleted runs absent)."""
    def thread_with_active_run(self, thread_id: str) -> tuple[dict | None, dict | None]:
        """The thread and its active run, read together ((None, None): no such thread)."""
    def active_run(self, thread_id: str) -> dict | None: """The thread's active run, if any."""
    def step_usage(self, run_id: str) -> dict: """A run's usage: the sum of its steps'."""
    def delete_thread(self, thread_id: str) -> int: """Delete a thread and everything that hangs off it."""

    # -- versions: archived conversation tails (store/versions.py) -------------------------------
    def tail_point(self, thread_id: str, message_id: str) -> str | None: """The message before this one ("" first)."""
    def archive_tail(self, thread_id: str, point: str, run_ids: list[str] | tuple = (), created_at: int = 0) -> int | None:
        """Move the messages after `point` into a version; its number (None: no such point)."""
    def restore_version(self, thread_id: str, point: str, number: int, run_ids: list[str] | tuple = (),
                        created_at: int = 0) -> bool: """Swap the current tail with an archived one."""
    def message_versions(self, thread_id: str) -> list[dict]: """A thread's archived versions (point, number, runs)."""
    def archived_tail(self, thread_id: str, point: str, number: int) -> list[dict] | None: """One version's messages."""

    # -- the Responses API: response records and conversation items ------------------------------
    def save_response(self, record: dict) -> None: """Insert or replace a response record (its thread must exist)."""
    def get_response(self, response_id: str) -> dict | None: """One response record, or None."""
    def delete_response(self, response_id: str) -> bool: """Forget a response record; whether it existed."""
    def response_waiting_for(self, call_id: str) -> dict | None: """The newest record waiting for this call."""
    def latest_response(self, thread_id: str) -> dict | None: """The newest record on a thread."""
    def first_response_of_run(self, run_id: str) -> dict | None: """The record that started a run."""
    def save_conversation_item(self, thread_id: str, message_id: str, item: dict) -> None:
        """The conversation item a thread message stands for (the message must exist)."""
    def conversation_items(self, thread_id: str) -> dict[str, dict]: """message id -> item, for one thread."""
    def delete_conversation_item(self, message_id: str) -> None: """Forget a message's item."""

    # -- the shared settings document (servers, keys bound to their URL, aliases, default model) -----
    def settings_version(self) -> int: """Grows with every save that changed the settings (0: never saved)."""
    def settings_document(self) -> tuple[int, dict]: """(version, the saved settings), read together."""
    def save_settings_document(self, values: dict, *, only_if_never_saved: bool = False) -> int | None:
        """Replace the settings; the new version (None: only_if_never_saved and settings were saved before)."""
    def on_settings(self, callback: Callable[[], None]) -> bool:
        """Call back when any process saves changed settings; False when the database cannot say (poll)."""

    # -- reports and the file-search index -------------------------------------------------------
    def thread_summaries(self, limit: int = 1000) -> list[dict]: """Threads with counts, tokens, last activity."""
    def assistant_threads(self, assistant_id: str, limit: int = 100) -> list[dict]: """An assistant's threads, latest first."""
    def latest_thread(self, assistant_id: str) -> str | None: """The newest thread opened for an assistant."""
    def index_chunks(self, vector_store_id: str, file_id: str, filename: str, chunks: list[str],
                     embeddings: list[list[float]] | None = None) -> int: """Store a file's chunks."""
    def delete_chunks(self, vector_store_id: str, file_id: str | None = None) -> None: """Remove chunks."""
    def chunk_usage_bytes(self, vector_store_id: str) -> int: """Bytes a vector store's chunks take."""
    def search_chunks(self, vector_store_ids: list[str], query: str, **options) -> list: """Best chunks for a query."""

    # -- file bytes: kept in PostgreSQL unless PLAYGROUND_FILES_DIR is set; SQLite keeps them in a folder ------
    def begin_blob(self, file_id: str) -> Any: """A new file's bytes in a transaction: write(), commit(row), abort()."""
    def blob_chunks(self, file_id: str) -> Iterator[bytes]: """A file's stored bytes, chunk by chunk, in order."""

"""What the Responses API keeps: response records (response id -> its thread, run segment, request echo and final
object) and conversation items that are not plain messages. The SQL is the store's (store/responses.py).

A record and an item belong to their thread (a conversation): deleting it deletes them (foreign keys), so a
record saved after its thread went is simply not kept.
"""

from __future__ import annotations

from typing import Any

from assistants.store import IntegrityError


def save(store: Any, record: dict) -> dict:
    """Insert or replace a record (its `waiting_calls` are the function call ids its run still waits for)."""
    try:
        store.save_response(record)
    except IntegrityError:
        if store.get("threads", record["thread_id"]) is not None:
            raise
        # its conversation was deleted meanwhile: nothing of it stays
    return record


def get(store: Any, response_id: str) -> dict | None:
    return store.get_response(response_id)


def delete(store: Any, response_id: str) -> bool:
    return store.delete_response(response_id)


def waiting_for(store: Any, call_id: str) -> dict | None:
    """The newest record whose run waits for the function call `call_id`."""
    return store.response_waiting_for(call_id)


def latest_on_thread(store: Any, thread_id: str) -> dict | None:
    """The newest response made on a thread (a conversation's last response)."""
    return store.latest_response(thread_id)


def first_of_run(store: Any, run_id: str) -> dict | None:
    """The response that started a run (its request decided the run's tools)."""
    return store.first_response_of_run(run_id)


# -- conversation items that are not plain messages ----------------------------------------------------------
# A function call or output added to a conversation is stored as a thread message (so the model reads it, as
# text) plus its original item here, which is what the conversation lists for that message.
def save_item(store: Any, thread_id: str, message_id: str, item: dict) -> None:
    try:
        store.save_conversation_item(thread_id, message_id, item)
    except IntegrityError:
        if store.get("messages", message_id) is not None and store.get("threads", thread_id) is not None:
            raise
        # the message (or its conversation) was deleted meanwhile


def items_of(store: Any, thread_id: str) -> dict[str, dict]:
    """message id -> the item it stands for, for one thread."""
    return store.conversation_items(thread_id)


def delete_item(store: Any, message_id: str) -> None:
    """Forget a message's item (deleting the message already did: a foreign key; kept for a store without one)."""
    store.delete_conversation_item(message_id)

"""What the store does to spare round trips, on both databases: reads that answer two questions in one statement,
updates sent together, a run's usage summed by the UPDATE that ends it, writes sent with the next statement."""

from __future__ import annotations

import json
import threading

import pytest

from assistants.store import IntegrityError
from assistants.store.interface import STEP_USAGE

from tests.test_engine import start


def _run(rt, status="queued", **fields):
    a, t = start(rt)
    run = {"id": f"run_{threading.get_ident()}_{status}", "object": "thread.run", "created_at": 1,
           "thread_id": t["id"], "assistant_id": a["id"], "status": status, **fields}
    rt.store.insert("runs", run)
    return t, run


def test_get_each_reads_several_objects_in_one_statement(rt):
    a, t = start(rt)
    thread, assistant, missing = rt.store.get_each([("threads", t["id"]), ("assistants", a["id"]),
                                                    ("assistants", "asst_missing")])
    assert thread["id"] == t["id"] and assistant["id"] == a["id"] and assistant["model"] == "fake-model"
    assert missing is None


def test_run_with_seq_gives_the_run_and_the_number_of_its_newest_event(rt):
    t, run = _run(rt)
    assert rt.store.run_with_seq(run["id"], t["id"]) == (rt.store.get("runs", run["id"]), 0)
    rt.engine.hub.publish(run["id"], "thread.run.queued", {"id": run["id"]})
    rt.engine.hub.publish(run["id"], "thread.run.cancelled", {"id": run["id"]})
    stored, seq = rt.store.run_with_seq(run["id"], t["id"])
    assert stored["id"] == run["id"] and seq == rt.store.last_event_seq(run["id"]) and seq > 0
    assert rt.store.events_after(seq, [run["id"]]) == []  # nothing after it: a subscription from there misses nothing
    assert rt.store.run_with_seq(run["id"], "thread_other") == (None, 0)
    assert rt.store.run_with_seq("run_missing", t["id"]) == (None, 0)


def test_thread_with_active_run(rt):
    a, t = start(rt)
    assert rt.store.thread_with_active_run(t["id"]) == (rt.store.get("threads", t["id"]), None)
    assert rt.store.thread_with_active_run("thread_missing") == (None, None)
    run = {"id": "run_active", "object": "thread.run", "created_at": 1, "thread_id": t["id"],
           "assistant_id": a["id"], "status": "requires_action"}
    rt.store.insert("runs", run)
    thread, active = rt.store.thread_with_active_run(t["id"])
    assert thread["id"] == t["id"] and active["id"] == "run_active" and active["status"] == "requires_action"


def test_update_each_returns_each_result_and_keeps_compare_and_set(rt):
    t, run = _run(rt, status="in_progress")
    stored, changed, refused = rt.store.update_each([
        ("runs", run["id"], {"metadata": {"k": "v"}}, {}, True),
        ("threads", t["id"], {"metadata": {"n": "1"}}, {}, False),
        ("runs", run["id"], {"status": "completed"}, {"status": ["queued"]}, False),  # not queued: refused
    ])
    assert stored["metadata"] == {"k": "v"} and stored["status"] == "in_progress"
    assert changed == 1 and refused == 0
    assert rt.store.get("threads", t["id"])["metadata"] == {"n": "1"}
    assert rt.store.get("runs", run["id"])["status"] == "in_progress"


def test_step_usage_is_summed_by_the_update_that_ends_the_run(rt):
    t, run = _run(rt, status="in_progress")
    ended = rt.store.update_fields("runs", run["id"], {"status": "completed", "usage": STEP_USAGE}, returning=True)
    assert ended["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}  # no steps yet
    for i, usage in enumerate([{"prompt_tokens": 10, "completion_tokens": 2}, None,
                               {"prompt_tokens": 7, "completion_tokens": 5}]):
        rt.store.insert("run_steps", {"id": f"step_{i}", "object": "thread.run.step", "created_at": 1,
                                      "run_id": run["id"], "thread_id": t["id"], "type": "message_creation",
                                      "status": "completed", "usage": usage})
    ended = rt.store.update_fields("runs", run["id"], {"usage": STEP_USAGE, "metadata": {"m": "1"}}, returning=True)
    assert ended["usage"] == {"prompt_tokens": 17, "completion_tokens": 7, "total_tokens": 24}
    assert ended["metadata"] == {"m": "1"} and ended["usage"] == rt.store.step_usage(run["id"])
    assert rt.store.get("runs", run["id"])["usage"] == ended["usage"]


def test_a_write_the_transaction_sends_later_is_read_back_inside_it_and_a_broken_one_undoes_it_all(rt):
    _, t = start(rt)
    message = {"id": "msg_deferred", "object": "thread.message", "created_at": 1, "thread_id": t["id"],
               "role": "user", "content": [], "run_id": None}
    with rt.store.write(t["id"]):
        rt.store.insert("messages", message)
        assert rt.store.get("messages", "msg_deferred")["id"] == "msg_deferred"  # sent before this read
    orphan = {**message, "id": "msg_orphan", "thread_id": "thread_gone"}  # its thread does not exist
    with pytest.raises(IntegrityError):
        with rt.store.write(t["id"]):
            rt.store.update_fields("threads", t["id"], {"metadata": {"x": "y"}})
            rt.store.insert("messages", orphan)  # raises here on SQLite, at the COMMIT on PostgreSQL
    assert rt.store.get("messages", "msg_orphan") is None
    assert rt.store.get("threads", t["id"])["metadata"] == {}  # the whole transaction was undone


def test_a_second_run_on_a_busy_thread_is_refused_by_the_database_and_named(rt):
    a, t = start(rt)
    rt.engine.submit = lambda run_id, queued=None: None  # the first run stays queued
    first = rt.create_run(t["id"], assistant_id=a["id"])
    from assistants.errors import BadRequest
    with pytest.raises(BadRequest, match=f"already has an active run {first['id']} \\(status queued\\)"):
        rt.create_run(t["id"], assistant_id=a["id"])
    assert [r["id"] for r in rt.store.all("runs", thread_id=t["id"])] == [first["id"]]
    rt.store.update_fields("runs", first["id"], {"expires_at": 1})  # expired while waiting: ended on look
    second = rt.create_run(t["id"], assistant_id=a["id"])
    assert rt.store.get("runs", first["id"])["status"] == "expired" and second["status"] == "queued"


@pytest.mark.postgres_only(reason="counts PostgreSQL round trips (SQLite has none: it is in the process)")
def test_a_plain_run_costs_its_worker_eight_round_trips(rt, provider):
    import psycopg

    from tests.conftest import wait_run

    trips: list[str] = []
    execute, pipeline = psycopg.Connection.execute, psycopg.Connection.pipeline

    def counted_execute(self, *args, **kwargs):
        if self._pipeline is None and threading.current_thread().name.startswith(("run", "model-")):
            trips.append("statement")
        return execute(self, *args, **kwargs)

    class CountedPipeline:  # one pipeline (not nested in another) is one round trip
        def __init__(self, conn):
            self.outermost = conn._pipeline is None
            self.inner = pipeline(conn)

        def __enter__(self):
            return self.inner.__enter__()

        def __exit__(self, *exc):
            if self.outermost and threading.current_thread().name.startswith(("run", "model-")):
                trips.append("pipeline")
            return self.inner.__exit__(*exc)

    provider.add({"chunks": ["Hi", " there"], "usage": (12, 3)})
    a, t = start(rt)
    psycopg.Connection.execute = counted_execute
    psycopg.Connection.pipeline = lambda self: CountedPipeline(self)
    try:
        run = rt.create_run(t["id"], assistant_id=a["id"])
        done = wait_run(rt, t["id"], run["id"])
    finally:
        psycopg.Connection.execute, psycopg.Connection.pipeline = execute, pipeline
    assert done["status"] == "completed" and done["usage"]["total_tokens"] == 15
    # claim 2 (the move, its events with COMMIT), the thread's messages 1, the reply's message, step and first
    # text 1, the reply's end with the call's log record 2, the run's end with its usage 2.
    assert len(trips) <= 8, trips


HOSTILE = "it's \\' \"q\" %s %% $1 ; COMMIT; DROP TABLE runs; -- /* é 你 🎉 \n\t E'x' \\x00ff {a,b} ARRAY[1]"


def test_what_a_stranger_writes_goes_through_a_transaction_unchanged(rt):
    """PostgreSQL transactions send their statements as text with the arguments bound as literals: quotes,
    backslashes, placeholders, semicolons and comments in a message, its metadata and a run event stay data."""
    _, t = start(rt)
    message = rt.create_message(t["id"], role="user", content=HOSTILE, metadata={HOSTILE[:60]: HOSTILE[:500]})
    stored = rt.get_message(t["id"], message["id"])
    assert stored["content"][0]["text"]["value"] == HOSTILE and stored["metadata"] == {HOSTILE[:60]: HOSTILE[:500]}
    t2, run = _run(rt)
    with rt.store.write(t2["id"]):
        rt.store.insert("run_steps", {"id": "step_hostile", "object": "thread.run.step", "created_at": 1,
                                      "run_id": run["id"], "thread_id": t2["id"], "type": "message_creation",
                                      "status": "in_progress", "note": HOSTILE})
        rt.engine.hub.publish(run["id"], "thread.message.delta", {"text": HOSTILE, HOSTILE: [HOSTILE, 1.5]})
    events = rt.store.events_after(0, [run["id"]])
    assert [(e[2], json.loads(e[3])) for e in events] == [
        ("thread.message.delta", {"text": HOSTILE, HOSTILE: [HOSTILE, 1.5]})]
    assert rt.store.get("run_steps", "step_hostile")["note"] == HOSTILE
    assert {r["id"] for r in rt.store.all("runs")} >= {run["id"]}  # nothing was dropped

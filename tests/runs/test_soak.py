"""A soak: two processes x 10 clients x 60 runs (SOAK_RUNS_PER_CLIENT=200 for the issue's full size) with random
cancels, and a third process killed."""

from __future__ import annotations

import os
import signal
import threading
import time

from assistants.runs.status import TERMINAL
from tests.runs.conftest import LEASE_S, Proc
from tests.runs.proc import soak

RUNS = int(os.environ.get("SOAK_RUNS_PER_CLIENT") or 60)  # per client; 60 keeps the suite quick


def test_soak_every_run_ends_no_thread_blocked_database_intact(shared_dir, proc_a, rt_b):
    victim = Proc(shared_dir)
    proc_a.ask(op="soak", tag="a", assistant_id=proc_a.ready["assistant_id"], clients=10, runs=RUNS, seed=1)
    victim.ask(op="soak", tag="v", assistant_id=victim.ready["assistant_id"], clients=3, runs=1000, seed=2)
    on_b: dict = {}
    b_soak = threading.Thread(target=lambda: on_b.update(soak(rt_b, proc_a.ready["assistant_id"], 10, RUNS, 3)))
    b_soak.start()
    time.sleep(3)
    os.kill(victim.p.pid, signal.SIGKILL)  # mid-run, with runs queued and in progress
    victim.p.wait(5)
    on_a = proc_a.wait_tag("a")["counts"]
    b_soak.join(120 + RUNS * 2)
    assert not b_soak.is_alive()
    assert sum(on_a.values()) == 10 * RUNS and sum(on_b.values()) == 10 * RUNS, (on_a, on_b)
    assert not [k for k in (*on_a, *on_b) if k not in TERMINAL], (on_a, on_b)  # no client was refused a run
    # The killed process's runs end within its lease (a sweeper fails them or runs what it had only queued).
    deadline = time.monotonic() + LEASE_S + 10
    while True:
        statuses = [r["status"] for r in rt_b.store.all("runs")]
        if all(s in TERMINAL or s == "requires_action" for s in statuses):
            break
        assert time.monotonic() < deadline, {s: statuses.count(s) for s in set(statuses)}
        time.sleep(0.1)
    for run in rt_b.store.all("runs", status="requires_action"):  # the victim's clients left these waiting
        rt_b.cancel_run(run["thread_id"], run["id"])
    for thread in rt_b.store.all("threads"):  # no thread stays blocked
        rt_b.create_message(thread["id"], role="user", content="still usable")
    if hasattr(rt_b.store, "conn"):  # SQLite's own checks; PostgreSQL enforces foreign keys on every write
        assert rt_b.store.conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert rt_b.store.conn().execute("PRAGMA foreign_key_check").fetchall() == []

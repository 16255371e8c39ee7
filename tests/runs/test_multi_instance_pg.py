"""Several instances on one PostgreSQL: 3 API servers (each its own data dir) and a Playground runtime process.

20 openai SDK clients spread over the servers make runs with tools (a function answered by the client, file_search,
quick tool rounds, streamed replies); some are cancelled through another instance than the one executing them; one
server is SIGKILLed mid-way and its clients carry on with the others. MULTI_INSTANCE_RUNS is the number of SDK runs
(default and the issue's full size: 300); the Playground process adds 2 clients x 10 runs of its own, some of which
are cancelled through an API server.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import threading
import time

import openai
import psycopg
import pytest

from assistants.runs.status import TERMINAL
from assistants.runs.sweeper import LAPSED
from assistants.store.postgres import PostgresStore
from tests.fakes.openai_server import FakeOpenAIServer
from tests.pg_cluster import create_database
from tests.runs.conftest import Proc
from tests.runs.instances import ApiServer, instance_env
from tests.runs.proc import FN, role_turn

pytestmark = pytest.mark.postgres_only(reason="several instances share one PostgreSQL database")

RUNS = int(os.environ.get("MULTI_INSTANCE_RUNS") or 300)
CLIENTS = 20
SERVERS = 3
VICTIM = SERVERS - 1
LEASE_S = 5.0  # long enough that a live but starved instance (2 busy cores) keeps its leases
POLL_S = 0.15  # the clients' poll interval (the SDK's own is 1 s; 20 clients polling fast load 2 cores)
KINDS = ["tool"] * 4 + ["search"] * 2 + ["slow:30:0.01"] * 2 + ["rounds:2", "hi"]


class Lost(Exception):
    """The request went to the killed server: the client now uses a survivor and checks what became of it."""


def _model_turn(body: dict) -> dict:
    """The fake backend plays `role_turn` with some model latency, so runs queue behind a server's 2 workers."""
    return {"delay": 0.1, **role_turn(body["messages"])}


def _executor(db: psycopg.Connection, run_id: str) -> tuple[int | None, str | None]:
    """The pid of the process holding the run's lease (its owner is host:pid:token), and the run's status."""
    row = db.execute("SELECT owner, status FROM runs WHERE id = %s", (run_id,)).fetchone()
    return (int(row[0].split(":")[1]) if row and row[0] else None), row and row[1]


class Fleet:
    """What the clients share: the servers, the one that died, every request error, every run's outcome."""

    def __init__(self, servers: list[ApiServer], url: str, assistant_id: str):
        self.servers = servers
        self.url = url
        self.assistant_id = assistant_id
        self.index = {s.pid: i for i, s in enumerate(servers)}
        self.dead: set[int] = set()
        self.errors: list[tuple[int, str]] = []  # (server, error) of every failed request
        self.crashes: list[str] = []
        self.runs: dict[str, dict] = {}  # run id -> its client's record
        self.cancels: list[tuple[str, int | None, int, bool]] = []  # (run, executor, canceller, accepted)
        self.threads: dict[str, list[str]] = {}  # thread id -> the user messages its client stored, in order
        self.lock = threading.Lock()

    def alive(self) -> list[int]:
        return [i for i in range(len(self.servers)) if i not in self.dead]

    def cancel_elsewhere(self, db, sdks, rnd, thread_id: str, run_id: str) -> None:
        """Cancel through an instance other than the run's executor; the outcome is recorded."""
        pid, status = _executor(db, run_id)
        executor = self.index.get(pid)
        if executor in self.dead and status == "queued":
            return  # left queued by the killed server: it is for the others to take over and finish
        via = rnd.choice([i for i in self.alive() if i != executor])
        accepted = False
        try:
            accepted = sdks[via].beta.threads.runs.cancel(run_id, thread_id=thread_id).status in ("cancelling",
                                                                                                  "cancelled")
        except openai.BadRequestError:  # it ended meanwhile
            pass
        except (openai.APIConnectionError, openai.InternalServerError) as exc:
            with self.lock:
                self.errors.append((via, repr(exc)))
        with self.lock:
            self.cancels.append((run_id, pid, via, accepted))


class SdkClient:
    """One client thread: its own thread, `runs` runs on its home server, switching servers when its home dies."""

    def __init__(self, fleet: Fleet, k: int, runs: int):
        self.fleet, self.k, self.runs = fleet, k, runs
        self.home = k % SERVERS
        self.sdks = [s.client(timeout=30) for s in fleet.servers]
        self.rnd = random.Random(k)
        self.known: set[str] = set()

    def request(self, call, server: int | None = None):
        where = self.home if server is None else server
        try:
            return call(self.sdks[where])
        except (openai.APIConnectionError, openai.InternalServerError) as exc:
            with self.fleet.lock:
                self.fleet.errors.append((where, repr(exc)))
            if where not in self.fleet.dead:
                raise
            alive = self.fleet.alive()
            self.home = alive[self.k % len(alive)]
            raise Lost() from exc

    def main(self) -> None:
        try:
            self.thread_id = self.request(lambda c: c.beta.threads.create()).id
            self.stored = self.fleet.threads.setdefault(self.thread_id, [])
            with psycopg.connect(self.fleet.url, autocommit=True) as db:
                for i in range(self.runs):
                    self.one_run(db, f"{self.rnd.choice(KINDS)} c{self.k}-{i}")
        except Exception as exc:
            with self.fleet.lock:
                self.fleet.crashes.append(f"client {self.k}: {type(exc).__name__}: {exc}")

    def one_run(self, db, content: str) -> None:
        tid = self.thread_id
        try:
            self.request(lambda c: c.beta.threads.messages.create(tid, role="user", content=content))
        except Lost:  # stored or not? ask a survivor, and send it again only if it is not there
            newest = self.request(lambda c: c.beta.threads.messages.list(tid, limit=5)).data
            if not any(m.content[0].text.value == content for m in newest):
                self.request(lambda c: c.beta.threads.messages.create(tid, role="user", content=content))
        self.stored.append(content)
        try:
            run_id = self.request(lambda c: c.beta.threads.runs.create(tid, assistant_id=self.fleet.assistant_id)).id
        except Lost:  # created before the server died (then it is the thread's newest run), or not at all
            newest = self.request(lambda c: c.beta.threads.runs.list(tid, limit=1)).data
            run_id = newest[0].id if newest and newest[0].id not in self.known else self.request(
                lambda c: c.beta.threads.runs.create(tid, assistant_id=self.fleet.assistant_id)).id
        self.known.add(run_id)
        cancel_at = time.monotonic() + self.rnd.random() * 0.6 if self.rnd.random() < 0.25 else None
        deadline = time.monotonic() + 120
        while True:
            try:
                run = self.request(lambda c: c.beta.threads.runs.retrieve(run_id, thread_id=tid))
            except Lost:
                continue
            if run.status in TERMINAL:
                break
            assert time.monotonic() < deadline, f"run {run_id} still {run.status}"
            if cancel_at is not None and time.monotonic() > cancel_at:
                cancel_at = None
                self.fleet.cancel_elsewhere(db, self.sdks, self.rnd, tid, run_id)
            elif run.status == "requires_action":
                outputs = [{"tool_call_id": call.id, "output": "sunny, 21 C"}
                           for call in run.required_action.submit_tool_outputs.tool_calls]
                try:
                    self.request(lambda c, out=outputs: c.beta.threads.runs.submit_tool_outputs(
                        run_id, thread_id=tid, tool_outputs=out))
                except (Lost, openai.BadRequestError):  # the next poll says whether it was taken, or it was cancelled
                    pass
            time.sleep(POLL_S)
        with self.fleet.lock:
            self.fleet.runs[run_id] = {"thread_id": tid, "kind": content.split(" ")[0], "status": run.status,
                                       "last_error": run.last_error and run.last_error.message}


def _cancel_playground_runs(fleet: Fleet, playground_pid: int, stop: threading.Event) -> None:
    """Now and then cancel a run executing in the Playground process, through an API server."""
    rnd = random.Random(99)
    cancels = 0
    sdks = [s.client(timeout=30) for s in fleet.servers]
    with psycopg.connect(fleet.url, autocommit=True) as db:
        while not stop.wait(0.5):
            rows = db.execute("SELECT id, thread_id FROM runs WHERE status = 'in_progress' AND owner LIKE %s",
                              (f"%:{playground_pid}:%",)).fetchall()
            if rows and rnd.random() < 0.3:
                run_id, thread_id = rnd.choice(rows)
                fleet.cancel_elsewhere(db, sdks, rnd, thread_id, run_id)
                cancels += 1
                if cancels == 3:  # the Playground's own clients cancel too: leave it most of its runs
                    return


def _stop_and_look(fleet: Fleet, db, victim: ApiServer) -> dict[str, str]:
    """SIGSTOP the victim once it holds runs queued and in progress; its runs as it leaves them; then SIGKILL it."""
    fleet.dead.add(VICTIM)
    for _attempt in range(100):
        os.kill(victim.pid, signal.SIGSTOP)
        rows = dict(db.execute("SELECT id, status FROM runs WHERE owner LIKE %s AND status IN "
                               "('queued', 'in_progress', 'cancelling')", (f"%:{victim.pid}:%",)).fetchall())
        if {"queued", "in_progress"} <= set(rows.values()):
            break
        os.kill(victim.pid, signal.SIGCONT)
        time.sleep(0.05)
    victim.kill()
    return rows


@pytest.fixture
def instances(pg_server, tmp_path):
    name = f"multi_{secrets.token_hex(4)}"
    create_database(pg_server.url, name)
    url = f"{pg_server.url}/{name}"
    with FakeOpenAIServer(responder=_model_turn) as model:
        envs = [instance_env(tmp_path / f"instance{k}", model.base_url, url, run_lease_seconds=LEASE_S, run_workers=2)
                for k in range(SERVERS + 1)]
        servers: list[ApiServer] = []
        playground = None
        try:
            servers.append(ApiServer(envs[0]))  # first, alone: it creates the schema
            servers += [ApiServer(env, wait=False) for env in envs[1:SERVERS]]
            playground = Proc(None, env=envs[SERVERS])
            [s.wait_ready() for s in servers]
            yield servers, playground, url
        finally:
            if playground is not None:
                playground.close()
            for server in servers:
                server.stop()


def test_three_servers_and_a_playground_share_the_runs_while_one_server_is_killed(instances):
    servers, playground, url = instances
    admin = servers[0].client(timeout=30)
    doc = admin.files.create(file=("harbour.txt", b"The harbour lighthouse is painted red and white. " * 20),
                             purpose="assistants")
    store = admin.vector_stores.create(name="harbour", file_ids=[doc.id])
    deadline = time.monotonic() + 60
    while admin.vector_stores.retrieve(store.id).file_counts.completed < 1:
        assert time.monotonic() < deadline, admin.vector_stores.retrieve(store.id).file_counts
        time.sleep(0.1)
    assistant = admin.beta.assistants.create(model="fake-model", tools=[FN, {"type": "file_search"}],
                                             tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    fleet = Fleet(servers, url, assistant.id)
    per_client = [RUNS // CLIENTS + (k < RUNS % CLIENTS) for k in range(CLIENTS)]
    clients = [threading.Thread(target=SdkClient(fleet, k, n).main) for k, n in enumerate(per_client)]
    stop_cancels = threading.Event()
    canceller = threading.Thread(target=_cancel_playground_runs, args=(fleet, playground.p.pid, stop_cancels))
    playground.ask(op="soak", tag="pg", assistant_id=playground.ready["assistant_id"], clients=2, runs=10, seed=5)
    [t.start() for t in (*clients, canceller)]

    with psycopg.connect(url, autocommit=True) as db:
        deadline = time.monotonic() + 120
        while len(fleet.runs) < RUNS // 2:  # mid-way
            assert time.monotonic() < deadline and not fleet.crashes, (len(fleet.runs), fleet.crashes)
            time.sleep(0.05)
        left = _stop_and_look(fleet, db, servers[VICTIM])
        for t in clients:
            t.join(240)
        assert not any(t.is_alive() for t in clients) and not fleet.crashes, fleet.crashes
        on_playground = playground.wait_tag("pg")["counts"]
        stop_cancels.set()
        canceller.join(10)
        owners = {rid: owner for rid, owner in db.execute("SELECT id, owner FROM runs").fetchall()}

    # The surviving instances served throughout: every failed request went to the killed one.
    assert {where for where, _ in fleet.errors} <= {VICTIM}, [e for e in fleet.errors if e[0] != VICTIM][:5]
    assert all(s.p.poll() is None for s in servers[:VICTIM])
    # The killed server left runs queued (taken over by the others, which finish them) and in progress (failed,
    # saying why) or being cancelled.
    assert "queued" in left.values() and set(left.values()) - {"queued"}, left
    victim_pid = f":{servers[VICTIM].pid}:"
    accepted = {run_id for run_id, _, _, ok in fleet.cancels if ok}
    taken_over = []
    for run_id, status in left.items():
        final = fleet.runs[run_id]
        if status != "queued":
            assert final["status"] in ("failed", "cancelled"), final
        elif final["status"] == "completed":
            assert victim_pid not in owners[run_id], run_id  # finished by another instance
            taken_over.append(run_id)
        else:  # a cancel sent just before the kill
            assert final["status"] == "cancelled" and run_id in accepted, (run_id, final)
    assert taken_over, left
    # Every run ended: completed, cancelled only when asked, failed only because its server was killed.
    assert len(fleet.runs) == RUNS
    for run_id, run in fleet.runs.items():
        assert run["status"] in ("completed", "cancelled", "failed"), run
        if run["status"] == "cancelled":
            assert run_id in accepted, run
        if run["status"] == "failed":
            assert run_id in left and run["last_error"] == LAPSED.format(lease=LEASE_S), run
    assert sum(on_playground.values()) == 20 and set(on_playground) <= set(TERMINAL), on_playground
    # Cancels went to another instance than the executor, and some stopped runs executing elsewhere.
    assert all(via != fleet.index.get(pid) for _, pid, via, _ in fleet.cancels)
    assert any(ok and pid is not None for _, pid, _, ok in fleet.cancels)
    playground_pid = f":{playground.p.pid}:"
    assert any(ok and playground_pid in (owners.get(run_id) or "") for run_id, _, _, ok in fleet.cancels)

    check = PostgresStore(url, migrate_schema=False)
    try:
        runs = check.all("runs")
        assert {r["status"] for r in runs} <= set(TERMINAL), {r["status"] for r in runs}
        assert len(runs) == RUNS + 20
        for thread in check.all("threads"):
            messages = check.all("messages", thread_id=thread["id"])
            # Every reply stored once: one assistant message per completed run, at most one per ended run.
            per_run: dict = {}
            for m in messages:
                if m["role"] == "assistant":
                    per_run[m["run_id"]] = per_run.get(m["run_id"], 0) + 1
            for run in check.all("runs", thread_id=thread["id"]):
                replies = per_run.get(run["id"], 0)
                assert replies == 1 if run["status"] == "completed" else replies <= 1, (run["id"], run["status"], replies)
            # No message lost, none twice: the SDK client's thread holds exactly what it sent, in order.
            if thread["id"] in fleet.threads:
                sent = [m["content"][0]["text"]["value"] for m in messages if m["role"] == "user"]
                assert sent == fleet.threads[thread["id"]], thread["id"]
        searched = [s for s in check.all("run_steps") if s["type"] == "tool_calls"
                    and any(c["type"] == "file_search" and c["file_search"]["results"] for c in s["step_details"]["tool_calls"])]
        assert searched  # file_search found the document indexed through another instance
    finally:
        check.close()

"""A Runtime in its own process on a shared data dir, driven by JSON lines on stdin (one reply line each).

`python -m tests.runs.proc DATA_DIR [LEASE_S]` — the model is scripted by the user message:
its first word "slow:N:D" streams N chunks D s apart; "code" runs a 60 s code cell; "rounds:K" makes K quick tool
rounds, then answers; "tool" calls the function get_weather once, then answers; "search" calls file_search once, then
answers; anything else is echoed. `python -m tests.runs.proc --env` builds its Runtime from the environment instead,
as the Playground does (the model then is whatever PLAYGROUND_BACKENDS names, e.g. the fake HTTP server playing
`role_turn`).
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time

from assistants.config import load_settings
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.provider import ScriptedProvider

FN = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def role_turn(messages: list[dict]) -> dict:
    """The model's turn, chosen by the last user message's first word, so any process can script it through the thread."""
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    kind = last.split(" ", 1)[0] if isinstance(last, str) else ""
    tools_done = sum(m["role"] == "tool" for m in messages)
    if kind.startswith("slow:"):
        _, n, delay = kind.split(":")
        return {"chunks": [f"w{i} " for i in range(int(n))], "chunk_delay": float(delay)}
    if kind.startswith("rounds:"):
        rounds = int(kind.split(":")[1])
        return ({"tool_calls": [("nosuch", json.dumps({"round": tools_done}))], "delay": 0.05}
                if tools_done < rounds else {"text": "finished rounds"})
    if kind == "code":
        code = json.dumps({"code": "import time\nprint('start', flush=True)\ntime.sleep(60)"})
        return {"tool_calls": [("code_interpreter", code)]} if not tools_done else {"text": "slept"}
    if kind == "tool":
        return {"tool_calls": [("get_weather", '{"city": "Paris"}')]} if not tools_done else {"text": "sunny reply"}
    if kind == "search":
        return {"tool_calls": [("file_search", '{"query": "harbour lighthouse"}')]} if not tools_done else {"text": "found it"}
    return {"text": f"echo: {last}"}


class RoleModel(ScriptedProvider):
    """The scripted provider playing `role_turn`."""

    def chat(self, request, *, on_text, cancel):
        with self._lock:
            self.script.appendleft(role_turn(request["messages"]))
        return super().chat(request, on_text=on_text, cancel=cancel)


def make_runtime(data_dir: str, lease_s: float = 10.0) -> Runtime:
    return Runtime(make_settings(data_dir, run_lease_s=lease_s),
                   router=ModelRouter([RoleModel()], default_model="fake-model"))


def setup(rt: Runtime) -> dict:
    return {"assistant_id": rt.create_assistant(model="fake-model", tools=[FN])["id"],
            "code_assistant_id": rt.create_assistant(model="fake-model", tools=[{"type": "code_interpreter"}])["id"]}


def submit_many(rt: Runtime, cmd: dict) -> int:
    """Submit the same tool outputs from n threads at once; how many were accepted."""
    barrier = threading.Barrier(cmd["n"])
    results: list[bool] = []

    def racer() -> None:
        barrier.wait()
        try:
            rt.submit_tool_outputs(cmd["thread_id"], cmd["run_id"], tool_outputs=cmd["tool_outputs"])
            results.append(True)
        except Exception:
            results.append(False)

    racers = [threading.Thread(target=racer) for _ in range(cmd["n"])]
    [r.start() for r in racers]
    [r.join() for r in racers]
    return sum(results)


def soak(rt: Runtime, assistant_id: str, clients: int, runs: int, seed: int) -> dict:
    """`clients` threads, each doing `runs` runs on its own thread with random cancels; statuses counted."""
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def client(k: int) -> None:
        rnd = random.Random(seed * 1000 + k)
        thread_id = rt.create_thread()["id"]
        for _ in range(runs):
            content = rnd.choice(["hi", "slow:20:0.005", "rounds:2", "tool"])
            try:
                rt.create_message(thread_id, role="user", content=content)
                run = rt.create_run(thread_id, assistant_id=assistant_id)
            except Exception as exc:
                with lock:
                    counts[f"refused: {exc}"[:80]] = counts.get(f"refused: {exc}"[:80], 0) + 1
                time.sleep(0.05)
                continue
            cancel_at = time.monotonic() + rnd.random() * 0.2 if rnd.random() < 0.3 else None
            while True:
                current = rt.get_run(thread_id, run["id"])
                if current["status"] in ("completed", "failed", "cancelled", "expired", "incomplete"):
                    break
                if cancel_at is not None and time.monotonic() > cancel_at:
                    cancel_at = None
                    try:
                        rt.cancel_run(thread_id, run["id"])
                    except Exception:  # it ended meanwhile
                        pass
                elif current["status"] == "requires_action":
                    calls = current["required_action"]["submit_tool_outputs"]["tool_calls"]
                    try:
                        rt.submit_tool_outputs(thread_id, run["id"], tool_outputs=[
                            {"tool_call_id": c["id"], "output": "ok"} for c in calls])
                    except Exception:  # cancelled meanwhile
                        pass
                time.sleep(0.005)
            with lock:
                counts[current["status"]] = counts.get(current["status"], 0) + 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return counts


def main() -> None:
    if sys.argv[1] == "--env":  # built as the Playground builds it (session.py): every setting from the environment
        rt = Runtime(load_settings())
    else:
        rt = make_runtime(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 10.0)
    out_lock = threading.Lock()

    def reply(obj: dict) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    def stream(tag: str, run_id: str, after: int) -> None:
        events = [(e, d, time.time()) for e, d in rt.engine.hub.subscribe(run_id, after=after)]
        reply({"tag": tag, "events": [[e, d, t] for e, d, t in events]})

    reply({"ready": True, **setup(rt)})
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "run":
                t = rt.create_thread(messages=[{"role": "user", "content": cmd["content"]}])
                run = rt.create_run(t["id"], assistant_id=cmd["assistant_id"])
                reply({"thread_id": t["id"], "run_id": run["id"]})
            elif op == "stream":
                threading.Thread(target=stream, args=(cmd["tag"], cmd["run_id"], cmd.get("after", 0)), daemon=True).start()
                reply({"ok": True})
            elif op == "submit":
                try:
                    rt.submit_tool_outputs(cmd["thread_id"], cmd["run_id"], tool_outputs=cmd["tool_outputs"])
                    reply({"accepted": True})
                except Exception as exc:  # the losers of the race
                    reply({"accepted": False, "error": str(exc)})
            elif op == "submit_many":
                reply({"accepted": submit_many(rt, cmd)})
            elif op == "soak":
                def run_soak(c=cmd):
                    reply({"tag": c["tag"], "counts": soak(rt, c["assistant_id"], c["clients"], c["runs"], c["seed"])})

                threading.Thread(target=run_soak, daemon=True).start()
                reply({"ok": True})
            elif op == "exit":
                break
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}"})
    rt.close()


if __name__ == "__main__":
    main()

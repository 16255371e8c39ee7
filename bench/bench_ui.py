"""Playground page speed: median AppTest rerun with a 200-message thread, the thread list and a 20-run log."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import wait_run

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 200
RUNS = 20
ENV = {"PLAYGROUND_EMBEDDED_MODEL": "0", "PLAYGROUND_BACKENDS": None, "PLAYGROUND_DATA_DIR": None,
       "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "PLAYGROUND_MODEL_ALIASES": "", "PLAYGROUND_DEFAULT_MODEL": ""}
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _fill(rt, server) -> tuple[str, str]:
    """An assistant whose thread has MESSAGES messages and RUNS runs (every fifth with a function call)."""
    assistant = rt.create_assistant(model="fake-model", name="Bench", instructions="Be brief.",
                                    tools=[{"type": "function", "function": WEATHER}])
    thread = rt.create_thread(metadata={"assistant_id": assistant["id"]})
    for i in range(MESSAGES - 2 * RUNS):
        rt.create_message(thread["id"], role="user", content=f"Note {i}: " + "some earlier conversation " * 8)
    for i in range(RUNS):
        rt.create_message(thread["id"], role="user", content=f"Question {i}: what about **Paris** at $5?")
        if i % 5 == 4:
            server.add({"tool_calls": [("get_weather", '{"city": "Paris"}')]}, {"text": f"Answer {i}: 22 degrees."})
        else:
            server.add({"text": f"Answer {i}: here is a reply with `code` and a list:\n\n- one\n- two"})
        run = rt.create_run(thread["id"], assistant_id=assistant["id"])
        run = wait_run(rt, thread["id"], run["id"])
        if run["status"] == "requires_action":
            call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
            rt.submit_tool_outputs(thread["id"], run["id"], tool_outputs=[{"tool_call_id": call["id"], "output": "22"}])
            wait_run(rt, thread["id"], run["id"])
    return assistant["id"], thread["id"]


def bench(quick: bool) -> dict:
    """Median and p90 ms of a Playground rerun (nothing clicked), and with the Logs on and the newest run open."""
    import session
    from streamlit.testing.v1 import AppTest
    from tests.fakes.openai_server import FakeOpenAIServer

    saved = {k: os.environ.get(k) for k in ENV}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer() as server:
        for key, value in ENV.items():
            os.environ[key] = value if value is not None else ""
        os.environ["PLAYGROUND_DATA_DIR"] = tmp
        os.environ["PLAYGROUND_BACKENDS"] = f"fake={server.base_url}"
        session._runtime_for.clear()
        rt = session.get_runtime()
        try:
            _assistant_id, thread_id = _fill(rt, server)
            assert rt.store.count("messages", thread_id=thread_id) == MESSAGES
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
            at.run()
            if at.exception:
                raise RuntimeError(f"the page failed: {[e.value for e in at.exception]}")
            at.run()  # warm: first-run imports and caches are not what a click costs

            def timed(n: int) -> list[float]:
                out = []
                for _ in range(n):
                    started = time.perf_counter()
                    at.run()
                    out.append((time.perf_counter() - started) * 1000)
                return out

            plain = timed(5 if quick else 25)
            newest = rt.list_runs(thread_id, limit=1)["data"][0]["id"]
            at.toggle(key="playground_logs").set_value(True)  # the run log shown (off by default)...
            at.session_state[f"playground_log_{newest}"] = True  # ...with the newest run's entry open
            at.run()
            opened = timed(5 if quick else 25)
        finally:
            rt.close()
            session._runtime_for.clear()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return {
        "ui_rerun_ms": round(statistics.median(plain), 1),
        "ui_rerun_p90_ms": round(sorted(plain)[int(len(plain) * 0.9) - 1], 1),
        "ui_rerun_log_open_ms": round(statistics.median(opened), 1),
    }


if __name__ == "__main__":
    print(json.dumps(bench(quick="--quick" in sys.argv[1:])))

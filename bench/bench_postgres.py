"""PostgreSQL benchmarks on a throwaway cluster (started as tests/pg_cluster.py does): the API's runs/s on one
instance, the newest messages of a long thread, and runs/s with 3 API instances on one database against 1."""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistants.server import create_app
from assistants.server.background import BackgroundServer
from bench.bench_engine import store_list_ms
from bench.bench_server import CLIENTS, runs_per_s
from bench.scripted import scripted_runtime
from tests.fakes.openai_server import FakeOpenAIServer
from tests.pg_cluster import Cluster, create_database, find_bin_dir
from tests.runs.instances import ApiServer, instance_env

MODEL_LATENCY_S = 1.0
WORKERS = 4  # run_workers of every instance
CLIENTS_PER_WORKER = 2  # twice as many clients as workers: a worker that ends a run finds the next one queued
POLL_MS = 250  # 1 s runs: polling faster only adds load


def _database(cluster: Cluster, name: str) -> str:
    create_database(cluster.url, name)
    return f"{cluster.url}/{name}"


def pg_api_runs_per_s(cluster: Cluster, runs_each: int) -> dict:
    """bench_server's api_runs_per_s (20 SDK clients, zero-latency model) with the instance on PostgreSQL."""
    with tempfile.TemporaryDirectory() as tmp:
        rt = scripted_runtime(Path(tmp), _database(cluster, "api_runs"))
        try:
            with BackgroundServer(create_app(rt)) as server:
                runs_per_s([server.base_url], CLIENTS, 1)  # warm connections and caches
                return {"pg_api_runs_per_s": round(runs_per_s([server.base_url], CLIENTS, runs_each), 1)}
        finally:
            rt.close()


def multi_instance_scaling(cluster: Cluster, runs_each: int) -> dict:
    """Runs/s of 3 API server processes on one PostgreSQL / runs/s of 1, model latency 1 s, clients enough to keep
    every worker busy."""
    url = _database(cluster, "scaling")
    model = FakeOpenAIServer(responder=lambda _body: {"text": "done", "delay": MODEL_LATENCY_S}).start()
    servers: list[ApiServer] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            envs = [instance_env(Path(tmp) / f"instance{k}", model.base_url, url, run_workers=WORKERS)
                    for k in range(3)]
            servers.append(ApiServer(envs[0]))  # first, alone: it creates the schema
            rates = {}
            for n in (1, 3):
                servers += [ApiServer(env, wait=False) for env in envs[len(servers):n]]
                for server in servers:
                    server.wait_ready()
                urls = [s.base_url for s in servers]
                runs_per_s(urls, n, 1, POLL_MS)  # warm every instance
                rates[n] = runs_per_s(urls, n * WORKERS * CLIENTS_PER_WORKER, runs_each, POLL_MS)
    finally:
        for server in servers:
            server.stop()
        model.stop()
    return {"multi_instance_scaling": round(rates[3] / rates[1], 2),
            "multi_instance_1_runs_per_s": round(rates[1], 2), "multi_instance_3_runs_per_s": round(rates[3], 2)}


def bench(quick: bool) -> dict:
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK flags every Assistants call
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return {"bench_postgres_skipped": "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"}
    cluster = Cluster(bin_dir).start()
    try:
        out = pg_api_runs_per_s(cluster, 3 if quick else 10)
        out["pg_store_list_ms"] = store_list_ms(repeats=100 if quick else 500,
                                                database_url=_database(cluster, "store_list"))
        out.update(multi_instance_scaling(cluster, 3 if quick else 6))
        return out
    finally:
        cluster.stop()


if __name__ == "__main__":
    print(json.dumps(bench(quick="--quick" in sys.argv[1:])))

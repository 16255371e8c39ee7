"""The run layers stay layered: the status machine below the worker, the store below everything, no raw SQL above it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database  # no store: runs once, not per database

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_status_machine_and_the_event_log_never_import_the_worker():
    for name in ("status.py", "events.py"):
        below = _imports(ROOT / "assistants" / "runs" / name)
        assert not {m for m in below if m.startswith("assistants.runs")} - {"assistants.runs.events"}, name


def test_the_store_imports_nothing_above_it():
    for path in (ROOT / "assistants" / "store").glob("*.py"):
        above = {m for m in _imports(path) if m.startswith("assistants.") and not m.startswith("assistants.store")}
        assert above <= {"assistants.errors"}, (path.name, above)


def test_no_sql_outside_the_store():
    sql = re.compile(r"\.execute(many)?\(|\bstore\.conn\(\)|\bSELECT\b.+\bFROM\b|\bUPDATE\s+\w+\s+SET\b")
    packages = [p.relative_to(ROOT).as_posix() for folder in ("runs", "responses", "server")
                for p in (ROOT / "assistants" / folder).rglob("*.py")]
    packages += [p.relative_to(ROOT).as_posix() for folder in ("playground", "app_pages", "components")
                 for p in (ROOT / folder).rglob("*.py")]
    assert any(p.startswith("assistants/responses/") for p in packages)
    for rel in ("assistants/runtime.py", "assistants/export.py", "assistants/vector_stores.py",
                "assistants/tools/file_search/index.py", *packages):
        text = (ROOT / rel).read_text()
        assert not sql.search(text), (rel, sql.search(text).group())


def test_everything_outside_the_store_uses_only_the_store_interface():
    from assistants.store import Store
    from assistants.store.interface import StoreInterface

    interface = {n for n in vars(StoreInterface) if not n.startswith("_")}
    assert all(callable(getattr(Store, n, None)) for n in interface), interface - set(dir(Store))
    used = set()
    for folder in ("assistants", "playground", "app_pages", "components"):
        for path in (ROOT / folder).rglob("*.py"):
            if "store" not in path.relative_to(ROOT).parts[:2]:
                # `x.store.m(` (the runtime's store) and `return store.m(` (export's helpers take the store)
                used.update(re.findall(r"(?:\.store|return store)\.([a-z_]+)\(", path.read_text()))
    assert used <= interface, used - interface

"""The runtime never imports the UI (DESIGN principle: one runtime, two front doors)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.no_database  # no store: runs once, not per database


def test_assistants_package_does_not_import_streamlit():
    code = ("import sys, pkgutil, importlib, assistants\n"
            "for m in pkgutil.walk_packages(assistants.__path__, 'assistants.'):\n"
            "    importlib.import_module(m.name)\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr

"""Shared by the page tests (Streamlit's AppTest) and the tests that drive pages the same way."""

from __future__ import annotations

# Model-server settings a developer's shell may hold; a page test starts without them.
ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PLAYGROUND_BACKENDS", "PLAYGROUND_MODEL_ALIASES", "PLAYGROUND_DEFAULT_MODEL")


def fresh_data_dir(monkeypatch, data_dir, *also_unset: str) -> None:
    """The app's data dir is data_dir, with none of ENV (nor also_unset) from the environment."""
    for var in ENV + also_unset:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(data_dir))

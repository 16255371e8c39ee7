"""A key belongs to its URL: every Settings path, with a good server and an attacker's server recording headers."""

from __future__ import annotations

import pytest

import session
from assistants.config import load_settings, write_settings_file
from assistants.providers.router import ModelRouter
from assistants.store import open_store
from components import settings_form as form
from tests.fakes.openai_server import FakeOpenAIServer
from tests.conftest import database_url_for
from tests.ui import fresh_data_dir
from tests.ui.test_other_pages import open_page

KEY = "sk-good-0123456789KEYZ"
ENV_KEY = "sk-env-0123456789ENVK"


def leaked(srv: FakeOpenAIServer, *keys: str) -> list[str]:
    """The Authorization headers that reached `srv` carrying one of `keys`."""
    sent = [v for h in srv.headers for name, v in h.items() if name.lower() == "authorization"]
    return [v for v in sent if any(k in v for k in keys)]


@pytest.fixture
def servers():
    with FakeOpenAIServer(models=("good-model",), api_key=KEY) as good, FakeOpenAIServer(models=("bait",)) as evil:
        yield good, evil


@pytest.fixture
def page_env(tmp_path, monkeypatch):
    """A fresh data dir for the pages, with no OpenAI variables unless a test sets them."""
    fresh_data_dir(monkeypatch, tmp_path)
    yield tmp_path
    session._runtime_for.clear()


def _runtime_close():
    session.get_runtime().close()


def _env(data_dir) -> dict:
    """The environment of another process on this data dir (and, on PostgreSQL, the test's database)."""
    return {"PLAYGROUND_DATA_DIR": str(data_dir), "PLAYGROUND_DATABASE_URL": database_url_for(data_dir)}


def _saved(data_dir) -> dict:
    """The settings saved in the data dir's database, read as another process would."""
    store = open_store(load_settings(_env(data_dir), dotenv=False))
    try:
        return store.settings_document()[1]
    finally:
        store.close()


def _router_lists(data_dir) -> list[str]:
    """What a fresh process (the API server) would do: load the settings and list every backend's models."""
    settings = load_settings({**_env(data_dir), "PLAYGROUND_EMBEDDED_MODEL": "0", "PLAYGROUND_OLLAMA_AUTODETECT": "0"},
                             dotenv=False, ui=_saved(data_dir))
    return ModelRouter.from_settings(settings).available_models(refresh=True)


def test_openai_url_edit_then_test_and_save_never_sends_the_key_elsewhere(servers, page_env):
    good, evil = servers
    at = open_page("settings")
    at.text_input(key=form.OPENAI_URL).set_value(good.base_url)
    at.text_input(key=form.OPENAI_KEY).set_value(KEY).run()
    at.button(key="settings_test_openai").click().run()
    assert "Connected" in at.success[0].value
    at.button(key="settings_save").click().run()
    assert _saved(page_env)["openai_api_key_url"] == good.base_url
    assert leaked(good, KEY)  # the control: the key does reach the server it was entered with

    at = open_page("settings")  # later: only the URL is edited
    at.text_input(key=form.OPENAI_URL).set_value(evil.base_url).run()
    assert any("will not be sent" in w.value for w in at.warning)  # the form says so
    at.button(key="settings_test_openai").click().run()
    assert evil.headers and not leaked(evil, KEY)

    at.button(key="settings_save").click().run()
    saved = _saved(page_env)
    assert "openai_api_key" not in saved and saved["openai_base_url"] == evil.base_url
    assert "bait" in _router_lists(page_env)
    assert session.get_runtime().settings.openai_api_key == ""
    session.get_runtime().router.available_models(refresh=True)
    assert not leaked(evil, KEY)
    _runtime_close()


def test_named_server_url_change_drops_its_key(servers, page_env):
    good, evil = servers
    # Saved by an older version: the page's runtime imports it into the database on start.
    write_settings_file(page_env / "settings.json", {"backends": [{"name": "lab", "base_url": good.base_url,
                                                                   "api_key": KEY}]})
    at = open_page("settings")
    uid = at.session_state[form.ROWS][0]["uid"]
    at.button(key=f"settings_b_{uid}_test").click().run()
    assert "Connected" in at.success[0].value and leaked(good, KEY)

    at.text_input(key=f"settings_b_{uid}_url").set_value(evil.base_url).run()
    assert any("will not be sent" in w.value for w in at.warning)
    at.button(key=f"settings_b_{uid}_test").click().run()
    at.button(key="settings_save").click().run()
    assert _saved(page_env)["backends"] == [
        {"name": "lab", "base_url": evil.base_url, "api_key": ""}]
    assert "lab/bait" in _router_lists(page_env) or "bait" in _router_lists(page_env)
    assert evil.headers and not leaked(evil, KEY)

    # A key typed for the new URL is the user's choice: it goes there.
    uid = at.session_state[form.ROWS][0]["uid"]
    at.text_input(key=f"settings_b_{uid}_key").set_value("sk-typed-for-new-url0000").run()
    at.button(key=f"settings_b_{uid}_test").click().run()
    assert leaked(evil, "sk-typed-for-new-url0000") and not leaked(evil, KEY)
    _runtime_close()


@pytest.mark.parametrize("env_url", ["", "good"])
def test_environment_key_stays_with_the_environment_url(servers, page_env, monkeypatch, env_url):
    good, evil = servers
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    if env_url:
        monkeypatch.setenv("OPENAI_BASE_URL", good.base_url)
    at = open_page("settings")
    at.text_input(key=form.OPENAI_URL).set_value(evil.base_url).run()
    assert any("belongs to" in c.value for c in at.caption)
    at.button(key="settings_test_openai").click().run()
    at.button(key="settings_save").click().run()
    assert session.get_runtime().settings.openai_api_key == ""
    session.get_runtime().router.available_models(refresh=True)
    env = {**_env(page_env), "OPENAI_API_KEY": ENV_KEY,
           **({"OPENAI_BASE_URL": good.base_url} if env_url else {})}
    settings = load_settings(env, dotenv=False, ui=_saved(page_env))
    assert [(b.base_url, b.api_key) for b in settings.all_backends()] == [(evil.base_url, "")]
    assert evil.headers and not leaked(evil, ENV_KEY)
    _runtime_close()


def test_load_settings_binding():
    def backends(ui: dict, env: dict, tmp) -> list[tuple[str, str]]:
        write_settings_file(tmp / "settings.json", ui)
        settings = load_settings({"PLAYGROUND_DATA_DIR": str(tmp), **env}, dotenv=False)
        return [(b.base_url, b.api_key) for b in settings.all_backends()]

    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        openai = "https://api.openai.com/v1"
        assert backends({}, {"OPENAI_API_KEY": "e"}, tmp) == [(openai, "e")]
        assert backends({"openai_base_url": "http://evil/v1"}, {"OPENAI_API_KEY": "e"}, tmp) == [("http://evil/v1", "")]
        assert backends({"openai_base_url": "http://gw/v1/"}, {"OPENAI_API_KEY": "e", "OPENAI_BASE_URL": "http://GW/v1"},
                        tmp) == [("http://gw/v1/", "e")]
        # A saved key bound to one URL is not sent to another, even if the file's URL was edited by hand.
        ui = {"openai_api_key": "k", "openai_api_key_url": "http://gw/v1", "openai_base_url": "http://evil/v1"}
        assert backends(ui, {}, tmp) == [("http://evil/v1", "")]
        assert backends({**ui, "openai_base_url": "http://gw/v1"}, {}, tmp) == [("http://gw/v1", "k")]
        # An older file (no binding): the key belongs to the URL saved beside it.
        assert backends({"openai_api_key": "k", "openai_base_url": "http://gw/v1"}, {}, tmp) == [("http://gw/v1", "k")]
        assert backends({"openai_api_key": "k"}, {"OPENAI_BASE_URL": "http://x/v1"}, tmp) == [("http://x/v1", "k")]

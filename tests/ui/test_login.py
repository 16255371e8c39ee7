"""The login gate: loopback is open, a shared address needs a login, wrong passwords are slow and counted."""

from __future__ import annotations

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

import session
from components import login
from tests.ui.test_other_pages import APP, ENV


@pytest.fixture
def data(tmp_path, monkeypatch):
    for var in (*ENV, "PLAYGROUND_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(login, "FAIL_DELAY_S", 0)
    login._limiter.clear()
    before = st_config.get_option("server.address")
    yield tmp_path
    st_config.set_option("server.address", before)
    login._limiter.clear()
    session._runtime_for.clear()


def _run(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    if page:
        at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_loopback_without_login_is_open(data):
    assert st_config.get_option("server.address") == "127.0.0.1"  # .streamlit/config.toml
    at = _run()
    assert "login_password" not in [t.key for t in at.text_input]
    assert not at.error


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.168.1.20", "::"])
def test_shared_address_without_login_is_refused_visibly(data, address):
    st_config.set_option("server.address", address)
    for page in (None, "settings", "playground"):
        at = _run(page)
        assert "The Playground is not open" in at.error[0].value and "PLAYGROUND_PASSWORD" in at.error[0].value
        assert not at.title or all(t.value != "Settings" for t in at.title)
        assert not at.text_input or all(t.key != "settings_openai_url" for t in at.text_input)


def test_password_gate_rate_limited_then_open(data, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_PASSWORD", "correct horse battery")
    st_config.set_option("server.address", "0.0.0.0")
    at = _run("settings")
    assert [t.key for t in at.text_input] == ["login_password"]
    for _ in range(login.PER_CLIENT[0]):
        at.text_input(key="login_password").set_value("guess")
        at.button[0].click().run()
        assert "Wrong password" in at.error[0].value
    at.text_input(key="login_password").set_value("correct horse battery")
    at.button[0].click().run()
    assert "Too many wrong passwords" in at.error[0].value, (at.title, at.markdown)  # even the right one waits now
    login._limiter.clear()
    at.text_input(key="login_password").set_value("correct horse battery")
    at.button[0].click().run()
    assert any(t.value == "Settings" for t in at.title)
    at.run()  # remembered for the session
    assert any(t.value == "Settings" for t in at.title)


def test_limiter_and_helpers():
    lim = login.Limiter(per_client=(2, 60), overall=(3, 60))
    lim.failed("a", now=0)
    assert lim.wait("a", now=1) == 0
    lim.failed("a", now=1)
    assert lim.wait("a", now=2) == pytest.approx(58) and lim.wait("b", now=2) == 0
    lim.failed("b", now=2)
    assert lim.wait("c", now=3) == pytest.approx(57)  # everyone waits once the global budget is used
    assert lim.wait("a", now=61) == 0
    assert login.password_ok("pw", "pw") and not login.password_ok("pw ", "pw") and not login.password_ok("", "pw")
    for yes in ("127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"):
        assert login.is_loopback(yes), yes
    for no in ("", "0.0.0.0", "::", "192.168.0.2", "example.com"):
        assert not login.is_loopback(no), no


def test_oidc_login_required_when_configured(data):
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s",
                          "client_id": "c", "client_secret": "x",
                          "server_metadata_url": "https://accounts.example/.well-known/openid-configuration"}
    at.switch_page("app_pages/settings.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [b.label for b in at.button] == ["Log in"] and all(t.value != "Settings" for t in at.title)

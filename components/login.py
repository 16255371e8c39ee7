"""Who may use this Playground: open on loopback, a login (password or OIDC) anywhere else, refusal otherwise."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
import time
from collections import deque

import streamlit as st

AUTHED = "login_ok"          # session key: this browser session gave the password (holds its digest)
PASSED = "login_passed"      # session key: this browser session went through the gate (set once; checked cheaply)
PER_CLIENT = (5, 60.0)       # at most 5 wrong passwords a minute from one address...
GLOBAL = (20, 60.0)          # ...and 20 a minute from everyone together (many addresses are cheap to get)
FAIL_DELAY_S = 1.0           # each wrong password costs its sender a second


def is_loopback(address: str) -> bool:
    """Whether Streamlit's server.address only listens on this machine (empty means every interface)."""
    address = (address or "").strip().strip("[]")
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Limiter:
    """Wrong-password counts per client and overall in a sliding window; process-wide (one per server)."""

    def __init__(self, per_client: tuple[int, float] = PER_CLIENT, overall: tuple[int, float] = GLOBAL):
        self.per_client, self.overall = per_client, overall
        self.fails: dict[str, deque] = {}
        self.all: deque = deque()
        self.lock = threading.Lock()

    def _trim(self, times: deque, window: float, now: float) -> None:
        while times and now - times[0] >= window:
            times.popleft()

    def wait(self, client: str, now: float | None = None) -> float:
        """Seconds before `client` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            mine = self.fails.get(client, deque())
            self._trim(mine, self.per_client[1], now)
            self._trim(self.all, self.overall[1], now)
            waits = [0.0]
            if len(mine) >= self.per_client[0]:
                waits.append(self.per_client[1] - (now - mine[0]))
            if len(self.all) >= self.overall[0]:
                waits.append(self.overall[1] - (now - self.all[0]))
            return max(waits)

    def failed(self, client: str, now: float | None = None) -> None:
        """Count one wrong password from `client`."""
        now = time.monotonic() if now is None else now
        with self.lock:
            self.fails.setdefault(client, deque()).append(now)
            self.all.append(now)
            if len(self.fails) > 10_000:  # many addresses: forget the oldest, the global window still counts them
                self.fails.pop(next(iter(self.fails)))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def password_ok(given: str, password: str) -> bool:
    """Constant-time comparison (of digests, so the length of the password does not show either)."""
    return hmac.compare_digest(_digest(given), _digest(password))


@st.cache_resource
def _limiter() -> Limiter:
    return Limiter()


def _client() -> str:
    try:
        ip = st.context.ip_address
    except Exception:  # no request context
        ip = None
    return ip if isinstance(ip, str) and ip else "unknown"  # unknown clients share one budget


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def password_gate(password: str) -> bool:
    """The login form; True once this browser session gave the right password."""
    if st.session_state.get(AUTHED) == _digest(password):
        return True
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("Assistants Playground", anchor=False)
        with st.form("login_form", border=True):
            st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
            submitted = st.form_submit_button("Log in", type="primary", icon=":material/login:")
        if not submitted:
            st.caption("This Playground is shared on the network: log in with the password its owner set "
                       "(PLAYGROUND_PASSWORD).")
            return False
        client, limiter = _client(), _limiter()
        wait = limiter.wait(client)
        if wait > 0:
            st.error(f"Too many wrong passwords. Try again in {wait:.0f} s.", icon=":material/timer:")
            return False
        if password_ok(st.session_state.pop("login_password", "") or "", password):
            st.session_state[AUTHED] = _digest(password)
            st.rerun()
        limiter.failed(client)
        time.sleep(FAIL_DELAY_S)
        st.error("Wrong password.", icon=":material/lock:")
    return False


def oidc_gate() -> bool:
    """Streamlit's own login (st.login with [auth] in secrets.toml); True once logged in."""
    if st.user.get("is_logged_in") is True:  # absent (no identity provider answered yet) counts as not logged in
        return True
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("Assistants Playground", anchor=False)
        st.button("Log in", type="primary", icon=":material/login:", on_click=st.login)
    return False


def refusal(address: str) -> None:
    """Why the Playground does not open: it listens beyond this machine and no login is set."""
    where = f"`{address}`" if address else "every network interface (server.address is not set)"
    st.error(
        f"**The Playground is not open.** It listens on {where}, so anyone on the network could read every "
        "thread, run code and use your API keys, and no login is set.\n\n"
        "Either listen on this machine only: `streamlit run app.py --server.address 127.0.0.1` (the default in "
        "`.streamlit/config.toml`), or set a login and restart: `PLAYGROUND_PASSWORD=a-long-passphrase` in `.env` "
        "or the environment, or Streamlit's OIDC login (an `[auth]` section in `.streamlit/secrets.toml`, see "
        "`secrets.toml.example`). The README's \"Share it on your network\" says more.",
        icon=":material/lock:")


def allowed(password: str) -> bool:
    """Whether this browser session may see the pages; draws the login or the refusal when not."""
    if _oidc_configured():
        ok = oidc_gate()
    elif password:
        ok = password_gate(password)
    else:
        address = st.get_option("server.address") or ""
        ok = is_loopback(address)
        if not ok:
            refusal(address)
    st.session_state[PASSED] = ok
    return ok


def needed(password: str) -> bool:
    """Whether this browser session still has to go through the gate (without drawing anything)."""
    if passed():
        return False
    return _oidc_configured() or bool(password) or not is_loopback(st.get_option("server.address") or "")


def passed() -> bool:
    """Whether this browser session already went through the gate (True outside a Streamlit script: no browser)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    return get_script_run_ctx() is None or bool(st.session_state.get(PASSED))

"""A web page in the user's browser cannot drive the API: forged bodies, foreign origins and rebinding are refused."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import openai
import pytest

from assistants.server import create_app
from assistants.server.background import BackgroundServer
from assistants.server.guard import split_host
from tests.server.conftest import running_api

JSON = {"Content-Type": "application/json"}
BODY = b'{"model": "gpt-4o-mini", "name": "made by a web page"}'


@pytest.fixture(scope="module")
def open_api(tmp_path_factory):
    """A server with no API keys: loopback only, and the only protection is the browser guard."""
    with running_api(tmp_path_factory.mktemp("guard"), api_keys=()) as api:
        yield api


@pytest.fixture(scope="module")
def http(open_api):
    with httpx2.Client(base_url=open_api.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def origin(open_api) -> str:
    """The server's own origin, as a browser showing one of its URLs would send it."""
    return open_api.base_url.removesuffix("/v1")


def names(http) -> list[str]:
    return [a["name"] for a in http.get("/assistants", params={"limit": 100}).json()["data"]]


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain", BODY),  # fetch(url, {method: "POST", mode: "no-cors", body: JSON.stringify(...)})
    ("text/plain;charset=UTF-8", BODY),
    ("application/x-www-form-urlencoded", b'{"model": "gpt-4o-mini", "name": "x"}='),  # <form enctype=...> trick
    ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini\r\n--x--\r\n'),
    ("application/json-patch+json", BODY),
    (None, BODY),
], ids=["text-plain", "text-plain-charset", "form", "multipart", "json-ish", "no-type"])
def test_bodies_a_page_can_send_without_preflight_are_refused(http, content_type, body):
    before = names(http)
    headers = {"Content-Type": content_type} if content_type else {}
    request = http.build_request("POST", "/assistants", content=body, headers=headers)
    if content_type is None:
        request.headers.pop("Content-Type", None)
    response = http.send(request)
    assert response.status_code == 415, response.text
    error = error_of(response)
    assert error["code"] == "unsupported_content_type" and "application/json" in error["message"]
    assert names(http) == before


@pytest.mark.parametrize("foreign", [
    "http://evil.example", "https://evil.example", "null", "http://localhost:8501", "http://127.0.0.1:1",
    "http://127.0.0.1.evil.example", "file://", "chrome-extension://abcdef", "http://[::1]:1", "garbage",
])
def test_json_from_a_foreign_origin_is_refused(http, foreign):
    before = names(http)
    response = http.post("/assistants", content=BODY, headers={**JSON, "Origin": foreign})
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "origin_not_allowed" and "other sites" in error["message"]
    assert names(http) == before


def test_reading_with_a_foreign_origin_is_refused_too(http, open_api):
    # No CORS means a page could not read the answer anyway; refusing saves the work and any timing signal.
    open_api.client(api_key="x").beta.assistants.create(model="gpt-4o-mini", name="secret")
    response = http.get("/assistants", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and "secret" not in response.text
    assert error_of(response)["code"] == "origin_not_allowed"


@pytest.mark.parametrize("site", ["cross-site", "same-site", "Cross-Site"])
def test_requests_a_browser_marks_as_from_another_site_are_refused(http, site):
    # <img src>, <script src>, a followed link: no Origin header, but Sec-Fetch-Site tells.
    response = http.get("/assistants", headers={"Sec-Fetch-Site": site})
    assert response.status_code == 403 and error_of(response)["code"] == "cross_site_request"


def test_the_servers_own_origin_and_typed_urls_are_answered(http, origin):
    assert http.post("/assistants", content=BODY, headers={**JSON, "Origin": origin}).status_code == 200
    assert http.get("/assistants", headers={"Sec-Fetch-Site": "none"}).status_code == 200  # typed in the address bar
    assert http.get("/assistants", headers={"Sec-Fetch-Site": "same-origin", "Origin": origin}).status_code == 200
    # Behind a TLS proxy on the same host and port the page's origin is https://: still this server.
    assert http.get("/assistants", headers={"Origin": origin.replace("http://", "https://")}).status_code == 200
    assert http.get("/assistants", headers={"Origin": origin + "1"}).status_code == 403  # another port


def test_no_cors_is_ever_granted(http, origin):
    preflight = http.options("/assistants", headers={"Origin": "http://evil.example",
                                                     "Access-Control-Request-Method": "POST",
                                                     "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code in (403, 405)
    for response in (preflight, http.get("/assistants"), http.get("/assistants", headers={"Origin": origin}),
                     http.options("/assistants", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")], response.headers


@pytest.mark.parametrize(("host", "status"), [
    ("evil.example", 403), ("evil.example:80", 403), ("127.0.0.1.nip.io", 403), ("localhost.evil.example", 403),
    ("localhost", 200), ("localhost:1", 200), ("127.0.0.1", 200), ("[::1]:8000", 200), ("app.localhost", 200),
    ("127.0.0.2:9", 200), ("0.0.0.0:8000", 403),  # browsers used to route 0.0.0.0 to localhost
])
def test_dns_rebinding_host_names_are_refused_without_keys(http, host, status):
    response = http.get("/assistants", headers={"Host": host})
    assert response.status_code == status, response.text
    if status == 403:
        error = error_of(response)
        assert error["code"] == "host_not_allowed" and "PLAYGROUND_API_KEYS" in error["message"]


def test_the_host_the_server_was_started_with_is_accepted(tmp_path, open_api):
    with BackgroundServer(create_app(open_api.rt, host="devbox.internal")) as server:
        assert httpx2.get(f"{server.base_url}/assistants", headers={"Host": "devbox.internal:8000"}).status_code == 200
        assert httpx2.get(f"{server.base_url}/assistants", headers={"Host": "other.internal"}).status_code == 403


def test_bodyless_posts_and_deletes_from_any_client_still_work(http, open_api):
    made = open_api.client(api_key="x").beta.assistants.create(model="gpt-4o-mini")
    # curl -X DELETE / -X POST with no body sends no Content-Type at all.
    request = http.build_request("DELETE", f"/assistants/{made.id}")
    request.headers.pop("Content-Type", None)
    assert http.send(request).status_code == 200
    response = http.post("/threads/thread_nope/runs/run_nope/cancel")
    assert response.status_code == 404  # reached the route: nothing to cancel, but not refused as a body


def test_the_sdk_works_against_the_guarded_server(open_api):
    client = open_api.client(api_key="anything")
    assistant = client.beta.assistants.create(model="gpt-4o-mini", name="sdk")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="again")
    file = client.files.create(file=("notes.txt", b"some notes"), purpose="assistants")
    vs = client.vector_stores.create(name="v", file_ids=[file.id])
    assert client.beta.assistants.retrieve(assistant.id).name == "sdk"
    assert len(client.beta.threads.messages.list(thread_id=thread.id).data) == 2
    assert client.files.content(file.id).read() == b"some notes"
    client.vector_stores.delete(vs.id)
    client.files.delete(file.id)
    client.beta.threads.delete(thread.id)
    client.beta.assistants.delete(assistant.id)


def test_uploads_from_a_foreign_page_are_refused(http, open_api):
    files = {"file": ("x.txt", b"dropped by a page"), "purpose": (None, "assistants")}
    response = http.post("/files", files=files, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    response = http.post("/files", files=files, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert http.get("/files").json()["data"] == [] or all(f["filename"] != "x.txt" for f in http.get("/files").json()["data"])


def test_with_keys_a_foreign_origin_is_refused_even_with_a_valid_key(tmp_path):
    # A page cannot attach the key cross-site without a preflight we never grant; refusing anyway costs nothing.
    with running_api(tmp_path) as api:
        headers = {**JSON, "Authorization": f"Bearer {api.key}"}
        response = httpx2.post(f"{api.base_url}/assistants", content=BODY, headers={**headers, "Origin": "http://evil.example"})
        assert response.status_code == 403
        assert httpx2.post(f"{api.base_url}/assistants", content=BODY, headers={"Content-Type": "text/plain"}).status_code in (401, 415)
        # With keys the server may listen on a network name: the Host rule is the keys' job there.
        assert httpx2.get(f"{api.base_url}/assistants", headers={"Authorization": f"Bearer {api.key}",
                                                                 "Host": "server.lan:8000"}).status_code == 200
        with pytest.raises(openai.AuthenticationError):
            api.client(api_key="sk-wrong").beta.assistants.list()


def test_split_host():
    assert split_host("[::1]:8000") == ("::1", 8000)
    assert split_host("LOCALHOST:80") == ("localhost", 80)
    assert split_host("example.com") == ("example.com", None)
    assert split_host("::1") == ("::1", None)


# -- a real browser on a real attacker page ------------------------------------------------------
def serve_page(html: bytes) -> ThreadingHTTPServer:
    """The attacker's site: one page, on another loopback port (as a local dev server or a hostile download)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


CHROMIUM = Path("/usr/bin/chromium")
ATTACK = """<!doctype html><html><body>
<form id="f" method="POST" enctype="text/plain" action="{api}/assistants" target="sink1">
  <input name='{{"model": "gpt-4o-mini", "name": "form-attack", "x": "' value='"}}'>
</form>
<form id="g" method="POST" action="{api}/assistants" target="sink2">
  <input name="model" value="gpt-4o-mini"><input name="name" value="urlencoded-form-attack">
</form>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<script>
window.results = [];
async function attack() {{
  const body = JSON.stringify({{model: "gpt-4o-mini", name: "fetch-attack"}});
  const upload = new FormData();
  upload.append("purpose", "assistants");
  upload.append("file", new Blob(["dropped by a web page"]), "dropped.txt");
  for (const [path, opts] of [
      ["/assistants", {{method: "POST", mode: "no-cors", body, headers: {{"Content-Type": "text/plain"}}}}],
      ["/assistants", {{method: "POST", mode: "no-cors", body: new URLSearchParams({{model: "gpt-4o-mini"}})}}],
      ["/assistants", {{method: "POST", body, headers: {{"Content-Type": "application/json"}}}}],
      ["/files", {{method: "POST", mode: "no-cors", body: upload}}],
  ]) {{
    try {{ const r = await fetch("{api}" + path, opts); window.results.push(path + " " + r.type + ":" + r.status); }}
    catch (e) {{ window.results.push(path + " blocked:" + e.name); }}
  }}
  try {{ const r = await fetch("{api}/assistants"); window.results.push("read:" + (await r.text()).slice(0, 50)); }}
  catch (e) {{ window.results.push("read-blocked:" + e.name); }}
  document.getElementById("f").submit();
  document.getElementById("g").submit();
  window.done = true;
}}
attack();
</script></body></html>"""


@pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("chromium") is None, reason="needs Debian's Chromium")
@pytest.mark.parametrize("page_host", ["localhost", "127.0.0.1"], ids=["cross-site", "same-site-other-port"])
def test_a_hostile_page_in_chromium_cannot_create_or_read_anything(open_api, http, page_host):
    playwright_api = pytest.importorskip("playwright.sync_api")
    from tests.browser import launch

    attacker = serve_page(ATTACK.format(api=open_api.base_url).encode())
    try:
        before = names(http)
        files_before = http.get("/files").json()["data"]
        with playwright_api.sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_page()
                page.goto(f"http://{page_host}:{attacker.server_port}/")  # a local dev server, a saved page...
                page.wait_for_function("window.done === true", timeout=30_000)
                page.wait_for_timeout(1500)  # the form submission lands in the iframe
                results = page.evaluate("window.results")
            finally:
                browser.close()
        assert not any(r.startswith("read:") for r in results), results
        assert names(http) == before, results
        assert http.get("/files").json()["data"] == files_before
    finally:
        attacker.shutdown()

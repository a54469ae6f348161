"""`make run`'s browser app in real headless Chromium: a page on another origin calls the API
through Envoy's CORS filter and jwt-guard with the access token, the ID token and no token,
and shows what it could read of each answer."""

from html.parser import HTMLParser

import pytest
from browser import dump_dom, screenshot
from demo import Demo
from jwtguard_support import ROOT, free_port, request

SCREENSHOT = ROOT / "target" / "e2e" / "browser-demo.png"


class _Rows(HTMLParser):
    """The results table as {sent: {status, challenge, said}}, and the page's state line."""

    def __init__(self):
        super().__init__()
        self.rows, self.state, self._row, self._cell, self._in_state = {}, "", None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-sent" in a:
            self._row = self.rows.setdefault(a["data-sent"], {})
        elif tag == "td" and self._row is not None:
            self._cell = a.get("class")
            self._row[self._cell] = ""
        elif tag == "p" and a.get("id") == "state":
            self._in_state = True

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "p":
            self._in_state = False

    def handle_data(self, data):
        if self._row is not None and self._cell:
            self._row[self._cell] += data
        elif self._in_state:
            self.state += data


@pytest.fixture(scope="module")
def demo():
    d = Demo({k: free_port() for k in ("listen", "admin", "upstream", "idp", "page")}).start()
    yield d
    d.stop()


def test_the_browser_app_reads_every_answer(demo):
    page = _Rows()
    page.feed(dump_dom(demo.page_url))
    assert page.state.strip() == "done", page.state
    rows = page.rows
    assert list(rows) == ["access token", "ID token", "no token"], rows

    ok = rows["access token"]
    assert ok["status"] == "200", ok
    assert ok["said"] == "the upstream saw x-jwt-sub: auth0|user-42", ok

    idt = rows["ID token"]
    assert idt["status"] == "401", idt
    # Readable only because the CORS filter runs before jwt-guard and exposes the header.
    assert idt["challenge"].startswith('Bearer realm="demo-api", error="invalid_token", error_description="An ID token was sent.'), idt
    assert idt["said"].startswith("An ID token was sent. ID tokens identify the user to the client"), idt

    none = rows["no token"]
    assert none["status"] == "401", none
    assert none["challenge"] == 'Bearer realm="demo-api"', none
    assert none["said"] == "This API requires a bearer access token: send `Authorization: Bearer <access token>`.", none

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    screenshot(demo.page_url, str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000


def test_envoy_answers_the_listed_origins_preflight(demo):
    r = request(demo.ports["listen"], "/api/hello", method="OPTIONS", headers={
        "origin": f"http://127.0.0.1:{demo.ports['page']}", "access-control-request-method": "GET",
        "access-control-request-headers": "authorization"})
    assert r.status == 200, r.status
    assert r.headers.get("access-control-allow-origin") == f"http://127.0.0.1:{demo.ports['page']}"
    assert "authorization" in r.headers.get("access-control-allow-headers", "")
    assert r.body == b"", "the CORS filter answers; the upstream never sees it"


def test_a_preflight_the_cors_filter_passes_on_passes_jwt_guard_untouched(demo):
    # An origin the policy does not list: Envoy's CORS filter lets it through, jwt-guard's
    # bypass_cors_preflight (on by default) does too, and the upstream answers.
    r = request(demo.ports["listen"], "/api/hello", method="OPTIONS", headers={
        "origin": "https://elsewhere.example", "access-control-request-method": "POST"})
    assert r.status == 200, (r.status, r.body)
    assert r.echoed["method"] == "OPTIONS"
    assert "access-control-allow-origin" not in r.headers
    # An OPTIONS that is not a preflight is judged as usual.
    r = request(demo.ports["listen"], "/api/hello", method="OPTIONS")
    assert r.status == 401

"""Opaque access tokens checked by RFC 7662 introspection, in a real Envoy (4 workers) against
the real oidc-provider: it issues the opaque tokens, answers introspection with client
authentication and revokes tokens (RFC 7009). Between Envoy and the provider sits a proxy the
test controls: it counts introspection calls, their concurrency and their headers, and can be
slowed or taken down."""

import base64
import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from jwtguard_support import (
    WASM, EchoUpstream, Envoy, free_port, listener_yaml, oidc_provider, request, static_cluster_yaml, wait_until,
    wasm_filter_yaml,
)

API = "https://api.jwt-guard.test"
OPAQUE, OTHER = f"{API}/opaque", f"{API}/opaque-other"
SECRET_ENV = "JWT_GUARD_E2E_INTROSPECTION_SECRET"
WORKERS, MAX_IN_FLIGHT = 4, 4


class _Proxy(BaseHTTPRequestHandler):
    """Forwards to the provider; counts and can delay or fail introspection calls."""

    def log_message(self, *_):
        pass

    def _forward(self, method):
        o = self.owner
        body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
        introspection = self.path == "/token/introspection"
        with o.lock:
            o.user_agents.add(self.headers.get("user-agent", ""))
            if introspection:
                o.calls += 1
                o.current += 1
                o.peak = max(o.peak, o.current)
                o.authorizations.add(self.headers.get("authorization", ""))
                o.bodies.append(body.decode(errors="replace"))
        try:
            if introspection and o.delay:
                time.sleep(o.delay)
            if introspection and o.down:
                self.send_response(503)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            r = requests.request(method, f"{o.target}{self.path}", headers=headers, data=body, timeout=10)
            self.send_response(r.status_code)
            self.send_header("content-type", r.headers.get("content-type", "application/json"))
            self.send_header("content-length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content)
        finally:
            if introspection:
                with o.lock:
                    o.current -= 1

    def do_GET(self):
        self._forward("GET")

    def do_POST(self):
        self._forward("POST")


class _Listener(ThreadingHTTPServer):
    request_queue_size = 128


class Proxy:
    def __init__(self, target):
        self.target, self.port = target, free_port()
        self.lock = threading.Lock()
        self.calls = self.current = self.peak = 0
        self.delay, self.down = 0.0, False
        self.user_agents, self.authorizations, self.bodies = set(), set(), []
        handler = type("Handler", (_Proxy,), {"owner": self})
        self.httpd = _Listener(("127.0.0.1", self.port), handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def op():
    with oidc_provider(API, API_SECRET=secrets.token_urlsafe(24)) as provider:
        provider["api_secret"] = provider["API_SECRET"]
        yield provider


@pytest.fixture(scope="module")
def guard(op):
    proxy = Proxy(op["issuer"])
    upstream = EchoUpstream().start()
    listen, admin = free_port(), free_port()
    config = {"realm": "api", "providers": {"op": {
        "issuer": op["issuer"], "audiences": [OPAQUE],
        "remote_jwks": {"http_uri": {"uri": f"{op['issuer']}/jwks", "cluster": "op", "timeout": "5s"}},
        "claim_to_headers": [{"header_name": "x-client", "claim_name": "client_id"}],
        "introspection": {
            "http_uri": {"uri": f"{op['issuer']}/token/introspection", "cluster": "op", "timeout": "3s"},
            "client_id": "api", "client_secret_env": SECRET_ENV,
            "negative_cache_duration": "2s", "max_in_flight": MAX_IN_FLIGHT},
    }, "disc": {
        # The endpoint from the discovery document's introspection_endpoint (no http_uri).
        "issuer": op["issuer"], "audiences": [OPAQUE],
        "discovery": {"http_uri": {"uri": f"{op['issuer']}/.well-known/openid-configuration", "cluster": "op",
                                   "timeout": "5s"}},
        "introspection": {"client_id": "api", "client_secret_env": SECRET_ENV},
    }}, "rules": [{"match": {"prefix": "/d/"}, "requires": {"provider_name": "disc"}},
                  {"match": {"prefix": "/"}, "requires": {"provider_name": "op"}}]}
    routes = """              - match: {prefix: "/"}
                route: {cluster: upstream}"""
    filters = wasm_filter_yaml(WASM, json.dumps(config), env={SECRET_ENV: op["api_secret"]})
    envoy = Envoy(listener_yaml(admin=admin, listen=listen, routes=routes, filters=filters,
                                clusters=[static_cluster_yaml("upstream", upstream.port),
                                          static_cluster_yaml("op", proxy.port)]),
                  admin, listen, concurrency=WORKERS)
    envoy.start()
    yield {"listen": listen, "envoy": envoy, "proxy": proxy, "op": op}
    envoy.stop()
    upstream.stop()
    proxy.stop()


def opaque_token(op, resource=OPAQUE):
    r = requests.post(f"{op['issuer']}/token", data={
        "grant_type": "client_credentials", "client_id": "app", "client_secret": "app-secret",
        "resource": resource, "scope": "read:items"}, timeout=10)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert token.count(".") == 0, "an opaque token"
    return token


def call(guard, token):
    return request(guard["listen"], "/items", [("authorization", f"Bearer {token}")])


def stat(guard, name):
    return int(guard["envoy"].stats(name).get(f"wasmcustom.{name}", 0))


def test_an_active_token_passes_once_asked_and_then_from_the_cache(guard):
    proxy, token = guard["proxy"], opaque_token(guard["op"])
    before = proxy.calls
    r = call(guard, token)
    assert r.status == 200, r.body
    assert r.echoed["headers"].get("x-client") == ["app"], "claim_to_headers reads the answer"
    assert "authorization" not in r.echoed["headers"], "the token is not forwarded"
    assert proxy.calls == before + 1
    for _ in range(10):
        assert call(guard, token).status == 200
    assert proxy.calls == before + 1, "cached: the other workers took the shared answer"
    # The secret came from the VM's environment: the provider accepted it (else 503), as Basic.
    basic = base64.b64encode(f"api:{guard['op']['api_secret']}".encode()).decode()
    assert f"Basic {basic}" in proxy.authorizations
    assert all(b.endswith("&token_type_hint=access_token") for b in proxy.bodies)
    assert wait_until(lambda: stat(guard, "jwt_guard.provider.op.introspection.calls") >= 1, 5)


def test_the_endpoint_can_come_from_the_discovery_document(guard):
    proxy, token = guard["proxy"], opaque_token(guard["op"])
    before = proxy.calls
    r = request(guard["listen"], "/d/items", [("authorization", f"Bearer {token}")])
    assert r.status == 200, r.body
    assert proxy.calls == before + 1, "asked at the discovered /token/introspection"


def test_every_call_says_it_is_jwt_guard(guard):
    call(guard, opaque_token(guard["op"]))
    agents = guard["proxy"].user_agents
    assert agents and all(a.startswith("jwt-guard/") for a in agents), agents
    assert len(agents) == 1, "JWKS fetches and introspection calls alike"


def test_a_revoked_token_is_refused_as_inactive(guard):
    op, token = guard["op"], opaque_token(guard["op"])
    r = requests.post(f"{op['issuer']}/token/revocation", data={
        "token": token, "client_id": "app", "client_secret": "app-secret"}, timeout=10)
    assert r.status_code == 200, r.text
    r = call(guard, token)
    assert r.status == 401
    assert r.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "not active" in r.json()["error_description"]


def test_a_token_for_another_api_is_refused_for_its_audience(guard):
    r = call(guard, opaque_token(guard["op"], OTHER))
    assert r.status == 401
    assert "audience" in r.json()["error_description"]


def test_twenty_concurrent_requests_with_one_new_token_make_one_call(guard):
    proxy, token = guard["proxy"], opaque_token(guard["op"])
    proxy.delay = 0.5
    try:
        before = proxy.calls
        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(lambda _: call(guard, token), range(20)))
            statuses = [r.status for r in responses]
    finally:
        proxy.delay = 0.0
    assert statuses == [200] * 20, [r.body for r in responses if r.status != 200]
    assert proxy.calls == before + 1, f"{proxy.calls - before} calls for one token on {WORKERS} workers"


def test_an_inactive_answer_is_cached_for_negative_cache_duration(guard):
    proxy, junk = guard["proxy"], "junk-" + secrets.token_urlsafe(16)
    before = proxy.calls
    assert call(guard, junk).status == 401
    assert call(guard, junk).status == 401
    assert proxy.calls == before + 1, "negative cache"
    time.sleep(2.1)
    assert call(guard, junk).status == 401
    assert proxy.calls == before + 2, "asked again after negative_cache_duration"


def test_a_junk_token_flood_is_bounded_by_max_in_flight(guard):
    proxy = guard["proxy"]
    proxy.delay, proxy.peak = 2.0, 0
    try:
        with ThreadPoolExecutor(40) as pool:
            responses = list(pool.map(lambda i: call(guard, f"flood-{i}-{secrets.token_urlsafe(8)}"), range(40)))
    finally:
        proxy.delay = 0.0
    overloaded = [r for r in responses if r.status == 503]
    assert 1 <= proxy.peak <= WORKERS * MAX_IN_FLIGHT, proxy.peak
    assert len(overloaded) >= 40 - WORKERS * MAX_IN_FLIGHT, [r.status for r in responses]
    assert all(r.headers.get("retry-after") == "1" for r in overloaded)
    assert all(r.status in (401, 503) for r in responses)
    assert wait_until(lambda: stat(guard, "jwt_guard.requests.denied.introspection_overloaded") >= len(overloaded), 5)


def test_an_endpoint_down_fails_closed_then_recovers(guard):
    proxy, op = guard["proxy"], guard["op"]
    cached, fresh = opaque_token(op), opaque_token(op)
    assert call(guard, cached).status == 200
    proxy.down = True
    try:
        r = call(guard, fresh)
        assert r.status == 503
        assert r.headers.get("retry-after") == "1"
        assert call(guard, cached).status == 200, "cached answers are still served"
    finally:
        proxy.down = False
    time.sleep(1.1)
    assert call(guard, fresh).status == 200, "recovered"
    assert wait_until(lambda: stat(guard, "jwt_guard.provider.op.introspection.failure") >= 1, 5)

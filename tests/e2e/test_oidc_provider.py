"""jwt-guard against a real, certified OpenID Provider: oidc-provider (npm, pinned in
tests/support/oidc/package.json), started by the test. Tokens come from the provider's own
flows: the authorization-code flow through its login and consent pages, and the
client-credentials grant, with and without DPoP. Keys come from its discovery document and from
its jwks_uri directly (one provider each)."""

import json
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests
from dpop import DpopKey
from jwtguard_support import (
    EchoUpstream, Envoy, free_port, listener_yaml, oidc_provider, request, static_cluster_yaml, wasm_filter_yaml, WASM,
)

API = "https://api.jwt-guard.test"
RS, ES, ED, OPAQUE = f"{API}/rs", f"{API}/es", f"{API}/ed", f"{API}/opaque"
CLIENT, SECRET = "app", "app-secret"
REDIRECT = "http://127.0.0.1/cb"


@pytest.fixture(scope="module")
def op():
    with oidc_provider(API) as provider:
        yield provider


@pytest.fixture(scope="module")
def guard(op):
    upstream = EchoUpstream().start()
    listen, admin = free_port(), free_port()
    common = {"issuer": op["issuer"], "audiences": [RS, ES, ED, OPAQUE], "id_token_audiences": [CLIENT],
              "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]}
    config = {"realm": "api", "providers": {
        "discovered": dict(common, discovery={"http_uri": {
            "uri": f"{op['issuer']}/.well-known/openid-configuration", "cluster": "op", "timeout": "5s"}}),
        "direct": dict(common, remote_jwks={"http_uri": {
            "uri": f"{op['issuer']}/jwks", "cluster": "op", "timeout": "5s"}}),
    }, "rules": [
        {"match": {"prefix": "/d/"}, "requires": {"provider_name": "discovered"}},
        {"match": {"prefix": "/j/"}, "requires": {"provider_name": "direct"}},
    ]}
    routes = """              - match: {prefix: "/"}
                route: {cluster: upstream}"""
    envoy = Envoy(listener_yaml(admin=admin, listen=listen, routes=routes,
                                filters=wasm_filter_yaml(WASM, json.dumps(config)),
                                clusters=[static_cluster_yaml("upstream", upstream.port),
                                          static_cluster_yaml("op", op["port"])]), admin, listen)
    envoy.start()
    yield {"listen": listen, "envoy": envoy}
    envoy.stop()
    upstream.stop()


class _Form(HTMLParser):
    def __init__(self):
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def code_flow(op, resource, user="jane"):
    """The authorization-code flow as a browser would run it: the provider's login page, then
    its consent page, each a real form posted back; returns the token response."""
    s = requests.Session()
    url = f"{op['issuer']}/auth?" + "&".join([
        f"client_id={CLIENT}", "response_type=code", "scope=openid%20offline_access%20read%3Aitems",
        f"redirect_uri={REDIRECT}", f"resource={resource}", "prompt=consent", "nonce=n-1", "state=s-1"])
    pages = []
    for _ in range(12):
        r = s.get(url, allow_redirects=False, timeout=10)
        if r.status_code in (302, 303):
            url = urljoin(url, r.headers["location"])
            if url.startswith(REDIRECT):
                break
            continue
        assert r.status_code == 200, (r.status_code, r.text[:500])
        form = _Form()
        form.feed(r.text)
        assert form.action, r.text[:500]
        pages.append(form.fields.get("prompt"))
        data = dict(form.fields)
        if data.get("prompt") == "login":
            data.update(login=user, password="any")
        r = s.post(urljoin(url, form.action), data=data, allow_redirects=False, timeout=10)
        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
        url = urljoin(url, r.headers["location"])
    assert pages == ["login", "consent"], pages
    query = parse_qs(urlparse(url).query)
    assert "code" in query, url
    r = requests.post(f"{op['issuer']}/token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT,
        "client_id": CLIENT, "client_secret": SECRET, "resource": resource}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def client_credentials(op, resource, dpop_key=None):
    headers = {}
    if dpop_key:
        headers["DPoP"] = dpop_key.proof("POST", f"{op['issuer']}/token")
    r = requests.post(f"{op['issuer']}/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET,
        "resource": resource, "scope": "read:items"}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def call(guard, token, prefix="/d/", scheme="Bearer", proof=None):
    headers = [("authorization", f"{scheme} {token}")] + ([("dpop", proof)] if proof else [])
    return request(guard["listen"], f"{prefix}items", headers)


def reason_of(r):
    return r.headers.get("www-authenticate", "")


def jose_header(token):
    import base64
    h = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))


def test_code_flow_tokens_from_the_login_and_consent_pages(op, guard):
    t = code_flow(op, RS)
    assert jose_header(t["access_token"])["alg"] == "RS256"
    for prefix in ("/d/", "/j/"):  # discovery and remote_jwks
        r = call(guard, t["access_token"], prefix)
        assert r.status == 200, (prefix, r.status, r.body)
        assert r.echoed["headers"]["x-jwt-sub"] == ["jane"]
    r = call(guard, t["id_token"])
    assert r.status == 401 and 'error_description="An ID token was sent.' in reason_of(r), reason_of(r)
    r = call(guard, t["refresh_token"])
    assert r.status == 401 and "The bearer token is not a JWT." in reason_of(r), reason_of(r)


@pytest.mark.parametrize("resource,alg", [(RS, "RS256"), (ES, "ES256"), (ED, "EdDSA")])
def test_client_credentials_access_tokens_pass_for_each_algorithm(op, guard, resource, alg):
    t = client_credentials(op, resource)
    assert jose_header(t["access_token"])["alg"] == alg
    for prefix in ("/d/", "/j/"):
        r = call(guard, t["access_token"], prefix)
        assert r.status == 200, (alg, prefix, r.status, r.body)
        assert r.echoed["headers"]["x-jwt-sub"] == [CLIENT]


def test_opaque_access_tokens_are_named(op, guard):
    t = client_credentials(op, OPAQUE)
    assert t["access_token"].count(".") == 0
    r = call(guard, t["access_token"])
    assert r.status == 401 and "The bearer token is not a JWT." in reason_of(r), reason_of(r)
    time.sleep(0.3)  # metrics land on the next 200 ms tick
    stat = guard["envoy"].stats("jwt_guard")
    assert int(stat["wasmcustom.jwt_guard.requests.denied.opaque"]) >= 1


def test_dpop_bound_tokens_from_the_provider(op, guard):
    key = DpopKey()
    t = client_credentials(op, ES, key)
    assert t["token_type"] == "DPoP", t
    at = t["access_token"]
    url = "http://api.test/d/items"
    cases = [
        ("valid", "DPoP", key.proof("GET", url, at), 200, None),
        ("bound as bearer", "Bearer", None, 401, "dpop_downgrade"),
        ("wrong method", "DPoP", key.proof("POST", url, at), 401, "`htm` is not this request"),
        ("wrong URL", "DPoP", key.proof("GET", "http://api.test/d/other", at), 401, "`htu` is not this request"),
        ("stale", "DPoP", key.proof("GET", url, at, iat=int(time.time()) - 600), 401, "too old"),
        ("missing ath", "DPoP", key.proof("GET", url, None), 401, "no `ath`"),
        ("wrong key", "DPoP", DpopKey().proof("GET", url, at), 401, "another key"),
    ]
    replay = key.proof("GET", url, at)
    cases += [("first use", "DPoP", replay, 200, None), ("replayed", "DPoP", replay, 401, "already used")]
    for name, scheme, proof, status, needle in cases:
        r = call(guard, at, "/d/", scheme, proof)
        assert r.status == status, (name, r.status, r.body)
        if needle == "dpop_downgrade":
            assert "bound to a DPoP key" in reason_of(r), (name, reason_of(r))
        elif needle:
            assert needle in reason_of(r), (name, reason_of(r))

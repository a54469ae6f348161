"""Rule conditions in real Envoy: the `:authority` and header values Envoy hands the filter,
Istio's host forms, a rule's principals, `provider_and_audiences`, and a provider that takes
tokens without `aud`."""

import json

import pytest

from conftest import API, CLIENT, ISSUER, Stack, auth0_provider
from jwtguard_support import Signer, request, wait_until

INTERNAL = "https://internal.example.com/"


@pytest.fixture(scope="module")
def stack():
    internal = Signer(INTERNAL, rsa_kid="internal-rsa", ec_kid="internal-ec")

    def build(st):
        return {"providers": {
            "auth0": auth0_provider(st),
            "internal": {"issuer": INTERNAL, "allow_any_audience": True, "id_token_audiences": ["internal-ui"],
                         "local_jwks": {"inline_string": json.dumps(internal.jwks())},
                         "from_headers": [{"name": "x-internal-token"}]}},
            "rules": [
                {"match": {"prefix": "/", "hosts": ["admin.example.com", "admin.example.com:*"]},
                 "requires": {"provider_name": "auth0"}, "principals": [f"{ISSUER}/admin"]},
                {"match": {"prefix": "/", "headers": [{"name": "x-canary", "exact_match": "on"}]}},
                {"match": {"path_separated_prefix": "/orders"},
                 "requires": {"provider_and_audiences": {"provider_name": "auth0", "audiences": ["orders-api"]}}},
                {"match": {"suffix": "/internal"}, "requires": {"provider_name": "internal"}},
                {"match": {"prefix": "/"}, "requires": {"provider_name": "auth0"}}]}
    s = Stack(build)
    s.internal = internal
    s.envoy.start()
    yield s
    s.stop()


def bearer(token, host="api.example.com", **headers):
    return {"host": host, "authorization": f"Bearer {token}", **headers}


def test_hosts_as_envoy_hands_the_authority(stack):
    admin = stack.signer.access_token(API, CLIENT, claims={"sub": "admin"})
    user = stack.signer.access_token(API, CLIENT)
    assert request(stack.listen, "/x", bearer(admin, "admin.example.com")).status == 200
    assert request(stack.listen, "/x", bearer(admin, "ADMIN.example.com:8443")).status == 200
    r = request(stack.listen, "/x", bearer(user, "admin.example.com"))
    assert r.status == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert "admin" not in r.json()["error_description"].replace("admin.example", "")
    # The same user on another host takes the last rule.
    assert request(stack.listen, "/x", bearer(user)).status == 200


def test_a_header_condition(stack):
    assert request(stack.listen, "/x", {"host": "api.example.com", "x-canary": "on"}).status == 200
    assert request(stack.listen, "/x", {"host": "api.example.com", "x-canary": "off"}).status == 401


def test_provider_and_audiences_on_its_route_only(stack):
    orders = stack.signer.access_token("orders-api", CLIENT)
    api = stack.signer.access_token(API, CLIENT)
    assert request(stack.listen, "/orders/7", bearer(orders)).status == 200
    r = request(stack.listen, "/orders", bearer(api))
    assert r.status == 401 and "orders-api" in r.json()["error_description"]
    assert request(stack.listen, "/ordersx", bearer(orders)).status == 401  # not under /orders: audience API
    assert request(stack.listen, "/x", bearer(api)).status == 200


def test_tokens_without_aud_from_a_provider_that_allows_them(stack):
    no_aud = stack.internal.token({"sub": "svc-a"})
    r = request(stack.listen, "/jobs/internal", {"host": "api.example.com", "x-internal-token": no_aud})
    assert r.status == 200, r.body
    # ID tokens are still refused.
    id_token = stack.internal.id_token("internal-ui")
    r = request(stack.listen, "/jobs/internal", {"host": "api.example.com", "x-internal-token": id_token})
    assert r.status == 401 and "ID token" in r.json()["error_description"]
    log = stack.envoy.wait_log("aud=unchecked")
    assert "provider=internal" in log
    stat = "wasmcustom.jwt_guard.provider.internal.audience_unchecked"
    assert wait_until(lambda: int(stack.envoy.stats("jwt_guard").get(stat, "0")) >= 1, 5.0)

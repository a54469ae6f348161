"""Several issuers per provider in real Envoy: two literal issuers (an Auth0 tenant and its
custom domain) sharing one fetched key set, and Entra ID multi-tenant tokens (v1 and v2
issuers, `tid`) through OIDC discovery whose document publishes the issuer template."""

import pytest

from conftest import API, CLIENT, Stack, auth0_provider
from jwtguard_support import request, wait_until

TENANT_DOMAIN = "https://tenant.example.com/"
CUSTOM_DOMAIN = "https://login.example.com/"
T1 = "72f988bf-86f1-41af-91ab-2d7cd011db47"
T2 = "9188040d-6c67-4c5b-b112-36a304b66dad"
V2 = "https://login.microsoftonline.com/{}/v2.0"
V1 = "https://sts.windows.net/{}/"


def bearer(token):
    return {"authorization": f"Bearer {token}"}


def count(stack, name):
    return int(stack.envoy.stats("jwt_guard").get(f"wasmcustom.jwt_guard.provider.{name}", "0"))


@pytest.fixture(scope="module")
def literal():
    def build(st):
        p = auth0_provider(st)
        p.pop("issuer")
        p["issuers"] = [TENANT_DOMAIN, CUSTOM_DOMAIN]
        return {"providers": {"auth0": p}}
    s = Stack(build)
    s.envoy.start()
    yield s
    s.stop()


def test_two_literal_issuers_share_one_key_set(literal):
    sg = literal.signer
    for iss in (TENANT_DOMAIN, CUSTOM_DOMAIN):
        r = request(literal.listen, "/api", bearer(sg.access_token(API, CLIENT, iss=iss)))
        assert r.status == 200, (iss, r.body)
    r = request(literal.listen, "/api", bearer(sg.access_token(API, CLIENT, iss="https://other.example.com/")))
    assert r.status == 401 and "issuer this API does not trust" in r.json()["error_description"]
    # ID tokens are still ID tokens, whichever issuer signed them.
    r = request(literal.listen, "/api", bearer(sg.id_token(CLIENT, iss=CUSTOM_DOMAIN)))
    assert r.status == 401 and "ID token" in r.json()["error_description"]
    # One provider, one key set: every fetch was of its one JWKS (a slow machine may retry one).
    assert {p for _, p in literal.jwks.fetches} == {"/.well-known/jwks.json"}


@pytest.fixture(scope="module")
def entra():
    def build(st):
        p = auth0_provider(st, issuers=[V2.format("{tid}"), V1.format("{tid}")], tenants=[T1])
        p.pop("issuer")
        remote = p.pop("remote_jwks")
        remote["http_uri"]["uri"] = f"http://127.0.0.1:{st.jwks.port}/common/v2.0/.well-known/openid-configuration"
        p["discovery"] = remote
        return {"providers": {"entra": p}}
    s = Stack(build)
    # Entra's common endpoint publishes the template with its own placeholder name.
    s.jwks.serve("/common/v2.0/.well-known/openid-configuration",
                 {"issuer": V2.format("{tenantid}"), "jwks_uri": f"http://127.0.0.1:{s.jwks.port}/common/keys"})
    s.envoy.start()
    yield s
    s.stop()


def entra_token(stack, iss, tid):
    claims = {"tid": tid} if tid else {}
    return stack.signer.access_token(API, CLIENT, iss=iss, claims=claims)


def test_entra_v1_and_v2_tokens_of_a_listed_tenant(entra):
    for iss in (V2.format(T1), V1.format(T1)):
        r = request(entra.listen, "/api", bearer(entra_token(entra, iss, T1)))
        assert r.status == 200, (iss, r.body)
    assert "/common/keys" in [p for _, p in entra.jwks.fetches]
    log = entra.envoy.wait_log(f"tenant={T1}")
    assert "jwt-guard: allow provider=entra" in log


@pytest.mark.parametrize("iss,tid,why", [
    (V2.format(T2), T2, "not one this API accepts"),
    (V2.format(T1), T2, "differs from the issuer's tenant segment"),
    (V2.format(T1), None, "no tenant claim"),
    (V2.format("a%2Fb"), "a%2Fb", "1 to 64 characters"),
])
def test_tenant_refusals(entra, iss, tid, why):
    before = count(entra, "entra.denied.tenant")
    r = request(entra.listen, "/api", bearer(entra_token(entra, iss, tid)))
    assert r.status == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert why in r.json()["error_description"]
    assert wait_until(lambda: count(entra, "entra.denied.tenant") == before + 1, 5.0)

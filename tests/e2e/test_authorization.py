"""The verified identity handed to Envoy's own authorization, in real Envoy: jwt-guard, then
envoy/authz/header_to_metadata.yaml, then the RBAC filters Istio generates (envoy/authz/
istio_deny.yaml, istio_allow.yaml: shapes from istio/istio pilot/pkg/security/authz). Claim
rules refused by jwt-guard itself, forged payload headers with and without a token on protected
and open routes, RBAC on filter state, and the access-log line."""

import json

import pytest

from authz_envoy import bootstrap, forged_payload, guard_filter, header_to_metadata, rbac
from conftest import API, CLIENT, ISSUER
from jwtguard_support import EchoUpstream, Envoy, Signer, free_port, request, wait_until


def guard_config(signer):
    return {
        "realm": "api",
        "filter_state": True,
        "providers": {"idp": {
            "issuer": ISSUER, "audiences": [API], "id_token_audiences": [CLIENT],
            "local_jwks": {"inline_string": json.dumps(signer.jwks())},
            "payload_in_metadata": "payload",
            "normalize_payload_in_metadata": {"space_delimited_claims": ["scope", "permission"]},
        }},
        "rules": [
            {"match": {"prefix": "/open/"}},
            {"match": {"prefix": "/claims/"}, "requires": {"provider_name": "idp"},
             "claims": [{"name": "groups", "values": ["admins"]},
                        {"path": ["https://example.com/roles"], "not_values": ["suspended"]}]},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}},
        ],
    }


class AuthzStack:
    def __init__(self, signer, filters_fn):
        self.signer = signer
        self.upstream = EchoUpstream().start()
        self.listen, self.admin = free_port(), free_port()
        self.envoy = Envoy("", self.admin, self.listen, concurrency=2)
        self.access_log = self.envoy.dir / "access.log"
        self.envoy.yaml_text = bootstrap(admin=self.admin, listen=self.listen, upstream=self.upstream.port,
                                         filters=filters_fn(signer), log_path=self.access_log)
        self.envoy.start()

    def stop(self):
        self.envoy.stop()
        self.upstream.stop()

    def get(self, path, token=None, headers=None):
        h = dict(headers or {})
        if token:
            h["authorization"] = f"Bearer {token}"
        return request(self.listen, path, h)

    def log_lines(self):
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []


@pytest.fixture(scope="module")
def authz():
    signer = Signer(ISSUER)
    s = AuthzStack(signer, lambda sg: [guard_filter(guard_config(sg)), header_to_metadata(),
                                      rbac("istio_deny.yaml"), rbac("istio_allow.yaml")])
    yield s
    s.stop()


def token(signer, sub="alice", **claims):
    return signer.access_token(API, CLIENT, claims={"sub": sub, **claims})


ADMIN_FORGERY = {"x-jwt-guard-payload": forged_payload(iss=ISSUER, sub="alice", groups=["admins"])}


def test_the_forged_header_itself_would_pass_rbac_without_jwt_guard(authz):
    """The forgery is well formed: RBAC alone (no jwt-guard) lets it through. This is what the
    stripping below prevents."""
    s = AuthzStack(authz.signer, lambda sg: [header_to_metadata(), rbac("istio_allow.yaml")])
    try:
        assert s.get("/admin/x", headers=ADMIN_FORGERY).status == 200
        assert s.get("/admin/x").status == 403
    finally:
        s.stop()


def test_request_principals_and_any_principal(authz):
    sg = authz.signer
    assert authz.get("/api/x", token(sg)).status == 200
    assert authz.get("/api/x").status == 401  # jwt-guard: no token
    assert authz.get("/alice/x", token(sg, sub="alice")).status == 200
    assert authz.get("/alice/x", token(sg, sub="bob")).status == 403
    # Another issuer's alice is refused by jwt-guard before RBAC.
    other = Signer("https://evil.example/")
    assert authz.get("/alice/x", other.access_token(API, CLIENT, claims={"sub": "alice"})).status == 401


def test_claims_audiences_presenter_and_nested_claims(authz):
    sg = authz.signer
    assert authz.get("/admin/x", token(sg, groups=["eng", "admins"])).status == 200
    assert authz.get("/admin/x", token(sg, groups="admins")).status == 200
    assert authz.get("/admin/x", token(sg, groups=["eng"])).status == 403
    assert authz.get("/admin/x", token(sg)).status == 403
    # scope is split into words by normalize_payload_in_metadata, as Istio's jwt_authn does.
    assert authz.get("/scoped/x", token(sg, scope="read write")).status == 200
    assert authz.get("/scoped/x", token(sg, scope="read writer")).status == 403
    assert authz.get("/aud/x", token(sg)).status == 200  # aud [API, ...userinfo], azp client-123
    assert authz.get("/aud/x", sg.access_token(API, "other-app", claims={"sub": "alice"})).status == 403
    assert authz.get("/nested/x", token(sg, realm_access={"roles": ["editor"]})).status == 200
    assert authz.get("/nested/x", token(sg, realm_access={"roles": ["viewer"]})).status == 403


def test_deny_policies_are_judged_first(authz):
    sg = authz.signer
    assert authz.get("/api/x", token(sg, groups=["eng", "banned"])).status == 403
    assert authz.get("/api/x", token(sg, groups=["eng"])).status == 200


def test_a_forged_payload_header_never_reaches_rbac(authz):
    sg = authz.signer
    before = authz.upstream.requests
    # A protected route, with a valid token whose own claims do not qualify.
    assert authz.get("/admin/x", token(sg, groups=["eng"]), ADMIN_FORGERY).status == 403
    # A protected route without a token: jwt-guard refuses it first.
    assert authz.get("/admin/x", headers=ADMIN_FORGERY).status == 401
    # A route jwt-guard does not protect: the header is still removed, so RBAC sees no payload.
    assert authz.get("/open/admin", headers=ADMIN_FORGERY).status == 403
    assert authz.get("/open/admin", token(sg, groups=["eng"]), ADMIN_FORGERY).status == 403
    # The underscore spelling is dropped too, and the open route still works.
    r = authz.get("/open/public", headers={"x_jwt_guard_payload": "KgA=", **ADMIN_FORGERY})
    assert r.status == 200
    assert "x-jwt-guard-payload" not in r.echoed["headers"]
    assert "x_jwt_guard_payload" not in r.echoed["headers"]
    assert authz.upstream.requests == before + 1
    # header_to_metadata removes our own header too: the upstream never sees the payload.
    r = authz.get("/admin/x", token(sg, groups=["admins"]))
    assert r.status == 200 and "x-jwt-guard-payload" not in r.echoed["headers"]


def test_rbac_reads_the_principal_from_filter_state(authz):
    sg = authz.signer
    assert authz.get("/fs/x", token(sg, sub="alice")).status == 200
    assert authz.get("/fs/x", token(sg, sub="bob")).status == 403


def test_cel_sees_the_principal_as_a_string(authz):
    """A CEL condition compares filter state with a string literal: that holds only because
    jwt-guard declares its properties as strings (undeclared, they are bytes, and CEL has no
    bytes == string)."""
    sg = authz.signer
    assert authz.get("/cel/x", token(sg, sub="alice")).status == 200
    assert authz.get("/cel/x", token(sg, sub="bob")).status == 403


def test_claim_rules_refuse_in_jwt_guard_before_the_upstream(authz):
    sg = authz.signer
    assert authz.get("/claims/x", token(sg, groups=["admins"])).status == 200
    before = authz.upstream.requests
    r = authz.get("/claims/x", token(sg, groups=["eng"]))
    assert r.status == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and "`groups`" in challenge
    assert "admins" not in challenge and b"admins" not in r.body
    assert r.json()["error"] == "insufficient_scope"
    roles = {"https://example.com/roles": ["suspended"]}
    r = authz.get("/claims/x", token(sg, groups=["admins"], **roles))
    assert r.status == 403 and "https://example.com/roles" in r.headers["www-authenticate"]
    assert authz.upstream.requests == before
    def count(name):
        return int(authz.envoy.stats("jwt_guard").get(f"wasmcustom.jwt_guard.{name}", "0"))
    # Counted per worker and flushed on the next tick.
    assert wait_until(lambda: count("requests.denied.claim") >= 2, 5.0)
    assert wait_until(lambda: count("provider.idp.denied.claim") >= 2, 5.0)


def test_the_access_log_shows_principal_and_reason_as_plain_text(authz):
    sg = authz.signer
    authz.get("/api/logged", token(sg, sub="carol"))
    authz.get("/api/unlogged")
    authz.get("/claims/logged", token(sg, groups=["eng"]))
    want = [f"/api/logged 200 principal={ISSUER}/carol reason=allowed",
            "/api/unlogged 401 principal=- reason=missing",
            # Refused by a claim rule, the caller is still known.
            f"/claims/logged 403 principal={ISSUER}/alice reason=claim"]
    assert wait_until(lambda: all(w in authz.log_lines() for w in want), 5.0), authz.log_lines()[-5:]

"""The migration guides' before/after pairs (envoy/migration/), each run in real Envoy twice:
the original setup and its jwt-guard replacement, with the same requests. Every request is
allowed or refused alike, except where jwt-guard is deliberately stricter (each such request is
named, and only ever refused by jwt-guard where the original allowed, never the reverse).

- istio-claims: RequestAuthentication + AuthorizationPolicy with request.auth.claims[groups] and
  a specific requestPrincipals, as Istio generates it (jwt_authn, then rbac.yaml); after:
  jwt-guard + header_to_metadata + the same RBAC.
- entra: jwt_authn with a provider per Entra tenant and token version; after: one jwt-guard
  provider with issuer templates and `tenants`.
- jwt-authn-rbac: jwt_authn with payload_in_metadata + an RBAC filter on that metadata; after:
  jwt-guard + header_to_metadata + the same RBAC.
"""

import copy
import json

import pytest
import yaml

from authz_envoy import forged_payload, guard_filter, header_to_metadata, jwt_authn, run
from jwtguard_support import ROOT, Signer

MIGRATION = ROOT / "envoy" / "migration"
T1 = "11111111-1111-4111-8111-111111111111"
T2 = "22222222-2222-4222-8222-222222222222"
T3 = "33333333-3333-4333-8333-333333333333"


def local(provider, signer):
    """A provider with the test's keys in place of its remote JWKS."""
    p = copy.deepcopy(provider)
    p.pop("remote_jwks", None)
    p["local_jwks"] = {"inline_string": json.dumps(signer.jwks())}
    return p


def rbac_filter(rules):
    return {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC", "rules": rules}}


def compare(before_filters, after_filters, cases, forgery):
    """`cases`: (label, method, path, token or None, expected before, expected after). Every
    request also carries `forgery`, a payload header that would be allowed everywhere: it must
    change nothing."""
    requests = []
    for _, method, path, token, *_ in cases:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        headers["x-jwt-guard-payload"] = forgery
        requests.append((method, path, headers))
    before, after = run(before_filters, requests), run(after_filters, requests)
    verdict = lambda status: "allow" if status == 200 else "deny"  # noqa: E731
    got = [(c[0], verdict(b), verdict(a)) for c, b, a in zip(cases, before, after)]
    want = [(c[0], c[4], c[5]) for c in cases]
    assert got == want, f"statuses before {before}, after {after}"
    # Never wider: nothing the original refused is let through.
    assert not [c[0] for c in cases if c[4] == "deny" and c[5] == "allow"]


def test_istio_request_authentication_and_claims_policy():
    before_docs = list(yaml.safe_load_all((MIGRATION / "istio-claims" / "before.yaml").read_text()))
    after_docs = list(yaml.safe_load_all((MIGRATION / "istio-claims" / "after.yaml").read_text()))
    ra = next(d for d in before_docs if d["kind"] == "RequestAuthentication")["spec"]["jwtRules"][0]
    kinds = {d["kind"]: d for d in after_docs}
    assert "RequestAuthentication" not in kinds
    # The policy stays exactly as it was, and the EnvoyFilter is the shipped one.
    assert kinds["AuthorizationPolicy"] == next(d for d in before_docs if d["kind"] == "AuthorizationPolicy")
    shipped = yaml.safe_load((ROOT / "envoy" / "istio" / "sidecar" / "envoyfilter.yaml").read_text())
    assert kinds["EnvoyFilter"] == shipped
    rbac = yaml.safe_load((MIGRATION / "istio-claims" / "rbac.yaml").read_text())

    signer = Signer(ra["issuer"])
    api = ra["audiences"][0]
    # What Istio generates from the RequestAuthentication (pilot/pkg/security/authn).
    istio_provider = {"issuer": ra["issuer"], "audiences": ra["audiences"], "forward": True,
                      "payload_in_metadata": "payload",
                      "normalize_payload_in_metadata": {"space_delimited_claims": ["permission", "scope"]}}
    before = [jwt_authn({"origins-0": local(istio_provider, signer)},
                        [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                            {"provider_name": "origins-0"}, {"allow_missing": {}}]}}}]),
              rbac_filter(rbac)]
    config = kinds["WasmPlugin"]["spec"]["pluginConfig"]
    config["providers"]["idp"] = local(config["providers"]["idp"], signer)
    after = [guard_filter(config), header_to_metadata(), rbac_filter(rbac)]

    def tok(sub, **kw):
        claims = {"sub": sub, **kw.pop("claims", {})}
        return signer.access_token(kw.pop("aud", api), "client-1", claims=claims, **kw)
    compare(before, after, [
        ("health, no token", "GET", "/healthz", None, "allow", "allow"),
        ("api, no token", "GET", "/api/x", None, "deny", "deny"),
        ("alice", "GET", "/api/x", tok("alice"), "allow", "allow"),
        ("bob in admins on /admin", "GET", "/admin/x", tok("bob", claims={"groups": ["admins"]}), "allow", "allow"),
        ("bob with groups as a string", "GET", "/admin/x", tok("bob", claims={"groups": "admins"}), "allow", "allow"),
        ("bob in eng on /admin", "GET", "/admin/x", tok("bob", claims={"groups": ["eng"]}), "deny", "deny"),
        ("bob in admins elsewhere", "GET", "/api/x", tok("bob", claims={"groups": ["admins"]}), "deny", "deny"),
        ("alice, expired", "GET", "/api/x", tok("alice", lifetime=-3600), "deny", "deny"),
        ("alice, another audience", "GET", "/api/x", tok("alice", aud="https://other.example"), "deny", "deny"),
        ("alice's ID token", "GET", "/api/x", signer.id_token("client-1", claims={"sub": "alice"}), "deny", "deny"),
        ("garbage on an open path", "GET", "/healthz", "not-a-jwt", "deny", "deny"),
        ("another issuer's alice", "GET", "/api/x", Signer("https://evil.example/").access_token(
            api, "c", claims={"sub": "alice"}), "deny", "deny"),
    ], forged_payload(iss=ra["issuer"], sub="alice", groups=["admins"]))


def test_entra_multi_tenant():
    before_filter = yaml.safe_load((MIGRATION / "entra" / "before.yaml").read_text())
    config = json.loads((MIGRATION / "entra" / "after.json").read_text())
    signer = Signer("unused")
    cfg = before_filter["typed_config"]
    cfg["providers"] = {name: local(p, signer) for name, p in cfg["providers"].items()}
    config["providers"]["entra"] = local(config["providers"]["entra"], signer)
    before, after = [before_filter], [guard_filter(config)]

    def tok(iss, tid, aud="api://orders-api"):
        claims = {"iss": iss, "aud": aud, "sub": "user", "azp": "app"}
        if tid:
            claims["tid"] = tid
        return signer.token(claims, headers={"typ": "JWT"})
    v2 = "https://login.microsoftonline.com/{}/v2.0".format
    v1 = "https://sts.windows.net/{}/".format
    compare(before, after, [
        ("contoso v2", "GET", "/orders", tok(v2(T1), T1), "allow", "allow"),
        ("contoso v1", "GET", "/orders", tok(v1(T1), T1), "allow", "allow"),
        ("fabrikam v2", "GET", "/orders", tok(v2(T2), T2), "allow", "allow"),
        ("fabrikam v1", "GET", "/orders", tok(v1(T2), T2), "allow", "allow"),
        ("a third tenant", "GET", "/orders", tok(v2(T3), T3), "deny", "deny"),
        ("another audience", "GET", "/orders", tok(v2(T1), T1, aud="api://other"), "deny", "deny"),
        ("no token", "GET", "/orders", None, "deny", "deny"),
        # Stricter, on purpose: the issuer's tenant must be the token's `tid`.
        ("tid differs from the issuer's tenant", "GET", "/orders", tok(v2(T1), T2), "allow", "deny"),
        ("no tid", "GET", "/orders", tok(v2(T1), None), "allow", "deny"),
    ], forged_payload(iss=v2(T1), tid=T1, sub="user"))


def test_jwt_authn_with_payload_in_metadata_and_rbac():
    before_doc = yaml.safe_load((MIGRATION / "jwt-authn-rbac" / "before.yaml").read_text())
    after_doc = yaml.safe_load((MIGRATION / "jwt-authn-rbac" / "after.yaml").read_text())
    authn, rbac = before_doc["http_filters"]
    provider = authn["typed_config"]["providers"]["example"]
    signer = Signer(provider["issuer"])
    authn["typed_config"]["providers"]["example"] = local(provider, signer)
    config = after_doc["jwt_guard"]
    config["providers"]["example"] = local(config["providers"]["example"], signer)
    assert after_doc["header_to_metadata"] == header_to_metadata("my_payload")
    before = [authn, rbac]
    after = [guard_filter(config), after_doc["header_to_metadata"], rbac]

    def tok(sub, **claims):
        return signer.token({"sub": sub, "aud": "orders", **claims})
    compare(before, after, [
        ("read, any caller", "GET", "/orders", tok("alice"), "allow", "allow"),
        ("read, no token", "GET", "/orders", None, "deny", "deny"),
        ("delete, ops-bot", "DELETE", "/orders/7", tok("ops-bot"), "allow", "allow"),
        ("delete, orders:admin", "DELETE", "/orders/7", tok("alice", roles=["orders:admin"]), "allow", "allow"),
        ("delete, orders:read", "DELETE", "/orders/7", tok("alice", roles=["orders:read"]), "deny", "deny"),
        ("delete, no token", "DELETE", "/orders/7", None, "deny", "deny"),
        ("delete, roles as a string", "DELETE", "/orders/7", tok("alice", roles="orders:admin"), "deny", "deny"),
    ], forged_payload(iss=provider["issuer"], sub="ops-bot", roles=["orders:admin"]))


@pytest.mark.parametrize("path", sorted(p.name for p in MIGRATION.iterdir()))
def test_every_pair_is_run_here(path):
    assert path in {"istio-claims", "entra", "jwt-authn-rbac"}, f"envoy/migration/{path} has no e2e case"

"""`jwt-guard import` over a corpus of public configurations (tests/vectors/import/, each file
naming its source): Envoy's jwt_authn documentation examples, and Istio's RequestAuthentication
and AuthorizationPolicy examples from istio.io. Each runs in real Envoy twice with the same
requests: the original (the Envoy file's jwt_authn and RBAC filters; for Istio, what Istio
generates, tests/support/istio_generated.py) and jwt-guard with the imported configuration.
Every request must be allowed or refused alike; a request the import lets through and the
original refused fails the test whatever the expectations say.

The JWKS of every provider is replaced by the test signer's keys, in the file the import reads
and in the original alike, so real tokens can be sent.
"""

import copy
import json
import subprocess

import pytest
import yaml

from authz_envoy import guard_filter, run
from istio_generated import jwt_authn as istio_jwt_authn, rbac_filters
from jwtguard_support import CLI, ROOT, Signer

CORPUS = ROOT / "tests" / "vectors" / "import"
SIGNERS: dict[str, Signer] = {}


def signer(issuer: str) -> Signer:
    if issuer not in SIGNERS:
        SIGNERS[issuer] = Signer(issuer)
    return SIGNERS[issuer]


def jwks_text(issuer: str) -> str:
    return json.dumps(signer(issuer).jwks())


def envoy_source(name):
    """The corpus file with test keys, and its jwt_authn and RBAC filters (the original)."""
    doc = yaml.safe_load((CORPUS / name).read_text())
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    for f in hcm["http_filters"]:
        if f["typed_config"]["@type"].endswith("JwtAuthentication"):
            for p in f["typed_config"]["providers"].values():
                p.pop("remote_jwks", None)
                p["local_jwks"] = {"inline_string": jwks_text(p["issuer"])}
    original = [f for f in hcm["http_filters"] if not f["typed_config"]["@type"].endswith("Router")]
    return doc, original


def istio_source(name):
    docs = [d for d in yaml.safe_load_all((CORPUS / name).read_text()) if d]
    for d in docs:
        if d["kind"] == "RequestAuthentication":
            for rule in d["spec"]["jwtRules"]:
                rule.pop("jwksUri", None)
                rule["jwks"] = jwks_text(rule["issuer"])
    ras = [d for d in docs if d["kind"] == "RequestAuthentication"]
    aps = [d for d in docs if d["kind"] == "AuthorizationPolicy"]
    return docs, [istio_jwt_authn(ras, jwks_text)] + rbac_filters(aps)


def import_config(tmp_path, docs):
    src = tmp_path / "source.yaml"
    src.write_text(yaml.safe_dump_all(docs if isinstance(docs, list) else [docs]))
    out = subprocess.run([str(CLI), "import", str(src)], capture_output=True, text=True, timeout=60)
    assert out.returncode in (0, 2), out.stderr
    return json.loads(out.stdout), out.returncode, out.stderr


def bearer(token, header="authorization", prefix="Bearer "):
    return {header: prefix + token} if token else {}


def compare(tmp_path, name, cases, want_exit=0):
    """`cases`: (label, method, path, headers, expected verdict in both)."""
    docs, original = (istio_source if name.startswith("istio-") else envoy_source)(name)
    config, code, stderr = import_config(tmp_path, docs)
    assert code == want_exit, stderr
    requests = [(m, p, h) for _, m, p, h, _ in cases]
    before, after = run(original, requests), run([guard_filter(config)], requests)
    check(cases, before, after)
    if name.startswith("istio-"):
        # What Istio generates is itself a jwt_authn + RBAC configuration: importing that
        # instead (RBAC's andIds, orIds, notId and metadata matchers) must give the same.
        generated, code, stderr = import_config(tmp_path, {"http_filters": original})
        assert code == 0, stderr
        check(cases, before, run([guard_filter(generated)], requests))
    return config, stderr


def check(cases, before, after):
    verdict = lambda s: "allow" if s == 200 else "deny"  # noqa: E731
    wider = [c[0] for c, b, a in zip(cases, before, after) if verdict(b) == "deny" and verdict(a) == "allow"]
    assert not wider, f"the import lets through what the original refused: {wider}"
    got = [(c[0], verdict(b), verdict(a)) for c, b, a in zip(cases, before, after)]
    assert got == [(c[0], c[4], c[4]) for c in cases], f"statuses before {before}, after {after}"


def test_envoy_firebase_example_checks_no_token_without_rules(tmp_path):
    s = signer("https://example.com")
    ok = s.access_token("bookstore_web.apps.googleusercontent.com", "c")
    config, stderr = compare(tmp_path, "envoy-jwt-authn-filter.yaml", [
        ("no token", "GET", "/", {}, "allow"),
        ("valid", "GET", "/x", bearer(ok), "allow"),
        ("garbage: jwt_authn has no rule, so no check", "GET", "/x", bearer("not-a-jwt"), "allow"),
    ])
    assert "none: jwt_authn checks no token" in stderr
    # Its audiences in every spelling jwt_authn accepts.
    assert "https://bookstore_web.apps.googleusercontent.com/" in config["providers"]["provider_name1"]["audiences"]


def test_envoy_custom_header_example(tmp_path):
    ok = signer("https://example.com").access_token("bookstore_android.apps.googleusercontent.com", "c")
    config, _ = compare(tmp_path, "envoy-jwt-authn-headers-filter.yaml", [
        ("custom header", "GET", "/", bearer(ok, "x-jwt-header", "jwt_value"), "allow"),
        ("no token", "GET", "/", {}, "allow"),
    ])
    assert config["providers"]["provider_name1"]["from_headers"] == [{"name": "x-jwt-header", "value_prefix": "jwt_value"}]


def test_envoy_inline_jwks_example(tmp_path):
    ok = signer("https://example2.com").token({"sub": "a"})
    config, _ = compare(tmp_path, "envoy-jwt-authn-inline-filter.yaml", [
        ("jwt-assertion header", "GET", "/", {"jwt-assertion": ok}, "allow"),
        ("no token", "GET", "/", {}, "allow"),
    ])
    p = config["providers"]["provider_name2"]
    assert (p["forward"], p["forward_payload_header"], p["allow_any_audience"]) == (True, "x-jwt-payload", True)


def test_envoy_claim_to_headers_example(tmp_path):
    ok = signer("https://example2.com").token({"sub": "a", "nested": {"claim": {"key": "v"}}, "tenants": ["t1", "t2"]})
    config, _ = compare(tmp_path, "envoy-jwt-authn-claim-filter.yaml", [
        ("valid", "GET", "/", bearer(ok), "allow"),
        ("no token", "GET", "/", {}, "allow"),
    ])
    assert len(config["providers"]["provider_name2"]["claim_to_headers"]) == 3


def test_envoy_requires_any_and_all_example(tmp_path):
    one, two = signer("https://provider1.com").token({"sub": "a"}), signer("https://provider2.com").token({"sub": "b"})
    compare(tmp_path, "envoy-jwt-authn-group-filter.yaml", [
        ("any: provider1", "GET", "/any", bearer(one), "allow"),
        ("any: provider2", "GET", "/any/x", bearer(two), "allow"),
        ("any: none", "GET", "/any", {}, "deny"),
        ("any: garbage", "GET", "/any", bearer("a.b.c"), "deny"),
        ("all: one token cannot satisfy both issuers", "GET", "/all", bearer(one), "deny"),
        ("all: none", "GET", "/all", {}, "deny"),
        ("no rule: open", "GET", "/other", {}, "allow"),
    ])


def test_envoy_provider_and_audiences_example(tmp_path):
    s = signer("https://example.com")
    compare(tmp_path, "envoy-jwt-authn-single-filter.yaml", [
        ("health, no token", "GET", "/health", {}, "allow"),
        ("api, api_audience", "GET", "/api/x", bearer(s.token({"aud": "api_audience"})), "allow"),
        ("api, audience1", "GET", "/api/x", bearer(s.token({"aud": "audience1"})), "deny"),
        ("root, audience1", "GET", "/x", bearer(s.token({"aud": "audience1"})), "allow"),
        ("root, https://audience1/ (jwt_authn ignores scheme and slash)", "GET", "/x",
         bearer(s.token({"aud": "https://audience1/"})), "allow"),
        ("root, api_audience", "GET", "/x", bearer(s.token({"aud": "api_audience"})), "deny"),
        ("root, no token", "GET", "/x", {}, "deny"),
        ("root, expired", "GET", "/x", bearer(s.token({"aud": "audience1"}, lifetime=-3600)), "deny"),
        ("root, other issuer", "GET", "/x", bearer(Signer("https://evil.example").token({"aud": "audience1"})), "deny"),
    ])


ISTIO_ISS = "testing@secure.istio.io"


def istio_token(**claims):
    return signer(ISTIO_ISS).token({"sub": ISTIO_ISS, **claims})


def test_istio_request_authentication_alone(tmp_path):
    compare(tmp_path, "istio-authn-ingress.yaml", [
        ("no token", "GET", "/headers", {}, "allow"),
        ("valid", "GET", "/headers", bearer(istio_token()), "allow"),
        ("valid, in access_token", "GET", f"/headers?access_token={istio_token()}", {}, "allow"),
        ("invalid", "GET", "/headers", bearer("deadbeef"), "deny"),
        ("expired", "GET", "/headers", bearer(signer(ISTIO_ISS).token({"sub": "x"}, lifetime=-3600)), "deny"),
        ("another issuer", "GET", "/headers", bearer(Signer("other@example").token({"sub": "x"})), "deny"),
    ])


def test_istio_deny_requests_without_a_principal(tmp_path):
    compare(tmp_path, "istio-authn-require-token.yaml", [
        ("no token", "GET", "/headers", {}, "deny"),
        ("valid", "GET", "/headers", bearer(istio_token()), "allow"),
        ("valid without sub: no principal", "GET", "/headers", bearer(signer(ISTIO_ISS).token({})), "deny"),
        ("invalid", "GET", "/headers", bearer("deadbeef"), "deny"),
    ])


def test_istio_deny_without_a_principal_on_one_path(tmp_path):
    compare(tmp_path, "istio-authn-per-path.yaml", [
        ("/headers, no token", "GET", "/headers", {}, "deny"),
        ("/headers?x=1, no token", "GET", "/headers?x=1", {}, "deny"),
        ("/headers, valid", "GET", "/headers", bearer(istio_token()), "allow"),
        ("/ip, no token", "GET", "/ip", {}, "allow"),
        ("/headers/x, no token", "GET", "/headers/x", {}, "allow"),
        ("/ip, invalid", "GET", "/ip", bearer("deadbeef"), "deny"),
    ])


def test_istio_allow_one_principal(tmp_path):
    compare(tmp_path, "istio-authz-jwt-require.yaml", [
        ("no token", "GET", "/headers", {}, "deny"),
        ("the principal", "GET", "/headers", bearer(istio_token()), "allow"),
        ("another subject", "GET", "/headers", bearer(istio_token(sub="someone")), "deny"),
        ("invalid", "GET", "/headers", bearer("deadbeef"), "deny"),
    ])


def test_istio_allow_one_principal_in_a_group(tmp_path):
    config, stderr = compare(tmp_path, "istio-authz-jwt-groups.yaml", [
        ("groups [group1, group2]", "GET", "/headers", bearer(istio_token(groups=["group1", "group2"])), "allow"),
        ("groups as the string group1", "GET", "/headers", bearer(istio_token(groups="group1")), "allow"),
        ("groups [group2]", "GET", "/headers", bearer(istio_token(groups=["group2"])), "deny"),
        ("no groups", "GET", "/headers", bearer(istio_token()), "deny"),
        ("group1, another subject", "GET", "/headers", bearer(istio_token(sub="x", groups=["group1"])), "deny"),
        ("no token", "GET", "/headers", {}, "deny"),
    ])
    assert config["rules"][0]["claims"] == [{"path": ["groups"], "values": ["group1"]}]


ISS1, ISS2 = "test-issuer-1@istio.io", "test-issuer-2@istio.io"


def it_token(iss=ISS1, sub="sub-1", **claims):
    return bearer(signer(iss).token({"sub": sub, **claims}))


def test_istio_integration_jwt_authorization(tmp_path):
    """Istio's own integration test policy: sixteen rules over principals, groups, scopes,
    space-delimited custom claims, nested claims, presenter, audiences and notRequestPrincipals."""
    compare(tmp_path, "istio-integration-authz-jwt.yaml", [
        ("/token1 sub-1", "GET", "/token1", it_token(), "allow"),
        ("/token1 sub-2", "GET", "/token1", it_token(sub="sub-2"), "deny"),
        ("/token1 POST", "POST", "/token1", it_token(), "deny"),
        ("/token1 issuer 2's sub-1", "GET", "/token1", it_token(ISS2), "deny"),
        ("/token2 group-2", "GET", "/token2", it_token(groups=["group-1", "group-2"]), "allow"),
        ("/token2 group-1", "GET", "/token2", it_token(groups=["group-1"]), "deny"),
        ("/tokenAny", "GET", "/tokenAny", it_token(ISS2, sub="x"), "allow"),
        ("/tokenAny no token", "GET", "/tokenAny", {}, "deny"),
        ("/tokenAny invalid", "GET", "/tokenAny", bearer("deadbeef"), "deny"),
        ("/scope words", "GET", "/scope", it_token(scope="read write"), "allow"),
        ("/scope read", "GET", "/scope", it_token(scope="read"), "deny"),
        ("/permission", "GET", "/permission", it_token(permission="append delete"), "allow"),
        ("/custom-scope-admin issuer 2", "GET", "/custom-scope-admin", it_token(ISS2, custom_scope="user admin"), "allow"),
        ("/custom-scope-admin issuer 1 (not space-delimited there)", "GET", "/custom-scope-admin",
         it_token(custom_scope="user admin"), "deny"),
        ("/custom-scope-user list", "GET", "/custom-scope-user", it_token(ISS2, custom_scope=["user"]), "allow"),
        ("/nested-key1", "GET", "/nested-key1", it_token(nested={"key1": "valueB"}), "allow"),
        ("/nested-key1 other value", "GET", "/nested-key1", it_token(nested={"key1": "valueA"}), "deny"),
        ("/nested-non-exist", "GET", "/nested-non-exist", it_token(nested={"key1": "valueC"}), "deny"),
        ("/nested-2-key1", "GET", "/nested-2-key1", it_token(nested={"nested-2": {"key1": "valueA"}}), "allow"),
        ("/valid-jwt", "GET", "/valid-jwt", it_token(), "allow"),
        ("/valid-jwt no token", "GET", "/valid-jwt", {}, "deny"),
        ("presenter bar", "GET", "/a/presenter", it_token(azp="bar"), "allow"),
        ("presenter foo", "GET", "/a/presenter", it_token(azp="foo"), "deny"),
        ("audiences foo", "GET", "/b/audiences", it_token(aud=["bar", "foo"]), "allow"),
        ("audiences bar", "GET", "/b/audiences", it_token(aud="bar"), "deny"),
        ("/token3 no token: notRequestPrincipals holds", "GET", "/token3", {}, "allow"),
        ("/token3 sub-1", "GET", "/token3", it_token(), "deny"),
        ("/token3 sub-2", "GET", "/token3", it_token(sub="sub-2"), "allow"),
        ("no rule", "GET", "/other", it_token(), "deny"),
    ])


def test_istio_integration_authn_and_authz(tmp_path):
    compare(tmp_path, "istio-integration-authn-authz.yaml", [
        ("GET sub-1", "GET", "/any", it_token(), "allow"),
        ("POST sub-1", "POST", "/any", it_token(), "deny"),
        ("GET sub-2", "GET", "/any", it_token(sub="sub-2"), "deny"),
        ("GET no token", "GET", "/any", {}, "deny"),
    ])


def test_every_corpus_file_is_run():
    names = sorted(p.name for p in CORPUS.glob("*.yaml"))
    assert len(names) >= 10, names
    source = (ROOT / "tests" / "e2e" / "test_import.py").read_text()
    assert [n for n in names if f'"{n}"' not in source] == []

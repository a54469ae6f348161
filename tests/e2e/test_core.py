"""jwt-guard inside a real Envoy: responses, forwarded headers, rules, and config refusal."""

import base64
import json
import time

import jwt as pyjwt
import pytest

from conftest import API, CLIENT, ISSUER, PARTNER_API, Stack, auth0_provider
from cryptography.hazmat.primitives.asymmetric import ec
from jwtguard_support import Signer, request


def bearer(token):
    return {"authorization": f"Bearer {token}"}


def assert_invalid_token(r, *needles):
    assert r.status == 401, r.body
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="'), challenge
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "invalid_token"
    for n in needles:
        assert n in body["error_description"], body
        assert n in challenge
    return body


# ------------------------------------------------------------------ the main story


def test_access_token_rs256_passes_and_claims_are_forwarded(stack):
    token = stack.signer.access_token(API, CLIENT)
    r = request(stack.listen, "/api/items", bearer(token))
    assert r.status == 200, r.body
    seen = r.echoed["headers"]
    assert seen["x-jwt-sub"] == ["auth0|user-42"]
    assert seen["x-jwt-azp"] == [CLIENT]
    assert seen["x-jwt-payload"] == [token.split(".")[1]]
    assert "authorization" not in seen, "forward: false must strip the token"


def test_access_token_es256_passes(stack):
    r = request(stack.listen, "/api/items", bearer(stack.signer.access_token(API, CLIENT, alg="ES256")))
    assert r.status == 200, r.body


def test_id_token_is_rejected_with_the_id_token_message(stack):
    r = request(stack.listen, "/api/items", bearer(stack.signer.id_token(CLIENT)))
    body = assert_invalid_token(r, "ID token", "access tokens only", API)


def test_opaque_token_tells_the_client_to_ask_for_the_audience(stack):
    r = request(stack.listen, "/api/items", bearer("8xLOxBtZp8ZQ0B9rkT3ryq0T8hpgJw0Q"))
    assert_invalid_token(r, "not a JWT", API, "audience")


def test_jwe_is_named(stack):
    r = request(stack.listen, "/api/items", bearer("eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn"))
    assert_invalid_token(r, "encrypted")


def test_expired_token(stack):
    token = stack.signer.access_token(API, CLIENT, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    assert_invalid_token(request(stack.listen, "/api/items", bearer(token)), "expired")


def test_token_within_clock_skew_still_passes(stack):
    token = stack.signer.access_token(API, CLIENT, exp=int(time.time()) - 20)
    assert request(stack.listen, "/api/items", bearer(token)).status == 200


def test_not_yet_valid_token(stack):
    token = stack.signer.access_token(API, CLIENT, nbf=int(time.time()) + 600)
    assert_invalid_token(request(stack.listen, "/api/items", bearer(token)), "not valid yet")


def test_wrong_audience_names_the_expected_one(stack):
    token = stack.signer.access_token("https://other.example.com", CLIENT)
    assert_invalid_token(request(stack.listen, "/api/items", bearer(token)), "audience", API)


def test_no_token_gets_a_bare_challenge(stack):
    r = request(stack.listen, "/api/items")
    assert r.status == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    assert r.json()["error"] == "missing_token"


def test_wrong_issuer(stack):
    token = stack.signer.access_token(API, CLIENT, iss="https://evil.example.com/")
    assert_invalid_token(request(stack.listen, "/api/items", bearer(token)), "issuer")


def test_bad_signature(stack):
    h, p, s = stack.signer.access_token(API, CLIENT).split(".")
    forged_payload = base64.urlsafe_b64encode(json.dumps(
        {"iss": ISSUER, "aud": API, "sub": "admin", "exp": int(time.time()) + 600}).encode()).rstrip(b"=").decode()
    assert_invalid_token(request(stack.listen, "/api/items", bearer(f"{h}.{forged_payload}.{s}")), "signature")


def test_unknown_kid(stack):
    token = stack.signer.access_token(API, CLIENT, headers={"kid": "nobody-knows"})
    assert_invalid_token(request(stack.listen, "/api/items", bearer(token)), "unknown kid")


def test_alg_none_is_rejected(stack):
    claims = {"iss": ISSUER, "aud": API, "sub": "x", "exp": int(time.time()) + 600}
    token = pyjwt.encode(claims, None, algorithm="none", headers={"kid": "rsa-1"})
    assert_invalid_token(request(stack.listen, "/api/items", bearer(token)), "algorithm")


def test_alg_confusion_hs256_with_rsa_public_key_is_rejected(stack):
    from cryptography.hazmat.primitives import serialization
    pem = stack.signer.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"iss": ISSUER, "aud": API, "sub": "x", "exp": int(time.time()) + 600}
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    import hashlib
    import hmac
    sig = base64.urlsafe_b64encode(hmac.new(pem, header + b"." + payload, hashlib.sha256).digest()).rstrip(b"=")
    token = b".".join([header, payload, sig]).decode()
    assert_invalid_token(request(stack.listen, "/api/items", bearer(token)), "algorithm")


# ------------------------------------------------------------------ extraction and forwarding


def test_spoofed_claim_headers_never_reach_the_upstream(stack):
    r = request(stack.listen, "/api/items", {**bearer(stack.signer.access_token(API, CLIENT)),
                                             "x-jwt-sub": "admin", "x-jwt-payload": "forged"})
    assert r.status == 200
    assert r.echoed["headers"]["x-jwt-sub"] == ["auth0|user-42"]
    assert r.echoed["headers"]["x-jwt-payload"] != ["forged"]
    # Even on a route that needs no token.
    r = request(stack.listen, "/healthz", {"x-jwt-sub": "admin", "x-partner-sub": "root"})
    assert r.status == 200
    assert "x-jwt-sub" not in r.echoed["headers"] and "x-partner-sub" not in r.echoed["headers"]


def test_underscore_spellings_of_claim_headers_never_reach_the_upstream(stack):
    # CGI, WSGI, Rack and PHP read x_jwt_sub as X-Jwt-Sub. (The shipped listeners also refuse
    # underscores outright; this listener lets them through, so jwt-guard's own strip is tested.)
    spoofed = {"x_jwt_sub": "attacker", "x_jwt_payload": "e30", "x-jwt_azp": "evil", "x_partner_sub": "root"}
    for path, headers in [("/healthz", {}), ("/api/items", bearer(stack.signer.access_token(API, CLIENT)))]:
        r = request(stack.listen, path, {**headers, **spoofed})
        assert r.status == 200, (path, r.body)
        seen = r.echoed["headers"]
        for name in spoofed:
            assert name not in seen, f"{path}: {name} reached the upstream"


def test_forward_false_strips_the_token_on_a_route_without_requires(stack):
    token = stack.signer.access_token(API, CLIENT)
    r = request(stack.listen, "/healthz", bearer(token))
    assert r.status == 200
    assert "authorization" not in r.echoed["headers"], "the token reached the upstream"
    r = request(stack.listen, f"/healthz?access_token={token}&k=v", {})
    assert r.echoed["path"] == "/healthz?k=v"
    # Another scheme is not ours to touch.
    r = request(stack.listen, "/healthz", {"authorization": "Basic dTpw"})
    assert r.echoed["headers"]["authorization"] == ["Basic dTpw"]


def test_a_20kb_bearer_token_is_401_too_large(stack):
    r = request(stack.listen, "/api/items", bearer("a" * 20_000))
    assert_invalid_token(r, "larger than this API accepts")


def test_a_broken_percent_escape_in_the_token_parameter_is_400(stack):
    for bad in ["abc%+1", "abc%zz", "abc%1"]:
        r = request(stack.listen, f"/api/items?access_token={bad}", {})
        assert r.status == 400, (bad, r.status, r.body)
        assert r.json()["error"] == "invalid_request"


def test_token_in_query_parameter_is_accepted_and_stripped(stack):
    token = stack.signer.access_token(API, CLIENT)
    r = request(stack.listen, f"/api/items?page=2&access_token={token}&q=a%20b")
    assert r.status == 200, r.body
    assert r.echoed["path"] == "/api/items?page=2&q=a%20b"


def test_token_in_two_places_is_a_bad_request(stack):
    token = stack.signer.access_token(API, CLIENT)
    r = request(stack.listen, f"/api/items?access_token={token}", bearer(token))
    assert r.status == 400
    assert 'error="invalid_request"' in r.headers["www-authenticate"]
    assert r.json()["error"] == "invalid_request"


def test_empty_bearer_is_a_bad_request(stack):
    r = request(stack.listen, "/api/items", {"authorization": "Bearer "})
    assert r.status == 400
    assert "empty" in r.json()["error_description"]


def test_two_authorization_headers_are_a_bad_request(stack):
    token = stack.signer.access_token(API, CLIENT)
    r = request(stack.listen, "/api/items", [("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")])
    assert r.status == 400


def test_bearer_scheme_is_case_insensitive(stack):
    r = request(stack.listen, "/api/items", {"authorization": "bEaReR " + stack.signer.access_token(API, CLIENT)})
    assert r.status == 200


def test_non_utf8_header_bytes_do_not_hurt(stack):
    r = request(stack.listen, "/api/items", [("authorization", b"Bearer \xff\xfe")])
    assert r.status == 400
    # The VM is still healthy afterwards.
    assert request(stack.listen, "/api/items", bearer(stack.signer.access_token(API, CLIENT))).status == 200


# ------------------------------------------------------------------ rules


def test_route_without_requirement_needs_no_token(stack):
    assert request(stack.listen, "/healthz").status == 200


def test_unmatched_route_is_denied(stack):
    r = request(stack.listen, "/elsewhere", bearer(stack.signer.access_token(API, CLIENT)))
    assert r.status == 403
    assert r.json()["error"] == "access_denied"


def test_scopes_are_enforced(stack):
    weak = stack.signer.access_token(API, CLIENT)
    r = request(stack.listen, "/admin", bearer(weak), method="POST")
    assert r.status == 403
    assert r.headers["www-authenticate"].endswith('scope="admin:write"')
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    strong = stack.signer.access_token(API, CLIENT, claims={"permissions": ["admin:write"]})
    assert request(stack.listen, "/admin", bearer(strong), method="POST").status == 200
    # The rule is for POST only; GET /admin matches no rule.
    assert request(stack.listen, "/admin", bearer(weak)).status == 403


def test_allow_missing_still_rejects_a_bad_token(stack):
    assert request(stack.listen, "/public/x").status == 200
    assert request(stack.listen, "/public/x", bearer(stack.signer.access_token(API, CLIENT))).status == 200
    r = request(stack.listen, "/public/x", bearer(stack.signer.id_token(CLIENT)))
    assert r.status == 401, "a present token must be valid under allow_missing"


def test_allow_missing_or_failed_lets_bad_tokens_through_without_claims(stack):
    r = request(stack.listen, "/optional", {**bearer(stack.signer.id_token(CLIENT)), "x-jwt-sub": "spoof"})
    assert r.status == 200
    assert "x-jwt-sub" not in r.echoed["headers"]
    r = request(stack.listen, "/optional", bearer(stack.signer.access_token(API, CLIENT)))
    assert r.echoed["headers"]["x-jwt-sub"] == ["auth0|user-42"]


def test_second_provider_with_custom_header_and_cookie(stack, partner_signer):
    token = partner_signer.token({"aud": PARTNER_API, "sub": "svc-7"})
    r = request(stack.listen, "/partner/x", {"x-partner-token": token})
    assert r.status == 200
    assert r.echoed["headers"]["x-partner-sub"] == ["svc-7"]
    assert "x-partner-token" not in r.echoed["headers"]
    r = request(stack.listen, "/partner/x", {"cookie": f'theme=dark; partner_session="{token}"'})
    assert r.status == 200
    assert r.echoed["headers"]["cookie"] == ["theme=dark"]
    # An auth0 token is not a partner token.
    assert request(stack.listen, "/partner/x", {"x-partner-token": stack.signer.access_token(API, CLIENT)}).status == 401


def test_requires_all_and_requires_any(stack, partner_signer):
    a = stack.signer.access_token(API, CLIENT)
    p = partner_signer.token({"aud": PARTNER_API, "sub": "svc-7"})
    assert request(stack.listen, "/both", {**bearer(a), "x-partner-token": p}).status == 200
    assert request(stack.listen, "/both", bearer(a)).status == 401
    assert request(stack.listen, "/either", bearer(a)).status == 200
    assert request(stack.listen, "/either", {"x-partner-token": p}).status == 200
    r = request(stack.listen, "/either", bearer(stack.signer.id_token(CLIENT)))
    assert r.status == 401 and "ID token" in r.json()["error_description"]


class EcSigner(Signer):
    """The usual keys plus a P-384 key, so ES384 goes through Envoy too."""

    def __init__(self):
        super().__init__(ISSUER)
        self.ec384 = ec.generate_private_key(ec.SECP384R1())

    def jwks(self):
        keys = super().jwks()
        jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(self.ec384.public_key()))
        jwk.update({"kid": "ec384-1", "alg": "ES384", "use": "sig"})
        keys["keys"].append(jwk)
        return keys

    def es384_token(self):
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": API, "sub": "auth0|user-42", "azp": CLIENT, "iat": now, "exp": now + 600}
        return pyjwt.encode(claims, self.ec384, algorithm="ES384", headers={"kid": "ec384-1", "typ": "at+jwt"})


def corrupt_signature(token):
    """The same token with one byte of its signature changed (still canonical base64url)."""
    h, p, s = token.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    sig[len(sig) // 2] ^= 0x01
    return f"{h}.{p}." + base64.urlsafe_b64encode(bytes(sig)).rstrip(b"=").decode()


def test_ecdsa_tables_verify_and_reject_inside_envoy():
    """ES256 and ES384 take fast_ecdsa's table path in the VM: valid tokens pass (first use
    builds the tables, later ones reuse them), a changed signature byte is refused."""
    s = Stack(lambda st: {"realm": "api", "providers": {"auth0": auth0_provider(st, jwt_cache_config={"jwt_cache_size": 0})}},
              signer=EcSigner())
    try:
        s.envoy.start()
        for mint in (lambda: s.signer.access_token(API, CLIENT, alg="ES256"), s.signer.es384_token):
            for _ in range(3):
                token = mint()
                r = request(s.listen, "/api/items", bearer(token))
                assert r.status == 200, r.body
                assert_invalid_token(request(s.listen, "/api/items", bearer(corrupt_signature(token))), "signature")
    finally:
        s.stop()


# ------------------------------------------------------------------ lifecycle


def test_requests_wait_for_slow_keys_then_pass():
    s = Stack(lambda st: {"providers": {"auth0": auth0_provider(st)}}, jwks_delay=1.0)
    try:
        s.envoy.start()
        t0 = time.time()
        r = request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT)))
        assert r.status == 200, r.body
        assert s.jwks.fetch_count >= 1
        assert time.time() - t0 >= 0.5, "the request was decided before the slow keys could have arrived"
    finally:
        s.stop()


def test_keys_that_never_arrive_give_503():
    s = Stack(lambda st: {"providers": {"auth0": auth0_provider(st)}}, start_jwks=False)
    try:
        s.envoy.start()
        t0 = time.time()
        r = request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT)))
        assert r.status == 503, r.body
        assert "www-authenticate" not in r.headers
        assert r.json()["error"] == "temporarily_unavailable"
        assert time.time() - t0 < 5.0, "503 must come once the 2s fetch deadline passes"
        log = s.envoy.wait_log("JWKS fetch via cluster jwks failed")
        assert "provider auth0" in log
    finally:
        s.stop()


BAD_CONFIGS = {
    "unknown field": ({"issuer": ISSUER, "audiences": [API], "local_jwks": {"inline_string": "{}"}, "audience": "x"},
                      "unknown field `audience`"),
    "empty audiences": ({"audiences": []}, "audiences"),
    "bad duration": ({"remote_jwks": {"http_uri": {"uri": "http://127.0.0.1/jwks", "cluster": "jwks", "timeout": "5"}}},
                     "timeout"),
    "no cluster": ({"remote_jwks": {"http_uri": {"uri": "http://127.0.0.1/jwks"}}}, "cluster"),
    "bad inline jwks": ({"remote_jwks": None, "local_jwks": {"inline_string": "{\"keys\": 5}"}}, "local_jwks"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS) + ["unknown provider in rules"])
def test_bad_config_is_refused_and_named(case):
    def build(st):
        provider = auth0_provider(st)
        cfg = {"providers": {"auth0": provider}}
        if case == "unknown provider in rules":
            cfg["rules"] = [{"match": {"prefix": "/"}, "requires": {"provider_name": "okta"}}]
            return cfg
        patch, _ = BAD_CONFIGS[case]
        if case == "unknown field":
            cfg["providers"]["auth0"] = patch
            return cfg
        for k, v in patch.items():
            if v is None:
                provider.pop(k, None)
            else:
                provider[k] = v
        return cfg

    needle = "unknown provider \"okta\"" if case == "unknown provider in rules" else BAD_CONFIGS[case][1]
    s = Stack(build)
    try:
        s.envoy.start(wait=False)
        code = s.envoy.wait_exit(timeout=30)
        log = s.envoy.log()
        assert code != 0, "Envoy must refuse to start with a bad jwt-guard configuration"
        assert "invalid jwt-guard configuration" in log, log[-3000:]
        assert needle in log, log[-3000:]
    finally:
        s.stop()

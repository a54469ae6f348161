"""Sender-constrained tokens in real Envoy: DPoP (RFC 9449) with proofs made by the test, and
certificate-bound tokens (RFC 8705) on a TLS listener that asks for client certificates, with a
test CA and two client certificates made by the test."""

import hashlib
import http.client
import json
import ssl
import time
from types import SimpleNamespace

import pytest
from conftest import API, CLIENT, ISSUER, Stack, auth0_provider
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from dpop import DpopKey, b64url
from jwtguard_support import (
    WASM, EchoUpstream, Envoy, JwksServer, Signer, free_port, listener_yaml, request, static_cluster_yaml,
    wait_until, wasm_filter_yaml,
)
from test_pki import TestCA

URL = "http://api.test/api/items"  # what the raw client sends: Host api.test, plain HTTP


@pytest.fixture(scope="module")
def dpop_stack():
    s = Stack(lambda st: {"realm": "api", "providers": {"auth0": auth0_provider(st)}})
    s.envoy.start()
    yield s
    s.stop()


def denied_stat(s, reason):
    return int(s.envoy.stats("jwt_guard").get(f"wasmcustom.jwt_guard.requests.denied.{reason}", "0"))


def send(s, token, proof=None, method="GET", path="/api/items", scheme="DPoP", extra=()):
    headers = [("authorization", f"{scheme} {token}")]
    if proof is not None:
        headers.append(("dpop", proof))
    headers.extend(extra)
    return request(s.listen, path, headers, method=method)


def challenge(r):
    return r.headers.get("www-authenticate", "")


def test_a_dpop_bound_token_with_a_fresh_proof_passes_and_neither_reaches_the_upstream(dpop_stack):
    s, key = dpop_stack, DpopKey()
    token = s.signer.access_token(API, CLIENT, claims={"cnf": {"jkt": key.jkt()}})
    for _ in range(2):  # the second is a cache hit for the token; its proof is checked anew
        r = send(s, token, key.proof("GET", URL, token))
        assert r.status == 200, (r.status, r.body)
        seen = r.echoed["headers"]
        assert "authorization" not in seen and "dpop" not in seen, seen
        assert seen["x-jwt-sub"] == ["auth0|user-42"]
    # The query is not part of htu.
    r = send(s, token, key.proof("GET", URL, token), path="/api/items?page=2")
    assert r.status == 200, r.body


@pytest.fixture(scope="module")
def four_workers():
    s = Stack(lambda st: {"realm": "api", "providers": {"auth0": auth0_provider(st)}}, concurrency=4)
    s.envoy.start()
    yield s
    s.stop()


def test_one_proof_on_sixteen_connections_to_four_workers_is_accepted_once(four_workers):
    """RFC 9449 §11.1 in one Envoy: whichever worker gets a connection, one proof passes once."""
    from concurrent.futures import ThreadPoolExecutor
    s, key = four_workers, DpopKey()
    token = s.signer.access_token(API, CLIENT, claims={"cnf": {"jkt": key.jkt()}})
    assert send(s, token, key.proof("GET", URL, token)).status == 200, "warm: keys loaded on some worker"
    for round_ in range(3):
        proof = key.proof("GET", URL, token)
        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda _: send(s, token, proof), range(16)))
        statuses = sorted(r.status for r in responses)
        assert statuses == [200] + [401] * 15, (round_, statuses)
        refused = [r for r in responses if r.status == 401]
        assert all("already used" in r.json()["error_description"] for r in refused)
    # Counted by the workers that refused, each flushing on its own tick.
    assert wait_until(lambda: denied_stat(s, "dpop_replay") == 45, 5), denied_stat(s, "dpop_replay")


NONCE_DPOP = {"require_nonce": True, "nonce_lifetime": "2s"}


@pytest.fixture(scope="module")
def nonce_envoys():
    """Two Envoys (4 workers each) with the same configuration and server nonces, sharing one
    JWKS signer: the fleet a load balancer spreads one client over."""
    signer = Signer(ISSUER)
    stacks = [Stack(lambda st: {"realm": "api", "providers": {"auth0": auth0_provider(st, dpop=NONCE_DPOP)}},
                    signer=signer, concurrency=4) for _ in range(2)]
    for s in stacks:
        s.envoy.start()
    yield stacks
    for s in stacks:
        s.stop()


def nonce_of(r):
    return r.headers.get("dpop-nonce")


def test_server_nonces_challenge_then_work_on_every_worker_of_their_envoy_only(nonce_envoys):
    from concurrent.futures import ThreadPoolExecutor
    a, b = nonce_envoys
    key = DpopKey()
    token = a.signer.access_token(API, CLIENT, claims={"cnf": {"jkt": key.jkt()}})
    # The challenge: a proof without a nonce.
    r = send(a, token, key.proof("GET", URL, token))
    assert r.status == 401, r.body
    assert 'error="use_dpop_nonce"' in challenge(r) and challenge(r).startswith("DPoP ")
    nonce = nonce_of(r)
    assert nonce
    # The client retries once with it; every worker of this Envoy takes it (16 connections).
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: send(a, token, key.proof("GET", URL, token, nonce=nonce)).status,
                                 range(16)))
    assert statuses == [200] * 16, statuses
    # The other Envoy: the same proof (accepted at a) and any proof with a's nonce are refused.
    accepted = key.proof("GET", URL, token, nonce=nonce)
    assert send(a, token, accepted).status == 200
    r = send(b, token, accepted)
    assert r.status == 401 and 'error="use_dpop_nonce"' in challenge(r)
    assert nonce_of(r) and nonce_of(r) != nonce, "b hands out its own"
    # Made up: refused with a fresh nonce.
    r = send(a, token, key.proof("GET", URL, token, nonce="bm90LWEtbm9uY2U"))
    assert r.status == 401 and nonce_of(r)
    # Bearer tokens are never asked.
    plain = a.signer.access_token(API, CLIENT)
    assert send(a, plain, scheme="Bearer").status == 200


def test_an_ending_nonce_is_renewed_on_success_and_an_expired_one_refused(nonce_envoys):
    a = nonce_envoys[0]
    key = DpopKey()
    token = a.signer.access_token(API, CLIENT, claims={"cnf": {"jkt": key.jkt()}})
    nonce = nonce_of(send(a, token, key.proof("GET", URL, token)))
    # A 2 s lifetime is two 1 s windows: wait into the nonce's second one.
    deadline = time.time() + 5
    while time.time() < deadline:
        r = send(a, token, key.proof("GET", URL, token, nonce=nonce))
        if r.status != 200:
            break
        if nonce_of(r):
            assert nonce_of(r) != nonce
            break
        time.sleep(0.1)
    assert r.status == 200 and nonce_of(r), (r.status, r.headers)
    time.sleep(2.1)
    r = send(a, token, key.proof("GET", URL, token, nonce=nonce))
    assert r.status == 401 and 'error="use_dpop_nonce"' in challenge(r), "expired"
    assert wait_until(lambda: denied_stat(a, "dpop_nonce") >= 2, 5)


def test_htu_compares_as_rfc_3986_normalizes_it(dpop_stack):
    """What oauth4webapi does: it signs `/items/%7Euser` as written, while Envoy (normalize_path)
    hands the filter `/items/~user`; a dot segment and lower-case hex likewise."""
    s, key = dpop_stack, DpopKey()
    token = s.signer.access_token(API, CLIENT, claims={"cnf": {"jkt": key.jkt()}})
    for signed, sent in [
        ("http://api.test/api/items/%7Euser", "/api/items/%7Euser"),
        ("http://API.test:80/api/items/%7euser", "/api/items/~user"),
        ("http://api.test/api/./items/~user", "/api/items/%7Euser"),
    ]:
        r = send(s, token, key.proof("GET", signed, token), path=sent)
        assert r.status == 200, (signed, sent, r.body)
        assert r.echoed["path"] == "/api/items/~user", r.echoed["path"]
    # Never wider: an encoded slash is not a slash, and case in the path matters.
    for signed in ["http://api.test/api%2Fitems/~user", "http://api.test/api/Items/~user"]:
        r = send(s, token, key.proof("GET", signed, token), path="/api/items/~user")
        assert r.status == 401 and "htu" in r.json()["error_description"], (signed, r.body)


@pytest.mark.parametrize("case,reason,error", [
    ("replayed", "dpop_replay", "invalid_dpop_proof"),
    ("wrong method", "dpop_mismatch", "invalid_dpop_proof"),
    ("wrong URL", "dpop_mismatch", "invalid_dpop_proof"),
    ("stale", "dpop_stale", "invalid_dpop_proof"),
    ("missing ath", "dpop_proof", "invalid_dpop_proof"),
    ("wrong key", "dpop_key", "invalid_dpop_proof"),
    ("missing proof", "dpop_proof", "invalid_dpop_proof"),
    ("two proofs", "dpop_proof", "invalid_dpop_proof"),
    ("private key in jwk", "dpop_proof", "invalid_dpop_proof"),
    ("bound as bearer", "dpop_downgrade", "invalid_token"),
    ("unbound with DPoP", "dpop_unbound", "invalid_token"),
])
def test_each_dpop_failure_is_refused_with_its_reason(dpop_stack, case, reason, error):
    s, key = dpop_stack, DpopKey()
    token = s.signer.access_token(API, CLIENT, claims={"cnf": {"jkt": key.jkt()}})
    scheme, proofs, method = "DPoP", [key.proof("GET", URL, token)], "GET"
    if case == "replayed":
        assert send(s, token, proofs[0]).status == 200
    elif case == "wrong method":
        proofs = [key.proof("POST", URL, token)]
    elif case == "wrong URL":
        proofs = [key.proof("GET", "http://api.test/api/other", token)]
    elif case == "stale":
        proofs = [key.proof("GET", URL, token, iat=int(time.time()) - 300)]
    elif case == "missing ath":
        proofs = [key.proof("GET", URL, None)]
    elif case == "wrong key":
        proofs = [DpopKey().proof("GET", URL, token)]
    elif case == "missing proof":
        proofs = []
    elif case == "two proofs":
        proofs = [key.proof("GET", URL, token), key.proof("GET", URL, token)]
    elif case == "private key in jwk":
        jwk = dict(key.jwk(), d=b64url(key.key.private_numbers().private_value.to_bytes(32, "big")))
        proofs = [key.proof("GET", URL, token, headers={"jwk": jwk})]
    elif case == "bound as bearer":
        scheme, proofs = "Bearer", []
    elif case == "unbound with DPoP":
        token = s.signer.access_token(API, CLIENT)
        proofs = [key.proof("GET", URL, token)]
    before = denied_stat(s, reason)
    headers = [("authorization", f"{scheme} {token}")] + [("dpop", p) for p in proofs]
    r = request(s.listen, "/api/items", headers, method=method)
    assert r.status == 401, (case, r.status, r.body)
    c = challenge(r)
    assert c.startswith('DPoP realm="api", algs="ES256 ES384 RS256 PS256 PS384 PS512 EdDSA Ed25519"'), c
    assert f'error="{error}"' in c, c
    assert json.loads(r.body)["error"] == error
    time.sleep(0.3)  # metrics land on the next 200 ms tick
    assert denied_stat(s, reason) == before + 1, case


def test_bearer_clients_keep_seeing_bearer_challenges(dpop_stack):
    r = request(dpop_stack.listen, "/api/items")
    assert r.status == 401 and challenge(r) == 'Bearer realm="api"'


# ------------------------------------------------------------------ RFC 8705


def mtls_transport_socket(ca, server_cert, server_key) -> str:
    # Asks for a client certificate, but lets a connection without one in: jwt-guard then
    # refuses certificate-bound tokens on it (cert_missing).
    return f"""      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: false
          common_tls_context:
            tls_certificates: [{{certificate_chain: {{filename: "{server_cert}"}}, private_key: {{filename: "{server_key}"}}}}]
            validation_context: {{trusted_ca: {{filename: "{ca}"}}}}"""


@pytest.fixture(scope="module")
def mtls(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mtls")
    ca = TestCA(tmp)
    server = ca.issue("server", "api.test", ["api.test"])
    one = ca.issue("client-one", "client one", client=True)
    two = ca.issue("client-two", "client two", client=True)
    signer = Signer(ISSUER)
    jwks = JwksServer(signer.jwks()).start()
    upstream = EchoUpstream().start()
    admin, listen = free_port(), free_port()

    config = {"realm": "api", "providers": {"auth0": auth0_provider(SimpleNamespace(jwks=jwks))}}
    routes = """              - match: {prefix: "/"}
                route: {cluster: upstream}"""
    envoy = Envoy(listener_yaml(admin=admin, listen=listen, routes=routes,
                                filters=wasm_filter_yaml(WASM, json.dumps(config)),
                                clusters=[static_cluster_yaml("upstream", upstream.port),
                                          static_cluster_yaml("jwks", jwks.port)],
                                transport_socket=mtls_transport_socket(ca.cert_path, *server)), admin, listen)
    envoy.start()
    yield {"ca": ca, "one": one, "two": two, "signer": signer, "envoy": envoy, "listen": listen}
    envoy.stop()
    jwks.stop()
    upstream.stop()


def x5t_s256(cert_path):
    der = x509.load_pem_x509_certificate(open(cert_path, "rb").read()).public_bytes(serialization.Encoding.DER)
    return b64url(hashlib.sha256(der).digest())


def https(m, token, cert=None):
    ctx = ssl.create_default_context(cafile=str(m["ca"].cert_path))
    if cert:
        ctx.load_cert_chain(*cert)
    conn = http.client.HTTPSConnection("127.0.0.1", m["listen"], context=ctx, timeout=10)
    conn._context.check_hostname = False
    try:
        conn.request("GET", "/api/items", headers={"Host": "api.test", "Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def test_a_certificate_bound_token_passes_only_with_its_certificate(mtls):
    token = mtls["signer"].access_token(API, CLIENT, claims={"cnf": {"x5t#S256": x5t_s256(mtls["one"][0])}})
    status, _, body = https(mtls, token, mtls["one"])
    assert status == 200, body
    status, headers, body = https(mtls, token, mtls["two"])
    assert status == 401 and json.loads(body)["error"] == "invalid_token", body
    assert "another client certificate" in headers["www-authenticate"]
    status, headers, body = https(mtls, token, None)
    assert status == 401 and "mutual TLS" in headers["www-authenticate"], body
    time.sleep(0.3)  # metrics land on the next 200 ms tick
    stats = mtls["envoy"].stats("jwt_guard")
    assert int(stats["wasmcustom.jwt_guard.requests.denied.cert_mismatch"]) == 1
    assert int(stats["wasmcustom.jwt_guard.requests.denied.cert_missing"]) == 1


def test_an_unbound_token_needs_no_certificate(mtls):
    status, _, body = https(mtls, mtls["signer"].access_token(API, CLIENT), None)
    assert status == 200, body

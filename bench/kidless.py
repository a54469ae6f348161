"""Part of `make bench`: what a forged token without `kid` costs, against a valid cold request.

A token without `kid` may be checked against at most 3 keys (`jwks::MAX_CANDIDATES`); against
a larger key set it is refused before any signature check. This measures, one request at a
time (so the figure is one request's cost, not throughput), the median time of:
- a valid RS256 and ES256 token, cold (a fresh `jti` each, so the token cache never helps);
- forged kid-less RS256 and ES256 tokens (right iss, aud, exp; fresh jti; garbage signature)
  against a JWKS of 12 P-256 and 150 RSA keys (the target: at most 2x the valid cold request);
- the worst case the rule allows: forged kid-less ES256 tokens against exactly 3 P-256 keys.

Environment: ENVOY (any Envoy), KIDLESS_REQUESTS (300 per kind).
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

from jwtguard_support import (  # noqa: E402
    WASM, Envoy, JwksServer, free_port, listener_yaml, request, static_cluster_yaml, wasm_filter_yaml,
)

ISSUER = "https://bench.example.com/"
API = "https://api.bench.test"
N = int(os.environ.get("KIDLESS_REQUESTS", "300"))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key, kid: str, alg: str) -> dict:
    algo = pyjwt.algorithms.RSAAlgorithm if alg.startswith("RS") else pyjwt.algorithms.ECAlgorithm
    out = json.loads(algo.to_jwk(key.public_key()))
    out.update({"kid": kid, "alg": alg, "use": "sig"})
    return out


def claims() -> dict:
    now = int(time.time())
    return {"iss": ISSUER, "aud": API, "sub": "bench", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}


def forged_kidless(alg: str) -> str:
    header = b64(json.dumps({"alg": alg, "typ": "at+jwt"}).encode())
    payload = b64(json.dumps(claims()).encode())
    size = 256 if alg == "RS256" else 64
    return f"{header}.{payload}.{b64(os.urandom(size))}"


def median_ms(port: int, make_token, expect: int) -> float:
    times = []
    for _ in range(N):
        token = make_token()
        t0 = time.perf_counter()
        r = request(port, "/bench", {"authorization": f"Bearer {token}"})
        times.append((time.perf_counter() - t0) * 1000)
        if r.status != expect:
            raise RuntimeError(f"expected {expect}, got {r.status}: {r.body[:200]}")
    return statistics.median(times)


def run(jwks: dict) -> tuple[Envoy, JwksServer]:
    server = JwksServer(jwks).start()
    admin, listen = free_port(), free_port()
    cfg = {"providers": {"p": {"issuer": ISSUER, "audiences": [API], "remote_jwks": {
        "http_uri": {"uri": f"http://127.0.0.1:{server.port}/jwks", "cluster": "jwks", "timeout": "5s"}}}}}
    routes = """              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "ok"}}"""
    yaml = listener_yaml(admin=admin, listen=listen, routes=routes,
                         filters=wasm_filter_yaml(WASM, json.dumps(cfg), name="bench"),
                         clusters=[static_cluster_yaml("jwks", server.port)])
    return Envoy(yaml, admin, listen, log_level="warning").start(), server


def main() -> int:
    print("kid-less tokens: generating 150 RSA and 12 P-256 keys ...", flush=True)
    rsa_keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(150)]
    ec_keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(12)]
    big = {"keys": [jwk(k, f"rsa-{i}", "RS256") for i, k in enumerate(rsa_keys)]
           + [jwk(k, f"ec-{i}", "ES256") for i, k in enumerate(ec_keys)]}
    rows = []
    e, server = run(big)
    try:
        valid_rs = lambda: pyjwt.encode(claims(), rsa_keys[7], "RS256", headers={"kid": "rsa-7", "typ": "at+jwt"})
        valid_es = lambda: pyjwt.encode(claims(), ec_keys[5], "ES256", headers={"kid": "ec-5", "typ": "at+jwt"})
        median_ms(e.listen_port, valid_rs, 200)  # first use: keys fetched and prepared
        base_rs = median_ms(e.listen_port, valid_rs, 200)
        base_es = median_ms(e.listen_port, valid_es, 200)
        rows.append(("valid RS256, cold", "150 RSA + 12 P-256", base_rs, None))
        rows.append(("valid ES256, cold", "150 RSA + 12 P-256", base_es, None))
        forged_rs = median_ms(e.listen_port, lambda: forged_kidless("RS256"), 401)
        forged_es = median_ms(e.listen_port, lambda: forged_kidless("ES256"), 401)
        rows.append(("forged kid-less RS256", "150 RSA + 12 P-256", forged_rs, forged_rs / base_rs))
        rows.append(("forged kid-less ES256", "150 RSA + 12 P-256", forged_es, forged_es / base_es))
    finally:
        e.stop()
        server.stop()
    three = {"keys": [jwk(k, f"ec-{i}", "ES256") for i, k in enumerate(ec_keys[:3])]}
    e, server = run(three)
    try:
        valid_es3 = lambda: pyjwt.encode(claims(), ec_keys[1], "ES256", headers={"kid": "ec-1", "typ": "at+jwt"})
        median_ms(e.listen_port, valid_es3, 200)
        base3 = median_ms(e.listen_port, valid_es3, 200)
        worst = median_ms(e.listen_port, lambda: forged_kidless("ES256"), 401)
        rows.append(("valid ES256, cold", "3 P-256", base3, None))
        rows.append(("forged kid-less ES256 (3 checks)", "3 P-256", worst, worst / base3))
    finally:
        e.stop()
        server.stop()
    lines = ["## Tokens without kid", "",
             f"One request at a time, {N} per row, median wall time per request seen by the client "
             "(Python's socket included). Each token has a fresh jti, so the token cache never answers.", "",
             "| request | JWKS | median ms | vs valid cold |", "| --- | --- | ---: | ---: |"]
    for name, jwks_desc, ms, ratio in rows:
        lines.append(f"| {name} | {jwks_desc} | {ms:.2f} | {'' if ratio is None else f'{ratio:.2f}x'} |")
    print("\n".join(lines))
    target = all(r[3] <= 2.0 for r in rows[2:4])
    print(f"\ntarget (forged kid-less at most 2x a valid cold request, 150 RSA + 12 P-256): "
          f"{'met' if target else 'MISSED'}")
    out = HERE / "results.md"
    if out.exists() and os.environ.get("KIDLESS_APPEND", "1") == "1":
        out.write_text(out.read_text().rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

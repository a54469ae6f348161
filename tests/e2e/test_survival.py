"""Hardening in real Envoy: the wasm VM survives 100,000 randomized malformed requests, and
memory stays bounded under 200,000 requests carrying 100,000 distinct valid tokens."""

import json
import math
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import jwt as pyjwt

from conftest import API, CLIENT, ISSUER, Stack, auth0_provider
from jwtguard_support import ROOT, request

HERE = Path(__file__).resolve().parent


WRK_COMMON = HERE.parent / "support" / "wrk_common.lua"


def wrk(port, seconds, script, env, connections=8, path="/api/x"):
    assert shutil.which("wrk"), "wrk is required (apt-get install wrk)"
    env = dict(env, JWT_GUARD_WRK_COMMON=str(WRK_COMMON))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                          f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, env=dict(os.environ, **env), timeout=seconds + 60).stdout
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    return int(m.group(1)), out


def wrk_until(port, total, script, env, rounds=8, **kw):
    """wrk runs until `total` requests were sent: the first for 10 s, each next one as long as the
    rate of the last says the rest takes, plus a tenth (wrk only knows durations; whole 10 s
    rounds sent half a round too many on average, load the other tests running beside pay for).
    Returns (requests sent, runs)."""
    sent, seconds = 0, 10
    for run in range(1, rounds + 1):
        n, _ = wrk(port, seconds, script, dict(env, SEED=str(run)), **kw)
        sent += n
        if sent >= total:
            return sent, run
        seconds = max(1, math.ceil((total - sent) / max(n / seconds, 1) * 1.1))
    return sent, rounds


def vm_stats(envoy):
    stats = envoy.stats("wasm")
    return {k: v for k, v in stats.items() if k.startswith("wasm.") and ("created" in k or "vm_reload" in k)}


def test_vm_survives_100000_malformed_requests():
    s = Stack(lambda st: {"providers": {"auth0": auth0_provider(st)}})
    try:
        s.envoy.start()
        valid = s.signer.access_token(API, CLIENT)
        assert request(s.listen, "/direct/x", {"authorization": f"Bearer {valid}"}).status == 200
        before = vm_stats(s.envoy)
        total, rounds = wrk_until(s.listen, 100_000, HERE / "malformed.lua", {"VALID_TOKEN": valid})
        print(f"\n{total} malformed requests in {rounds} wrk runs")
        assert total >= 100_000
        r = request(s.listen, "/direct/x", {"authorization": f"Bearer {valid}"})
        assert r.status == 200, "a valid token still passes"
        r = request(s.listen, "/api/x", {"authorization": f"Bearer {valid}"})
        assert r.status == 200 and r.echoed["headers"].get("authorization") is None, "and reaches the upstream, stripped"
        log = s.envoy.log()
        for bad in ("panicked", "panic", "Wasm VM failed", "VM failed", "Function: proxy_on", "wasm trap",
                    "unreachable"):
            assert bad not in log, f"{bad!r} in Envoy's log"
        after = vm_stats(s.envoy)
        assert after == before, f"the wasm VM was restarted: {before} -> {after}"
        assert all(v == "0" for k, v in after.items() if "vm_reload" in k), after
        print(f"wasm VM stats unchanged: {after}")
    finally:
        s.stop()


def test_memory_stays_bounded_with_100000_distinct_tokens(tmp_path):
    secret = os.urandom(32)
    jwks = {"keys": [{"kty": "oct", "kid": "hs-1", "k": pyjwt.utils.base64url_encode(secret).decode()}]}

    def config(st):
        return {"providers": {"auth0": {"issuer": ISSUER, "audiences": [API], "algorithms": ["HS256"],
                                        "local_jwks": {"inline_string": json.dumps(jwks)},
                                        "jwt_cache_config": {"jwt_cache_size": 1000}}}}
    now = int(time.time())
    tokens = [pyjwt.encode({"iss": ISSUER, "aud": API, "sub": f"user-{i}", "exp": now + 3600}, secret,
                           algorithm="HS256", headers={"kid": "hs-1"}) for i in range(100_000)]
    tokens_file = tmp_path / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    script = ROOT / "tests" / "support" / "tokens.lua"
    s = Stack(config)
    try:
        s.envoy.start()
        assert request(s.listen, "/direct/x", {"authorization": f"Bearer {tokens[0]}"}).status == 200
        # Warm up with the first 20,000 tokens so allocator arenas and the cache are full.
        head = tmp_path / "head.txt"
        head.write_text("\n".join(tokens[:20_000]) + "\n")
        wrk(s.listen, 3, script, {"TOKENS_FILE": str(head), "TOKENS_PATH": "/direct/x"})
        rss_before = s.envoy.rss_kib()
        sent, rounds = wrk_until(s.listen, 200_000, script, {"TOKENS_FILE": str(tokens_file), "TOKENS_PATH": "/direct/x"},
                                 rounds=10)
        time.sleep(0.5)
        rss_after = s.envoy.rss_kib()
        entries = int(s.envoy.stats("jwt_guard")["wasmcustom.jwt_guard.provider.auth0.cache.entries"])
        growth = (rss_after - rss_before) / 1024
        print(f"\n{sent} requests over 100,000 distinct tokens: RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB "
              f"(+{growth:.1f} MiB), cache entries {entries}")
        assert sent >= 200_000
        assert entries <= 1000, "the verified-token cache stays at jwt_cache_size"
        # Keeping every token would cost well over 50 MiB (100,000 x ~600 bytes of token and claims).
        assert growth < 24, f"RSS grew {growth:.1f} MiB"
        assert request(s.listen, "/direct/x", {"authorization": f"Bearer {tokens[-1]}"}).status == 200
    finally:
        s.stop()

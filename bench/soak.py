"""`make soak` (not part of `make test`): everything at once, for SOAK_SECONDS (default 600).

One Envoy (2 workers) with jwt-guard and a remote JWKS (cache_duration 2 s) that flaps every
3 s between key set A, key set A plus another key, garbage and an HTML 500. Beside it, with wrk:
- a valid client (4 connections) cycling through 200 valid tokens;
- a flood of forged tokens (known kid, random signature: each costs a signature check);
- a flood of random unknown kids (each asks for a refetch, rate-limited);
- a flood of forged tokens without kid.
Reports the valid client's success rate and p99, JWKS fetches, VM reloads, and Envoy's RSS at
the start and the end; writes bench/soak.md.

Environment: ENVOY (any Envoy), SOAK_SECONDS (600).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

from jwtguard_support import (  # noqa: E402
    WASM, Envoy, JwksServer, Signer, free_port, listener_yaml, request, static_cluster_yaml, wasm_filter_yaml,
)
from run import FLOOD_LUA, machine, to_ms  # noqa: E402

ISSUER = "https://soak.example.com/"
API = "https://api.soak.test"
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
COMMON = str(HERE.parent / "tests" / "support" / "wrk_common.lua")

KIDLESS_LUA = """
dofile(os.getenv("JWT_GUARD_WRK_COMMON"))
math.randomseed(os.time())
request = function()
  local header = b64url('{"alg":"RS256","typ":"at+jwt"}')
  return wrk.format("GET", "/soak", {["Authorization"] = "Bearer " .. header .. "." .. os.getenv("FLOOD_PAYLOAD")
    .. "." .. pick(B64URL_ALPHABET, 341) .. "A"})
end
"""


def wrk(port: int, script: Path, connections: int, env: dict, latency: bool = False) -> subprocess.Popen:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "--timeout", "10s", "-s", str(script)]
    if latency:
        cmd.append("--latency")
    return subprocess.Popen(cmd + [f"http://127.0.0.1:{port}/soak"], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, **env))


def main() -> int:
    signer = Signer(ISSUER)
    extra = Signer(ISSUER, rsa_kid="rsa-extra")
    set_a = signer.jwks()
    set_b = {"keys": set_a["keys"] + [extra.jwks()["keys"][0]]}
    server = JwksServer(set_a).start()
    admin, listen = free_port(), free_port()
    cfg = {"providers": {"p": {"issuer": ISSUER, "audiences": [API], "remote_jwks": {
        "http_uri": {"uri": f"http://127.0.0.1:{server.port}/jwks", "cluster": "jwks", "timeout": "1s"},
        "cache_duration": "2s"}}}}
    routes = """              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "ok"}}"""
    yaml = listener_yaml(admin=admin, listen=listen, routes=routes,
                         filters=wasm_filter_yaml(WASM, json.dumps(cfg), name="jwt_guard"),
                         clusters=[static_cluster_yaml("jwks", server.port)])
    envoy = Envoy(yaml, admin, listen, concurrency=2, log_level="warning")
    tmp = HERE / ".soak"
    tmp.mkdir(exist_ok=True)
    tokens = [signer.access_token(API, "soak-client", lifetime=SECONDS + 3600, jti=f"v{i}") for i in range(200)]
    (tmp / "tokens.txt").write_text("\n".join(tokens) + "\n")
    for name, text in [("flood.lua", FLOOD_LUA), ("kidless.lua", KIDLESS_LUA)]:
        (tmp / name).write_text(text)
    h, p, _ = tokens[0].split(".")
    halt = threading.Event()
    flips = [0]

    def flap():
        states = [set_a, None, set_b, "html500"]
        i = 0
        while not halt.wait(3):
            state = states[i % len(states)]
            server.fault = "html500" if state == "html500" else None
            if isinstance(state, dict):
                server.set_jwks(state)
            elif state is None:
                server.fail(200, b"garbage{")
            i += 1
            flips[0] = i

    procs = {}
    try:
        envoy.start()
        assert request(listen, "/soak", {"authorization": f"Bearer {tokens[0]}"}).status == 200
        rss_start = envoy.rss_kib()
        fetches_start = server.fetch_count
        started = datetime.now(timezone.utc)
        print(f"soak: {SECONDS} s from {started:%H:%M:%S} UTC; Envoy RSS {rss_start / 1024:.1f} MiB", flush=True)
        threading.Thread(target=flap, daemon=True).start()
        base = {"JWT_GUARD_WRK_COMMON": COMMON, "FLOOD_PREFIX": f"{h}.{p}", "FLOOD_PAYLOAD": p}
        valid_env = {**base, "TOKENS_FILE": str(tmp / "tokens.txt"), "TOKENS_PATH": "/soak"}
        procs["valid"] = wrk(listen, HERE.parent / "tests" / "support" / "tokens.lua", 4, valid_env, True)
        procs["forged"] = wrk(listen, tmp / "flood.lua", 4, {**base, "FLOOD_MODE": "forged"})
        procs["unknown kid"] = wrk(listen, tmp / "flood.lua", 2, {**base, "FLOOD_MODE": "kid"})
        procs["kid-less"] = wrk(listen, tmp / "kidless.lua", 2, base)
        rss_samples = []
        while procs["valid"].poll() is None:
            time.sleep(10)
            rss_samples.append(envoy.rss_kib())
        out = {name: proc.communicate(timeout=120)[0] for name, proc in procs.items()}
        halt.set()
        rss_end = envoy.rss_kib()
        stats = envoy.stats("")
        reloads = envoy.vm_reloads()
        log = envoy.log()
    finally:
        halt.set()
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        envoy.stop()
        server.stop()
    v = out["valid"]
    total = int(re.search(r"(\d+) requests in", v).group(1))
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", v) or [0, 0])[1])
    errors = re.search(r"Socket errors: (.*)", v)
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", v, re.M).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", v, re.M).group(1))
    rps = {k: float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1)) for k, o in out.items()}
    ok = stats.get("wasmcustom.jwt_guard.provider.p.jwks_fetch.success", "?")
    bad = stats.get("wasmcustom.jwt_guard.provider.p.jwks_fetch.failure", "?")
    lines = [
        "# Soak", "",
        f"`make soak`, {SECONDS} s from {started:%Y-%m-%d %H:%M} UTC on {machine()}; Envoy `--concurrency 2`. "
        f"The JWKS flapped {flips[0]} times (every 3 s: key set A, garbage, A plus a key, HTML 500).", "",
        "| measure | value |", "| --- | --- |",
        f"| valid client (wrk -c4, 200 tokens) | {total:,} requests, {rps['valid']:,.0f} req/s |",
        f"| valid success rate | {100.0 * (total - non2xx) / max(total, 1):.4f}% ({non2xx} failed"
        f"{', socket errors: ' + errors.group(1) if errors else ''}) |",
        f"| valid p50 / p99 | {p50:.2f} ms / {p99:.2f} ms |",
        f"| floods (req/s) | forged {rps['forged']:,.0f}, unknown kid {rps['unknown kid']:,.0f}, "
        f"kid-less {rps['kid-less']:,.0f} |",
        f"| JWKS fetches | {server.fetch_count - fetches_start} at the server; jwt-guard counted {ok} good, {bad} failed |",
        f"| VM reloads | {', '.join(f'{k} {v}' for k, v in sorted(reloads.items()))} |",
        f"| panics in Envoy's log | {log.count('panicked')} |",
        f"| Envoy RSS | {rss_start / 1024:.1f} MiB at the start, {rss_end / 1024:.1f} MiB at the end "
        f"(max {max(rss_samples + [rss_end]) / 1024:.1f} MiB) |",
        "",
    ]
    (HERE / "soak.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if non2xx == 0 and "panicked" not in log and not any(reloads.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

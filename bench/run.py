"""`make bench`: jwt-guard beside Envoy's native jwt_authn, in the same Envoy build.

Each configuration runs as its own Envoy with one worker and a direct-response route, so only
the auth filter differs. wrk (1 thread, 8 connections) drives them in turn, round after round;
the report gives medians over rounds, p50/p99 latency, and each ratio to its native
counterpart. Results go to bench/results.md and bench/results.svg.

Realistic traffic: BENCH_USERS (5,000) users' RS256 access tokens, requested in Zipf(1.0) order
(user i with probability proportional to 1/i, drawn by a wrk Lua script), against jwt-guard as
shipped (its default cache), jwt_authn as shipped (no cache) and jwt_authn with
`jwt_cache_size: 1000`; the cache hit rates over the measured rounds come from each Envoy's
stats.

Environment: ENVOY (any Envoy), BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_USERS (5000),
BENCH_ONLY (comma-separated substrings of configuration names, for quick experiments; the
counterparts come along, and results files are left alone).
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

from jwtguard_support import (  # noqa: E402
    WASM, Envoy, JwksServer, Signer, envoy_command, free_port, listener_yaml, request, static_cluster_yaml,
    wasm_filter_yaml,
)

NOOP_WASM = HERE / "noop" / "target" / "wasm32-wasip1" / "release" / "noop_filter.wasm"
ISSUER = "https://bench.example.com/"
API = "https://api.bench.test"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
SIGNER = None  # set in main
USERS = int(os.environ.get("BENCH_USERS", "5000"))
TOKENS_FILE = HERE / ".tokens.txt"
ZIPF_LUA = HERE / "zipf.lua"
# DPoP: one bound token, a fresh ES256 proof per request. Each wrk run (one per round, plus its
# warm-up) reads the proofs from the start, so a run never repeats one; runs take a new file.
PROOFS_FILE = HERE / ".proofs.txt"
DPOP_LUA = HERE / "dpop.lua"
DPOP_PROOFS = int(os.environ.get("BENCH_DPOP_PROOFS", "60000"))
DPOP_ORIGIN = "https://api.bench.test"
# Opaque tokens: an RFC 7662 endpoint on loopback (an Envoy direct response: every token active).
OPAQUE_COLD_LUA = HERE / "opaque_cold.lua"
INTROSPECTION_PORT = 0  # set in main


def listener(admin: int, listen: int, filters: str, jwks_port: int | None = None) -> str:
    """One Envoy of the benchmark: `filters`, then a direct-response route."""
    routes = """              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "ok"}}"""
    clusters = [] if jwks_port is None else [static_cluster_yaml("jwks", jwks_port)]
    if INTROSPECTION_PORT:
        clusters.append(static_cluster_yaml("introspect", INTROSPECTION_PORT))
    return listener_yaml(admin=admin, listen=listen, routes=routes, filters=filters, clusters=clusters)


def wasm_filter(path: Path, config: str) -> str:
    return wasm_filter_yaml(path, config, name="bench")


def jwt_authn(jwks: dict, cache: bool) -> str:
    cache_cfg = "\n                  jwt_cache_config: {jwt_cache_size: 1000}" if cache else ""
    return f"""          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                p:
                  issuer: {ISSUER}
                  audiences: [{API}]
                  local_jwks: {{inline_string: {json.dumps(json.dumps(jwks))}}}{cache_cfg}
              rules:
              - match: {{prefix: /}}
                requires: {{provider_name: p}}"""


def introspection_endpoint() -> Envoy:
    """An RFC 7662 endpoint on loopback that calls every token active: an Envoy direct response,
    so the cold row measures jwt-guard's call, not a slow server."""
    admin, listen = free_port(), free_port()
    answer = json.dumps({"active": True, "iss": ISSUER, "aud": API, "sub": "bench", "scope": "read",
                         "exp": int(time.time()) + 24 * 3600})
    routes = f"""              - match: {{prefix: "/"}}
                direct_response: {{status: 200, body: {{inline_string: {json.dumps(answer)}}}}}"""
    e = Envoy(listener_yaml(admin=admin, listen=listen, routes=routes, filters="", clusters=[]), admin, listen,
              log_level="warning")
    return e.start()


def guard(jwks: dict, cache_size: int | None, dpop: dict | None = None, introspect: bool = False) -> str:
    """jwt-guard; `cache_size` None leaves jwt_cache_config out: the default, as shipped."""
    provider = {"issuer": ISSUER, "audiences": [API], "local_jwks": {"inline_string": json.dumps(jwks)}}
    if introspect:
        provider["introspection"] = {
            "http_uri": {"uri": f"http://127.0.0.1:{INTROSPECTION_PORT}/introspect", "cluster": "introspect"},
            "client_id": "bench", "client_secret": "bench"}
    if cache_size is not None:
        provider["jwt_cache_config"] = {"jwt_cache_size": cache_size}
    if dpop is not None:
        provider["dpop"] = dpop
    return wasm_filter(WASM, json.dumps({"providers": {"p": provider}}))


def user_tokens(signer: Signer) -> Path:
    """USERS distinct users' RS256 access tokens, one per line, for zipf.lua."""
    tokens = [signer.access_token(API, "bench-client", lifetime=24 * 3600, claims={"sub": f"auth0|{i:024x}"})
              for i in range(USERS)]
    TOKENS_FILE.write_text("\n".join(tokens) + "\n")
    return TOKENS_FILE


def scenarios(signer: Signer):
    jwks = signer.jwks()
    rs = signer.access_token(API, "bench-client", lifetime=24 * 3600)
    es = signer.access_token(API, "bench-client", alg="ES256", lifetime=24 * 3600)
    h, p, s = rs.split(".")
    forged = f"{h}.{p}.{s[:-8]}AAAAAAAA"
    users = user_tokens(signer)
    first = users.read_text().split("\n", 1)[0]
    # name, filters, token, expected status, wrk script (None: the token on every request)
    return [
        ("envoy, no auth filter", "", rs, 200, None),
        ("wasm floor (no-op filter)", wasm_filter(NOOP_WASM, "{}"), rs, 200, None),
        ("jwt_authn, cache", jwt_authn(jwks, True), rs, 200, None),
        ("jwt_authn, RS256", jwt_authn(jwks, False), rs, 200, None),
        ("jwt_authn, ES256", jwt_authn(jwks, False), es, 200, None),
        ("jwt_authn, forged", jwt_authn(jwks, False), forged, 401, None),
        ("jwt-guard, hot (cache)", guard(jwks, 1000), rs, 200, None),
        ("jwt-guard, cold RS256", guard(jwks, 0), rs, 200, None),
        ("jwt-guard, cold ES256", guard(jwks, 0), es, 200, None),
        ("jwt-guard, forged", guard(jwks, 0), forged, 401, None),
        ("jwt_authn, realistic, as shipped (no cache)", jwt_authn(jwks, False), first, 200, ZIPF_LUA),
        ("jwt_authn, realistic, jwt_cache_size 1000", jwt_authn(jwks, True), first, 200, ZIPF_LUA),
        ("jwt-guard, realistic, as shipped", guard(jwks, None), first, 200, ZIPF_LUA),
        # The proofs are made before the rounds start, so the window is wide; the checks are the same.
        ("jwt-guard, DPoP (cached token, fresh proof)",
         guard(jwks, 1000, {"external_origin": DPOP_ORIGIN, "max_proof_age": "3600s",
                            # every proof of the run stays live for the hour: room for all of them
                            "replay_cache_size": 400000}), None, 200, DPOP_LUA),
        ("jwt-guard, opaque (cached introspection)", guard(jwks, 1000, introspect=True), "op-bench-0123456789abcdef",
         200, None),
        ("jwt-guard, opaque cold (a call per request)", guard(jwks, 1000, introspect=True), "op-first-call", 200,
         OPAQUE_COLD_LUA),
    ]


def dpop_setup():
    """The bound token (in BENCH_DPOP_TOKEN) and a function that writes a new proof file."""
    from dpop import DpopKey
    key = DpopKey()
    signer = SIGNER
    token = signer.access_token(API, "bench-client", lifetime=24 * 3600, claims={"cnf": {"jkt": key.jkt()}})
    os.environ["BENCH_DPOP_TOKEN"] = token
    os.environ["BENCH_PROOFS"] = str(PROOFS_FILE)

    def new_proofs(n: int = DPOP_PROOFS) -> None:
        PROOFS_FILE.write_text("\n".join(key.proof("GET", f"{DPOP_ORIGIN}/bench", token) for _ in range(n)) + "\n")
    return token, key, new_proofs


# jwt-guard row -> [(counterpart, least ratio)]: issue 11's targets.
TARGETS = {
    "jwt-guard, hot (cache)": [("wasm floor (no-op filter)", 0.9)],
    "jwt-guard, cold RS256": [("jwt_authn, RS256", 0.8)],
    "jwt-guard, cold ES256": [("jwt_authn, ES256", 0.6)],
    "jwt-guard, forged": [("jwt_authn, forged", 0.5)],
    "jwt-guard, DPoP (cached token, fresh proof)": [("jwt_authn, ES256", 0.6),  # the same one-signature work
                                                    ("jwt-guard, hot (cache)", None)],
    "jwt-guard, opaque (cached introspection)": [("jwt-guard, hot (cache)", 0.9)],
    "jwt-guard, opaque cold (a call per request)": [("jwt-guard, hot (cache)", None)],  # its latency is the figure
    "jwt-guard, realistic, as shipped": [("jwt_authn, realistic, as shipped (no cache)", 1.2),
                                         ("jwt_authn, realistic, jwt_cache_size 1000", 0.85)],
}


def cache_counts(e: Envoy) -> tuple[int, int]:
    """(hits, misses) of the token cache of jwt-guard or jwt_authn in Envoy `e`."""
    stats = {k: int(v) for k, v in e.stats("cache").items() if v.isdigit()}
    hits = sum(v for k, v in stats.items() if k.endswith(("cache.hit", "jwt_cache_hit")))
    misses = sum(v for k, v in stats.items() if k.endswith(("cache.miss", "jwt_cache_miss")))
    return hits, misses


def to_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def run_wrk(port: int, token: str | None, seconds: int, connections: int = 8, script: Path | None = None) -> dict:
    """wrk against `port`: `token` on every request, or whatever `script` sends."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if token:
        cmd += ["-H", f"authorization: Bearer {token}"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}/bench"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors.group(1) if errors else "", "total": total,
            "non2xx": int(non2xx.group(1)) if non2xx else 0}


FLOOD_LUA = """
dofile(os.getenv("JWT_GUARD_WRK_COMMON"))
local prefix = os.getenv("FLOOD_PREFIX")
local mode = os.getenv("FLOOD_MODE")
local b64 = B64URL_ALPHABET
math.randomseed(os.time())
request = function()
  local token
  if mode == "forged" then
    -- a known kid and a random signature: every one costs a signature check
    token = prefix .. "." .. pick(b64, 341) .. "A"
  else
    -- {"alg":"RS256","kid":"<random>"} + the valid payload: an unknown kid each time
    local header = '{"alg":"RS256","kid":"' .. pick(b64, 20) .. '"}'
    token = b64url(header) .. "." .. os.getenv("FLOOD_PAYLOAD") .. "." .. pick(b64, 341) .. "A"
  end
  return wrk.format("GET", "/bench", {["Authorization"] = "Bearer " .. token})
end
"""


def flood(signer: Signer, seconds: int) -> list:
    """A flood of forged tokens or unknown kids beside a client with a valid token."""
    jwks_server = JwksServer(signer.jwks()).start()
    admin, listen = free_port(), free_port()
    cfg = {"providers": {"p": {"issuer": ISSUER, "audiences": [API], "remote_jwks": {
        "http_uri": {"uri": f"http://127.0.0.1:{jwks_server.port}/jwks", "cluster": "jwks", "timeout": "2s"}}}}}
    e = Envoy(listener(admin, listen, wasm_filter(WASM, json.dumps(cfg)), jwks_server.port), admin, listen, log_level="warning")
    valid = signer.access_token(API, "bench-client", lifetime=24 * 3600)
    h, p, _ = valid.split(".")
    script = HERE / ".flood.lua"
    script.write_text(FLOOD_LUA)
    rows = []
    try:
        e.start()
        assert request(listen, "/bench", {"authorization": f"Bearer {valid}"}).status == 200
        baseline = run_wrk(listen, valid, seconds, connections=2)
        rows.append({"flood": "none", "flood_rps": 0, "valid": baseline, "fetches": 0})
        for mode in ("forged", "unknown kid"):
            fetches_before = jwks_server.fetch_count
            env = dict(os.environ, FLOOD_PREFIX=f"{h}.{p}", FLOOD_MODE="forged" if mode == "forged" else "kid", FLOOD_PAYLOAD=p,
                       JWT_GUARD_WRK_COMMON=str(HERE.parent / "tests" / "support" / "wrk_common.lua"))
            flooder = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{seconds + 2}s", "-s", str(script), f"http://127.0.0.1:{listen}/bench"],
                                       stdout=subprocess.PIPE, text=True, env=env)
            time.sleep(1)
            good = run_wrk(listen, valid, seconds, connections=2)
            out, _ = flooder.communicate(timeout=seconds + 60)
            flood_rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            rows.append({"flood": mode, "flood_rps": flood_rps, "valid": good, "fetches": jwks_server.fetch_count - fetches_before})
            print(f"flood {mode}: {flood_rps:,.0f} req/s; valid client {good['rps']:,.0f} req/s, "
                  f"{good['non2xx']} failures, p99 {good['p99']:.2f} ms; {rows[-1]['fetches']} JWKS fetches", flush=True)
    finally:
        e.stop()
        jwks_server.stop()
        script.unlink(missing_ok=True)
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run(envoy_command() + ["--version"], capture_output=True, text=True).stdout.strip()
    version = re.search(r"version: \S+", version).group(0) if "version:" in version else version
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu}; Envoy {version}"


def svg(rows: list) -> str:
    width, bar_h, gap, label_w = 760, 22, 8, 210
    peak = max(r["rps"] for r in rows)
    height = 30 + len(rows) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<text x="{label_w}" y="16" font-weight="bold">requests/s, median of rounds (1 Envoy worker, wrk -t1 -c8)</text>']
    for i, r in enumerate(rows):
        y = 26 + i * (bar_h + gap)
        w = (width - label_w - 90) * r["rps"] / peak
        color = "#2b6cb0" if r["name"].startswith("jwt-guard") else "#a0aec0"
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{r["name"]}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{r["rps"]:,.0f}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    for need in (WASM, NOOP_WASM):
        if not need.exists():
            print(f"{need} is missing: run `make bench` (it builds both)", file=sys.stderr)
            return 1
    global SIGNER, INTROSPECTION_PORT
    signer = SIGNER = Signer(ISSUER)
    endpoint = introspection_endpoint()
    INTROSPECTION_PORT = endpoint.listen_port
    plan = scenarios(signer)
    only = [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x]
    if only:
        keep = {p[0] for p in plan if any(o in p[0] for o in only)}
        keep |= {c for name in list(keep) for c, _ in TARGETS.get(name, [])}
        keep.add("jwt_authn, RS256")
        plan = [p for p in plan if p[0] in keep]
    os.environ["BENCH_TOKENS"] = str(TOKENS_FILE)
    dpop_token, dpop_key, new_proofs = dpop_setup()
    envoys = []
    cache = {}
    try:
        for name, filters, token, want, script in plan:
            admin, listen = free_port(), free_port()
            e = Envoy(listener(admin, listen, filters), admin, listen, log_level="warning")
            e.start()
            if script == DPOP_LUA:
                got = request(listen, "/bench", {"authorization": f"DPoP {dpop_token}",
                                                 "dpop": dpop_key.proof("GET", f"{DPOP_ORIGIN}/bench", dpop_token)}).status
            else:
                got = request(listen, "/bench", {"authorization": f"Bearer {token}"}).status
            if got != want:
                raise RuntimeError(f"{name}: expected {want}, got {got}")
            envoys.append((name, e, None if script else token, script))
        samples = {name: [] for name, *_ in envoys}
        for r in range(ROUNDS):
            for name, e, token, script in envoys:
                if script == DPOP_LUA:
                    new_proofs()
                run_wrk(e.listen_port, token, 1, script=script)  # warm up
                if script == DPOP_LUA:
                    new_proofs()
                before = cache_counts(e)
                samples[name].append(run_wrk(e.listen_port, token, SECONDS, script=script))
                if script == DPOP_LUA and samples[name][-1]["non2xx"]:
                    # More requests than proofs (a replay) or a refused proof: not a DPoP measurement.
                    raise RuntimeError(f"{name}: {samples[name][-1]['non2xx']} refusals; raise BENCH_DPOP_PROOFS")
                after = cache_counts(e)
                h, m = cache.get(name, (0, 0))
                cache[name] = (h + after[0] - before[0], m + after[1] - before[1])
                print(f"round {r + 1}/{ROUNDS}: {name}: {samples[name][-1]['rps']:,.0f} req/s", flush=True)
    finally:
        for _, e, _, _ in envoys:
            e.stop()
        endpoint.stop()
        TOKENS_FILE.unlink(missing_ok=True)
        PROOFS_FILE.unlink(missing_ok=True)

    rows = []
    for name, *_ in envoys:
        s = samples[name]
        rows.append({"name": name, "rps": statistics.median(x["rps"] for x in s),
                     "p50": statistics.median(x["p50"] for x in s), "p99": statistics.median(x["p99"] for x in s),
                     "all": [round(x["rps"]) for x in s]})
    by_name = {r["name"]: r for r in rows}
    native_rs = by_name["jwt_authn, RS256"]["rps"]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results", "",
        f"Measured {when} on {machine()}.",
        f"Each configuration is its own Envoy (`--concurrency 1`, direct-response route); wrk -t1 -c8, "
        f"{ROUNDS} rounds of {SECONDS} s, interleaved. Medians over rounds. Realistic traffic: {USERS:,} users' "
        f"RS256 tokens in Zipf(1.0) order (bench/zipf.lua); cache hit rate over the measured rounds.", "",
        "| configuration | req/s (median) | rounds | p50 ms | p99 ms | cache hit rate | vs jwt_authn RS256 | vs its counterpart | target |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    verdicts = []
    for r in rows:
        vs, target = [], []
        for counterpart, least in TARGETS.get(r["name"], []):
            if counterpart not in by_name:
                continue
            ratio = r["rps"] / by_name[counterpart]["rps"]
            if least is None:
                vs.append(f"{ratio:.2f}x {counterpart}")
                continue
            ok = ratio >= least
            vs.append(f"{ratio:.2f}x {counterpart}")
            target.append(f"≥ {least}x: {'met' if ok else 'MISSED'}")
            verdicts.append((r["name"], counterpart, ratio, least, ok))
        h, m = cache.get(r["name"], (0, 0))
        rate = f"{100 * h / (h + m):.1f}%" if h + m else ""
        lines.append(f"| {r['name']} | {r['rps']:,.0f} | {', '.join(f'{x:,}' for x in r['all'])} | {r['p50']:.2f} | "
                     f"{r['p99']:.2f} | {rate} | {r['rps'] / native_rs:.2f}x | {'; '.join(vs)} | {'; '.join(target)} |")
    lines += ["", "![requests per second](results.svg)", ""]
    flood_rows = [] if only else flood(signer, SECONDS)
    if flood_rows:
        lines += ["## Flood resilience", "",
                  "jwt-guard (1 worker, remote JWKS, cache on) under a wrk flood (16 connections) of forged tokens "
                  "(known kid, a random signature each, so each costs a signature check) or of random unknown kids, "
                  "while a second client (2 connections) sends a valid token.", "",
                  "| flood | flood req/s | valid client req/s | valid client success | valid p99 ms | JWKS fetches during the flood |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in flood_rows:
            v = r["valid"]
            ok = 100.0 * (v["total"] - v["non2xx"]) / max(v["total"], 1)
            lines.append(f"| {r['flood']} | {r['flood_rps']:,.0f} | {v['rps']:,.0f} | {ok:.2f}% ({v['non2xx']} failed of {v['total']:,}) | "
                         f"{v['p99']:.2f} | {r['fetches']} |")
        lines.append("")
    if not only:
        (HERE / "results.md").write_text("\n".join(lines))
        (HERE / "results.svg").write_text(svg(rows))
    print("\n".join(lines))
    missed = [v for v in verdicts if not v[4]]
    print(f"\ntargets: {len(verdicts) - len(missed)} met, {len(missed)} missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A crash is never forever, and never fails open. A test-only build (feature `crash-test`)
panics its VM on a request with `x-jwt-guard-test-crash`, as a bug would.

With the shipped `failure_policy: FAIL_RELOAD`, Envoy answers 503 while the VM reloads, then
the same Envoy serves again. With FAIL_CLOSED the worker would answer 503 until Envoy
restarts: that is why the shipped configs say FAIL_RELOAD."""

import threading
import time

import pytest

from conftest import API, CLIENT, Stack, auth0_provider
from jwtguard_support import ROOT, request

CRASH_WASM = ROOT / "target" / "crash-test" / "wasm32-wasip1" / "release" / "jwt_guard.wasm"


@pytest.mark.parametrize("policy", ["FAIL_RELOAD", "FAIL_CLOSED"])
def test_a_crashed_vm_never_fails_open_and_reload_recovers(policy):
    assert CRASH_WASM.exists(), f"{CRASH_WASM} is missing: run `make build-crash-test`"
    s = Stack(lambda st: {"providers": {"auth0": auth0_provider(st)}}, failure_policy=policy, wasm=CRASH_WASM)
    try:
        s.envoy.start()
        token = s.signer.access_token(API, CLIENT)
        valid = {"authorization": f"Bearer {token}"}
        assert request(s.listen, "/direct", valid).status == 200
        seen = []  # (seconds since the crash, valid status, no-token status)
        halt = threading.Event()
        crashed_at = []

        def traffic():
            while not halt.is_set():
                a = request(s.listen, "/direct", valid, timeout=10).status
                b = request(s.listen, "/direct", {}, timeout=10).status
                if crashed_at:
                    seen.append((time.time() - crashed_at[0], a, b))
                time.sleep(0.02)

        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        time.sleep(0.3)
        crashed_at.append(time.time())
        r = request(s.listen, "/direct", {"x-jwt-guard-test-crash": "1", **valid})
        assert r.status == 503, r.status
        time.sleep(6)
        halt.set()
        t.join(15)
        log = s.envoy.log()
        assert "crash requested by x-jwt-guard-test-crash" in log, "the VM did not crash"
        # Never fail open: a request without a token is never let through.
        assert all(b in (401, 503) for _, _, b in seen), sorted({b for _, _, b in seen})
        assert all(a in (200, 503) for _, a, _ in seen), sorted({a for _, a, _ in seen})
        down = [at for at, a, _ in seen if a == 503]
        window = max(down) if down else 0.0
        stats = s.envoy.vm_reloads()
        print(f"\n{policy}: {len(seen)} request pairs in 6 s after the crash; valid client 503 for "
              f"{len(down)} of them, last at {window:.2f} s; reload stats {stats}")
        if policy == "FAIL_RELOAD":
            assert seen[-1][1:] == (200, 401), "the same Envoy serves again"
            assert window < 5.0, f"503 for {window:.2f} s after the crash"
            assert stats.get("vm_reload_success", 0) >= 1, stats
        else:
            assert seen[-1][1:] == (503, 503), "FAIL_CLOSED keeps the dead VM: why we ship FAIL_RELOAD"
    finally:
        s.stop()

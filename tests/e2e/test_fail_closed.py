"""If jwt-guard refuses its configuration or cannot start, no request reaches the upstream,
whatever Envoy's wasm failure_policy says. Each value Envoy 1.40 accepts is tried."""

import time

import pytest

from conftest import API, Stack, auth0_provider
from jwtguard_support import request


def bad_config(stack):
    p = auth0_provider(stack)
    p["audiences"] = []
    return {"providers": {"auth0": p}}


def good_config(stack):
    return {"providers": {"auth0": auth0_provider(stack)}}


@pytest.mark.parametrize("policy", ["FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"])
@pytest.mark.parametrize("failure", ["refused configuration", "module cannot load"])
def test_no_request_reaches_the_upstream(policy, failure, tmp_path):
    if failure == "module cannot load":
        broken = tmp_path / "broken.wasm"
        broken.write_bytes(b"\x00asm\x01\x00\x00\x00 this is not a valid module")
        s = Stack(good_config, failure_policy=policy, wasm=broken)
    else:
        s = Stack(bad_config, failure_policy=policy)
    try:
        s.envoy.start(wait=False)
        deadline = time.time() + 20
        outcome = None
        while time.time() < deadline and outcome is None:
            if s.envoy.proc.poll() is not None:
                outcome = f"Envoy exited with {s.envoy.proc.returncode}"
                break
            try:
                r = request(s.listen, "/", {"authorization": "Bearer x.y.z"}, timeout=5)
                outcome = f"HTTP {r.status}"
                assert r.status >= 500, f"{policy}/{failure}: {r.status} {r.body[:200]}"
            except OSError:
                time.sleep(0.2)  # the listener is not there (yet)
        assert s.upstream.requests == 0, f"{policy}/{failure}: a request reached the upstream"
        print(f"\n{policy}, {failure}: {outcome or 'listener never came up'}")
    finally:
        s.stop()
    assert s.upstream.requests == 0

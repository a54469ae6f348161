"""Faults on the JWKS path, injected into a real Envoy while a valid client sends traffic.

Keys are loaded first. Then the JWKS server misbehaves: it cuts its body short, dribbles it,
resets the connection, answers empty, huge, redirected or with HTML errors, answers after
jwt-guard's deadline, refuses connections, or flaps between good and bad. Throughout, the
valid client must get 200 on the last good keys, Envoy's log must have no panic, no VM may be
reloaded, and each failure must be counted and logged with its real cause."""

import json
import threading
import time

import pytest

from conftest import API, CLIENT, Stack, auth0_provider
from jwtguard_support import Signer, request, wait_until

PANIC = "panicked"


def stat(envoy, name):
    return int(envoy.stats("jwt_guard").get(f"wasmcustom.jwt_guard.provider.auth0.{name}", "0"))


class Client(threading.Thread):
    """Sends valid access tokens (20 of them, so the token cache does not hide verification)
    until stopped, and records every status."""

    def __init__(self, stack):
        super().__init__(daemon=True)
        self.stack = stack
        self.tokens = [stack.signer.access_token(API, CLIENT, jti=f"valid-{i}") for i in range(20)]
        self.statuses = []
        self.halt = threading.Event()

    def run(self):
        i = 0
        while not self.halt.is_set():
            token = self.tokens[i % len(self.tokens)]
            r = request(self.stack.listen, "/direct", {"authorization": f"Bearer {token}"}, timeout=10)
            self.statuses.append(r.status)
            i += 1
            time.sleep(0.01)

    def stop(self):
        self.halt.set()
        self.join(15)
        return self.statuses


@pytest.fixture(scope="module")
def stack():
    def build(st):
        p = auth0_provider(st)
        p["remote_jwks"]["cache_duration"] = "1s"
        p["remote_jwks"]["http_uri"]["timeout"] = "1s"
        return {"providers": {"auth0": p}}

    s = Stack(build)
    s.envoy.start()
    yield s
    s.stop()


def healthy(s):
    """Back to a good JWKS, and a fetch that succeeded since, so retries are not backed off."""
    s.jwks.fault, s.jwks.delay = None, 0.0
    if not s.jwks.httpd:
        s.jwks.start()
    s.jwks.set_jwks(s.signer.jwks())
    before = stat(s.envoy, "jwks_fetch.success")
    assert wait_until(lambda: stat(s.envoy, "jwks_fetch.success") > before, 30), "no good fetch"


# (fault, what the server does, the cause jwt-guard must name, a phrase of its log line)
FAULTS = [
    ("cut", "Content-Length: 50000, 100 bytes, close", "reset", "broke off"),
    ("slowloris", "headers, then a byte every 0.5 s", "timeout", "no complete answer within 1000 ms"),
    ("reset", "headers and 200 bytes, then TCP RST", "reset", "broke off"),
    ("empty", "200 with no body", "invalid", "not JSON"),
    ("huge", "200 with a 10 MB body", "too_large", "exceeds 262144 bytes"),
    ("redirect", "302 to another host", "status", "redirects are not followed"),
    ("html404", "404 with an HTML page", "status", "status 404"),
    ("html500", "500 with an HTML page", "status", "status 500"),
    ("late", "the JWKS after 1.5 s: past our 1 s deadline, before Envoy's", "timeout", "within 1000 ms"),
    ("refused", "nothing listens", "connect", "could not connect"),
]


@pytest.mark.parametrize("fault,what,cause,phrase", FAULTS, ids=[f[0] for f in FAULTS])
def test_valid_traffic_survives_a_jwks_fault(stack, fault, what, cause, phrase):
    s = stack
    healthy(s)
    before = stat(s.envoy, f"jwks_fetch.error.{cause}")
    client = Client(s)
    client.start()
    try:
        time.sleep(0.3)
        if fault == "late":
            s.jwks.delay = 1.5
        elif fault == "refused":
            s.jwks.stop()
        else:
            s.jwks.fault = fault
        counted = wait_until(lambda: stat(s.envoy, f"jwks_fetch.error.{cause}") > before, 20)
        time.sleep(0.5)
    finally:
        statuses = client.stop()
        healthy(s)
    log = s.envoy.log()
    print(f"\n{fault} ({what}): valid client {len(statuses)} requests, "
          f"{statuses.count(200)} x 200; counted as {cause}")
    assert counted, f"{fault} was not counted as {cause}"
    assert statuses and set(statuses) == {200}, f"{fault}: the valid client saw {sorted(set(statuses))}"
    assert f"(cause {cause}): " in log and phrase in log, f"{fault}: cause not logged"
    assert PANIC not in log
    assert not any(s.envoy.vm_reloads().values()), s.envoy.vm_reloads()
    if fault == "late":
        s.envoy.wait_log("past its deadline or superseded")


def test_valid_traffic_survives_a_flapping_jwks(stack):
    """Fetch after fetch: key set A, garbage, key set B (A plus another key), an HTML 500.
    The answers go by fetch, not by the clock, so how refreshes and back-offs fall in time
    cannot leave a run with too few good or failed fetches to judge."""
    s = stack
    healthy(s)
    extra = Signer(s.signer.issuer, rsa_kid="rsa-extra")
    set_a = s.signer.jwks()
    set_b = {"keys": set_a["keys"] + [extra.jwks()["keys"][0]]}
    before_ok = stat(s.envoy, "jwks_fetch.success")
    before_bad = stat(s.envoy, "jwks_fetch.failure")
    client = Client(s)
    client.start()
    s.jwks.answer_in_turn([
        (200, json.dumps(set_a).encode(), None),
        (200, b"\x00garbage{", None),
        (200, json.dumps(set_b).encode(), None),
        (200, b"", "html500"),
    ])
    try:
        time.sleep(8)
    finally:
        s.jwks.answer_in_turn([])
        statuses = client.stop()
        healthy(s)
    ok = stat(s.envoy, "jwks_fetch.success") - before_ok
    bad = stat(s.envoy, "jwks_fetch.failure") - before_bad
    print(f"\nflapping JWKS, 8 s: {ok} good fetches, {bad} failed, valid client "
          f"{statuses.count(200)}/{len(statuses)} x 200")
    assert ok >= 2 and bad >= 1, (ok, bad)
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    assert PANIC not in s.envoy.log()
    assert not any(s.envoy.vm_reloads().values()), s.envoy.vm_reloads()


def test_a_missing_cluster_is_named_and_answered_at_once():
    def build(st):
        p = auth0_provider(st)
        p["remote_jwks"]["http_uri"]["cluster"] = "no_such_cluster"
        p["remote_jwks"]["http_uri"]["timeout"] = "5s"
        return {"providers": {"auth0": p}}

    s = Stack(build)
    try:
        s.envoy.start()
        t0 = time.time()
        r = request(s.listen, "/", {"authorization": f"Bearer {s.signer.access_token(API, CLIENT)}"})
        took = time.time() - t0
        assert r.status == 503 and r.headers.get("retry-after") == "1", (r.status, r.headers)
        assert json.loads(r.body)["error"] == "temporarily_unavailable"
        assert took < 2.0, f"held {took:.2f}s for a fetch that could never start"
        log = s.envoy.wait_log('Envoy has no cluster "no_such_cluster"')
        assert "(cause dispatch)" in log
        assert PANIC not in log
    finally:
        s.stop()

"""The JWKS lifecycle in real Envoy: readiness, one fetch for all workers, refresh, stale keys,
rotation, forged kids, defensive parsing and OIDC discovery. The JWKS server is the test's."""

import json
import threading
import time
import uuid

from conftest import API, CLIENT, ISSUER, Stack, auth0_provider
from jwtguard_support import request, wait_until


def bearer(token):
    return {"authorization": f"Bearer {token}"}


def single(jwks_settings=None, discovery=False, **stack_kw):
    def build(st):
        p = auth0_provider(st)
        remote = p["remote_jwks"]
        for k, v in (jwks_settings or {}).items():
            if isinstance(v, dict):
                remote[k].update(v)
            else:
                remote[k] = v
        if discovery:
            p.pop("remote_jwks")
            remote["http_uri"]["uri"] = f"http://127.0.0.1:{st.jwks.port}/.well-known/openid-configuration"
            p["discovery"] = remote
        return {"providers": {"auth0": p}}
    return Stack(build, **stack_kw)


def test_jwks_down_at_start_fails_fast_then_recovers_when_it_comes_up():
    s = single({"http_uri": {"timeout": "5s"}}, start_jwks=False)
    try:
        s.envoy.start()
        # The first fetch is refused at once: the waiting request gets 503 then, not after 5 s.
        t0 = time.time()
        r = request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT)))
        took = time.time() - t0
        assert r.status == 503, r.body
        assert r.headers.get("retry-after") == "1"
        assert r.json()["error"] == "temporarily_unavailable"
        assert took < 2.0, f"held {took:.2f}s though the fetch failed at once"
        log = s.envoy.wait_log("JWKS fetch via cluster jwks failed (cause connect)")
        assert "could not connect to the JWKS host" in log
        s.jwks.start()
        assert wait_until(lambda: request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT))).status == 200,
                          15), "keys load on a retry once the JWKS host is up"
    finally:
        s.stop()


def test_one_fetch_per_refresh_for_four_workers():
    s = single({"cache_duration": "2s"}, concurrency=4)
    try:
        s.envoy.start()
        token = s.signer.access_token(API, CLIENT)
        end = time.time() + 9
        while time.time() < end:
            assert request(s.listen, "/", bearer(token)).status == 200
            time.sleep(0.05)
        times = s.jwks.fetch_times()
        gaps = [b - a for a, b in zip(times, times[1:])]
        print(f"\n4 workers, cache_duration 2s, 9s: {len(times)} fetches, gaps {[round(g, 2) for g in gaps]}")
        # One fetch per refresh interval for the whole Envoy: never two within an interval.
        assert all(g >= 1.5 for g in gaps), gaps
        assert 3 <= len(times) <= 6, times
    finally:
        s.stop()


def test_refresh_failures_keep_keys_until_stale_if_error_then_503():
    s = single({"cache_duration": "1s", "stale_if_error": "4s"})
    try:
        s.envoy.start()
        token = s.signer.access_token(API, CLIENT)
        assert request(s.listen, "/", bearer(token)).status == 200
        s.jwks.fail(500)
        failed_at = time.time()
        n = s.jwks.fetch_count
        assert wait_until(lambda: s.jwks.fetch_count >= n + 2, 5), "refreshes were attempted"
        assert time.time() - failed_at < 4
        assert request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT, jti="x"))).status == 200, "stale keys"
        assert wait_until(lambda: request(s.listen, "/", bearer(token)).status == 503, 10), "past stale_if_error"
        assert time.time() - failed_at >= 3.0
        s.envoy.wait_log("status 500")
    finally:
        s.stop()


def test_rotation_new_kid_passes_after_one_refetch_and_old_key_fails():
    s = single()
    try:
        s.envoy.start()
        old = s.signer.access_token(API, CLIENT)
        assert request(s.listen, "/", bearer(old)).status == 200
        before = s.jwks.fetch_count
        s.signer.rotate("rsa-2")
        s.jwks.set_jwks(s.signer.jwks())
        new = s.signer.access_token(API, CLIENT)
        r = request(s.listen, "/", bearer(new))
        assert r.status == 200, r.body
        assert s.jwks.fetch_count == before + 1, "exactly one refetch"
        r = request(s.listen, "/", bearer(old))
        assert r.status == 401
        assert "unknown kid" in r.json()["error_description"]
        # The README promises a warning for each unknown-kid refetch.
        log = s.envoy.wait_log("saw an unknown kid; refetching its keys")
        line = next(l for l in log.splitlines() if "saw an unknown kid" in l)
        assert "[warning]" in line, line
    finally:
        s.stop()


def test_flood_of_forged_kids_is_rate_limited():
    s = single()
    try:
        s.envoy.start()
        assert request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT))).status == 200
        before = s.jwks.fetch_count
        statuses = []
        for _ in range(200):
            forged = s.signer.access_token(API, CLIENT, headers={"kid": uuid.uuid4().hex})
            statuses.append(request(s.listen, "/", bearer(forged)).status)
        extra = s.jwks.fetch_count - before
        print(f"\n200 forged kids: {extra} extra JWKS fetches, statuses {set(statuses)}")
        assert extra <= 1, "at most one refetch per 30 s"
        assert set(statuses) == {401}
        assert request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT))).status == 200
    finally:
        s.stop()


def test_bad_jwks_responses_keep_the_old_keys():
    s = single({"cache_duration": "1s"})
    try:
        s.envoy.start()
        token = s.signer.access_token(API, CLIENT)
        assert request(s.listen, "/", bearer(token)).status == 200
        for body, needle in [(b"garbage", "not JSON"), (b"<html><body>login</body></html>", "not JSON"),
                             (json.dumps({"keys": []}).encode(), "`keys` is empty"),
                             (json.dumps({"kid": "x"}).encode(), "no `keys`"),
                             (b"{" + b" " * (300 * 1024) + b"}", "exceeds")]:
            # Start each variant from a good fetch, so retries are not yet backed off.
            s.jwks.set_jwks(s.signer.jwks())
            n = s.jwks.fetch_count
            assert wait_until(lambda: s.jwks.fetch_count >= n + 1, 5)
            s.jwks.fail(200, body)
            n = s.jwks.fetch_count
            assert wait_until(lambda: s.jwks.fetch_count >= n + 1, 5)
            s.envoy.wait_log(needle)
            r = request(s.listen, "/", bearer(token))
            assert r.status == 200, (needle, r.body)
        log = s.envoy.log()
        assert "login" not in log, "never log the body"
    finally:
        s.stop()


def test_discovery_with_matching_issuer():
    s = single(discovery=True)
    s.jwks.serve("/.well-known/openid-configuration",
                 {"issuer": ISSUER, "jwks_uri": f"http://127.0.0.1:{s.jwks.port}/keys"})
    try:
        s.envoy.start()
        r = request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT)))
        assert r.status == 200, r.body
        paths = [p for _, p in s.jwks.fetches]
        assert "/.well-known/openid-configuration" in paths and "/keys" in paths
    finally:
        s.stop()


def test_discovery_with_mismatching_issuer_is_refused_and_logged():
    s = single(discovery=True)
    s.jwks.serve("/.well-known/openid-configuration",
                 {"issuer": "https://impostor.example.com/", "jwks_uri": f"http://127.0.0.1:{s.jwks.port}/keys"})
    try:
        s.envoy.start()
        r = request(s.listen, "/", bearer(s.signer.access_token(API, CLIENT)))
        assert r.status == 503
        log = s.envoy.wait_log("is not the configured issuer")
        assert "impostor.example.com" in log
        assert "/keys" not in [p for _, p in s.jwks.fetches], "the JWKS of a mismatching issuer is never fetched"
    finally:
        s.stop()

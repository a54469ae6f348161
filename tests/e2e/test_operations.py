"""Operations in real Envoy: exact metric values after known traffic, and decision logs that
name the client and never the token."""

import re
import time
import urllib.request

from conftest import API, CLIENT, Stack, auth0_provider
from jwtguard_support import request


def bearer(token):
    return {"authorization": f"Bearer {token}"}


def test_metrics_and_logs_after_known_traffic():
    s = Stack(lambda st: {"providers": {"auth0": auth0_provider(st)}})
    try:
        s.envoy.start()
        stat = lambda name: int(s.envoy.stats("jwt_guard").get(f"wasmcustom.jwt_guard.{name}", "-1"))
        deadline = time.time() + 10
        while stat("provider.auth0.jwks_fetch.success") != 1 and time.time() < deadline:
            time.sleep(0.05)

        good = s.signer.access_token(API, CLIENT)
        id_token = s.signer.id_token(CLIENT)
        expired = s.signer.access_token(API, CLIENT, exp=int(time.time()) - 3600)
        traffic = [(good, 200), (good, 200), (good, 200), (id_token, 401), (id_token, 401),
                   ("8xLOxBtZp8ZQ0B9rkT3ryq0T8hpgJw0Q", 401), (None, 401), (expired, 401)]
        for token, want in traffic:
            r = request(s.listen, "/api", bearer(token) if token else {})
            assert r.status == want, (token, r.body)
        # A CORS preflight passes unchecked (bypass_cors_preflight), counted apart.
        r = request(s.listen, "/api", method="OPTIONS",
                    headers={"origin": "https://app.example", "access-control-request-method": "GET"})
        assert r.status == 200, r.body

        expected = {
            "requests.allowed": 4,
            "requests.preflight": 1,
            "requests.paused": 0,
            "requests.denied.id_token": 2,
            "requests.denied.opaque": 1,
            "requests.denied.missing": 1,
            "requests.denied.expired": 1,
            "requests.denied.bad_signature": 0,
            "provider.auth0.allowed": 3,
            "provider.auth0.denied.id_token": 2,
            "provider.auth0.denied.opaque": 1,
            "provider.auth0.denied.missing": 1,
            "provider.auth0.denied.expired": 1,
            # Hits: the 2nd and 3rd valid requests, and the 2nd ID token (a permanent
            # rejection, answered by the negative cache). Misses: the first of each token.
            "provider.auth0.cache.hit": 3,
            "provider.auth0.cache.miss": 4,
            "provider.auth0.jwks_fetch.success": 1,
            "provider.auth0.jwks_fetch.failure": 0,
            "provider.auth0.keys_loaded": 2,
        }
        # Counts reach Envoy on the plugin's next tick (every 200 ms).
        deadline = time.time() + 3
        while (got := {k: stat(k) for k in expected}) != expected and time.time() < deadline:
            time.sleep(0.1)
        assert got == expected

        with urllib.request.urlopen(f"http://127.0.0.1:{s.admin}/stats/prometheus", timeout=5) as r:
            prom = r.read().decode()
        assert re.search(r"^jwt_guard_requests_allowed\{\} 4$", prom, re.M), prom[:2000]
        assert re.search(r"^jwt_guard_requests_preflight\{\} 1$", prom, re.M), prom[:2000]
        assert re.search(r"^jwt_guard_provider_auth0_denied_id_token\{\} 2$", prom, re.M)

        log = s.envoy.wait_log("sent an ID token instead of an access token")
        assert log.count(f"client {CLIENT} sent an ID token") == 1, "rate-limited per client"
        line = next(l for l in log.splitlines() if "reason=id_token" in l)
        assert "provider=auth0" in line and "kid=rsa-1" in line and "sub=auth0|user-42" in line
        assert re.search(r"token=[0-9a-f]{16}", line), line
        for secret in (good, id_token, expired):
            assert secret not in log and secret.split(".")[2] not in log, "a token reached the log"
    finally:
        s.stop()

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from jwtguard_support import (  # noqa: E402
    WASM, EchoUpstream, Envoy, JwksServer, Signer, envoy_command, envoy_yaml, free_port,
)

ISSUER = "https://tenant.example.com/"
API = "https://api.example.com"
CLIENT = "client-123"
PARTNER_ISSUER = "https://partner.example.org"
PARTNER_API = "partner-api"


def pytest_sessionstart(session):
    # A missing Envoy or .wasm is a failure, never a skip.
    if not WASM.exists():
        raise pytest.UsageError(f"{WASM} is missing: run `make build` first")
    import shutil
    if not shutil.which(envoy_command()[0]):
        raise pytest.UsageError(f"Envoy not found ({envoy_command()[0]}): run `make envoy` or set ENVOY")


# The modules that take longest (measured 2026-12-07: 60, 46, 46 and 43 s of 332 s in all), first:
# `make e2e` hands whole modules to 4 workers in collection order (--no-loadscope-reorder), and
# one of these started last ran alone for its last minute while the other workers sat idle.
LONGEST_FIRST = ["test_survival.py", "test_import.py", "test_jwks_faults.py", "test_jwks_lifecycle.py",
                 "test_core.py", "test_sender_constrained.py", "test_crash_recovery.py"]


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: a module's tests keep their order and stay together


class Stack:
    """Envoy + JWKS server + echo upstream, torn down together."""

    def __init__(self, plugin_config_fn, signer=None, concurrency=1, jwks_delay=0.0, start_jwks=True,
                 failure_policy="FAIL_RELOAD", wasm=None):
        # `start_jwks=False`: the JWKS port is reserved but nothing listens until `jwks.start()`.
        self.signer = signer or Signer(ISSUER)
        self.jwks = JwksServer(self.signer.jwks())
        self.jwks.delay = jwks_delay
        if start_jwks:
            self.jwks.start()
        self.upstream = EchoUpstream().start()
        self.listen, self.admin = free_port(), free_port()
        self.config = plugin_config_fn(self)
        extra = {"wasm": wasm} if wasm else {}
        self.envoy = Envoy(envoy_yaml(listen=self.listen, admin=self.admin, upstream=self.upstream.port,
                                      jwks=self.jwks.port, plugin_config=self.config,
                                      failure_policy=failure_policy, **extra),
                           self.admin, self.listen, concurrency=concurrency)

    def stop(self):
        self.envoy.stop()
        self.jwks.stop()
        self.upstream.stop()


def auth0_provider(stack, **extra):
    p = {
        "issuer": ISSUER,
        "audiences": [API],
        "id_token_audiences": [CLIENT],
        "remote_jwks": {"http_uri": {"uri": f"http://127.0.0.1:{stack.jwks.port}/.well-known/jwks.json",
                                     "cluster": "jwks", "timeout": "2s"}, "cache_duration": "600s"},
        "from_params": ["access_token"],
        "forward_payload_header": "x-jwt-payload",
        "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"},
                             {"header_name": "x-jwt-azp", "claim_name": "azp"}],
    }
    p.update(extra)
    return p


@pytest.fixture(scope="session")
def partner_signer():
    return Signer(PARTNER_ISSUER, rsa_kid="partner-rsa", ec_kid="partner-ec")


def main_config(partner_signer):
    import json

    def build(stack):
        return {
            "realm": "api",
            "providers": {
                "auth0": auth0_provider(stack),
                "partner": {
                    "issuer": PARTNER_ISSUER,
                    "audiences": [PARTNER_API],
                    "local_jwks": {"inline_string": json.dumps(partner_signer.jwks())},
                    "from_headers": [{"name": "x-partner-token"}],
                    "from_cookies": ["partner_session"],
                    "claim_to_headers": [{"header_name": "x-partner-sub", "claim_name": "sub"}],
                },
            },
            "rules": [
                {"match": {"prefix": "/healthz"}},
                {"match": {"path": "/admin", "methods": ["POST"]}, "requires": {"provider_name": "auth0"},
                 "scopes": ["admin:write"]},
                {"match": {"prefix": "/public"},
                 "requires": {"requires_any": {"requirements": [{"provider_name": "auth0"}, {"allow_missing": {}}]}}},
                {"match": {"prefix": "/optional"}, "requires": {"allow_missing_or_failed": {}}},
                {"match": {"prefix": "/partner"}, "requires": {"provider_name": "partner"}},
                {"match": {"prefix": "/both"},
                 "requires": {"requires_all": {"requirements": [{"provider_name": "auth0"}, {"provider_name": "partner"}]}}},
                {"match": {"prefix": "/either"},
                 "requires": {"requires_any": {"requirements": [{"provider_name": "auth0"}, {"provider_name": "partner"}]}}},
                {"match": {"prefix": "/api"}, "requires": {"provider_name": "auth0"}},
            ],
        }
    return build


@pytest.fixture(scope="session")
def stack(partner_signer):
    s = Stack(main_config(partner_signer))
    s.envoy.start()
    yield s
    s.stop()

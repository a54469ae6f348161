"""`make run`: a demo identity provider, an echo upstream and Envoy with envoy/envoy.yaml.

The demo IdP serves a JWKS on 127.0.0.1:10002 and mints a real access token (aud = the API)
and a real ID token (aud = the client). The script checks both against the running Envoy,
prints ready-to-paste curl commands, and stops everything on Ctrl-C.
"""

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jwtguard_support import ROOT, EchoUpstream, Envoy, JwksServer, Signer, request  # noqa: E402

ISSUER = "https://demo-idp.jwt-guard.test/"
API = "https://api.demo.test"
CLIENT = "demo-client"
LISTEN, ADMIN, UPSTREAM, IDP = 10000, 9901, 10001, 10002


def main() -> int:
    # Ctrl-C at any moment, even during start-up, ends in the cleanup below: Envoy runs in
    # its own session and would otherwise outlive the demo.
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signer = Signer(ISSUER, rsa_kid="demo-rsa-1", ec_kid="demo-ec-1")
    started = []
    try:
        try:
            started.append(JwksServer(signer.jwks(), port=IDP).start())
            started.append(EchoUpstream(port=UPSTREAM).start())
        except OSError as e:
            print(f"cannot bind the demo ports 10001/10002 on 127.0.0.1: {e}", file=sys.stderr)
            return 1
        # The config names the .wasm relative to the repository root.
        os.chdir(ROOT)
        envoy = Envoy((ROOT / "envoy" / "envoy.yaml").read_text(), ADMIN, LISTEN, log_level="warning")
        started.append(envoy)
        try:
            envoy.start()
        except RuntimeError as e:
            print(f"Envoy did not start: {e}", file=sys.stderr)
            return 1

        access = signer.access_token(API, CLIENT, lifetime=24 * 3600)
        admin = signer.access_token(API, CLIENT, lifetime=24 * 3600, claims={"permissions": ["admin:write"]})
        id_token = signer.id_token(CLIENT, lifetime=24 * 3600)
        for name, token, want in [("access token", access, 200), ("ID token", id_token, 401)]:
            got = request(LISTEN, "/api/hello", {"authorization": f"Bearer {token}"}).status
            mark = "ok" if got == want else "UNEXPECTED"
            print(f"self-check: {name} -> {got} (expected {want}) {mark}")

        url = f"http://127.0.0.1:{LISTEN}"
        print(f"""
jwt-guard demo is running: Envoy on {url}, admin on http://127.0.0.1:{ADMIN}
Demo IdP issuer {ISSUER}, JWKS http://127.0.0.1:{IDP}/.well-known/jwks.json

# An access token for the API: 200, and the upstream echoes the claim headers it received
curl -i {url}/api/hello -H 'Authorization: Bearer {access}'

# An ID token (aud = the client, not the API): 401 with the ID-token message
curl -i {url}/api/hello -H 'Authorization: Bearer {id_token}'

# No token: 401 with a bare `WWW-Authenticate: Bearer realm="demo-api"`
curl -i {url}/api/hello

# An opaque token: 401 telling the client to request a JWT for the API's audience
curl -i {url}/api/hello -H 'Authorization: Bearer 8xLOxBtZp8ZQ0B9rkT3ryq0T8hpgJw0Q'

# POST /admin needs the admin:write scope: 403 with the first token, 200 with this one
curl -i -X POST {url}/admin -H 'Authorization: Bearer {admin}'

# jwt-guard's metrics from Envoy's admin endpoint
curl -s http://127.0.0.1:{ADMIN}/stats | grep jwt_guard

Envoy log: {envoy.log_path}
Press Ctrl-C to stop.""", flush=True)
        while not stop["now"]:
            if envoy.proc.poll() is not None:
                print(f"Envoy exited with {envoy.proc.returncode}; see {envoy.log_path}", file=sys.stderr)
                break
            time.sleep(0.2)
        return 0
    finally:
        for thing in reversed(started):
            thing.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())

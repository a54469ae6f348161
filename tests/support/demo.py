"""`make run`: a demo identity provider, an echo upstream, a browser app's page and Envoy with
envoy/envoy.yaml.

The demo IdP serves a JWKS on 127.0.0.1:10002 and mints a real access token (aud = the API)
and a real ID token (aud = the client). The page on http://127.0.0.1:10003 is a browser app on
another origin that calls the API with each. The script checks both tokens against the running
Envoy, prints ready-to-paste curl commands, and stops everything on Ctrl-C.
`Demo` is also what tests/e2e/test_browser.py starts, on free ports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dpop import DpopKey  # noqa: E402
from jwtguard_support import ROOT, EchoUpstream, Envoy, JwksServer, Signer, _Server, request  # noqa: E402

ISSUER = "https://demo-idp.jwt-guard.test/"
API = "https://api.demo.test"
CLIENT = "demo-client"
# The ports envoy/envoy.yaml names.
PORTS = {"listen": 10000, "admin": 9901, "upstream": 10001, "idp": 10002, "page": 10003}
PAGE = Path(__file__).resolve().parent / "demo_page.html"
# The demo client's DPoP key, for making proofs with tests/support/dpop.py.
DPOP_KEY = ROOT / "target" / "demo" / "dpop-client.pem"


def demo_envoy_yaml(ports: dict) -> str:
    """envoy/envoy.yaml with its ports moved to `ports` (every `port_value: N` and `127.0.0.1:N`)."""
    text = (ROOT / "envoy" / "envoy.yaml").read_text()
    for name, default in PORTS.items():
        text = re.sub(rf"(port_value: |127\.0\.0\.1:){default}\b", rf"\g<1>{ports[name]}", text)
    return text


class _PageHandler(BaseHTTPRequestHandler):
    owner = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path not in ("/", "/index.html"):
            self.send_error(404)
            return
        body = self.owner.html.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class PageServer(_Server):
    """Serves the browser app's page, with the API's URL and the two tokens filled in."""

    def __init__(self, api_url: str, tokens: dict, port: int = 0):
        super().__init__(type("PageHandler", (_PageHandler,), {}), port)
        self.html = PAGE.read_text().replace("{{API}}", api_url).replace("{{TOKENS}}", json.dumps(tokens))


class Demo:
    """Everything `make run` starts. `start()` raises OSError when a port is taken and
    RuntimeError when Envoy does not come up; `stop()` undoes whatever did start."""

    def __init__(self, ports: dict | None = None, log_level: str = "warning"):
        self.ports = dict(ports or PORTS)
        self.signer = Signer(ISSUER, rsa_kid="demo-rsa-1", ec_kid="demo-ec-1")
        self.access = self.signer.access_token(API, CLIENT, lifetime=24 * 3600)
        self.admin_token = self.signer.access_token(API, CLIENT, lifetime=24 * 3600,
                                                    claims={"permissions": ["admin:write"]})
        self.id_token = self.signer.id_token(CLIENT, lifetime=24 * 3600)
        self.dpop_key = DpopKey()
        self.dpop_token = self.signer.access_token(API, CLIENT, lifetime=24 * 3600,
                                                   claims={"cnf": {"jkt": self.dpop_key.jkt()}})
        self.api_url = f"http://127.0.0.1:{self.ports['listen']}"
        self.page_url = f"http://127.0.0.1:{self.ports['page']}/"
        self.log_level = log_level
        self.started: list = []
        self.envoy = None

    def save_dpop_key(self) -> Path:
        from cryptography.hazmat.primitives import serialization
        DPOP_KEY.parent.mkdir(parents=True, exist_ok=True)
        DPOP_KEY.write_bytes(self.dpop_key.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return DPOP_KEY

    def start(self) -> "Demo":
        p = self.ports
        self.started.append(JwksServer(self.signer.jwks(), port=p["idp"]).start())
        self.started.append(EchoUpstream(port=p["upstream"]).start())
        self.started.append(PageServer(f"{self.api_url}/api/hello",
                                       {"access": self.access, "id": self.id_token}, port=p["page"]).start())
        # The config names the .wasm relative to the repository root.
        os.chdir(ROOT)
        self.envoy = Envoy(demo_envoy_yaml(p), p["admin"], p["listen"], log_level=self.log_level)
        self.started.append(self.envoy)
        self.envoy.start()
        return self

    def stop(self):
        for thing in reversed(self.started):
            thing.stop()
        self.started = []


def main() -> int:
    # Ctrl-C at any moment, even during start-up, ends in the cleanup below: Envoy runs in
    # its own session and would otherwise outlive the demo.
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    demo = Demo()
    try:
        try:
            demo.start()
        except OSError as e:
            print(f"cannot bind the demo ports 10001-10003 on 127.0.0.1: {e}", file=sys.stderr)
            return 1
        except RuntimeError as e:
            print(f"Envoy did not start: {e}", file=sys.stderr)
            return 1

        listen = demo.ports["listen"]
        for name, token, want in [("access token", demo.access, 200), ("ID token", demo.id_token, 401)]:
            got = request(listen, "/api/hello", {"authorization": f"Bearer {token}"}).status
            mark = "ok" if got == want else "UNEXPECTED"
            print(f"self-check: {name} -> {got} (expected {want}) {mark}")
        hello = f"{demo.api_url}/api/hello"
        checks = [("DPoP-bound token with a proof", [("dpop", demo.dpop_key.proof("GET", hello, demo.dpop_token))], "DPoP", 200),
                  ("DPoP-bound token as Bearer", [], "Bearer", 401)]
        for name, extra, scheme, want in checks:
            headers = [("host", f"127.0.0.1:{listen}"), ("authorization", f"{scheme} {demo.dpop_token}")] + extra
            got = request(listen, "/api/hello", headers).status
            mark = "ok" if got == want else "UNEXPECTED"
            print(f"self-check: {name} -> {got} (expected {want}) {mark}")
        key_file = demo.save_dpop_key()

        url = demo.api_url
        print(f"""
jwt-guard demo is running: Envoy on {url}, admin on http://127.0.0.1:{demo.ports['admin']}
Demo IdP issuer {ISSUER}, JWKS http://127.0.0.1:{demo.ports['idp']}/.well-known/jwks.json

# A browser app on another origin, calling the API with the access token, the ID token and none
open {demo.page_url}

# An access token for the API: 200, and the upstream echoes the claim headers it received
curl -i {url}/api/hello -H 'Authorization: Bearer {demo.access}'

# An ID token (aud = the client, not the API): 401 with the ID-token message
curl -i {url}/api/hello -H 'Authorization: Bearer {demo.id_token}'

# No token: 401 with a bare `WWW-Authenticate: Bearer realm="demo-api"`
curl -i {url}/api/hello

# An opaque token: 401 telling the client to request a JWT for the API's audience
curl -i {url}/api/hello -H 'Authorization: Bearer 8xLOxBtZp8ZQ0B9rkT3ryq0T8hpgJw0Q'

# A DPoP-bound token (cnf.jkt = the thumbprint of the key in {key_file}): with a fresh proof
# per request it passes; as a bearer token, or with the same proof twice, it is refused
DPOP_AT='{demo.dpop_token}'
curl -i {url}/api/hello -H "Authorization: DPoP $DPOP_AT" \\
  -H "DPoP: $(.venv/bin/python tests/support/dpop.py --key {key_file} --method GET --url {url}/api/hello --token $DPOP_AT)"

# POST /admin needs the admin:write scope: 403 with the first token, 200 with this one
curl -i -X POST {url}/admin -H 'Authorization: Bearer {demo.admin_token}'

# jwt-guard's metrics from Envoy's admin endpoint
curl -s http://127.0.0.1:{demo.ports['admin']}/stats | grep jwt_guard

Envoy log: {demo.envoy.log_path}
Press Ctrl-C to stop.""", flush=True)
        while not stop["now"]:
            if demo.envoy.proc.poll() is not None:
                print(f"Envoy exited with {demo.envoy.proc.returncode}; see {demo.envoy.log_path}", file=sys.stderr)
                break
            time.sleep(0.2)
        return 0
    finally:
        demo.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())

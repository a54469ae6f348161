"""Host-side helpers shared by the e2e tests and the `make run` demo.

- `Signer`: RSA and EC keys, a JWKS for them, and token minting (access and ID tokens).
- `JwksServer`, `EchoUpstream` and `free_port`: from servers.py, re-exported.
- `Envoy`: starts any Envoy (`ENVOY`, default `.venv/bin/envoy`) on a generated config.
Every server binds to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from servers import EchoUpstream, JwksServer, _Server, free_port, wait_until  # noqa: F401 (tests import them from here)

ROOT = Path(__file__).resolve().parents[2]
OIDC = ROOT / "tests" / "support" / "oidc"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "jwt_guard.wasm"
# The command line: `make e2e` points this at the host test build (make lint compiled it).
CLI = Path(os.environ.get("JWT_GUARD_CLI", ROOT / "target" / "release" / "jwt-guard"))


@contextmanager
def oidc_provider(api_base: str, **env):
    """The real OpenID Provider (oidc-provider, tests/support/oidc/provider.mjs) on a free
    127.0.0.1 port, with `env` added to its environment; yields its issuer, port and `env`."""
    assert (OIDC / "node_modules" / "oidc-provider").exists(), \
        "oidc-provider is not installed: make deps (npm ci in tests/support/oidc)"
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="jwt-guard-oidc-", suffix=".log", delete=False)
    proc = subprocess.Popen(["node", str(OIDC / "provider.mjs")],
                            env=dict(os.environ, PORT=str(port), API_BASE=api_base, **env),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    issuer = f"http://127.0.0.1:{port}"
    try:
        ready = wait_until(lambda: f"ready {issuer}" in Path(log.name).read_text() or proc.poll() is not None, 30)
        assert ready and proc.poll() is None, Path(log.name).read_text()
        yield {"issuer": issuer, "port": port, **env}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(log.name)


# ------------------------------------------------------------------ keys and tokens


class Signer:
    """An issuer's signing keys. `rotate()` replaces the RSA key with a new kid."""

    def __init__(self, issuer: str, rsa_kid: str = "rsa-1", ec_kid: str = "ec-1"):
        self.issuer = issuer
        self.rsa_kid = rsa_kid
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_kid = ec_kid
        self.ec = ec.generate_private_key(ec.SECP256R1())

    def rotate(self, new_kid: str) -> None:
        self.rsa_kid = new_kid
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict:
        rsa_jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        rsa_jwk.update({"kid": self.rsa_kid, "alg": "RS256", "use": "sig"})
        ec_jwk = json.loads(pyjwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        ec_jwk.update({"kid": self.ec_kid, "alg": "ES256", "use": "sig"})
        return {"keys": [rsa_jwk, ec_jwk]}

    def token(self, claims: dict | None = None, alg: str = "RS256", headers: dict | None = None,
              lifetime: int = 3600, **overrides) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "iat": now, "exp": now + lifetime}
        body.update(claims or {})
        body.update(overrides)
        body = {k: v for k, v in body.items() if v is not None}
        key, kid = (self.rsa, self.rsa_kid) if alg.startswith(("RS", "PS")) else (self.ec, self.ec_kid)
        hdr = {"kid": kid}
        hdr.update(headers or {})
        return pyjwt.encode(body, key, algorithm=alg, headers=hdr)

    def access_token(self, audience: str, client_id: str, **kw) -> str:
        """Shaped like an Auth0 access token (RFC 9068 profile)."""
        claims = {"sub": "auth0|user-42", "aud": [audience, self.issuer + "userinfo"], "azp": client_id,
                  "scope": "openid profile read:items", "permissions": ["read:items"]}
        claims.update(kw.pop("claims", {}))
        headers = {"typ": "at+jwt"}
        headers.update(kw.pop("headers", {}))
        return self.token(claims, headers=headers, **kw)

    def id_token(self, client_id: str, **kw) -> str:
        """Shaped like an Auth0 ID token: aud is the client, nonce present, typ JWT."""
        claims = {"sub": "auth0|user-42", "aud": client_id, "nonce": "n-0S6_WzA2Mj",
                  "name": "Jane Doe", "email": "jane@example.com"}
        claims.update(kw.pop("claims", {}))
        return self.token(claims, headers={"typ": "JWT"}, **kw)


# ------------------------------------------------------------------ envoy


def envoy_command() -> list[str]:
    return shlex.split(os.environ.get("ENVOY") or str(ROOT / ".venv" / "bin" / "envoy"))


def wasm_filter_yaml(wasm: Path, config_text: str, failure_policy: str = "FAIL_CLOSED",
                     name: str = "jwt_guard", env: dict | None = None) -> str:
    """An `envoy.filters.http.wasm` entry for `http_filters` (indented for the HCM below);
    `env` becomes the VM's environment (`vm_config.environment_variables`)."""
    env_yaml = ""
    if env:
        env_yaml = "\n                  environment_variables:\n                    key_values: " + json.dumps(env)
    return f"""          - name: {name}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {name}
                root_id: {name}
                failure_policy: {failure_policy}
                vm_config:
                  vm_id: {name}
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: "{wasm}"}}}}{env_yaml}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {json.dumps(config_text)}"""


def static_cluster_yaml(name: str, port: int) -> str:
    """A cluster with one endpoint on 127.0.0.1 (indented for `clusters:`)."""
    return f"""  - name: {name}
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: {name}
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]"""


def listener_yaml(*, admin: int, listen: int, routes: str, filters: str, clusters: list[str],
                  transport_socket: str = "") -> str:
    """Admin, one HTTP listener with normalized paths, `filters` then the router, `clusters`;
    `transport_socket` (the filter chain's `transport_socket:` entry, indented 6) makes it TLS."""
    cluster_text = ("  clusters:\n" + "\n".join(clusters)) if clusters else ""
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: ingress
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          normalize_path: true
          merge_slashes: true
          route_config:
            virtual_hosts:
            - name: api
              domains: ["*"]
              routes:
{routes}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
{transport_socket}
{cluster_text}
"""


def envoy_yaml(*, listen: int, admin: int, upstream: int, jwks: int, plugin_config,
               wasm: Path = WASM, failure_policy: str = "FAIL_RELOAD") -> str:
    """The e2e Envoy: jwt-guard then the router; `/direct` answers at once (load tests, so a
    slow test upstream is never the bottleneck), the rest goes to `upstream`; a `jwks` cluster."""
    config_text = plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config)
    routes = """              - match: {prefix: "/direct"}
                direct_response: {status: 200, body: {inline_string: "ok"}}
              - match: {prefix: "/"}
                route: {cluster: upstream}"""
    return listener_yaml(admin=admin, listen=listen, routes=routes,
                         filters=wasm_filter_yaml(wasm, config_text, failure_policy),
                         clusters=[static_cluster_yaml("upstream", upstream), static_cluster_yaml("jwks", jwks)])


class Envoy:
    """A real Envoy process. `start()` waits until the admin endpoint says LIVE."""

    def __init__(self, yaml_text: str, admin_port: int, listen_port: int, concurrency: int = 1,
                 log_level: str = "info"):
        self.yaml_text = yaml_text
        self.admin_port = admin_port
        self.listen_port = listen_port
        self.concurrency = concurrency
        self.log_level = log_level
        self.proc = None
        self.dir = Path(tempfile.mkdtemp(prefix="jwt-guard-envoy-"))
        self.log_path = self.dir / "envoy.log"
        self._last_log = ""

    def start(self, wait: bool = True) -> "Envoy":
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "envoy.yaml"
        cfg.write_text(self.yaml_text)
        cmd = envoy_command() + ["-c", str(cfg), "--concurrency", str(self.concurrency),
                                 "--use-dynamic-base-id", "-l", self.log_level,
                                 "--component-log-level", "wasm:debug",
                                 "--log-path", str(self.log_path),
                                 "--file-flush-interval-msec", "100"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy not ready after {timeout}s:\n{self.log()[-4000:]}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        """Envoy's log; after `stop()` removed the directory, the log as it was then."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return self._last_log

    def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        """The log once it contains `needle` (Envoy flushes its log file periodically)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log()
            if needle in text:
                return text
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not in Envoy's log:\n{self.log()[-3000:]}")

    def stats(self, filter_: str = "") -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats?filter={filter_}", timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                name, _, value = line.partition(": ")
                out[name] = value
            return out

    def vm_reloads(self, vm_id: str = "jwt_guard") -> dict:
        """Envoy's VM reload counters for `vm_id` (vm_reload, vm_reload_backoff, ...), by name."""
        prefix = f"wasm.{vm_id}.vm_reload"
        return {k.rsplit(".", 1)[1]: int(v) for k, v in self.stats("wasm").items() if k.startswith(prefix)}

    def rss_kib(self) -> int:
        """Resident memory of the Envoy process, from /proc."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # The harness leaves nothing in /tmp: the log stays readable from memory
        # (JWT_GUARD_KEEP_TMP=1 keeps the directory for a post-mortem).
        if self.dir.exists() and not os.environ.get("JWT_GUARD_KEEP_TMP"):
            self._last_log = self.log()
            shutil.rmtree(self.dir, ignore_errors=True)


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def echoed(self) -> dict:
        """The upstream echo: which headers reached it, and the path."""
        return self.json()


def request(port: int, path: str = "/", headers: dict | list | None = None, method: str = "GET",
            timeout: float = 30.0) -> Response:
    """An HTTP/1.1 request over a raw socket, so tests can send what urllib refuses to
    (repeated headers, odd whitespace, non-UTF-8 bytes)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = [f"{method} {path} HTTP/1.1".encode(), b"connection: close"]
    if not any(k.lower() == "host" for k, _ in pairs):
        lines.insert(1, b"host: api.test")
    for k, v in pairs:
        vb = v if isinstance(v, bytes) else v.encode()
        lines.append(k.encode() + b": " + vb)
    raw = b"\r\n".join(lines) + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        hdrs: dict = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
        # Read exactly the body: waiting for EOF would add Envoy's delayed-close time.
        length = int(hdrs.get("content-length", ["-1"])[0])
        while length < 0 or len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
            if length < 0 and body.endswith(b"0\r\n\r\n"):
                break
    status = int(status_line.split()[1])
    if "chunked" in ",".join(hdrs.get("transfer-encoding", [])):
        body = _dechunk(body)
    return Response(status, {k: v[0] if len(v) == 1 else v for k, v in hdrs.items()}, body)


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out

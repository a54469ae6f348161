"""The servers the e2e tests start and control, each bound to 127.0.0.1 only.

- `JwksServer`: a JWKS endpoint the test controls (swap keys, fail, go slow, count fetches).
- `EchoUpstream`: answers every request with the method, path and headers it received.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# Ports are handed out from a slice of 10100-30099 per pytest-xdist worker, below Linux's
# ephemeral range (32768 and up): asking the kernel for port 0 can give two callers the same
# port once the first has closed its probe socket (an Envoy's admin and listener ports were
# seen to collide), and outgoing connections take ephemeral ports too. Above make run's demo
# (10000-10003), which test_makefile.py starts while the other workers run: a server of theirs
# on 10001 once made it fail with "Address already in use".
_FIRST_PORT = 10100
_SLICE = 2500
_handed_out: set[int] = set()
_cursor: list[int] = []


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    low = _FIRST_PORT + (index % 8) * _SLICE
    if not _cursor:
        _cursor.append(low + (os.getpid() * 7) % _SLICE)
    for _ in range(_SLICE):
        port = _cursor[0]
        _cursor[0] = low + (port + 1 - low) % _SLICE
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{low + _SLICE - 1}")


class _Listener(ThreadingHTTPServer):
    # Python's default backlog is 5: a burst of requests resumed at once by Envoy's workers
    # would overflow it and time out connecting.
    request_queue_size = 128


class _Server:
    def __init__(self, handler_cls, port: int = 0):
        self.port = port or free_port()
        self.handler_cls = handler_cls
        self.httpd = None
        # (certificate chain file, key file): serve HTTPS instead of HTTP.
        self.tls: tuple[str, str] | None = None

    def start(self):
        handler = self.handler_cls
        handler.owner = self
        self.httpd = _Listener(("127.0.0.1", self.port), handler)
        self.httpd.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


class _JwksHandler(BaseHTTPRequestHandler):
    owner = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.owner
        with srv.lock:
            srv.fetches.append((time.time(), self.path))
            status, body, delay, fault = srv.status, srv.body, srv.delay, srv.fault
            if srv.sequence:
                status, body, fault = srv.sequence[srv.sequence_at % len(srv.sequence)]
                srv.sequence_at += 1
            if self.path in srv.documents:
                status, body = srv.documents[self.path]
        if delay:
            time.sleep(delay)
        if fault and self._fault(fault, body):
            return
        self.send_response(status)
        self.send_header("content-type", srv.content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


    def _fault(self, fault: str, body: bytes) -> bool:
        """Misbehaves as `fault` says; False for faults that only change the answer."""
        w = self.wfile
        if fault == "cut":  # Content-Length lies: 100 bytes of 50,000, then close
            w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50000\r\n\r\n")
            w.write(body[:100])
            w.flush()
            self.close_connection = True
            return True
        if fault == "slowloris":  # headers, then one byte every 0.5 s for up to 6 s
            w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n")
            w.flush()
            try:
                for b in body[:12]:
                    time.sleep(0.5)
                    w.write(bytes([b]))
                    w.flush()
            except OSError:
                pass
            self.close_connection = True
            return True
        if fault == "reset":  # headers and part of the body, then a TCP reset
            w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n")
            w.write(body[:200])
            w.flush()
            time.sleep(0.05)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return True
        if fault == "redirect":
            self.send_response(302)
            self.send_header("location", "https://elsewhere.example/jwks.json")
            self.send_header("content-length", "0")
            self.end_headers()
            return True
        if fault in ("html404", "html500"):
            page = b"<html><body><h1>Error</h1></body></html>"
            self.send_response(int(fault[4:]))
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            w.write(page)
            return True
        if fault == "empty":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "0")
            self.end_headers()
            return True
        if fault == "huge":  # a 10 MB body
            chunk = b" " * 65536
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(160 * len(chunk)))
            self.end_headers()
            try:
                for _ in range(160):
                    w.write(chunk)
            except OSError:
                pass
            return True
        return False


class JwksServer(_Server):
    """Serves whatever JWKS the test sets at any path, and records every fetch. `fault` makes
    it misbehave (see `_JwksHandler._fault`)."""

    def __init__(self, jwks: dict | None = None, port: int = 0):
        super().__init__(type("JwksHandler", (_JwksHandler,), {}), port)
        self.lock = threading.Lock()
        self.fetches: list = []
        self.status = 200
        self.delay = 0.0
        self.content_type = "application/json"
        self.fault = None
        self.body = json.dumps(jwks or {"keys": []}).encode()
        # Per-path overrides, e.g. an OpenID discovery document.
        self.documents: dict = {}
        # Answers given in turn, one per fetch (`answer_in_turn`).
        self.sequence: list = []
        self.sequence_at = 0

    def set_jwks(self, jwks: dict):
        with self.lock:
            self.status, self.body = 200, json.dumps(jwks).encode()

    def fail(self, status: int = 500, body: bytes = b"oops"):
        with self.lock:
            self.status, self.body = status, body

    def answer_in_turn(self, answers: list):
        """Answers fetch i with answers[i % len(answers)], each (status, body, fault); [] stops.
        Chosen under the lock as the fetch is recorded, so no fetch can fall between two turns."""
        with self.lock:
            self.sequence, self.sequence_at = list(answers), 0

    def serve(self, path: str, doc, status: int = 200):
        with self.lock:
            self.documents[path] = (status, doc if isinstance(doc, bytes) else json.dumps(doc).encode())

    @property
    def fetch_count(self) -> int:
        with self.lock:
            return len(self.fetches)

    def fetch_times(self, path_prefix: str = "") -> list:
        with self.lock:
            return [t for t, p in self.fetches if p.startswith(path_prefix)]


class _EchoHandler(BaseHTTPRequestHandler):
    owner = None

    def log_message(self, *args):
        pass

    def _echo(self):
        with self.owner.lock:
            self.owner.requests += 1
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        body = json.dumps({"method": self.command, "path": self.path, "headers": headers}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _echo


class EchoUpstream(_Server):
    def __init__(self, port: int = 0):
        super().__init__(type("EchoHandler", (_EchoHandler,), {}), port)
        self.lock = threading.Lock()
        self.requests = 0


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    """True as soon as `predicate()` is, False if `timeout` seconds pass first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False



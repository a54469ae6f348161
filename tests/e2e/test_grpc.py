"""gRPC clients: a real grpcio client through Envoy (HTTP/2) to a real grpcio server.

A refusal must reach the client library as gRPC status and message: UNAUTHENTICATED with the
plain description (never the JSON body) for a missing token and an ID token, PERMISSION_DENIED
for a missing scope, and WWW-Authenticate in the metadata. An access token reaches the server.
"""

import json
from concurrent import futures

import grpc
import pytest
from conftest import API, CLIENT, ISSUER, auth0_provider

from jwtguard_support import (
    Envoy, JwksServer, Signer, free_port, listener_yaml, static_cluster_yaml, wasm_filter_yaml,
)

METHOD = "/echo.Echo/Call"


def _serve():
    """A gRPC server whose one unary method echoes the request and the authorization metadata."""
    def call(request: bytes, context) -> bytes:
        md = dict(context.invocation_metadata())
        return json.dumps({"echo": request.decode(), "authorization": md.get("authorization"),
                           "x-jwt-sub": md.get("x-jwt-sub")}).encode()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler("echo.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


class _Stack:
    def __init__(self):
        self.signer = Signer(ISSUER)
        self.jwks = JwksServer(self.signer.jwks()).start()
        self.server, self.grpc_port = _serve()
        self.listen, self.admin = free_port(), free_port()
        provider = auth0_provider(self, claim_to_headers=[{"header_name": "x-jwt-sub", "claim_name": "sub"}])
        config = {"providers": {"auth0": provider},
                  "rules": [{"match": {"prefix": "/echo.Echo/"}, "requires": {"provider_name": "auth0"},
                             "scopes": ["read:items"]}]}
        upstream = static_cluster_yaml("grpc", self.grpc_port) + """
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}"""
        routes = """              - match: {prefix: "/"}
                route: {cluster: grpc}"""
        self.envoy = Envoy(listener_yaml(admin=self.admin, listen=self.listen, routes=routes,
                                         filters=wasm_filter_yaml(self._wasm(), json.dumps(config)),
                                         clusters=[upstream, static_cluster_yaml("jwks", self.jwks.port)]),
                           self.admin, self.listen)

    @staticmethod
    def _wasm():
        from jwtguard_support import WASM
        return WASM

    def stop(self):
        self.envoy.stop()
        self.server.stop(None)
        self.jwks.stop()


@pytest.fixture(scope="module")
def stack():
    s = _Stack()
    s.envoy.start()
    yield s
    s.stop()


def _call(stack, token: str | None):
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.listen}")
    try:
        metadata = [("authorization", f"Bearer {token}")] if token else []
        return channel.unary_unary(METHOD)(b"ping", metadata=metadata, timeout=10)
    finally:
        channel.close()


def _refusal(stack, token: str | None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _call(stack, token)
    e = caught.value
    md = dict(e.trailing_metadata() or ()) | dict(e.initial_metadata() or ())
    print(f"grpc client: {e.code()} details={e.details()!r} www-authenticate={md.get('www-authenticate')!r}")
    return e, md


def test_access_token_reaches_the_grpc_server(stack):
    token = stack.signer.access_token(API, CLIENT)
    answer = json.loads(_call(stack, token))
    assert answer["echo"] == "ping"
    assert answer["authorization"] is None, "the token is stripped before the upstream"
    assert answer["x-jwt-sub"] == "auth0|user-42"


def test_missing_token_is_unauthenticated_with_a_plain_message(stack):
    e, md = _refusal(stack, None)
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert e.details() == "This API requires a bearer access token: send `Authorization: Bearer <access token>`."
    assert md["www-authenticate"] == 'Bearer realm="jwt-guard"'


def test_id_token_is_unauthenticated_and_says_so(stack):
    e, md = _refusal(stack, stack.signer.id_token(CLIENT))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert e.details().startswith("An ID token was sent"), e.details()
    assert "{" not in e.details(), "the message is the description, not the JSON body"
    assert 'error="invalid_token"' in md["www-authenticate"]


def test_missing_scope_is_permission_denied(stack):
    token = stack.signer.access_token(API, CLIENT, claims={"scope": "openid", "permissions": []})
    e, md = _refusal(stack, token)
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "read:items" in e.details()
    assert 'error="insufficient_scope"' in md["www-authenticate"]

"""Envoy bootstraps for authorization tests, built as data (JSON is YAML to Envoy): one
listener whose HTTP filters are given as a list, an access log with jwt-guard's filter state,
and the filter configs the tests combine: jwt-guard, Envoy's jwt_authn, `header_to_metadata`
(jwt-guard's payload header into jwt_authn's metadata namespace) and RBAC.

`RBAC policies` come from YAML files in envoy/authz/, in the shapes Istio generates (see the
comment at the top of each file for the istio/istio test data it follows).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from jwtguard_support import ROOT, WASM, EchoUpstream, Envoy, free_port, request

AUTHZ = ROOT / "envoy" / "authz"
JWT_AUTHN_NS = "envoy.filters.http.jwt_authn"
# `:PLAIN`: the typed form shows every wasm property that is not a protobuf as a base64
# BytesValue, declared or not (Envoy's CelState::serializeAsProto; envoyproxy/envoy#38795).
ACCESS_LOG_FORMAT = ("%REQ(:PATH)% %RESPONSE_CODE% principal=%FILTER_STATE(wasm.jwt_guard.principal:PLAIN)% "
                     "reason=%FILTER_STATE(wasm.jwt_guard.reason:PLAIN)%\n")


def guard_filter(config: dict, wasm: Path = WASM) -> dict:
    return {"name": "jwt_guard", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {"name": "jwt_guard", "root_id": "jwt_guard", "failure_policy": "FAIL_CLOSED",
                   "vm_config": {"vm_id": "jwt_guard", "runtime": "envoy.wasm.runtime.v8",
                                 "code": {"local": {"filename": str(wasm)}}},
                   "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                     "value": json.dumps(config)}}}}


def header_to_metadata(key: str = "payload") -> dict:
    """The filter the docs place after jwt-guard: `x-jwt-guard-payload` (base64 of a
    google.protobuf.Value) becomes jwt_authn's metadata under `key`, and the header goes."""
    return yaml.safe_load((AUTHZ / "header_to_metadata.yaml").read_text().replace("key: payload", f"key: {key}"))


def jwt_authn(providers: dict, rules: list) -> dict:
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": providers, "rules": rules}}


def rbac(policy_file: str) -> dict:
    """An RBAC filter from envoy/authz/<policy_file> (its `rules`, as in the RBAC proto)."""
    rules = yaml.safe_load((AUTHZ / policy_file).read_text())
    return {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC", "rules": rules}}


def bootstrap(*, admin: int, listen: int, upstream: int, filters: list, log_path: Path,
              clusters: dict | None = None) -> str:
    """One listener: `filters`, then the router to `upstream`; `clusters` maps extra cluster
    names to 127.0.0.1 ports."""
    def cluster(name: str, port: int) -> dict:
        return {"name": name, "connect_timeout": "1s", "type": "STATIC", "load_assignment": {
            "cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress", "normalize_path": True, "merge_slashes": True,
        "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(log_path), "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}}}}],
        "route_config": {"virtual_hosts": [{"name": "api", "domains": ["*"],
                                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]},
        "http_filters": filters + [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    clusters_list = [cluster("upstream", upstream)] + [cluster(n, p) for n, p in (clusters or {}).items()]
    doc = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{"name": "ingress", "address": {"socket_address": {"address": "127.0.0.1",
                                                                             "port_value": listen}},
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                           "typed_config": hcm}]}]}],
            "clusters": clusters_list,
        },
    }
    return json.dumps(doc, indent=1)


def forged_payload(**claims):
    """What a client would send to pose as someone: a well-formed payload header (string and
    list-of-string claims, each under 128 bytes), written independently of jwt-guard's encoder."""
    def value(v):
        if isinstance(v, str):
            return b"\x1a" + bytes([len(v)]) + v.encode()
        if isinstance(v, list):
            items = b"".join(b"\x0a" + bytes([len(value(i))]) + value(i) for i in v)
            return b"\x32" + bytes([len(items)]) + items
        raise TypeError(v)
    entries = b""
    for k, v in claims.items():
        val = value(v)
        entry = b"\x0a" + bytes([len(k)]) + k.encode() + b"\x12" + bytes([len(val)]) + val
        entries += b"\x0a" + bytes([len(entry)]) + entry
    return base64.b64encode(b"\x2a" + bytes([len(entries)]) + entries).decode()


def run(filters, requests):
    """Starts Envoy with `filters` before the router, sends each (method, path, headers) and
    returns the statuses."""
    upstream = EchoUpstream().start()
    envoy = Envoy("", free_port(), free_port())
    envoy.yaml_text = bootstrap(admin=envoy.admin_port, listen=envoy.listen_port, upstream=upstream.port,
                                filters=filters, log_path=envoy.dir / "access.log")
    try:
        envoy.start()
        return [request(envoy.listen_port, path, headers, method=method).status for method, path, headers in requests]
    finally:
        envoy.stop()
        upstream.stop()

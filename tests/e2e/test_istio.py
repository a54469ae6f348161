"""The Istio manifests in envoy/istio/: field names and enum values checked against Istio's
published CRD schemas (extensions.istio.io/v1alpha1 WasmPlugin, networking.istio.io/v1
ServiceEntry and DestinationRule), the cluster name cross-checked, and the plugin
configuration validated by jwt-guard itself."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from jwtguard_support import ROOT

ANY = object()  # free-form (pluginConfig, label maps)

# Field names from Istio's CRD schemas (customresourcedefinitions.gen.yaml).
WORKLOAD_SELECTOR = {"matchLabels": ANY}
SCHEMAS = {
    ("extensions.istio.io/v1alpha1", "WasmPlugin"): {
        "selector": WORKLOAD_SELECTOR,
        "targetRef": {"group": str, "kind": str, "name": str},
        "targetRefs": [{"group": str, "kind": str, "name": str}],
        "url": str, "sha256": str, "imagePullPolicy": str, "imagePullSecret": str,
        "pluginConfig": ANY, "pluginName": str, "phase": str, "priority": int,
        "vmConfig": {"env": [{"name": str, "value": str, "valueFrom": str}]},
        "match": [{"mode": str, "ports": [{"number": int}]}],
        "failStrategy": str, "type": str, "verificationKey": str,
    },
    ("networking.istio.io/v1", "ServiceEntry"): {
        "hosts": [str], "addresses": [str],
        "ports": [{"number": int, "protocol": str, "name": str, "targetPort": int}],
        "location": str, "resolution": str,
        "endpoints": [ANY], "workloadSelector": {"labels": ANY}, "exportTo": [str], "subjectAltNames": [str],
    },
    ("networking.istio.io/v1", "DestinationRule"): {
        "host": str,
        "trafficPolicy": {
            "loadBalancer": ANY, "connectionPool": ANY, "outlierDetection": ANY, "portLevelSettings": [ANY],
            "tunnel": ANY, "proxyProtocol": ANY,
            "tls": {"mode": str, "clientCertificate": str, "privateKey": str, "caCertificates": str,
                    "credentialName": str, "subjectAltNames": [str], "sni": str, "insecureSkipVerify": bool,
                    "caCrl": str},
        },
        "subsets": [ANY], "exportTo": [str], "workloadSelector": {"matchLabels": ANY},
    },
}
ENUMS = {
    ("WasmPlugin", "phase"): {"UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"},
    ("WasmPlugin", "failStrategy"): {"FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"},
    ("WasmPlugin", "imagePullPolicy"): {"UNSPECIFIED_POLICY", "IfNotPresent", "Always"},
    ("WasmPlugin", "type"): {"UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"},
    ("ServiceEntry", "location"): {"MESH_EXTERNAL", "MESH_INTERNAL"},
    ("ServiceEntry", "resolution"): {"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"},
    ("ServiceEntry", "protocol"): {"HTTP", "HTTPS", "GRPC", "HTTP2", "MONGO", "TCP", "TLS"},
    ("DestinationRule", "mode"): {"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"},
}


def check(value, schema, path, kind):
    if schema is ANY:
        return
    if isinstance(schema, list):
        assert isinstance(value, list), f"{path}: expected a list"
        for i, item in enumerate(value):
            check(item, schema[0], f"{path}[{i}]", kind)
        return
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{path}: expected an object"
        for key, sub in value.items():
            assert key in schema, f"{path}.{key}: not a field of {kind}"
            allowed = ENUMS.get((kind, key))
            if allowed is not None:
                assert sub in allowed, f"{path}.{key}: {sub!r} is not one of {sorted(allowed)}"
            check(sub, schema[key], f"{path}.{key}", kind)
        return
    assert isinstance(value, schema), f"{path}: expected {schema.__name__}, got {value!r}"


def manifests():
    docs = []
    for path in sorted((ROOT / "envoy" / "istio").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs.append((path.name, doc))
    return docs


@pytest.mark.parametrize("name,doc", manifests(), ids=[n for n, _ in manifests()])
def test_manifest_fields_match_istio_crds(name, doc):
    key = (doc["apiVersion"], doc["kind"])
    assert key in SCHEMAS, f"{name}: unexpected {key}"
    assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"}
    assert doc["metadata"]["name"]
    check(doc["spec"], SCHEMAS[key], "spec", doc["kind"])


def by_kind():
    return {doc["kind"]: doc["spec"] for _, doc in manifests()}


def test_cluster_name_is_the_one_istio_generates():
    k = by_kind()
    se, dr, wp = k["ServiceEntry"], k["DestinationRule"], k["WasmPlugin"]
    host, port = se["hosts"][0], se["ports"][0]["number"]
    cluster = wp["pluginConfig"]["providers"]["auth0"]["remote_jwks"]["http_uri"]["cluster"]
    assert cluster == f"outbound|{port}||{host}"
    assert dr["host"] == host and dr["trafficPolicy"]["tls"]["sni"] == host
    assert wp["phase"] == "AUTHN" and wp["failStrategy"] == "FAIL_CLOSE"


def test_plugin_config_passes_jwt_guard_check_config(tmp_path):
    config = tmp_path / "plugin.json"
    config.write_text(json.dumps(by_kind()["WasmPlugin"]["pluginConfig"]))
    cli = ROOT / "target" / "release" / "jwt-guard"
    r = subprocess.run([str(cli), "check-config", str(config)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "OK (1 provider: auth0; 2 rules)" in r.stdout

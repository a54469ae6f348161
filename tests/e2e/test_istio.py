"""The Istio manifests in envoy/istio/ and envoy/migration/ against Istio's real CRD schemas (vendored from istio/api
at one release in tests/vectors/istio/crds.yaml), with unknown fields refused as `kubectl
apply` refuses them (strict field validation, its default), plus what the schemas cannot say:
the cluster name Istio generates, where each plugin applies, and jwt-guard's own check of the
plugin configuration."""

import copy
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from jwtguard_support import CLI, ROOT

CRDS = ROOT / "tests" / "vectors" / "istio" / "crds.yaml"
MANIFESTS = ROOT / "envoy" / "istio"
MIGRATION = ROOT / "envoy" / "migration"


def strict(schema):
    """The CRD's openAPIV3Schema with unknown fields refused: an object with `properties` and no
    `additionalProperties` or `x-kubernetes-preserve-unknown-fields` takes nothing else."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def load_schemas():
    """{(apiVersion, kind): strict schema} for every served version of the vendored CRDs."""
    out = {}
    for crd in yaml.safe_load_all(CRDS.read_text()):
        if not crd:
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                out[(f"{group}/{v['name']}", kind)] = strict(v["schema"]["openAPIV3Schema"])
    return out


SCHEMAS = load_schemas()


def manifests(roots=(MANIFESTS, MIGRATION)):
    """(path under envoy/, document) for every Kubernetes resource in `roots`."""
    docs = []
    for root in roots:
        for path in sorted(root.rglob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and "apiVersion" in doc:
                    docs.append((str(path.relative_to(root.parent)), doc))
    return docs


def errors(doc):
    schema = SCHEMAS[(doc["apiVersion"], doc["kind"])]
    # apiVersion, kind and metadata are Kubernetes' own, not in the CRD's schema.
    assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"}, sorted(doc)
    body = {k: v for k, v in doc.items() if k == "spec"}
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in jsonschema.Draft7Validator(schema).iter_errors(body))


def test_the_vendored_crds_are_the_ones_the_manifests_use():
    header = CRDS.read_text().splitlines()[1]
    assert "at tag v1.30.3" in header, header
    assert {("extensions.istio.io/v1alpha1", "WasmPlugin"), ("networking.istio.io/v1", "ServiceEntry"),
            ("networking.istio.io/v1", "DestinationRule"), ("networking.istio.io/v1alpha3", "EnvoyFilter"),
            ("security.istio.io/v1", "RequestAuthentication"), ("security.istio.io/v1", "AuthorizationPolicy")} <= set(SCHEMAS)


@pytest.mark.parametrize("name,doc", manifests(), ids=[f"{n}:{d['kind']}" for n, d in manifests()])
def test_manifest_is_valid_against_istios_crd(name, doc):
    assert (doc["apiVersion"], doc["kind"]) in SCHEMAS, f"{name}: {doc['apiVersion']} {doc['kind']} is not served"
    assert doc["metadata"]["name"] and doc["metadata"]["namespace"]
    assert errors(doc) == []


@pytest.mark.parametrize("mutate,expect", [
    (lambda s: s.update(failStrategy="FAIL_CLOSED"), "failStrategy: 'FAIL_CLOSED' is not one of"),
    (lambda s: s.update(phase="AUTHENTICATION"), "phase: 'AUTHENTICATION' is not one of"),
    (lambda s: s.update(match=[{"mode": "INBOUND"}]), "match.0.mode: 'INBOUND' is not one of"),
    (lambda s: s.update(pluginConfg={}), "Additional properties are not allowed ('pluginConfg' was unexpected)"),
    (lambda s: s.update(priority="10"), "priority: '10' is not of type 'integer'"),
])
def test_the_schema_check_refuses_what_istio_refuses(mutate, expect):
    # Guards the check itself: each of these is refused by the API server.
    doc = copy.deepcopy(next(d for _, d in manifests((MANIFESTS,)) if d["kind"] == "WasmPlugin"))
    mutate(doc["spec"])
    assert any(expect in e for e in errors(doc)), errors(doc)


def sets():
    """{folder: {kind: doc}}: each folder of envoy/istio/ is one deployment."""
    out = {}
    for name, doc in manifests((MANIFESTS,)):
        out.setdefault(Path(name).parent.name, {})[doc["kind"]] = doc
    return out


@pytest.mark.parametrize("folder", sorted(sets()))
def test_each_set_is_complete_and_private_to_its_namespace(folder):
    k = sets()[folder]
    assert set(k) == {"WasmPlugin", "ServiceEntry", "DestinationRule", "EnvoyFilter"}, folder
    se, dr, wp, ef = k["ServiceEntry"], k["DestinationRule"], k["WasmPlugin"], k["EnvoyFilter"]
    ns = {d["metadata"]["namespace"] for d in (se, dr, wp, ef)}
    assert len(ns) == 1, f"{folder}: one namespace for all four, got {ns}"
    # exportTo ".": the JWKS host's cluster exists only for this namespace's proxies, which are
    # the ones running the plugin; without it the entries apply mesh-wide.
    assert se["spec"]["exportTo"] == ["."] and dr["spec"]["exportTo"] == ["."]
    host, port = se["spec"]["hosts"][0], se["spec"]["ports"][0]["number"]
    cluster = wp["spec"]["pluginConfig"]["providers"]["auth0"]["remote_jwks"]["http_uri"]["cluster"]
    assert cluster == f"outbound|{port}||{host}"  # the name Istio gives the ServiceEntry's cluster
    tls = dr["spec"]["trafficPolicy"]["tls"]
    assert dr["spec"]["host"] == host and tls["mode"] == "SIMPLE" and tls["sni"] == host
    assert tls["subjectAltNames"] == [host]
    assert wp["spec"]["phase"] == "AUTHN" and wp["spec"]["failStrategy"] == "FAIL_CLOSE"


@pytest.mark.parametrize("folder", sorted(sets()))
def test_the_envoyfilter_puts_the_payload_where_istios_rbac_reads_it(folder):
    """header_to_metadata, exactly as envoy/authz/header_to_metadata.yaml (which the RBAC e2e
    tests run), goes before the first RBAC filter, on the plugin's workloads, under the key the
    plugin's `payload_in_metadata` names."""
    k = sets()[folder]
    wp, ef = k["WasmPlugin"]["spec"], k["EnvoyFilter"]["spec"]
    (patch,) = ef["configPatches"]
    assert patch["applyTo"] == "HTTP_FILTER" and patch["patch"]["operation"] == "INSERT_BEFORE"
    sub = patch["match"]["listener"]["filterChain"]["filter"]
    assert sub == {"name": "envoy.filters.network.http_connection_manager",
                   "subFilter": {"name": "envoy.filters.http.rbac"}}
    assert patch["match"]["context"] == ("GATEWAY" if folder == "gateway" else "SIDECAR_INBOUND")
    assert patch["patch"]["value"] == yaml.safe_load((ROOT / "envoy" / "authz" / "header_to_metadata.yaml").read_text())
    assert ef["workloadSelector"]["labels"] == wp["selector"]["matchLabels"]
    rule = patch["patch"]["value"]["typed_config"]["request_rules"][0]["on_header_present"]
    assert wp["pluginConfig"]["providers"]["auth0"]["payload_in_metadata"] == rule["key"] == "payload"


def test_the_sidecar_plugin_guards_inbound_traffic_only():
    # On a sidecar, a plugin with no match also runs on the app's outbound calls.
    wp = sets()["sidecar"]["WasmPlugin"]["spec"]
    assert wp["match"] == [{"mode": "SERVER"}]
    assert "selector" in wp


def test_the_gateway_plugin_has_no_server_only_match():
    # Istio counts a gateway's listeners as CLIENT (workloadModeForListenerClass in
    # pilot/pkg/model/extensions.go): `mode: SERVER` there would switch the plugin off.
    wp = sets()["gateway"]["WasmPlugin"]["spec"]
    assert all(m.get("mode", "UNDEFINED") in ("CLIENT", "CLIENT_AND_SERVER", "UNDEFINED") for m in wp.get("match", []))
    assert wp["selector"]["matchLabels"] == {"istio": "ingressgateway"}


@pytest.mark.parametrize("folder", sorted(sets()))
def test_plugin_config_passes_jwt_guard_check_config(folder, tmp_path):
    config = tmp_path / "plugin.json"
    config.write_text(json.dumps(sets()[folder]["WasmPlugin"]["spec"]["pluginConfig"]))
    cli = CLI
    r = subprocess.run([str(cli), "check-config", str(config)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "OK (1 provider: auth0; 2 rules)" in r.stdout

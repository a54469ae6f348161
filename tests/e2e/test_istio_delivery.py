"""jwt-guard as Istio delivers it: Envoy runs the configuration Istio generates for
envoy/istio/gateway/ (wasmplugin.yaml, serviceentry.yaml, destinationrule.yaml), and fetches
keys from a JWKS host behind a TLS cluster checked against a CA and a SAN made by the test.

What Istio generates, from istio/istio (1.29, 1.30):
- pilot/pkg/networking/core/extension/wasmplugin.go `toEnvoyHTTPFilter`: the HTTP filter is
  named `extensions.istio.io/wasmplugin/NS.NAME` and comes by ECDS (`config_discovery`, type
  URLs Wasm and RBAC, initial fetch timeout 0: the listener waits for it). Here ECDS comes from a
  file instead of istiod's ADS stream.
- pilot/pkg/model/extensions.go `buildWasmPluginConfigCommon`: plugin name `NS.NAME`, no
  `vm_id`, `root_id` = `pluginName` (empty here), `configuration` = the pluginConfig as compact
  JSON in a StringValue, runtime V8, the environment variables
  ISTIO_META_WASM_IMAGE_PULL_POLICY and ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION, and
  `failStrategy: FAIL_CLOSE` as `failure_policy: FAIL_CLOSED`. The agent fetches the module
  (oci:// or https://) and hands Envoy a local file, as this test does.
- The ServiceEntry's cluster `outbound|443||HOST`; the DestinationRule's `tls` as an
  UpstreamTlsContext with SNI and the SAN matcher.
"""

import json
import re

import pytest
import yaml
from conftest import CLIENT
from jwtguard_support import ROOT, WASM, EchoUpstream, Envoy, JwksServer, Signer, free_port, request, wait_until
from test_pki import TestCA

GATEWAY = ROOT / "envoy" / "istio" / "gateway"
HOST = "jwt-guard-test.auth0.com"  # TENANT.auth0.com with TENANT filled in
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
FAIL_STRATEGY = {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN", "FAIL_RELOAD": "FAIL_RELOAD"}


def manifests():
    """The three manifests with the placeholders filled in as a user would."""
    out = {}
    for path in GATEWAY.glob("*.yaml"):
        text = path.read_text().replace("TENANT.auth0.com", HOST).replace("CLIENT_ID", CLIENT)
        doc = yaml.safe_load(text)
        out[doc["kind"]] = doc
    return out


def istio_ecds(wp: dict, resource_version: str = "1") -> tuple[str, dict]:
    """(filter name, ECDS DiscoveryResponse) as Istio builds them for a WasmPlugin."""
    ns, name, spec = wp["metadata"]["namespace"], wp["metadata"]["name"], wp["spec"]
    env = {"ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": resource_version}
    if spec.get("imagePullPolicy", "UNSPECIFIED_POLICY") != "UNSPECIFIED_POLICY":
        env["ISTIO_META_WASM_IMAGE_PULL_POLICY"] = spec["imagePullPolicy"]
    config = {
        "name": f"{ns}.{name}",
        "root_id": spec.get("pluginName", ""),
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                          "value": json.dumps(spec["pluginConfig"], separators=(",", ":"))},
        "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                      "code": {"local": {"filename": str(WASM)}},  # what the agent hands Envoy
                      "environment_variables": {"key_values": env}},
    }
    if spec.get("failStrategy") in FAIL_STRATEGY:
        config["failure_policy"] = FAIL_STRATEGY[spec["failStrategy"]]
    filter_name = f"extensions.istio.io/wasmplugin/{ns}.{name}"
    return filter_name, {"version_info": resource_version, "resources": [{
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": filter_name,
        "typed_config": {"@type": WASM_TYPE, "config": config},
    }]}


def istio_cluster(se: dict, dr: dict, port: int, ca: str) -> dict:
    """The cluster Istio makes of the ServiceEntry and DestinationRule, its endpoint on
    127.0.0.1 (instead of DNS) and the CA the test made (instead of the system bundle)."""
    host, se_port = se["spec"]["hosts"][0], se["spec"]["ports"][0]["number"]
    tls = dr["spec"]["trafficPolicy"]["tls"]
    assert tls["mode"] == "SIMPLE"
    name = f"outbound|{se_port}||{host}"
    return {
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
        "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": tls["sni"],
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": ca},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": san}}
                                                  for san in tls["subjectAltNames"]]}}}},
    }


def bootstrap(admin: int, listen: int, upstream: int, filter_name: str, ecds_path: str, cluster: dict) -> str:
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "outbound_0.0.0.0_8080",
        "route_config": {"virtual_hosts": [{"name": "api", "domains": ["*"],
                                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]},
        "http_filters": [
            {"name": filter_name, "config_discovery": {
                "config_source": {"path_config_source": {"path": ecds_path}, "resource_api_version": "V3",
                                  "initial_fetch_timeout": "0s"},
                "type_urls": [WASM_TYPE, RBAC_TYPE]}},
            {"name": "envoy.filters.http.router",
             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    upstream_cluster = {
        "name": "upstream", "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream}}}}]}]},
    }
    return json.dumps({
        # An ingress gateway's node, as istio-agent names it (xDS needs one).
        "node": {"id": "router~127.0.0.1~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local",
                 "cluster": "istio-ingressgateway.istio-system"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{"name": "0.0.0.0_8080",
                           "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                           "typed_config": hcm}]}]}],
            "clusters": [upstream_cluster, cluster],
        },
    })


def cluster_stat(envoy, name: str) -> int:
    """A counter of the JWKS host's cluster (its name has regex characters: match it exactly)."""
    full = f"cluster.outbound|443||{HOST}.{name}"
    return int(envoy.stats(re.escape(full)).get(full, 0))


class IstioShaped:
    def __init__(self, tmp, server_cert_names):
        m = manifests()
        self.issuer = m["WasmPlugin"]["spec"]["pluginConfig"]["providers"]["auth0"]["issuer"]
        self.audience = m["WasmPlugin"]["spec"]["pluginConfig"]["providers"]["auth0"]["audiences"][0]
        self.signer = Signer(self.issuer)
        ca = TestCA(tmp / "pki")
        self.jwks = JwksServer(self.signer.jwks())
        self.jwks.tls = ca.issue("jwks-server", server_cert_names[0], server_cert_names)
        self.jwks.start()
        self.upstream = EchoUpstream().start()
        self.filter_name, ecds = istio_ecds(m["WasmPlugin"])
        ecds_path = tmp / "ecds.yaml"
        ecds_path.write_text(json.dumps(ecds))
        self.cluster = istio_cluster(m["ServiceEntry"], m["DestinationRule"], self.jwks.port, str(ca.cert_path))
        self.listen, admin = free_port(), free_port()
        self.envoy = Envoy(bootstrap(admin, self.listen, self.upstream.port, self.filter_name, str(ecds_path),
                                     self.cluster), admin, self.listen)
        self.envoy.start()

    def get(self, token=None, path="/api/items"):
        return request(self.listen, path, {"authorization": f"Bearer {token}"} if token else {})

    def stop(self):
        self.envoy.stop()
        self.jwks.stop()
        self.upstream.stop()


@pytest.fixture(scope="module")
def istio(tmp_path_factory):
    s = IstioShaped(tmp_path_factory.mktemp("istio"), [HOST])
    yield s
    s.stop()


def test_the_filter_arrives_by_ecds_under_istios_name(istio):
    assert istio.filter_name == "extensions.istio.io/wasmplugin/istio-system.jwt-guard"
    assert istio.cluster["name"] == f"outbound|443||{HOST}"
    dump = json.loads(request(istio.envoy.admin_port, "/config_dump?resource=ecds_filters").body or b"{}")
    names = [c["ecds_filter"]["name"] for c in dump.get("configs", [])]
    assert names == [istio.filter_name], dump


def test_access_token_passes_with_keys_fetched_over_tls(istio):
    r = istio.get(istio.signer.access_token(istio.audience, CLIENT))
    assert r.status == 200, (r.status, r.body)
    assert r.echoed["headers"]["x-jwt-sub"] == ["auth0|user-42"]
    assert istio.jwks.fetch_count >= 1
    assert cluster_stat(istio.envoy, "ssl.handshake") >= 1


def test_id_token_and_no_token_are_refused(istio):
    r = istio.get(istio.signer.id_token(CLIENT))
    assert r.status == 401 and 'error_description="An ID token was sent.' in r.headers["www-authenticate"]
    r = istio.get()
    assert r.status == 401 and r.headers["www-authenticate"] == 'Bearer realm="api"'
    assert istio.get(path="/healthz").status == 200


def test_a_jwks_host_with_another_name_is_never_trusted(tmp_path):
    # The server's certificate is from the right CA but for another name: the SAN check refuses
    # it, no key is ever fetched, and a valid token is not let through.
    s = IstioShaped(tmp_path, ["other.example.com"])
    try:
        r = s.get(s.signer.access_token(s.audience, CLIENT))
        assert r.status == 503, (r.status, r.body)
        assert s.jwks.fetch_count == 0
        assert wait_until(lambda: cluster_stat(s.envoy, "ssl.fail_verify_san") >= 1, 5), s.envoy.stats("ssl")
        assert cluster_stat(s.envoy, "ssl.handshake") == 0
    finally:
        s.stop()

//! The verified identity handed to Envoy: the `payload_in_metadata` header (a base64
//! `google.protobuf.Value`), filter state (`jwt_guard.principal`, `jwt_guard.reason`), and a
//! client's own payload header removed on every route.

use base64::Engine as _;
use serde_json::json;

use super::runtime::FakeHost;
use crate::authn::payload_metadata::payload_metadata;
use crate::decision::filter_state::{PRINCIPAL, REASON};
use crate::runtime::host::HostStatus;
use crate::runtime::{Action, Plugin};
use crate::testkit::*;
use crate::token::protobuf;

fn encoded(v: serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    protobuf::value(&mut out, &v);
    out
}

#[test]
fn protobuf_value_wire_format() {
    // Value{struct_value: {fields: {"a": Value{string_value: "b"}}}}
    assert_eq!(encoded(json!({"a": "b"})), [0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, b'a', 0x12, 0x03, 0x1a, 0x01, b'b']);
    // null (1, varint 0), number (2, fixed64 little-endian double), bool (4), list (6).
    assert_eq!(encoded(json!(null)), [0x08, 0x00]);
    assert_eq!(encoded(json!(1.5)), [0x11, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
    assert_eq!(encoded(json!(false)), [0x20, 0x00]);
    assert_eq!(encoded(json!(["x"])), [0x32, 0x05, 0x0a, 0x03, 0x1a, 0x01, b'x']);
    // A string of 200 bytes: a two-byte length varint.
    let long = "y".repeat(200);
    assert_eq!(&encoded(json!(long))[..3], [0x1a, 0xc8, 0x01]);
}

#[test]
fn the_payload_header_is_padded_base64_with_listed_claims_split() {
    let claims = json!({"scope": "read write", "sub": "u"});
    let map = claims.as_object().unwrap();
    let header = payload_metadata(map, &["scope".to_string()]);
    let bytes = base64::engine::general_purpose::STANDARD.decode(&header).unwrap();
    assert_eq!(bytes, encoded(json!({"scope": ["read", "write"], "sub": "u"})));
    // Without the list, the claim stays a string, as jwt_authn leaves it.
    let plain = base64::engine::general_purpose::STANDARD.decode(payload_metadata(map, &[])).unwrap();
    assert_eq!(plain, encoded(claims));
    assert!(header.len().is_multiple_of(4), "padded: {header}");
}

fn plugin(patch: serde_json::Value, top: serde_json::Value) -> (Plugin, FakeHost) {
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::configure(config_with(patch, top), &mut host);
    plugin.on_tick(&mut host);
    (plugin, host)
}

fn arrive(host: &mut FakeHost, plugin: &mut Plugin, id: u32, path: &str, headers: &[(&str, &str)]) -> Action {
    let mut h = vec![(":method".to_string(), b"GET".to_vec()), (":path".to_string(), path.as_bytes().to_vec())];
    h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())));
    host.requests.insert(id, super::runtime::FakeRequest { headers: h, ..Default::default() });
    host.effective = id;
    plugin.on_request(host, id)
}

fn property(host: &FakeHost, id: u32, name: &str) -> Option<String> {
    host.requests[&id].properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

#[test]
fn filter_state_carries_the_principal_and_every_decision_s_reason() {
    let rules = json!({"filter_state": true, "rules": [{"match": {"prefix": "/open"}},
                                 {"match": {"prefix": "/admin"}, "requires": {"provider_name": "p"},
                                  "claims": [{"name": "groups", "values": ["admins"]}]},
                                 {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]});
    let (mut plugin, mut host) = plugin(json!({}), rules);
    assert_eq!(host.declared, vec![PRINCIPAL.to_string(), REASON.to_string()]);
    let ok = format!("Bearer {}", access_token(json!({})));
    assert_eq!(arrive(&mut host, &mut plugin, 1, "/api", &[("authorization", &ok)]), Action::Continue);
    assert_eq!(property(&host, 1, PRINCIPAL).as_deref(), Some(&*format!("{ISS}/user-1")));
    assert_eq!(property(&host, 1, REASON).as_deref(), Some("allowed"));
    assert_eq!(arrive(&mut host, &mut plugin, 2, "/api", &[]), Action::Pause);
    assert_eq!(property(&host, 2, REASON).as_deref(), Some("missing"));
    assert_eq!(property(&host, 2, PRINCIPAL), None);
    let id = format!("Bearer {}", id_token(json!({})));
    arrive(&mut host, &mut plugin, 3, "/api", &[("authorization", &id)]);
    assert_eq!(property(&host, 3, REASON).as_deref(), Some("id_token"));
    assert_eq!(property(&host, 3, PRINCIPAL), None);
    // A token without `sub` has no principal (as in Istio).
    let no_sub = format!("Bearer {}", access_token(json!({"sub": null})));
    assert_eq!(arrive(&mut host, &mut plugin, 4, "/api", &[("authorization", &no_sub)]), Action::Continue);
    assert_eq!(property(&host, 4, PRINCIPAL), None);
    assert_eq!(arrive(&mut host, &mut plugin, 5, "/open", &[]), Action::Continue);
    assert_eq!(property(&host, 5, REASON).as_deref(), Some("allowed"));
    // Refused for its claims, a verified caller is still named.
    assert_eq!(arrive(&mut host, &mut plugin, 6, "/admin", &[("authorization", &ok)]), Action::Pause);
    assert_eq!(property(&host, 6, REASON).as_deref(), Some("claim"));
    assert_eq!(property(&host, 6, PRINCIPAL).as_deref(), Some(&*format!("{ISS}/user-1")));
}

#[test]
fn a_client_s_payload_header_is_removed_on_every_route_and_ours_is_set() {
    let rules = json!({"rules": [{"match": {"prefix": "/open"}},
                                 {"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]});
    let (mut plugin, mut host) = plugin(json!({"payload_in_metadata": "payload"}), rules);
    let forged = [("x-jwt-guard-payload", "KgA="), ("x_jwt_guard_payload", "KgA=")];
    assert_eq!(arrive(&mut host, &mut plugin, 1, "/open", &forged), Action::Continue);
    assert_eq!(host.header(1, "x-jwt-guard-payload"), None);
    assert_eq!(host.header(1, "x_jwt_guard_payload"), None);
    let token = access_token(json!({}));
    let auth = format!("Bearer {token}");
    let mut with_token = forged.to_vec();
    with_token.push(("authorization", &auth));
    assert_eq!(arrive(&mut host, &mut plugin, 2, "/api", &with_token), Action::Continue);
    let sent = host.header(2, "x-jwt-guard-payload").unwrap();
    assert_ne!(sent, "KgA=");
    let bytes = base64::engine::general_purpose::STANDARD.decode(sent).unwrap();
    let payload: serde_json::Value =
        serde_json::from_slice(&crate::token::base64url::decode(token.split('.').nth(1).unwrap().as_bytes()).unwrap())
            .unwrap();
    assert_eq!(bytes, encoded(payload));
    assert_eq!(host.header(2, "x_jwt_guard_payload"), None);
    // Refused: the forged header never goes on (nothing goes on).
    assert_eq!(arrive(&mut host, &mut plugin, 3, "/api", &forged), Action::Pause);
}

#[test]
fn without_payload_in_metadata_no_payload_header_is_set() {
    let (mut plugin, mut host) = plugin(json!({}), json!({}));
    let auth = format!("Bearer {}", access_token(json!({})));
    assert_eq!(arrive(&mut host, &mut plugin, 1, "/x", &[("authorization", &auth)]), Action::Continue);
    assert_eq!(host.header(1, "x-jwt-guard-payload"), None);
}

#[test]
fn a_failed_set_property_fails_closed_and_a_failed_declaration_does_not() {
    for status in HostStatus::ALL {
        let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
        host.failing.insert("declare_string_property", status);
        let mut plugin = Plugin::configure(config_with(json!({}), json!({"filter_state": true})), &mut host);
        plugin.on_tick(&mut host);
        let auth = format!("Bearer {}", access_token(json!({})));
        assert_eq!(arrive(&mut host, &mut plugin, 1, "/x", &[("authorization", &auth)]), Action::Continue);
        host.failing.insert("set_property", status);
        assert_eq!(arrive(&mut host, &mut plugin, 2, "/x", &[("authorization", &auth)]), Action::Pause);
        assert_eq!(host.status(2), Some(503), "{status}");
        assert_eq!(arrive(&mut host, &mut plugin, 3, "/x", &[]), Action::Pause);
        assert_eq!(host.status(3), Some(401), "{status}: a refusal is still a refusal");
    }
}

#[test]
fn filter_state_is_opt_in() {
    let (mut plugin, mut host) = plugin(json!({}), json!({}));
    assert!(host.declared.is_empty());
    host.failing.insert("set_property", HostStatus::INTERNAL_FAILURE);
    let auth = format!("Bearer {}", access_token(json!({})));
    assert_eq!(arrive(&mut host, &mut plugin, 1, "/x", &[("authorization", &auth)]), Action::Continue);
    assert!(host.requests[&1].properties.is_empty(), "no host call for filter state unless asked");
}

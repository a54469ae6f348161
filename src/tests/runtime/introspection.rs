//! Introspection through the runtime: one call per new token however many requests and VMs
//! want it, answers shared between VMs, calls bounded per VM, failures closed and recovered.

use serde_json::json;

use crate::runtime::MAX_PENDING;

use super::*;

const TOKEN: &str = "Bearer opaque-token-0123456789";

fn config(max_in_flight: usize) -> Config {
    config_with(
        json!({"introspection": {
            "http_uri": {"uri": "https://issuer.test/introspect", "cluster": "idp", "timeout": "2s"},
            "client_id": "api", "client_secret": "s3cret", "max_in_flight": max_in_flight,
            "negative_cache_duration": "30s"}}),
        json!({}),
    )
}

fn active_answer() -> Vec<u8> {
    json!({"active": true, "iss": ISS, "aud": API, "sub": "alice", "exp": NOW + 3600}).to_string().into_bytes()
}

fn vms(n: u64, max_in_flight: usize) -> Vec<(Plugin, FakeHost)> {
    vms_sharing_data(n, |host, owner| {
        let mut plugin = Plugin::new(config(max_in_flight), host.now, owner);
        plugin.define_metrics(host);
        plugin
    })
}

fn calls(vms: &[(Plugin, FakeHost)]) -> usize {
    vms.iter().map(|(_, h)| h.posted.len()).sum()
}

#[test]
fn twenty_requests_with_one_new_token_make_one_call_and_all_pass() {
    let mut vms = vms(1, 32);
    let (plugin, host) = &mut vms[0];
    for id in 1..=20 {
        assert_eq!(host.arrive(plugin, id, Some(TOKEN)), Action::Pause);
    }
    assert_eq!(host.posted.len(), 1, "single flight");
    let (cluster, headers, body, timeout) = &host.posted[0];
    assert_eq!((cluster.as_str(), *timeout), ("idp", 2000));
    assert_eq!(String::from_utf8_lossy(body), "token=opaque-token-0123456789&token_type_hint=access_token");
    assert!(headers.iter().any(|(k, v)| k == "authorization" && v.starts_with("Basic ")));
    answer(plugin, host, 1, Some(200), Some(active_answer()));
    for id in 1..=20 {
        assert!(host.requests[&id].resumed, "request {id}");
        assert_eq!(host.header(id, "authorization"), None, "the token is not forwarded (forward: false)");
    }
    // Cached: the next request passes at once, no call.
    assert_eq!(host.arrive(plugin, 21, Some(TOKEN)), Action::Continue);
    assert_eq!(host.posted.len(), 1);
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.provider.p.introspection.calls"), 1);
}

#[test]
fn vms_of_one_envoy_share_the_call_and_the_answer() {
    let mut vms = vms(3, 32);
    {
        let (plugin, host) = &mut vms[0];
        assert_eq!(host.arrive(plugin, 1, Some(TOKEN)), Action::Pause);
    }
    {
        let (plugin, host) = &mut vms[1];
        assert_eq!(host.arrive(plugin, 1, Some(TOKEN)), Action::Pause, "waits on VM 0's call");
    }
    assert_eq!(calls(&vms), 1);
    {
        let (plugin, host) = &mut vms[0];
        answer(plugin, host, 1, Some(200), Some(active_answer()));
        assert!(host.requests[&1].resumed);
    }
    {
        let (plugin, host) = &mut vms[1];
        host.now += 200;
        plugin.on_tick(host);
        assert!(host.requests[&1].resumed, "VM 1 took VM 0's answer on its tick");
    }
    {
        let (plugin, host) = &mut vms[2];
        assert_eq!(host.arrive(plugin, 1, Some(TOKEN)), Action::Continue, "VM 2 finds it in shared data");
        plugin.on_tick(host);
        assert_eq!(host.metric("jwt_guard.provider.p.introspection.shared_hit"), 1);
    }
    assert_eq!(calls(&vms), 1, "one call for three VMs");
}

#[test]
fn a_vm_whose_peer_died_mid_call_calls_itself_after_the_lease() {
    let mut vms = vms(2, 32);
    {
        let (plugin, host) = &mut vms[0];
        host.arrive(plugin, 1, Some(TOKEN));
    }
    let (plugin, host) = &mut vms[1];
    assert_eq!(host.arrive(plugin, 1, Some(TOKEN)), Action::Pause);
    assert!(host.posted.is_empty());
    host.now += 3_000; // the 2 s timeout and the 1 s margin
    plugin.on_tick(host);
    assert_eq!(host.posted.len(), 1, "took over the lease");
}

#[test]
fn calls_per_vm_are_bounded_and_past_the_bound_get_503_with_retry_after() {
    let mut vms = vms(1, 2);
    let (plugin, host) = &mut vms[0];
    assert_eq!(host.arrive(plugin, 1, Some("Bearer junk-aaaaaaaaaaaa")), Action::Pause);
    assert_eq!(host.arrive(plugin, 2, Some("Bearer junk-bbbbbbbbbbbb")), Action::Pause);
    assert_eq!(host.arrive(plugin, 3, Some("Bearer junk-cccccccccccc")), Action::Pause);
    assert_eq!(host.posted.len(), 2);
    assert_eq!(host.status(3), Some(503));
    let r = host.requests[&3].response.as_ref().unwrap();
    assert!(r.1.iter().any(|(k, v)| k == "retry-after" && v == "1"));
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.requests.denied.introspection_overloaded"), 1);
    // An answer frees a place.
    answer(plugin, host, 1, Some(200), Some(json!({"active": false}).to_string().into_bytes()));
    assert_eq!(host.status(1), Some(401));
    assert_eq!(host.arrive(plugin, 4, Some("Bearer junk-dddddddddddd")), Action::Pause);
    assert_eq!(host.posted.len(), 3);
}

#[test]
fn an_answer_wakes_only_the_requests_waiting_for_it() {
    let mut vms = vms(1, 32);
    let (plugin, host) = &mut vms[0];
    for id in 1..=20 {
        let token = format!("Bearer token-number-{:02}-xxxxxxxx", (id - 1) / 2);
        assert_eq!(host.arrive(plugin, id, Some(&token)), Action::Pause);
    }
    assert_eq!(host.posted.len(), 10, "ten tokens, two requests each");
    for call in 1..=10u32 {
        let before = host.switches;
        answer(plugin, host, call, Some(200), Some(json!({"active": false}).to_string().into_bytes()));
        assert_eq!(host.switches - before, 2, "answer {call} decides its own two requests again, no others");
        assert_eq!(host.status(2 * call - 1), Some(401));
        assert_eq!(host.status(2 * call), Some(401));
        assert_eq!(plugin.pending_len(), 20 - 2 * call as usize);
    }
}

#[test]
fn a_full_queue_of_requests_waiting_for_answers_is_introspection_overloaded() {
    let mut vms = vms(1, 32);
    let (plugin, host) = &mut vms[0];
    for id in 0..MAX_PENDING as u32 {
        assert_eq!(host.arrive(plugin, 100 + id, Some(TOKEN)), Action::Pause);
    }
    assert_eq!((plugin.pending_len(), host.posted.len()), (MAX_PENDING, 1));
    host.arrive(plugin, 5, Some(TOKEN));
    assert_eq!(host.status(5), Some(503));
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.requests.denied.introspection_overloaded"), 1);
    assert_eq!(host.metric("jwt_guard.requests.denied.keys_unavailable"), 0);
}

#[test]
fn an_endpoint_that_fails_gets_503_then_the_next_call_recovers() {
    let mut vms = vms(1, 32);
    let (plugin, host) = &mut vms[0];
    host.arrive(plugin, 1, Some(TOKEN));
    answer(plugin, host, 1, None, None); // reset: no answer
    assert_eq!(host.status(1), Some(503));
    assert_eq!(host.arrive(plugin, 2, Some(TOKEN)), Action::Pause, "held briefly: 503 without a new call");
    assert_eq!(host.status(2), Some(503));
    assert_eq!(host.posted.len(), 1);
    host.now += 1_000;
    assert_eq!(host.arrive(plugin, 3, Some(TOKEN)), Action::Pause);
    assert_eq!(host.posted.len(), 2, "called again");
    answer(plugin, host, 2, Some(503), Some(b"busy".to_vec()));
    assert_eq!(host.status(3), Some(503), "5xx fails closed");
    host.now += 1_000;
    host.arrive(plugin, 4, Some(TOKEN));
    answer(plugin, host, 3, Some(200), Some(active_answer()));
    assert!(host.requests[&4].resumed, "recovered");
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.provider.p.introspection.failure"), 2);
}

#[test]
fn a_negative_answer_is_kept_for_its_time_then_asked_again() {
    let mut vms = vms(1, 32);
    let (plugin, host) = &mut vms[0];
    host.arrive(plugin, 1, Some(TOKEN));
    answer(plugin, host, 1, Some(200), Some(json!({"active": false}).to_string().into_bytes()));
    assert_eq!(host.status(1), Some(401));
    assert_eq!(host.arrive(plugin, 2, Some(TOKEN)), Action::Pause);
    assert_eq!(host.status(2), Some(401));
    assert_eq!(host.posted.len(), 1, "negative cache");
    host.now += 30_000;
    assert_eq!(host.arrive(plugin, 3, Some(TOKEN)), Action::Pause);
    assert_eq!(host.posted.len(), 2, "asked again after negative_cache_duration");
    plugin.on_tick(host);
    assert_eq!(host.metric("jwt_guard.provider.p.introspection.inactive"), 1);
}

#[test]
fn an_unreadable_answer_is_refused_with_its_reason_and_a_dispatch_refusal_fails_closed() {
    let mut vms = vms(1, 32);
    let (plugin, host) = &mut vms[0];
    host.arrive(plugin, 1, Some(TOKEN));
    answer(plugin, host, 1, Some(200), Some(b"<html>".to_vec()));
    assert_eq!(host.status(1), Some(401));
    let body = String::from_utf8_lossy(&host.requests[&1].response.as_ref().unwrap().2).into_owned();
    assert!(body.contains("invalid_token"), "{body}");
    host.failing.insert("dispatch", HostStatus::INTERNAL_FAILURE);
    host.arrive(plugin, 2, Some("Bearer another-opaque-token"));
    assert_eq!(host.status(2), Some(503));
}

#[test]
fn a_secret_missing_from_the_environment_sends_nothing() {
    let mut c = config(32);
    if let Some(i) = c.providers[0].introspection.as_mut() {
        i.secret = crate::policy::ClientSecret::Env("UNSET".into());
    }
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(c, host.now, 1);
    host.arrive(&mut plugin, 1, Some(TOKEN));
    assert_eq!(host.status(1), Some(503));
    assert!(host.posted.is_empty());
}

#[test]
fn a_call_the_proxy_cancelled_frees_its_place_after_its_timeout() {
    let mut vms = vms(1, 1);
    let (plugin, host) = &mut vms[0];
    assert_eq!(host.arrive(plugin, 1, Some(TOKEN)), Action::Pause);
    plugin.on_done(1); // the client went away; Envoy cancels the call without an answer
    assert_eq!(host.arrive(plugin, 2, Some("Bearer another-opaque-token")), Action::Pause);
    assert_eq!(host.status(2), Some(503), "the one place is taken");
    host.now += 3_000;
    plugin.on_tick(host);
    assert_eq!(host.arrive(plugin, 3, Some("Bearer another-opaque-token")), Action::Pause);
    assert_eq!(host.posted.len(), 2, "the forgotten call's place is free again");
}

#[test]
fn a_discovered_endpoint_is_asked_once_the_document_has_named_it() {
    let config = config_with(
        json!({"local_jwks": null,
               "discovery": {"http_uri": {"uri": "https://issuer.test/.well-known/openid-configuration",
                                          "cluster": "idp", "timeout": "2s"}},
               "introspection": {"client_id": "api", "client_secret": "s3cret"}}),
        json!({}),
    );
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(config, host.now, 1);
    plugin.define_metrics(&mut host);
    // Before the document: the request waits, nothing is asked.
    assert_eq!(host.arrive(&mut plugin, 1, Some(TOKEN)), Action::Pause);
    assert!(host.posted.is_empty());
    plugin.on_tick(&mut host);
    assert_eq!(host.dispatched.len(), 1, "the discovery document");
    let doc = json!({"issuer": ISS, "jwks_uri": "https://issuer.test/jwks",
                     "introspection_endpoint": "https://issuer.test/token/introspection"});
    answer(&mut plugin, &mut host, 1, Some(200), Some(doc.to_string().into_bytes()));
    answer(&mut plugin, &mut host, 2, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert_eq!(host.posted.len(), 1, "asked once the keys (and the document) landed");
    let path = host.posted[0].1.iter().find(|(k, _)| k == ":path").map(|(_, v)| v.clone());
    assert_eq!(path.as_deref(), Some("/token/introspection"));
    answer(&mut plugin, &mut host, 3, Some(200), Some(active_answer()));
    assert!(host.requests[&1].resumed);
}

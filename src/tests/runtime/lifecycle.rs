//! Pause, fetch, resume, deadlines, bounds, and four VMs sharing one fetch.

use serde_json::json;

use super::*;
use crate::runtime::host::HostStatus;
use crate::runtime::{Action, Plugin, MAX_PENDING};
use crate::testkit::*;

#[test]
fn fetch_starts_at_once_with_authority_and_path_from_the_uri() {
    let (_, host) = started();
    // Envoy's timeout is a backstop 1 s after ours (2 s): our deadline decides.
    assert_eq!(host.dispatched, vec![("idp".into(), "idp.test".into(), "/.well-known/jwks.json".into(), 3000)]);
}

#[test]
fn early_requests_pause_then_resume_when_keys_land() {
    let (mut plugin, mut host) = started();
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Pause);
    assert_eq!(host.arrive(&mut plugin, 11, Some("Bearer opaque-token")), Action::Pause);
    assert_eq!(plugin.pending_len(), 2);
    assert_eq!(host.status(10), None);
    host.now += 300;
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert_eq!(plugin.pending_len(), 0);
    assert!(host.requests[&10].resumed);
    assert_eq!(host.header(10, "authorization"), None, "token stripped");
    assert_eq!(host.header(10, "x-sub").as_deref(), Some("user-1"));
    assert_eq!(host.status(11), Some(401));
    assert!(!host.requests[&11].resumed);
    // Later requests are decided at once.
    assert_eq!(host.arrive(&mut plugin, 12, Some(&bearer())), Action::Continue);
}

#[test]
fn requests_without_a_token_do_not_wait() {
    let (mut plugin, mut host) = started();
    assert_eq!(host.arrive(&mut plugin, 10, None), Action::Pause);
    assert_eq!(host.status(10), Some(401));
    assert_eq!(plugin.pending_len(), 0);
}

#[test]
fn keys_that_never_come_give_503_at_the_deadline() {
    let (mut plugin, mut host) = started();
    host.arrive(&mut plugin, 10, Some(&bearer()));
    host.now += 1_999;
    plugin.on_tick(&mut host);
    assert_eq!(host.status(10), None);
    host.now += 1;
    plugin.on_tick(&mut host);
    assert_eq!(host.status(10), Some(503));
    // New requests get 503 at once while the keys are missing.
    host.arrive(&mut plugin, 11, Some(&bearer()));
    assert_eq!(host.status(11), Some(503));
    // A retry was scheduled and, once the keys load, requests pass again.
    host.now += 1_000;
    plugin.on_tick(&mut host);
    assert_eq!(host.dispatched.len(), 2);
    answer(&mut plugin, &mut host, 2, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert_eq!(host.arrive(&mut plugin, 12, Some(&bearer())), Action::Continue);
}

#[test]
fn paused_requests_are_bounded() {
    let (mut plugin, mut host) = started();
    for id in 0..MAX_PENDING as u32 {
        host.arrive(&mut plugin, 100 + id, Some(&bearer()));
    }
    assert_eq!(plugin.pending_len(), MAX_PENDING);
    host.arrive(&mut plugin, 5, Some(&bearer()));
    assert_eq!(host.status(5), Some(503));
    assert_eq!(plugin.pending_len(), MAX_PENDING);
}

#[test]
fn a_request_that_goes_away_leaves_the_queue() {
    let (mut plugin, mut host) = started();
    host.arrive(&mut plugin, 10, Some(&bearer()));
    plugin.on_done(10);
    assert_eq!(plugin.pending_len(), 0);
    // A context the host no longer knows is skipped on resume.
    host.arrive(&mut plugin, 11, Some(&bearer()));
    host.requests.remove(&11);
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert_eq!(plugin.pending_len(), 0);
}

#[test]
fn superseded_and_unknown_responses_are_ignored() {
    let (mut plugin, mut host) = started();
    host.arrive(&mut plugin, 10, Some(&bearer()));
    answer(&mut plugin, &mut host, 99, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert_eq!(plugin.pending_len(), 1, "not our fetch");
    host.now += 2_000;
    plugin.on_tick(&mut host); // deadline: fetch 1 is abandoned, a retry follows later
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    host.arrive(&mut plugin, 11, Some(&bearer()));
    assert_eq!(host.status(11), Some(503), "the late answer to the abandoned fetch was ignored");
}

#[test]
fn refused_dispatch_is_retried_with_backoff() {
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    host.failing.insert("dispatch_get", HostStatus::BAD_ARGUMENT);
    let mut plugin = Plugin::new(remote_config(), host.now, 1);
    plugin.define_metrics(&mut host);
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.error.dispatch"), 1, "counted by cause");
    host.failing.clear();
    host.now += 499; // first retry after [500, 1000] ms; the fake's jitter picks 500
    plugin.on_tick(&mut host);
    assert!(host.dispatched.is_empty());
    host.now += 1;
    plugin.on_tick(&mut host);
    assert_eq!(host.dispatched.len(), 1);
}

#[test]
fn new_keys_evict_cached_tokens_of_removed_keys() {
    new_keys_evict_cached_tokens_of_removed_keys_from(remote_config());
    // A rule's provider_and_audiences has a cache of its own: it is emptied too.
    let rules = json!({"rules": [{"match": {"prefix": "/"}, "requires": {"provider_and_audiences":
        {"provider_name": "p", "audiences": [API]}}}]});
    new_keys_evict_cached_tokens_of_removed_keys_from(config_with(
        json!({"local_jwks": null,
               "remote_jwks": {"http_uri": {"uri": "https://idp.test/.well-known/jwks.json", "cluster": "idp", "timeout": "2s"},
                               "cache_duration": "60s"}}),
        rules,
    ));
}

fn new_keys_evict_cached_tokens_of_removed_keys_from(config: Config) {
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(config, host.now, 1);
    plugin.on_tick(&mut host);
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    let token = bearer();
    assert_eq!(host.arrive(&mut plugin, 10, Some(&token)), Action::Continue);
    assert_eq!(host.arrive(&mut plugin, 11, Some(&token)), Action::Continue, "served from cache");
    host.now += 60_000;
    plugin.on_tick(&mut host);
    answer(&mut plugin, &mut host, 2, Some(200), Some(JWKS_ROTATED.as_bytes().to_vec()));
    host.arrive(&mut plugin, 12, Some(&token));
    assert!(!host.requests[&12].resumed, "rsa-1 left the JWKS: its cached tokens die with it");
    // The unknown kid gets its one refetch; the key is still gone, so 401.
    plugin.on_tick(&mut host);
    answer(&mut plugin, &mut host, 3, Some(200), Some(JWKS_ROTATED.as_bytes().to_vec()));
    assert_eq!(host.status(12), Some(401));
}

#[test]
fn a_failed_refresh_keeps_the_old_keys() {
    let (mut plugin, mut host) = started();
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    host.now += 60_000;
    plugin.on_tick(&mut host);
    answer(&mut plugin, &mut host, 2, Some(500), Some(b"down".to_vec()));
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Continue);
}

fn jwks_signed_token(kid: &str, key: &jsonwebtoken::EncodingKey) -> String {
    let header = json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"}).to_string();
    format!("Bearer {}", sign_raw(&header, &access_claims().to_string(), jsonwebtoken::Algorithm::RS256, key))
}

fn total_fetches(vms: &[(Plugin, FakeHost)]) -> usize {
    vms.iter().map(|(_, h)| h.dispatched.len()).sum()
}

#[test]
fn four_vms_share_one_fetch_per_refresh() {
    let mut vms = vms_of_one_envoy(4);
    tick_all(&mut vms, 0);
    assert_eq!(total_fetches(&vms), 1, "one VM took the lease");
    let fetcher = vms.iter().position(|(_, h)| !h.dispatched.is_empty()).unwrap();
    {
        let (plugin, host) = &mut vms[fetcher];
        answer(plugin, host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    }
    tick_all(&mut vms, 200);
    for (i, (plugin, host)) in vms.iter_mut().enumerate() {
        assert_eq!(host.arrive(plugin, 10, Some(&bearer())), Action::Continue, "VM {i} has the keys");
    }
    // Ten refresh intervals: still one fetch each.
    for round in 0..10 {
        for _ in 0..300 {
            tick_all(&mut vms, 200);
            for (plugin, host) in vms.iter_mut() {
                let token = host.next_token;
                if token > 0 && plugin_owns(plugin, host, token) {
                    answer(plugin, host, token, Some(200), Some(JWKS.as_bytes().to_vec()));
                }
            }
        }
        assert_eq!(total_fetches(&vms), 2 + round, "round {round}");
    }
}

/// Answers a VM's outstanding fetch only once (a second answer is ignored anyway).
fn plugin_owns(_: &Plugin, host: &mut FakeHost, token: u32) -> bool {
    let answered = host.requests.contains_key(&(u32::MAX - token));
    host.requests.insert(u32::MAX - token, FakeRequest::default());
    !answered
}

#[test]
fn rotation_unknown_kid_waits_for_one_refetch_then_passes() {
    let (mut plugin, mut host) = started();
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    host.now += 5_000;
    // The IdP rotated: a token signed by the new key (kid rsa-2) arrives.
    let rotated = jwks_signed_token("rsa-2", &rotated_key());
    assert_eq!(host.arrive(&mut plugin, 10, Some(&rotated)), Action::Pause);
    assert_eq!(host.status(10), None);
    plugin.on_tick(&mut host);
    assert_eq!(host.dispatched.len(), 2, "one refetch");
    // More unknown-kid requests while it runs share it.
    host.arrive(&mut plugin, 11, Some(&jwks_signed_token("forged", &rotated_key())));
    plugin.on_tick(&mut host);
    assert_eq!(host.dispatched.len(), 2, "single flight");
    answer(&mut plugin, &mut host, 2, Some(200), Some(JWKS_ROTATED.as_bytes().to_vec()));
    assert!(host.requests[&10].resumed, "decided as soon as the refetch landed");
    assert_eq!(host.status(11), Some(401), "still unknown after the refetch");
    // The old key is gone: its tokens fail at once (no new refetch within 30 s).
    host.arrive(&mut plugin, 12, Some(&bearer()));
    assert_eq!(host.status(12), Some(401));
    plugin.on_tick(&mut host);
    assert_eq!(host.dispatched.len(), 2);
}

#[test]
fn a_flood_of_forged_kids_is_rate_limited() {
    let (mut plugin, mut host) = started();
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    let mut answered = 1;
    for n in 0..600u32 {
        host.now += 100; // 60 s of traffic, 10 forged kids a second
        host.arrive(&mut plugin, 1000 + n, Some(&jwks_signed_token(&format!("forged-{n}"), &rotated_key())));
        plugin.on_tick(&mut host);
        while (answered as usize) < host.dispatched.len() {
            answered += 1;
            answer(&mut plugin, &mut host, answered, Some(200), Some(JWKS.as_bytes().to_vec()));
        }
    }
    let refetches = host.dispatched.len() - 1;
    assert!(refetches <= 2, "at most one refetch per 30 s, got {refetches}");
    assert!(refetches >= 1);
    // Each forged request got its 401, or is still waiting for the refetch it asked for.
    for n in 0..600u32 {
        let id = 1000 + n;
        let waiting = plugin.is_pending(id);
        assert!(host.status(id) == Some(401) || (waiting && host.status(id).is_none()), "request {n}");
    }
    let answered = (0..600u32).filter(|n| host.status(1000 + n) == Some(401)).count();
    assert!(answered >= 590, "only {answered} of 600 forged kids were answered");
}

#[test]
fn stale_keys_are_trusted_until_stale_if_error_then_503() {
    let config = config_with(
        json!({"local_jwks": null,
        "remote_jwks": {"http_uri": {"uri": "https://idp.test/jwks", "cluster": "idp", "timeout": "1s"},
                        "cache_duration": "10s", "stale_if_error": "60s"}}),
        json!({}),
    );
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(config, host.now, 1);
    plugin.on_tick(&mut host);
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    let start = host.now;
    let mut id = 10;
    while host.now - start < 70_000 {
        host.now += 250;
        plugin.on_tick(&mut host);
        let token = host.next_token;
        answer(&mut plugin, &mut host, token, Some(500), Some(b"down".to_vec()));
        id += 1;
        host.arrive(&mut plugin, id, Some(&bearer()));
        let status = host.status(id);
        if host.now - start <= 60_000 {
            assert_eq!(status, None, "stale keys still trusted at +{} ms", host.now - start);
        } else {
            assert_eq!(status, Some(503), "past stale_if_error at +{} ms", host.now - start);
        }
    }
}

#[test]
fn discovery_fetches_the_document_then_the_jwks() {
    let config = config_with(
        json!({"local_jwks": null,
        "discovery": {"http_uri": {"uri": "https://idp.test/.well-known/openid-configuration", "cluster": "idp"}}}),
        json!({}),
    );
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(config, host.now, 1);
    plugin.on_tick(&mut host);
    assert_eq!(host.dispatched[0].2, "/.well-known/openid-configuration");
    host.arrive(&mut plugin, 10, Some(&bearer()));
    let doc = json!({"issuer": ISS, "jwks_uri": "https://idp.test/jwks.json"}).to_string();
    answer(&mut plugin, &mut host, 1, Some(200), Some(doc.into_bytes()));
    assert_eq!(host.dispatched[1].2, "/jwks.json");
    answer(&mut plugin, &mut host, 2, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert!(host.requests[&10].resumed);
}

#[test]
fn a_vm_that_goes_away_mid_fetch_hands_the_lease_back() {
    let mut vms = vms_of_one_envoy(4);
    tick_all(&mut vms, 0);
    let fetcher = vms.iter().position(|(_, h)| !h.dispatched.is_empty()).unwrap();
    {
        let (plugin, host) = &mut vms[fetcher];
        plugin.on_shutdown(host);
    }
    vms.remove(fetcher);
    tick_all(&mut vms, 0);
    assert_eq!(total_fetches(&vms), 1, "another VM fetched at once, without waiting for the lease to expire");
}

#[test]
fn metrics_count_decisions_fetches_cache_and_pauses() {
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(remote_config(), host.now, 1);
    plugin.define_metrics(&mut host);
    plugin.on_tick(&mut host);
    let token = bearer();
    host.arrive(&mut plugin, 1, Some(&token));
    assert_eq!(host.metric("jwt_guard.requests.paused"), 0, "counted locally until the next flush");
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    host.arrive(&mut plugin, 2, Some(&token));
    host.arrive(&mut plugin, 3, Some(&format!("Bearer {}", id_token(json!({})))));
    host.arrive(&mut plugin, 4, None);
    host.arrive(&mut plugin, 5, Some("Bearer opaque"));
    // A CORS preflight passes unchecked: allowed, and counted apart.
    let preflight = [
        (":method", "OPTIONS"),
        (":path", "/x"),
        ("origin", "https://app.test"),
        ("access-control-request-method", "GET"),
    ];
    let headers = preflight.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
    host.requests.insert(6, FakeRequest { headers, ..FakeRequest::default() });
    host.effective = 6;
    assert_eq!(plugin.on_request(&mut host, 6), Action::Continue);
    host.now += 5_000;
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.requests.paused"), 1);
    assert_eq!(host.metric("jwt_guard.requests.allowed"), 3);
    assert_eq!(host.metric("jwt_guard.requests.preflight"), 1);
    assert_eq!(host.metric("jwt_guard.provider.p.allowed"), 2);
    assert_eq!(host.metric("jwt_guard.requests.denied.id_token"), 1);
    assert_eq!(host.metric("jwt_guard.provider.p.denied.id_token"), 1);
    assert_eq!(host.metric("jwt_guard.requests.denied.missing"), 1);
    assert_eq!(host.metric("jwt_guard.requests.denied.opaque"), 1);
    assert_eq!(host.metric("jwt_guard.requests.denied.expired"), 0, "defined up front");
    assert_eq!(host.metric("jwt_guard.provider.p.cache.hit"), 1);
    assert_eq!(host.metric("jwt_guard.provider.p.cache.miss"), 3);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.success"), 1);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.failure"), 0);
    assert_eq!(host.metric("jwt_guard.provider.p.keys_loaded"), 5);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_age_seconds"), 5);
    assert_eq!(host.metric("jwt_guard.provider.p.cache.entries"), 1);
}

#[test]
fn a_vm_that_serves_no_requests_leaves_the_cache_gauge_alone() {
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(config_with(json!({}), json!({})), host.now, 1);
    plugin.define_metrics(&mut host);
    let id =
        host.metrics.iter().find(|(_, (n, _))| n == "jwt_guard.provider.p.cache.entries").map(|(id, _)| *id).unwrap();
    host.metrics.get_mut(&id).unwrap().1 = 777; // what a worker reported
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.provider.p.cache.entries"), 777);
}

#[test]
fn a_vm_uses_keys_another_vm_published_without_waiting_for_its_tick() {
    let mut vms = vms_of_one_envoy(4);
    tick_all(&mut vms, 0);
    let fetcher = vms.iter().position(|(_, h)| !h.dispatched.is_empty()).unwrap();
    {
        let (plugin, host) = &mut vms[fetcher];
        answer(plugin, host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    }
    let other = (fetcher + 1) % 4;
    let (plugin, host) = &mut vms[other];
    assert_eq!(host.arrive(plugin, 10, Some(&bearer())), Action::Continue, "no tick in between");
    assert_eq!(plugin.pending_len(), 0);
}

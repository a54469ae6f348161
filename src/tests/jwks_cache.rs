use serde_json::json;

use crate::engine::KeyState;
use crate::jwks_cache::*;
use crate::testkit::*;

fn remote_slot(now: u64) -> KeySlot {
    let p = provider_with(json!({"local_jwks": null, "remote_jwks": {
        "http_uri": {"uri": "https://idp.test/jwks", "cluster": "idp", "timeout": "2s"}, "cache_duration": "60s"}}));
    KeySlot::new(&p, now)
}

#[test]
fn local_keys_are_ready_at_once_and_never_fetched() {
    let p = provider_with(json!({}));
    let mut slot = KeySlot::new(&p, 0);
    assert!(matches!(slot.state(0), KeyState::Ready(_)));
    assert_eq!(slot.poll(u64::MAX - 1), None);
}

#[test]
fn first_fetch_is_due_at_start_and_requests_wait_until_the_deadline() {
    let mut slot = remote_slot(1_000);
    let req = slot.poll(1_000).unwrap();
    assert_eq!(req, FetchRequest { cluster: "idp".into(), authority: "idp.test".into(), path: "/jwks".into(), timeout_ms: 2000 });
    slot.started(7, 1_000);
    assert_eq!(slot.poll(1_001), None, "one fetch at a time");
    assert!(matches!(slot.state(2_999), KeyState::Loading));
    assert!(matches!(slot.state(3_000), KeyState::Unavailable));
}

#[test]
fn success_loads_keys_and_schedules_refresh() {
    let mut slot = remote_slot(0);
    slot.poll(0).unwrap();
    slot.started(1, 0);
    assert!(slot.owns(1) && !slot.owns(2));
    let out = slot.on_response(500, Some(200), Some(JWKS.as_bytes()));
    assert_eq!(out, FetchOutcome::Updated { keys: 5, skipped: vec![] });
    assert_eq!(slot.generation, 1);
    assert!(matches!(slot.state(10_000_000), KeyState::Ready(k) if k.len() == 5));
    assert_eq!(slot.poll(60_499), None);
    assert!(slot.poll(60_500).is_some(), "refresh after cache_duration");
}

#[test]
fn failures_keep_old_keys_and_back_off() {
    let mut slot = remote_slot(0);
    slot.started(1, 0);
    slot.on_response(0, Some(200), Some(JWKS.as_bytes()));
    for (status, body) in [(Some(500), &b"oops"[..]), (Some(200), b"<html>"), (Some(200), br#"{"keys": []}"#),
                           (Some(200), b"{}"), (Some(301), b""), (None, b"")] {
        slot.started(2, 100);
        assert!(matches!(slot.on_response(100, status, Some(body)), FetchOutcome::Failed(_)), "{status:?}");
        assert!(matches!(slot.state(100), KeyState::Ready(k) if k.len() == 5));
    }
    assert_eq!(slot.generation, 1);
    // Backoff: 1s, 2s, 4s ... capped at 60s.
    let mut slot = remote_slot(0);
    let mut now = 0;
    let mut gaps = Vec::new();
    for _ in 0..9 {
        slot.started(1, now);
        slot.on_response(now, Some(503), None);
        let mut t = now;
        while slot.poll(t).is_none() {
            t += 100;
        }
        gaps.push(t - now);
        now = t;
    }
    assert_eq!(gaps, vec![1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
}

#[test]
fn oversized_body_is_refused() {
    let mut slot = remote_slot(0);
    slot.started(1, 0);
    let big = vec![b' '; MAX_JWKS_BYTES + 1];
    assert!(matches!(slot.on_response(0, Some(200), Some(&big)), FetchOutcome::Failed(m) if m.contains("exceeds")));
}

#[test]
fn own_deadline_fires_when_envoy_never_answers() {
    let mut slot = remote_slot(0);
    slot.started(1, 0);
    assert_eq!(slot.check_deadline(1_999), None);
    assert!(matches!(slot.check_deadline(2_000), Some(FetchOutcome::Failed(m)) if m.contains("timed out")));
    assert!(!slot.owns(1), "a late answer to the timed-out fetch is ignored");
}

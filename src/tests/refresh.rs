use serde_json::{json, Value};

use crate::jwks::{KeyState, KidRefetch};
use crate::policy::Issuers;
use crate::refresh::fetch_error::FetchError;
use crate::refresh::*;
use crate::testkit::*;

fn remote_slot(now: u64, discovery: bool) -> KeySlot {
    let source = json!({"http_uri": {"uri": "https://idp.test/jwks", "cluster": "idp", "timeout": "2s"},
                        "cache_duration": "60s", "stale_if_error": "300s", "unknown_kid_refetch_interval": "30s"});
    let patch = if discovery {
        json!({"local_jwks": null, "discovery": source})
    } else {
        json!({"local_jwks": null, "remote_jwks": source})
    };
    KeySlot::new(&provider_with(patch), now, 7)
}

/// Runs one whole successful fetch on a slot, as the shell would.
fn fetch_ok(slot: &mut KeySlot, shared: &mut SharedState, now: u64) {
    slot.observe(shared);
    *shared = slot.claim(now).expect("a fetch is due");
    slot.observe(shared);
    slot.started(1, now);
    match slot.on_response(Ok((200, JWKS.as_bytes().to_vec())), Some(&Issuers::single(ISS))) {
        Step::Fetched { keys, .. } => {
            let g = shared.generation + 1;
            *shared = slot.complete(now, shared, Some(g), 0);
            slot.install(keys, g, now);
            slot.observe(shared);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn local_keys_are_ready_at_once_and_never_fetched() {
    let p = provider_with(json!({}));
    let slot = KeySlot::new(&p, 0, 1);
    assert!(matches!(slot.state(0), KeyState::Ready(_, KidRefetch::Exhausted)));
    assert_eq!(slot.claim(u64::MAX - 1), None);
}

#[test]
fn a_due_fetch_takes_the_lease_and_only_one_vm_gets_it() {
    let mut a = remote_slot(1_000, false);
    let mut b = remote_slot(1_000, false);
    let shared = SharedState::default();
    a.observe(&shared);
    b.observe(&shared);
    let claimed = a.claim(1_000).unwrap();
    assert_eq!(claimed.lease_owner, 7);
    assert_eq!(claimed.lease_until_ms, 1_000 + 2_000 + 1_000);
    b.observe(&claimed);
    assert_eq!(b.claim(1_001), None, "leased");
    assert!(b.claim(4_000).is_some(), "a lease that outlived its fetch expires");
    assert_eq!(
        a.begin().unwrap(),
        FetchRequest { cluster: "idp".into(), authority: "idp.test".into(), path: "/jwks".into(), timeout_ms: 3000 }
    );
}

#[test]
fn requests_wait_until_the_first_deadline() {
    let slot = remote_slot(1_000, false);
    assert!(matches!(slot.state(2_999), KeyState::Loading));
    assert!(matches!(slot.state(3_000), KeyState::Unavailable));
    let slot = remote_slot(1_000, true);
    assert!(matches!(slot.state(4_999), KeyState::Loading), "discovery has two fetches");
}

#[test]
fn success_publishes_a_generation_and_schedules_refresh() {
    let mut slot = remote_slot(0, false);
    let mut shared = SharedState::default();
    fetch_ok(&mut slot, &mut shared, 500);
    assert_eq!(shared.generation, 1);
    assert_eq!(shared.fetched_ms, 500);
    assert_eq!(shared.next_fetch_ms, 60_500);
    assert_eq!(shared.lease_until_ms, 0);
    assert!(matches!(slot.state(600), KeyState::Ready(k, _) if k.len() == 5));
    assert_eq!(slot.claim(60_499), None);
    assert!(slot.claim(60_500).is_some());
}

#[test]
fn other_vms_adopt_each_generation_once() {
    let mut fetcher = remote_slot(0, false);
    let mut shared = SharedState::default();
    fetch_ok(&mut fetcher, &mut shared, 500);
    let stored = encode_body(shared.generation, shared.fetched_ms, JWKS.as_bytes());
    let mut other = remote_slot(0, false);
    assert!(other.observe(&shared), "newer generation");
    assert_eq!(other.adopt(&stored), Ok(5));
    assert!(!other.observe(&shared), "already has it");
    assert!(matches!(other.state(600), KeyState::Ready(..)));
    assert!(other.adopt(b"short").is_err());
    let bad = encode_body(9, 0, b"{}");
    assert!(other.adopt(&bad).is_err());
    assert!(matches!(other.state(600), KeyState::Ready(k, _) if k.len() == 5), "a bad body keeps the old keys");
}

#[test]
fn failures_keep_keys_back_off_with_jitter_and_expire_after_stale_if_error() {
    let mut slot = remote_slot(0, false);
    let mut shared = SharedState::default();
    fetch_ok(&mut slot, &mut shared, 0);
    for (answer, cause) in [
        (Ok((500, b"oops".to_vec())), "status"),
        (Ok((200, b"<html>".to_vec())), "invalid"),
        (Ok((200, br#"{"keys": []}"#.to_vec())), "invalid"),
        (Ok((200, b"{}".to_vec())), "invalid"),
        (Ok((200, b"".to_vec())), "invalid"),
        (Ok((301, b"".to_vec())), "status"),
        (Err(FetchError::Reset("reset".into())), "reset"),
    ] {
        slot.started(2, 100);
        match slot.on_response(answer, Some(&Issuers::single(ISS))) {
            Step::Failed(e) => assert_eq!(e.cause(), cause, "{e}"),
            _ => panic!("accepted, expected {cause}"),
        }
        assert!(matches!(slot.state(100), KeyState::Ready(k, _) if k.len() == 5));
    }
    let big = vec![b' '; MAX_JWKS_BYTES + 1];
    slot.started(3, 100);
    assert!(matches!(
        slot.on_response(Ok((200, big)), Some(&Issuers::single(ISS))),
        Step::Failed(FetchError::TooLarge(_))
    ));
    // Stale keys are trusted for stale_if_error (300 s here), then the provider is unavailable.
    assert!(matches!(slot.state(300_000), KeyState::Ready(..)));
    assert!(matches!(slot.state(300_001), KeyState::Unavailable));
    // Backoff doubles from 1 s to a 60 s cap, each delay in [base/2, base].
    let mut s = SharedState::default();
    for (n, base) in [(1u32, 1_000u64), (2, 2_000), (3, 4_000), (7, 60_000), (30, 60_000)] {
        s.failures = n - 1;
        for jitter in [0u64, 1, 999_999, u64::MAX] {
            let next = slot.complete(10_000, &s, None, jitter);
            assert_eq!(next.failures, n);
            let delay = next.next_fetch_ms - 10_000;
            assert!(delay >= base / 2 && delay <= base, "failures {n}: {delay}");
            assert_eq!(next.lease_until_ms, 0);
            assert_eq!(next.attempt_done_ms, 10_000);
        }
    }
    assert_ne!(backoff_ms(3, 1), backoff_ms(3, 2), "jitter spreads retries");
}

#[test]
fn scheduled_refreshes_come_up_to_a_tenth_early_never_late() {
    for jitter in [0u64, 1, 7_777, 59_999, 60_000, u64::MAX] {
        let r = refresh_ms(600_000, jitter);
        assert!((540_000..=600_000).contains(&r), "{jitter}: {r}");
    }
    assert_ne!(refresh_ms(600_000, 1_234), refresh_ms(600_000, 5_678), "a fleet spreads out");
    assert_eq!(refresh_ms(600_000, 0), 600_000);
    assert_eq!(refresh_ms(u64::MAX, 5), u64::MAX, "local keys are never refreshed");
    let slot = remote_slot(0, false);
    let next = slot.complete(10_000, &SharedState::default(), Some(1), 30_001);
    assert_eq!(next.next_fetch_ms, 10_000 + 60_000 - 30_001 % 6_001, "complete() applies it");
}

#[test]
fn own_deadline_fires_when_envoy_never_answers() {
    let mut slot = remote_slot(0, false);
    slot.started(1, 0);
    assert_eq!(slot.check_deadline(1_999), None);
    assert_eq!(slot.check_deadline(2_000), Some(FetchError::Timeout(Some(2_000))));
    assert!(!slot.owns(1), "a late answer to the timed-out fetch is ignored");
}

#[test]
fn unknown_kid_refetches_are_rate_limited() {
    let mut slot = remote_slot(0, false);
    let mut shared = SharedState::default();
    fetch_ok(&mut slot, &mut shared, 0);
    let kid = |slot: &KeySlot, now| match slot.state(now) {
        KeyState::Ready(_, k) => k,
        other => panic!("{other:?}"),
    };
    assert_eq!(kid(&slot, 1_000), KidRefetch::Allowed);
    let asked = slot.request_kid_refetch(1_000).unwrap();
    assert_eq!(asked.next_fetch_ms, 1_000, "the refetch is due at once");
    slot.observe(&asked);
    assert_eq!(kid(&slot, 1_000), KidRefetch::Pending);
    assert_eq!(slot.request_kid_refetch(1_000), None, "single flight");
    shared = asked;
    fetch_ok(&mut slot, &mut shared, 1_200);
    assert_eq!(kid(&slot, 1_300), KidRefetch::Exhausted, "done; the next is 30 s away");
    assert_eq!(slot.request_kid_refetch(20_000), None);
    assert_eq!(kid(&slot, 31_000), KidRefetch::Allowed);
}

#[test]
fn discovery_checks_issuer_and_host_then_fetches_jwks_uri() {
    let mut slot = remote_slot(0, true);
    slot.observe(&SharedState::default());
    slot.claim(0).unwrap();
    slot.started(1, 0);
    let doc = json!({"issuer": ISS, "jwks_uri": "https://idp.test/keys/jwks.json"}).to_string();
    match slot.on_response(Ok((200, doc.as_bytes().to_vec())), Some(&Issuers::single(ISS))) {
        Step::Next(req) => assert_eq!(req.path, "/keys/jwks.json"),
        other => panic!("{other:?}"),
    }
    slot.started(2, 10);
    assert!(slot.owns(2));
    assert!(matches!(
        slot.on_response(Ok((200, JWKS.as_bytes().to_vec())), Some(&Issuers::single(ISS))),
        Step::Fetched { .. }
    ));

    for (doc, needle) in [
        (json!({"issuer": "https://evil.test/", "jwks_uri": "https://idp.test/jwks"}), "is not the configured issuer"),
        (json!({"issuer": ISS, "jwks_uri": "https://other.test/jwks"}), "is not the discovery host"),
        (json!({"issuer": ISS}), "no `jwks_uri`"),
        (json!({"jwks_uri": "https://idp.test/jwks"}), "no `issuer`"),
        (json!({"issuer": ISS, "jwks_uri": "ftp://idp.test/jwks"}), "not an http(s) URL"),
    ] {
        let mut slot = remote_slot(0, true);
        slot.started(1, 0);
        match slot.on_response(Ok((200, doc.to_string().into_bytes())), Some(&Issuers::single(ISS))) {
            Step::Failed(m) => assert!(m.to_string().contains(needle), "{m}"),
            other => panic!("{doc}: {other:?}"),
        }
    }
}

#[test]
fn discovery_shares_the_introspection_endpoint_on_its_host_only() {
    for (endpoint, want) in [
        (json!("https://idp.test/oauth/introspect"), Some("/oauth/introspect")),
        (json!("https://IDP.test/x"), Some("/x")),
        (json!("https://other.test/oauth/introspect"), None),
        (json!("https://idp.test/a b"), None),
        (json!(42), None),
        (Value::Null, None),
    ] {
        let mut slot = remote_slot(0, true);
        slot.observe(&SharedState::default());
        slot.claim(0).unwrap();
        slot.started(1, 0);
        let mut doc = json!({"issuer": ISS, "jwks_uri": "https://idp.test/jwks"});
        if !endpoint.is_null() {
            doc["introspection_endpoint"] = endpoint.clone();
        }
        assert!(matches!(
            slot.on_response(Ok((200, doc.to_string().into_bytes())), Some(&Issuers::single(ISS))),
            Step::Next(_)
        ));
        slot.started(2, 10);
        assert!(matches!(
            slot.on_response(Ok((200, JWKS.as_bytes().to_vec())), Some(&Issuers::single(ISS))),
            Step::Fetched { .. }
        ));
        let next = slot.complete(20, &SharedState::default(), Some(1), 0);
        assert_eq!(next.introspection_path.as_deref(), want, "{endpoint}");
        // Every VM reads it from the shared record.
        let mut other = remote_slot(0, true);
        other.observe(&SharedState::decode(&next.encode()).unwrap());
        assert_eq!(other.introspection_path(), want);
    }
}

#[test]
fn shared_state_round_trips_and_rejects_garbage() {
    let s = SharedState {
        generation: 3,
        fetched_ms: 4,
        next_fetch_ms: 5,
        failures: 1,
        lease_until_ms: 6,
        lease_owner: 7,
        kid_refetch_ms: 8,
        attempt_done_ms: 9,
        introspection_path: Some("/introspect".into()),
    };
    assert_eq!(SharedState::decode(&s.encode()), Some(s));
    // A record written before the field existed still decodes.
    let old = br#"{"generation":3,"fetched_ms":4,"next_fetch_ms":5,"failures":1,"lease_until_ms":6,"lease_owner":7,"kid_refetch_ms":8,"attempt_done_ms":9}"#;
    assert_eq!(SharedState::decode(old).map(|s| s.introspection_path), Some(None));
    assert_eq!(SharedState::decode(b"garbage"), None);
    assert_eq!(decode_body(&encode_body(2, 3, b"x")), Some((2, 3, &b"x"[..])));
    assert_eq!(decode_body(b"short"), None);
}

#[test]
fn release_hands_back_only_our_own_lease() {
    let mut a = remote_slot(0, false);
    a.observe(&SharedState::default());
    let leased = a.claim(0).unwrap();
    a.started(1, 0);
    let released = a.release(10, &leased).unwrap();
    assert_eq!((released.lease_until_ms, released.next_fetch_ms), (0, 10));
    assert!(!a.fetching());
    let mut other = KeySlot::new(
        &provider_with(json!({"local_jwks": null,
        "remote_jwks": {"http_uri": {"uri": "https://idp.test/jwks", "cluster": "idp"}}})),
        0,
        99,
    );
    assert_eq!(other.release(10, &leased), None, "not ours");
}

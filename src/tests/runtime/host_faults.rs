//! Every host call failing, fetch failures by cause, and failing fast.

use super::*;
use crate::runtime::host::HostStatus;
use crate::runtime::{Action, Plugin};
use crate::testkit::*;

/// Every host call the plugin makes, by the name the fake host fails it under.
const CALLS: [&str; 20] = [
    "now_ms",
    "set_tick_period",
    "dispatch_get",
    "call_response_header",
    "call_response_body",
    "call_status",
    "get_shared",
    "set_shared",
    "set_effective_context",
    "request_header_map",
    "property",
    "set_property",
    "declare_string_property",
    "remove_request_header",
    "set_request_header",
    "send_response",
    "resume_request",
    "define_metric",
    "increment_metric",
    "record_metric",
];

/// A plugin with its keys loaded and metrics defined.
fn loaded() -> (Plugin, FakeHost) {
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(remote_config(), host.now, 1);
    plugin.define_metrics(&mut host);
    plugin.on_tick(&mut host);
    answer(&mut plugin, &mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    (plugin, host)
}

#[test]
fn every_failing_host_call_leaves_the_plugin_deciding_and_never_fails_open() {
    for call in CALLS {
        for status in HostStatus::ALL {
            let (mut plugin, mut host) = loaded();
            host.failing.insert(call, status);
            let ctx = format!("{call} -> {status}");
            // A valid token: let through with the token stripped and the claim set, or refused.
            let action = host.arrive(&mut plugin, 10, Some(&bearer()));
            match action {
                Action::Continue => {
                    assert_eq!(host.header(10, "authorization"), None, "{ctx}: token reached the upstream");
                    assert_eq!(host.header(10, "x-sub").as_deref(), Some("user-1"), "{ctx}");
                }
                Action::Pause => {
                    let expected = matches!(
                        call,
                        "request_header_map" | "remove_request_header" | "set_request_header" | "set_property"
                    );
                    assert!(expected, "{ctx}: a valid request was refused");
                    if call != "send_response" {
                        assert_eq!(host.status(10), Some(503), "{ctx}");
                    }
                }
            }
            // No token and a forged token: never let through.
            assert_eq!(host.arrive(&mut plugin, 11, None), Action::Pause, "{ctx}");
            assert_eq!(host.arrive(&mut plugin, 12, Some("Bearer a.b.c")), Action::Pause, "{ctx}");
            // Refreshes, fetch answers and ticks go on without harm.
            for _ in 0..3 {
                host.now += 61_000;
                plugin.on_tick(&mut host);
                let token = host.next_token;
                answer(&mut plugin, &mut host, token, Some(200), Some(JWKS.as_bytes().to_vec()));
                host.call_status = (11, "reset".into());
                answer(&mut plugin, &mut host, token, None, None);
            }
            plugin.on_shutdown(&mut host);
            // Once the host recovers, requests are decided as before.
            host.failing.clear();
            assert_eq!(host.arrive(&mut plugin, 13, Some(&bearer())), Action::Continue, "{ctx}");
            assert_eq!(host.arrive(&mut plugin, 14, None), Action::Pause, "{ctx}");
            assert_eq!(host.status(14), Some(401), "{ctx}");
        }
    }
}

#[test]
fn a_503_for_an_unreadable_request_has_the_cores_body_and_retry_after() {
    let (mut plugin, mut host) = loaded();
    host.failing.insert("request_header_map", HostStatus::INTERNAL_FAILURE);
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Pause);
    let (status, headers, body) = host.requests[&10].response.clone().unwrap();
    assert_eq!(status, 503);
    assert!(headers.contains(&("retry-after".into(), "1".into())), "{headers:?}");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    host.failing.clear();
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.requests.denied.internal"), 1);
}

#[test]
fn without_a_plugin_the_shell_answers_the_cores_503() {
    let mut host = FakeHost::default();
    host.requests.insert(1, FakeRequest::default());
    host.effective = 1;
    assert_eq!(crate::runtime::unavailable(&mut host), Action::Pause);
    let (status, headers, body) = host.requests[&1].response.clone().unwrap();
    assert_eq!(status, 503);
    assert!(headers.contains(&("retry-after".into(), "1".into())));
    assert!(String::from_utf8(body).unwrap().contains("temporarily_unavailable"));
}

#[test]
fn a_fetch_that_fails_before_any_keys_answers_waiting_requests_at_once() {
    let (mut plugin, mut host) = started();
    plugin.define_metrics(&mut host);
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Pause);
    assert_eq!(host.status(10), None, "waits for the first fetch");
    host.now += 20; // long before the 2 s deadline
    answer(&mut plugin, &mut host, 1, Some(503), Some(b"down".to_vec()));
    assert_eq!(host.status(10), Some(503), "answered as soon as the fetch failed");
    let headers = &host.requests[&10].response.as_ref().unwrap().1;
    assert!(headers.contains(&("retry-after".into(), "1".into())));
    // Until a fetch succeeds, new requests do not wait either.
    host.arrive(&mut plugin, 11, Some(&bearer()));
    assert_eq!(host.status(11), Some(503));
    host.now += 1_000;
    plugin.on_tick(&mut host);
    host.arrive(&mut plugin, 12, Some(&bearer()));
    assert_eq!(host.status(12), Some(503), "a retry under way does not make requests wait");
    answer(&mut plugin, &mut host, 2, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert_eq!(host.arrive(&mut plugin, 13, Some(&bearer())), Action::Continue);
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.error.status"), 1);
}

#[test]
fn a_failed_call_is_a_reset_with_the_proxys_word_for_it() {
    let (mut plugin, mut host) = loaded();
    host.now += 61_000;
    plugin.on_tick(&mut host);
    host.call_status = (11, "reset".into());
    answer(&mut plugin, &mut host, 2, None, None);
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.error.reset"), 1);
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Continue, "old keys kept");
}

#[test]
fn a_body_over_the_limit_is_never_read() {
    let (mut plugin, mut host) = loaded();
    host.now += 61_000;
    plugin.on_tick(&mut host);
    // Reading the body would fail: the plugin must not try.
    host.failing.insert("call_response_body", HostStatus::BAD_ARGUMENT);
    host.call = (Some(b"200".to_vec()), Vec::new());
    plugin.on_fetch_response(&mut host, 2, 3, 10 * 1024 * 1024);
    host.failing.clear();
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.error.too_large"), 1);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.error.host"), 0);
}

#[test]
fn envoys_connect_failure_is_not_the_idps_503() {
    let (mut plugin, mut host) = loaded();
    host.now += 61_000;
    plugin.on_tick(&mut host);
    let body = b"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, \
                 transport failure reason: delayed connect error: Connection refused";
    answer(&mut plugin, &mut host, 2, Some(503), Some(body.to_vec()));
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.error.connect"), 1);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.error.status"), 0);
}

#[test]
fn an_answer_after_our_deadline_is_ignored() {
    let (mut plugin, mut host) = loaded();
    host.now += 61_000;
    plugin.on_tick(&mut host);
    host.now += 2_000;
    plugin.on_tick(&mut host);
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.error.timeout"), 1);
    // Envoy's backstop answers later with a rotated key set: not taken.
    answer(&mut plugin, &mut host, 2, Some(200), Some(JWKS_ROTATED.as_bytes().to_vec()));
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Continue);
    plugin.on_tick(&mut host);
    assert_eq!(host.metric("jwt_guard.provider.p.jwks_fetch.success"), 1);
}

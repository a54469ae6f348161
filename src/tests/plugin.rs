//! The shell's lifecycle against a fake host: pause, fetch, resume, deadlines, bounds.

use std::collections::HashMap;

use serde_json::json;

use crate::config::Config;
use crate::shell::host::Host;
use crate::shell::plugin::{Action, Plugin, MAX_PENDING};
use crate::testkit::*;

type SentResponse = (u32, Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
struct FakeRequest {
    headers: Vec<(String, Vec<u8>)>,
    response: Option<SentResponse>,
    resumed: bool,
}

#[derive(Default)]
struct FakeHost {
    now: u64,
    effective: u32,
    requests: HashMap<u32, FakeRequest>,
    dispatched: Vec<(String, String, String, u64)>,
    next_token: u32,
    refuse_dispatch: bool,
}

impl Host for FakeHost {
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn dispatch_get(&mut self, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Result<u32, String> {
        if self.refuse_dispatch {
            return Err("BadArgument".into());
        }
        self.next_token += 1;
        self.dispatched.push((cluster.into(), authority.into(), path.into(), timeout_ms));
        Ok(self.next_token)
    }
    fn set_effective_context(&mut self, id: u32) -> bool {
        self.effective = id;
        self.requests.contains_key(&id)
    }
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.requests.get(&self.effective).map(|r| r.headers.clone()).unwrap_or_default()
    }
    fn remove_request_header(&mut self, name: &str) {
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.headers.retain(|(k, _)| k != name);
        }
    }
    fn set_request_header(&mut self, name: &str, value: &str) {
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.headers.retain(|(k, _)| k != name);
            r.headers.push((name.into(), value.as_bytes().to_vec()));
        }
    }
    fn send_response(&mut self, status: u32, headers: &[(String, String)], body: &[u8]) {
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.response = Some((status, headers.to_vec(), body.to_vec()));
        }
    }
    fn resume_request(&mut self) {
        if let Some(r) = self.requests.get_mut(&self.effective) {
            r.resumed = true;
        }
    }
}

impl FakeHost {
    fn arrive(&mut self, plugin: &mut Plugin, id: u32, auth: Option<&str>) -> Action {
        let mut headers = vec![(":method".to_string(), b"GET".to_vec()), (":path".to_string(), b"/x".to_vec())];
        if let Some(a) = auth {
            headers.push(("authorization".into(), a.as_bytes().to_vec()));
        }
        self.requests.insert(id, FakeRequest { headers, ..FakeRequest::default() });
        self.effective = id;
        plugin.on_request(self, id)
    }

    fn status(&self, id: u32) -> Option<u32> {
        self.requests[&id].response.as_ref().map(|r| r.0)
    }

    fn header(&self, id: u32, name: &str) -> Option<String> {
        self.requests[&id].headers.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

fn remote_config() -> Config {
    config_with(json!({"local_jwks": null,
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
        "remote_jwks": {"http_uri": {"uri": "https://idp.test/.well-known/jwks.json", "cluster": "idp", "timeout": "2s"},
                        "cache_duration": "60s"}}), json!({}))
}

fn bearer() -> String {
    format!("Bearer {}", access_token(json!({})))
}

fn started() -> (Plugin, FakeHost) {
    let mut host = FakeHost { now: NOW * 1000, ..FakeHost::default() };
    let mut plugin = Plugin::new(remote_config(), host.now);
    plugin.on_tick(&mut host);
    (plugin, host)
}

#[test]
fn fetch_starts_at_once_with_authority_and_path_from_the_uri() {
    let (_, host) = started();
    assert_eq!(host.dispatched, vec![("idp".into(), "idp.test".into(), "/.well-known/jwks.json".into(), 2000)]);
}

#[test]
fn early_requests_pause_then_resume_when_keys_land() {
    let (mut plugin, mut host) = started();
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Pause);
    assert_eq!(host.arrive(&mut plugin, 11, Some("Bearer opaque-token")), Action::Pause);
    assert_eq!(plugin.pending_len(), 2);
    assert_eq!(host.status(10), None);
    host.now += 300;
    plugin.on_fetch_response(&mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
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
    plugin.on_fetch_response(&mut host, 2, Some(200), Some(JWKS.as_bytes().to_vec()));
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
    plugin.on_fetch_response(&mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert_eq!(plugin.pending_len(), 0);
}

#[test]
fn superseded_and_unknown_responses_are_ignored() {
    let (mut plugin, mut host) = started();
    host.arrive(&mut plugin, 10, Some(&bearer()));
    plugin.on_fetch_response(&mut host, 99, Some(200), Some(JWKS.as_bytes().to_vec()));
    assert_eq!(plugin.pending_len(), 1, "not our fetch");
    host.now += 2_000;
    plugin.on_tick(&mut host); // deadline: fetch 1 is abandoned, fetch 2 started 1s later
    plugin.on_fetch_response(&mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    host.arrive(&mut plugin, 11, Some(&bearer()));
    assert_eq!(host.status(11), Some(503), "the late answer to the abandoned fetch was ignored");
}

#[test]
fn refused_dispatch_is_retried_with_backoff() {
    let mut host = FakeHost { now: NOW * 1000, refuse_dispatch: true, ..FakeHost::default() };
    let mut plugin = Plugin::new(remote_config(), host.now);
    plugin.on_tick(&mut host);
    host.refuse_dispatch = false;
    host.now += 500;
    plugin.on_tick(&mut host);
    assert!(host.dispatched.is_empty());
    host.now += 500;
    plugin.on_tick(&mut host);
    assert_eq!(host.dispatched.len(), 1);
}

#[test]
fn new_keys_evict_cached_tokens_of_removed_keys() {
    let (mut plugin, mut host) = started();
    plugin.on_fetch_response(&mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    let token = bearer();
    assert_eq!(host.arrive(&mut plugin, 10, Some(&token)), Action::Continue);
    assert_eq!(host.arrive(&mut plugin, 11, Some(&token)), Action::Continue, "served from cache");
    host.now += 60_000;
    plugin.on_tick(&mut host);
    plugin.on_fetch_response(&mut host, 2, Some(200), Some(JWKS_ROTATED.as_bytes().to_vec()));
    host.arrive(&mut plugin, 12, Some(&token));
    assert_eq!(host.status(12), Some(401), "rsa-1 left the JWKS: its cached tokens die with it");
}

#[test]
fn a_failed_refresh_keeps_the_old_keys() {
    let (mut plugin, mut host) = started();
    plugin.on_fetch_response(&mut host, 1, Some(200), Some(JWKS.as_bytes().to_vec()));
    host.now += 60_000;
    plugin.on_tick(&mut host);
    plugin.on_fetch_response(&mut host, 2, Some(500), Some(b"down".to_vec()));
    assert_eq!(host.arrive(&mut plugin, 10, Some(&bearer())), Action::Continue);
}

//! One provider's keys over time: when to fetch, what a fetch result does to the keys, and
//! what requests see meanwhile. Pure state machine: the shell feeds it the clock and the
//! fetch results, and carries out the fetches it asks for.

use crate::config::{KeySource, Provider, RemoteJwks};
use crate::engine::KeyState;
use crate::jwks::KeySet;

/// Bodies larger than this are refused without parsing.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
const RETRY_MIN_MS: u64 = 1_000;
const RETRY_MAX_MS: u64 = 60_000;

#[derive(Debug)]
pub struct KeySlot {
    remote: Option<RemoteJwks>,
    keys: Option<KeySet>,
    /// Bumped whenever `keys` is replaced; caches keyed on keys compare it.
    pub generation: u64,
    /// Until then, requests for a never-loaded provider wait instead of getting 503.
    wait_deadline_ms: u64,
    next_fetch_ms: u64,
    in_flight: Option<(u32, u64)>,
    failures: u32,
}

/// A fetch the shell should start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// New keys are in use: their count, and the keys skipped as unusable.
    Updated { keys: usize, skipped: Vec<String> },
    /// The fetch failed; old keys (if any) stay. The text is for the log.
    Failed(String),
}

impl KeySlot {
    pub fn new(provider: &Provider, now_ms: u64) -> KeySlot {
        match &provider.keys {
            KeySource::Local(set) => KeySlot {
                remote: None,
                keys: Some(set.clone()),
                generation: 1,
                wait_deadline_ms: now_ms,
                next_fetch_ms: u64::MAX,
                in_flight: None,
                failures: 0,
            },
            KeySource::Remote(r) => KeySlot {
                wait_deadline_ms: now_ms.saturating_add(r.timeout_ms),
                remote: Some(r.clone()),
                keys: None,
                generation: 0,
                next_fetch_ms: now_ms,
                in_flight: None,
                failures: 0,
            },
        }
    }

    pub fn state(&self, now_ms: u64) -> KeyState<'_> {
        match &self.keys {
            Some(k) => KeyState::Ready(k),
            None if now_ms < self.wait_deadline_ms => KeyState::Loading,
            None => KeyState::Unavailable,
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.keys.is_some()
    }

    /// A fetch to start now, if one is due and none is under way.
    pub fn poll(&mut self, now_ms: u64) -> Option<FetchRequest> {
        let remote = self.remote.as_ref()?;
        if self.in_flight.is_some() || now_ms < self.next_fetch_ms {
            return None;
        }
        Some(FetchRequest {
            cluster: remote.cluster.clone(),
            authority: remote.authority.clone(),
            path: remote.path.clone(),
            timeout_ms: remote.timeout_ms,
        })
    }

    /// The shell started the fetch `poll` asked for; `token` identifies its response.
    pub fn started(&mut self, token: u32, now_ms: u64) {
        let timeout = self.remote.as_ref().map_or(0, |r| r.timeout_ms);
        self.in_flight = Some((token, now_ms.saturating_add(timeout)));
    }

    /// The shell could not even start the fetch (unknown cluster, host refusal).
    pub fn start_failed(&mut self, now_ms: u64, why: &str) -> FetchOutcome {
        self.fail(now_ms, format!("dispatch failed: {why}"))
    }

    pub fn owns(&self, token: u32) -> bool {
        self.in_flight.is_some_and(|(t, _)| t == token)
    }

    /// Our own deadline: a fetch Envoy never answers must not block the provider forever.
    pub fn check_deadline(&mut self, now_ms: u64) -> Option<FetchOutcome> {
        match self.in_flight {
            Some((_, deadline)) if now_ms >= deadline => Some(self.fail(now_ms, "timed out".to_string())),
            _ => None,
        }
    }

    /// Applies a fetch response. `status` is `:status`; `None` means no response at all.
    pub fn on_response(&mut self, now_ms: u64, status: Option<u32>, body: Option<&[u8]>) -> FetchOutcome {
        self.in_flight = None;
        let Some(status) = status else {
            return self.fail(now_ms, "no response (connection failure or upstream reset)".to_string());
        };
        let size = body.map_or(0, <[u8]>::len);
        if !(200..300).contains(&status) {
            return self.fail(now_ms, format!("status {status}, body {size} bytes"));
        }
        if size > MAX_JWKS_BYTES {
            return self.fail(now_ms, format!("body of {size} bytes exceeds {MAX_JWKS_BYTES}"));
        }
        match KeySet::parse(body.unwrap_or(&[])) {
            Ok(set) => {
                let outcome = FetchOutcome::Updated { keys: set.len(), skipped: set.skipped.clone() };
                self.keys = Some(set);
                self.generation += 1;
                self.failures = 0;
                self.next_fetch_ms = now_ms.saturating_add(self.remote.as_ref().map_or(u64::MAX, |r| r.cache_duration_ms));
                outcome
            }
            Err(e) => self.fail(now_ms, format!("status {status}, body {size} bytes: {e}")),
        }
    }

    fn fail(&mut self, now_ms: u64, why: String) -> FetchOutcome {
        self.in_flight = None;
        self.failures = self.failures.saturating_add(1);
        let backoff = RETRY_MIN_MS.saturating_mul(1u64 << self.failures.saturating_sub(1).min(6)).min(RETRY_MAX_MS);
        self.next_fetch_ms = now_ms.saturating_add(backoff);
        FetchOutcome::Failed(why)
    }
}

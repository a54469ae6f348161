//! One provider's keys over time, coordinated across all of Envoy's VMs.
//!
//! Envoy runs one wasm VM per worker thread. They share one record per JWKS URI (proxy-wasm
//! shared data, written with compare-and-swap): the generation of the last good JWKS, when it
//! was fetched, when the next fetch is due, the failure count, a fetch lease, and the time of
//! the last unknown-`kid` refetch. The raw JWKS body is stored beside it. The VM that wins the
//! lease fetches; every VM parses each new generation once.
//!
//! Everything here is pure: the shell reads and writes the shared record and carries out the
//! fetches this module asks for.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fetch_error::FetchError;
use crate::jwks::KeySet;
use crate::jwks::{KeyState, KidRefetch};
use crate::policy::{split_http_url, Issuers, KeySource, Provider, RemoteJwks};

/// Bodies larger than this are refused without parsing.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
const RETRY_MIN_MS: u64 = 1_000;
const RETRY_MAX_MS: u64 = 60_000;
/// Envoy's own timeout for a fetch is this much later than ours, so that our deadline, which
/// also covers a proxy that never answers, is the one that decides; Envoy's frees the stream.
pub const PROXY_TIMEOUT_MARGIN_MS: u64 = 1_000;

/// The record all VMs share for one JWKS URI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedState {
    /// The path of the discovery document's `introspection_endpoint` (same host), as the
    /// last successful fetch found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_path: Option<String>,
    /// Generation of the JWKS body stored beside this record; 0 = none yet.
    pub generation: u64,
    /// When that body was fetched (for `stale_if_error`).
    pub fetched_ms: u64,
    /// When the next fetch is due (refresh, retry, or an unknown-kid refetch).
    pub next_fetch_ms: u64,
    pub failures: u32,
    /// A fetch is under way until this time (a VM that dies mid-fetch cannot block others).
    pub lease_until_ms: u64,
    pub lease_owner: u64,
    /// When the last unknown-kid refetch was asked for (rate limit).
    pub kid_refetch_ms: u64,
    /// When the last fetch attempt ended, successful or not.
    pub attempt_done_ms: u64,
}

impl SharedState {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<SharedState> {
        serde_json::from_slice(bytes).ok()
    }

    fn leased(&self, now_ms: u64) -> bool {
        self.lease_until_ms > now_ms
    }
}

/// Shared-data keys, per JWKS URI: providers with the same URI share one fetch. The record
/// and the raw body it describes sit under two keys, so the record stays small to CAS.
pub fn state_key(uri: &str) -> String {
    format!("jwt-guard/v1/{uri}/state")
}

pub fn body_key(uri: &str) -> String {
    format!("jwt-guard/v1/{uri}/jwks")
}

/// The stored body: its generation and fetch time travel with it, so a reader never pairs a
/// body with the wrong record.
pub fn encode_body(generation: u64, fetched_ms: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&fetched_ms.to_be_bytes());
    out.extend_from_slice(body);
    out
}

pub fn decode_body(bytes: &[u8]) -> Option<(u64, u64, &[u8])> {
    let generation = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let fetched = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((generation, fetched, &bytes[16..]))
}

/// A fetch the shell should start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Discovery,
    Jwks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct InFlight {
    token: u32,
    deadline_ms: u64,
    stage: Stage,
}

/// What a fetch response means for this VM's fetch.
#[derive(Debug, Clone)]
pub enum Step {
    /// The discovery document checked out: fetch its `jwks_uri` next (same lease).
    Next(FetchRequest),
    /// A JWKS that parses: store it for every VM. Carries the raw body and the key set.
    Fetched { body: Vec<u8>, keys: KeySet },
    /// This fetch failed (the cause never holds the body).
    Failed(FetchError),
}

#[derive(Debug)]
pub struct KeySlot {
    remote: Option<RemoteJwks>,
    keys: Option<KeySet>,
    /// Generation of `keys` (local keys: 1).
    pub generation: u64,
    fetched_ms: u64,
    /// Until then, requests for a never-loaded provider wait instead of getting 503.
    wait_deadline_ms: u64,
    /// The shared record as last read.
    view: SharedState,
    in_flight: Option<InFlight>,
    /// Identifies this VM in the lease.
    owner: u64,
    /// The discovery document's `introspection_endpoint` path, from this VM's fetch under way.
    discovered_introspection: Option<String>,
}

/// A path a request line can carry as it is: visible ASCII, no spaces or controls.
fn is_request_target(path: &str) -> bool {
    path.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl KeySlot {
    pub fn new(provider: &Provider, now_ms: u64, owner: u64) -> KeySlot {
        match &provider.keys {
            KeySource::Local(set) => KeySlot {
                remote: None,
                keys: Some(set.clone()),
                generation: 1,
                fetched_ms: now_ms,
                wait_deadline_ms: now_ms,
                view: SharedState::default(),
                in_flight: None,
                owner,
                discovered_introspection: None,
            },
            KeySource::Remote(r) => {
                let stages = if r.discovery { 2 } else { 1 };
                KeySlot {
                    wait_deadline_ms: now_ms.saturating_add(r.timeout_ms.saturating_mul(stages)),
                    remote: Some(r.clone()),
                    keys: None,
                    generation: 0,
                    fetched_ms: 0,
                    view: SharedState::default(),
                    in_flight: None,
                    owner,
                    discovered_introspection: None,
                }
            }
        }
    }

    pub fn remote(&self) -> Option<&RemoteJwks> {
        self.remote.as_ref()
    }

    pub fn is_loaded(&self) -> bool {
        self.keys.is_some()
    }

    pub fn key_count(&self) -> usize {
        self.keys.as_ref().map_or(0, KeySet::len)
    }

    /// How old the keys in use are (remote keys only).
    pub fn age_ms(&self, now_ms: u64) -> Option<u64> {
        (self.remote.is_some() && self.keys.is_some()).then(|| now_ms.saturating_sub(self.fetched_ms))
    }

    /// What requests see now.
    pub fn state(&self, now_ms: u64) -> KeyState<'_> {
        let Some(remote) = &self.remote else {
            return match &self.keys {
                Some(k) => KeyState::Ready(k, KidRefetch::Exhausted),
                None => KeyState::Unavailable,
            };
        };
        match &self.keys {
            Some(_) if now_ms.saturating_sub(self.fetched_ms) > remote.stale_if_error_ms => KeyState::Unavailable,
            Some(k) => KeyState::Ready(k, self.kid_refetch(now_ms, remote)),
            // Requests wait for the first fetch only: once one failed, they get 503 at once
            // rather than each waiting out the deadline.
            None if now_ms < self.wait_deadline_ms && self.view.failures == 0 => KeyState::Loading,
            None => KeyState::Unavailable,
        }
    }

    fn kid_refetch(&self, now_ms: u64, remote: &RemoteJwks) -> KidRefetch {
        let v = &self.view;
        let asked = v.kid_refetch_ms > 0;
        if v.leased(now_ms) || self.in_flight.is_some() || (asked && v.kid_refetch_ms > v.attempt_done_ms) {
            // A fetch is under way, or an unknown-kid refetch was asked for and has not run yet.
            KidRefetch::Pending
        } else if !asked || now_ms.saturating_sub(v.kid_refetch_ms) >= remote.unknown_kid_refetch_interval_ms {
            KidRefetch::Allowed
        } else {
            KidRefetch::Exhausted
        }
    }

    /// Takes in the shared record just read. Returns true when it holds a newer generation
    /// than ours, so the shell should read the body and `adopt` it.
    pub fn observe(&mut self, shared: &SharedState) -> bool {
        self.view = shared.clone();
        self.remote.is_some() && shared.generation > self.generation
    }

    /// Parses a stored body of a newer generation. Parsed once per generation per VM.
    pub fn adopt(&mut self, stored: &[u8]) -> Result<usize, String> {
        let (generation, fetched_ms, body) = decode_body(stored).ok_or("stored JWKS record is corrupt")?;
        if generation <= self.generation {
            return Ok(self.keys.as_ref().map_or(0, KeySet::len));
        }
        let keys = KeySet::parse(body).map_err(|e| e.to_string())?;
        let n = keys.len();
        self.keys = Some(keys);
        self.generation = generation;
        self.fetched_ms = fetched_ms;
        Ok(n)
    }

    /// The record to CAS-write to take the fetch lease, if a fetch is due and nobody holds it.
    pub fn claim(&self, now_ms: u64) -> Option<SharedState> {
        let remote = self.remote.as_ref()?;
        let v = &self.view;
        if self.in_flight.is_some() || v.leased(now_ms) || now_ms < v.next_fetch_ms {
            return None;
        }
        let stages = if remote.discovery { 2 } else { 1 };
        let mut next = v.clone();
        next.lease_until_ms = now_ms.saturating_add(remote.timeout_ms.saturating_mul(stages)).saturating_add(1000);
        next.lease_owner = self.owner;
        Some(next)
    }

    /// The record to CAS-write to ask for an unknown-kid refetch, if the rate limit allows.
    pub fn request_kid_refetch(&self, now_ms: u64) -> Option<SharedState> {
        let remote = self.remote.as_ref()?;
        if self.kid_refetch(now_ms, remote) != KidRefetch::Allowed {
            return None;
        }
        let mut next = self.view.clone();
        next.kid_refetch_ms = now_ms;
        next.next_fetch_ms = now_ms;
        Some(next)
    }

    /// The first request of the fetch this VM just won the lease for.
    pub fn begin(&self) -> Option<FetchRequest> {
        let r = self.remote.as_ref()?;
        Some(FetchRequest {
            cluster: r.cluster.clone(),
            authority: r.authority.clone(),
            path: r.path.clone(),
            timeout_ms: r.timeout_ms + PROXY_TIMEOUT_MARGIN_MS,
        })
    }

    /// The shell dispatched `begin()` (or a `Step::Next`) as call `token`.
    pub fn started(&mut self, token: u32, now_ms: u64) {
        let Some(r) = &self.remote else { return };
        let stage = match &self.in_flight {
            Some(f) if f.stage == Stage::Discovery => Stage::Jwks,
            None if r.discovery => Stage::Discovery,
            _ => Stage::Jwks,
        };
        self.in_flight = Some(InFlight { token, deadline_ms: now_ms.saturating_add(r.timeout_ms), stage });
    }

    pub fn owns(&self, token: u32) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.token == token)
    }

    pub fn fetching(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Our own deadline: a fetch Envoy never answers must not hold the lease forever.
    pub fn check_deadline(&mut self, now_ms: u64) -> Option<FetchError> {
        match (&self.in_flight, &self.remote) {
            (Some(f), Some(r)) if now_ms >= f.deadline_ms => {
                self.in_flight = None;
                Some(FetchError::Timeout(Some(r.timeout_ms)))
            }
            _ => None,
        }
    }

    /// Judges the answer to this VM's fetch: a 2xx status with its body, or why there is none.
    pub fn on_response(&mut self, answer: Result<(u32, Vec<u8>), FetchError>, issuers: Option<&Issuers>) -> Step {
        let Some(flight) = self.in_flight.take() else {
            return Step::Failed(FetchError::Host("an answer came with no fetch under way".to_string()));
        };
        let body = match answer {
            Ok((status, body)) if (200..300).contains(&status) => body,
            Ok((status, body)) => return Step::Failed(FetchError::from_status(status, body.len(), &body)),
            Err(e) => return Step::Failed(e),
        };
        if body.len() > MAX_JWKS_BYTES {
            return Step::Failed(FetchError::TooLarge(body.len()));
        }
        match flight.stage {
            Stage::Jwks => match KeySet::parse(&body) {
                Ok(keys) => Step::Fetched { body, keys },
                Err(e) => Step::Failed(FetchError::Invalid(format!("body of {} bytes: {e}", body.len()))),
            },
            Stage::Discovery => match self.discovered(&body, issuers) {
                Ok((req, introspection)) => {
                    self.discovered_introspection = introspection;
                    // Keep the stage so `started` moves on to the JWKS.
                    self.in_flight = Some(InFlight { token: 0, ..flight });
                    Step::Next(req)
                }
                Err(e) => Step::Failed(FetchError::Discovery(e)),
            },
        }
    }

    /// OIDC Discovery §4.3: the document's `issuer` must be ours (or our template's); its
    /// `jwks_uri` must be on the same host, since it is fetched through the same cluster.
    /// Also returns the path of its `introspection_endpoint`, when it names one on that host.
    fn discovered(&self, body: &[u8], issuers: Option<&Issuers>) -> Result<(FetchRequest, Option<String>), String> {
        let r = self.remote.as_ref().ok_or("no remote")?;
        let doc: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_string())?;
        let doc_issuer = doc.get("issuer").and_then(Value::as_str).ok_or("no `issuer`")?;
        if !issuers.is_some_and(|i| i.accepts_discovered(doc_issuer)) {
            let ours = issuers.map(Issuers::describe).unwrap_or_default();
            return Err(format!("issuer {doc_issuer:?} is not the configured issuer {ours:?}"));
        }
        let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or("no `jwks_uri`")?;
        let (authority, path) = split_http_url(jwks_uri).ok_or("`jwks_uri` is not an http(s) URL")?;
        if !authority.eq_ignore_ascii_case(&r.authority) {
            return Err(format!("`jwks_uri` host {authority:?} is not the discovery host {:?}", r.authority));
        }
        if !is_request_target(path) {
            return Err("`jwks_uri` has an invalid path".to_string());
        }
        // Fetched through the same cluster as the document, so it must be on the same host; a
        // path with characters no request line may hold is not an endpoint.
        let introspection = doc
            .get("introspection_endpoint")
            .and_then(Value::as_str)
            .and_then(split_http_url)
            .filter(|(a, p)| a.eq_ignore_ascii_case(&r.authority) && is_request_target(p))
            .map(|(_, p)| p.to_string());
        let req = FetchRequest {
            cluster: r.cluster.clone(),
            authority: r.authority.clone(),
            path: path.to_string(),
            timeout_ms: r.timeout_ms + PROXY_TIMEOUT_MARGIN_MS,
        };
        Ok((req, introspection))
    }

    /// The discovered `introspection_endpoint` path, as the shared record last said.
    pub fn introspection_path(&self) -> Option<&str> {
        self.view.introspection_path.as_deref()
    }

    /// Takes in keys this VM fetched (it will also store them for the others).
    pub fn install(&mut self, keys: KeySet, generation: u64, fetched_ms: u64) {
        self.keys = Some(keys);
        self.generation = generation;
        self.fetched_ms = fetched_ms;
    }

    /// The shared record with this VM's lease handed back and the fetch due at once, if this
    /// VM holds the lease.
    pub fn release(&mut self, now_ms: u64, shared: &SharedState) -> Option<SharedState> {
        self.in_flight = None;
        if shared.lease_owner != self.owner || !shared.leased(now_ms) {
            return None;
        }
        let mut next = shared.clone();
        next.lease_until_ms = 0;
        next.next_fetch_ms = now_ms;
        Some(next)
    }

    /// The shared record after this VM's fetch ended: `success` is the new generation's
    /// number. `jitter` is a random number: it spreads scheduled refreshes (`refresh_ms`), and
    /// retries back off from 1 s doubling to 60 s.
    pub fn complete(&self, now_ms: u64, shared: &SharedState, success: Option<u64>, jitter: u64) -> SharedState {
        let mut next = shared.clone();
        next.lease_until_ms = 0;
        next.attempt_done_ms = now_ms;
        let refresh = self.remote.as_ref().map_or(u64::MAX, |r| r.cache_duration_ms);
        match success {
            Some(generation) => {
                if self.remote.as_ref().is_some_and(|r| r.discovery) {
                    next.introspection_path = self.discovered_introspection.clone();
                }
                next.generation = generation;
                next.fetched_ms = now_ms;
                next.failures = 0;
                next.next_fetch_ms = now_ms.saturating_add(refresh_ms(refresh, jitter));
            }
            None => {
                next.failures = next.failures.saturating_add(1);
                next.next_fetch_ms = now_ms.saturating_add(backoff_ms(next.failures, jitter));
            }
        }
        next
    }
}

/// The next scheduled refresh: `cache_duration` less up to a tenth of it, drawn from
/// `jitter`, so a fleet of Envoys started together does not refetch in lockstep
/// (envoyproxy/envoy#27127). Earlier, never later: keys are never older than `cache_duration`.
pub fn refresh_ms(interval: u64, jitter: u64) -> u64 {
    if interval == u64::MAX {
        return interval;
    }
    interval - jitter % (interval / 10 + 1)
}

/// 1 s, 2 s, 4 s ... capped at 60 s, each drawn from [base/2, base] ("equal jitter") so VMs
/// and Envoys that failed together do not retry together.
pub fn backoff_ms(failures: u32, jitter: u64) -> u64 {
    let base = RETRY_MIN_MS.saturating_mul(1u64 << failures.saturating_sub(1).min(6)).min(RETRY_MAX_MS);
    base / 2 + jitter % (base / 2 + 1)
}

//! One VM's side of the key protocol: keep each provider's keys in step with the shared
//! record (adopt new generations, take the fetch lease when a fetch is due, publish results
//! with compare-and-swap), read fetch answers, and ask for unknown-kid refetches. What the
//! record says next is decided by `refresh::KeySlot`; `KeySync` owns the slots and carries it
//! to the host. It reports which providers' keys changed; the plugin drops their cached tokens.

use log::{debug, info, warn};

use super::host::{Host, HostResult};
use super::metrics::Metric;
use super::telemetry::Telemetry;
use crate::jwks::KeySet;
use crate::policy::{Config, Issuers};
use crate::refresh::fetch_error::FetchError;
use crate::refresh::{body_key, encode_body, state_key, FetchRequest, KeySlot, SharedState, Step, MAX_JWKS_BYTES};

/// CAS retries when publishing a fetch result races another VM's write.
const CAS_ATTEMPTS: usize = 8;

/// The shared record under `key` (if it exists and decodes) and its CAS. An `Err` is a host
/// that could not say: never taken for "no record", which would overwrite the real one.
fn read_shared(host: &impl Host, key: &str) -> HostResult<(Option<SharedState>, Option<u32>)> {
    let (bytes, cas) = host.get_shared(key)?;
    Ok((bytes.as_deref().and_then(SharedState::decode), cas))
}

/// Every provider's key slot, with what the protocol needs of the configuration.
pub struct KeySync {
    slots: Vec<KeySlot>,
    names: Vec<String>,
    issuers: Vec<Option<Issuers>>,
}

impl KeySync {
    pub fn new(config: &Config, now_ms: u64, owner: u64) -> KeySync {
        KeySync {
            slots: config.providers.iter().map(|p| KeySlot::new(p, now_ms, owner)).collect(),
            names: config.providers.iter().map(|p| p.name.clone()).collect(),
            issuers: config.providers.iter().map(|p| p.issuers.clone()).collect(),
        }
    }

    pub fn slots(&self) -> &[KeySlot] {
        &self.slots
    }

    /// Brings provider `i` in step with the shared record and starts its fetch if one is due.
    /// Returns true if its keys changed.
    pub fn step_provider(&mut self, host: &mut impl Host, i: usize, now: u64, t: &mut Telemetry) -> bool {
        let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { return false };
        if let Some(why) = self.slots[i].check_deadline(now) {
            return self.publish(host, i, Err(why), now, t);
        }
        let key = state_key(&uri);
        let (shared, cas) = match read_shared(host, &key) {
            Ok((Some(s), cas)) => (s, cas),
            Ok((None, _)) => {
                // First VM up (Envoy configures the main-thread VM before workers start).
                let fresh = SharedState::default();
                let created = host.set_shared(&key, &fresh.encode(), None).and_then(|()| host.get_shared(&key));
                match created {
                    Ok((_, cas)) => (fresh, cas),
                    Err(s) => {
                        debug!("jwt-guard: shared data unavailable ({s}); next tick");
                        return false;
                    }
                }
            }
            Err(s) => {
                debug!("jwt-guard: shared data unavailable ({s}); next tick");
                return false;
            }
        };
        let changed = self.sync(host, i, &uri, &shared);
        let Some(claimed) = self.slots[i].claim(now) else { return changed };
        if host.set_shared(&key, &claimed.encode(), cas).is_err() {
            return changed; // another VM took the lease first
        }
        self.slots[i].observe(&claimed);
        if let Some(req) = self.slots[i].begin() {
            self.dispatch(host, i, &req, now, t);
        }
        changed
    }

    fn dispatch(&mut self, host: &mut impl Host, i: usize, req: &FetchRequest, now: u64, t: &mut Telemetry) {
        match host.dispatch_get(&req.cluster, &req.authority, &req.path, req.timeout_ms) {
            Ok(token) => self.slots[i].started(token, now),
            Err(s) => {
                let why = FetchError::Dispatch { cluster: req.cluster.clone(), status: s.0, status_name: s.name() };
                self.publish(host, i, Err(why), now, t);
            }
        }
    }

    /// Adopts keys another VM already published, without taking part in fetching. Returns
    /// the providers that got newer keys.
    pub fn catch_up(&mut self, host: &mut impl Host) -> Vec<usize> {
        let mut changed = Vec::new();
        for i in 0..self.slots.len() {
            let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { continue };
            let Ok((Some(shared), _)) = read_shared(host, &state_key(&uri)) else { continue };
            if self.sync(host, i, &uri, &shared) {
                changed.push(i);
            }
        }
        changed
    }

    /// Takes in the shared record just read and, if it names a newer generation, parses the
    /// keys another VM stored. Returns true if this VM's keys changed.
    fn sync(&mut self, host: &mut impl Host, i: usize, uri: &str, shared: &SharedState) -> bool {
        if !self.slots[i].observe(shared) {
            return false;
        }
        let Ok((Some(stored), _)) = host.get_shared(&body_key(uri)) else { return false };
        let before = self.slots[i].generation;
        let name = &self.names[i];
        match self.slots[i].adopt(&stored) {
            Ok(n) => {
                debug!(
                    "jwt-guard: provider {name} took {n} keys (generation {}) from shared data",
                    self.slots[i].generation
                );
            }
            Err(e) => warn!("jwt-guard: provider {name} could not use shared keys: {e}"),
        }
        self.slots[i].generation != before
    }

    /// Ends this VM's fetch: stores a good JWKS for every VM and updates the shared record.
    /// Returns true if this VM installed new keys.
    fn publish(
        &mut self,
        host: &mut impl Host,
        i: usize,
        result: Result<(Vec<u8>, KeySet), FetchError>,
        now: u64,
        t: &mut Telemetry,
    ) -> bool {
        let Some(remote) = self.slots[i].remote().cloned() else { return false };
        let jitter = host.random();
        let key = state_key(&remote.uri);
        let name = self.names[i].clone();
        for _ in 0..CAS_ATTEMPTS {
            let Ok((shared, cas)) = read_shared(host, &key) else { continue };
            let shared = shared.unwrap_or_default();
            // A good JWKS becomes the next generation after any this VM or the record has seen.
            let fetched =
                result.as_ref().map(|(body, keys)| (body, keys, shared.generation.max(self.slots[i].generation) + 1));
            if let Ok((body, _, g)) = &fetched {
                if host.set_shared(&body_key(&remote.uri), &encode_body(*g, now, body), None).is_err() {
                    continue;
                }
            }
            let next = self.slots[i].complete(now, &shared, fetched.as_ref().ok().map(|f| f.2), jitter);
            if host.set_shared(&key, &next.encode(), cas).is_err() {
                continue;
            }
            self.slots[i].observe(&next);
            match fetched {
                Ok((_, keys, g)) => {
                    t.count(Metric::JwksFetchSuccess(i), 1);
                    info!(
                        "jwt-guard: provider {name} loaded {} keys from cluster {} (generation {g})",
                        keys.len(),
                        remote.cluster
                    );
                    for s in &keys.skipped {
                        warn!("jwt-guard: provider {name} skipped JWKS {s}");
                    }
                    for w in &keys.warnings {
                        warn!("jwt-guard: provider {name}: {w}");
                    }
                    self.slots[i].install(keys.clone(), g, now);
                    return true;
                }
                Err(why) => {
                    t.count(Metric::JwksFetchFailure(i), 1);
                    t.count(Metric::JwksFetchError(i, why.cause()), 1);
                    let keep = if self.slots[i].is_loaded() {
                        "keeping the previous keys"
                    } else {
                        "no keys yet: requests get 503 until a fetch succeeds"
                    };
                    warn!(
                        "jwt-guard: provider {name} JWKS fetch via cluster {} failed (cause {}): {why}; {keep}; \
                         retry in {} ms",
                        remote.cluster,
                        why.cause(),
                        next.next_fetch_ms.saturating_sub(now)
                    );
                }
            }
            return false;
        }
        warn!("jwt-guard: provider {name} could not publish its fetch result (shared data contention)");
        false
    }

    /// A dispatched fetch answered: the proxy delivers `num_headers` headers (none when the
    /// call failed) and a body of `body_size` bytes, read here through the host. Returns the
    /// provider whose keys changed, if any.
    pub fn on_fetch_response(
        &mut self,
        host: &mut impl Host,
        token: u32,
        num_headers: usize,
        body_size: usize,
        now: u64,
        t: &mut Telemetry,
    ) -> Option<usize> {
        let Some(i) = self.slots.iter().position(|s| s.owns(token)) else {
            debug!("jwt-guard: ignoring the answer to fetch {token}, which is past its deadline or superseded");
            return None;
        };
        let answer = read_answer(host, num_headers, body_size, MAX_JWKS_BYTES);
        let changed = match self.slots[i].on_response(answer, self.issuers[i].as_ref()) {
            Step::Next(req) => {
                self.dispatch(host, i, &req, now, t);
                false
            }
            Step::Fetched { body, keys } => self.publish(host, i, Ok((body, keys)), now, t),
            Step::Failed(why) => self.publish(host, i, Err(why), now, t),
        };
        changed.then_some(i)
    }

    /// The VM is going away: release any fetch lease it holds so others need not wait for it
    /// to expire.
    pub fn on_shutdown(&mut self, host: &mut impl Host, now: u64) {
        for i in 0..self.slots.len() {
            let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { continue };
            if !self.slots[i].fetching() {
                continue;
            }
            let key = state_key(&uri);
            for _ in 0..CAS_ATTEMPTS {
                let Ok((Some(shared), cas)) = read_shared(host, &key) else { break };
                let Some(next) = self.slots[i].release(now, &shared) else { break };
                if host.set_shared(&key, &next.encode(), cas).is_ok() {
                    break;
                }
            }
        }
    }

    /// Asks, through the shared record, for one refetch of a provider's keys because a token
    /// named an unknown kid. The root context's tick starts it.
    pub fn request_refetch(&mut self, host: &mut impl Host, i: usize, now: u64) {
        let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { return };
        let key = state_key(&uri);
        let Ok((Some(shared), cas)) = read_shared(host, &key) else { return };
        self.slots[i].observe(&shared);
        if let Some(next) = self.slots[i].request_kid_refetch(now) {
            if host.set_shared(&key, &next.encode(), cas).is_ok() {
                self.slots[i].observe(&next);
                warn!("jwt-guard: provider {} saw an unknown kid; refetching its keys", self.names[i]);
            }
        }
    }
}

/// The answer to a fetch, as the proxy delivers it. No headers means the call failed, and the
/// proxy's status says how; a body over the limit is not read at all.
/// A dispatched call's answer: its status and body (at most `max_bytes` of a 2xx body), or why
/// there is none.
pub(super) fn read_answer(
    host: &impl Host,
    num_headers: usize,
    body_size: usize,
    max_bytes: usize,
) -> Result<(u32, Vec<u8>), FetchError> {
    if num_headers == 0 {
        return Err(match host.call_status() {
            Ok((_, message)) if !message.is_empty() => FetchError::Reset(message),
            Ok((code, _)) => FetchError::Reset(format!("proxy status {code}")),
            Err(s) => FetchError::Reset(format!("no answer; proxy status unreadable: {s}")),
        });
    }
    let status = match host.call_response_header(":status") {
        Ok(Some(v)) => std::str::from_utf8(&v).ok().and_then(|s| s.parse::<u32>().ok()),
        Ok(None) => None,
        Err(s) => return Err(FetchError::Host(format!("reading :status: {s}"))),
    };
    let Some(status) = status else { return Err(FetchError::Host("the answer has no valid :status".into())) };
    if body_size > max_bytes {
        return if (200..300).contains(&status) {
            Err(FetchError::TooLarge(body_size))
        } else {
            Err(FetchError::Status { status, body_bytes: body_size })
        };
    }
    let body = if body_size == 0 {
        Vec::new()
    } else {
        host.call_response_body(body_size).map_err(|s| FetchError::Host(format!("reading the body: {s}")))?
    };
    Ok((status, body))
}

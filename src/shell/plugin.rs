//! Per-VM plugin state and its lifecycle: keep each provider's keys in step with the shared
//! record (adopt new generations, take the fetch lease when a fetch is due, publish results),
//! decide requests, park those whose keys are loading or being refetched, and decide them
//! again as things change.

use log::{debug, info, log_enabled, warn, Level};

use crate::cache::TokenCache;
use crate::config::Config;
use crate::engine::{Engine, KeyState, Outcome, Request};
use crate::header_map;
use crate::jwks::KeySet;
use crate::jwks_cache::{encode_body, KeySlot, SharedState, Step};
use crate::log_limit::LogLimiter;
use crate::metrics::{for_denial, Metric};
use crate::reason::Reason;
use crate::token::summarize;

use super::host::Host;

/// At most this many requests wait for keys per VM; more get 503 at once, so a flood
/// during an IdP outage cannot grow memory without bound.
pub const MAX_PENDING: usize = 1024;
/// CAS retries when publishing a fetch result races another VM's write.
const CAS_ATTEMPTS: usize = 8;
/// Each client that sends ID tokens is named in an info line at most once a minute.
const ID_TOKEN_LOG_INTERVAL_MS: u64 = 60_000;

/// What the HTTP context returns to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

enum Applied {
    Continued,
    Responded,
    Waiting(Vec<usize>),
}

pub struct Plugin {
    engine: Engine,
    slots: Vec<KeySlot>,
    caches: Vec<TokenCache>,
    pending: Vec<u32>,
    /// By `Metric::index`: the host's id, if the host defined the metric.
    metric_ids: Vec<Option<u32>>,
    /// Counts not yet handed to the host: requests bump these, ticks flush them, so the
    /// request path makes no metric hostcalls.
    deltas: Vec<u64>,
    served_requests: bool,
    id_token_log: LogLimiter,
}

/// Shared-data keys, per JWKS URI: providers with the same URI share one fetch.
fn state_key(uri: &str) -> String {
    format!("jwt-guard/v1/{uri}/state")
}

fn body_key(uri: &str) -> String {
    format!("jwt-guard/v1/{uri}/jwks")
}

/// The shared record under `key` (if it exists and decodes) and its CAS.
fn read_shared(host: &impl Host, key: &str) -> (Option<SharedState>, Option<u32>) {
    let (bytes, cas) = host.get_shared(key);
    (bytes.as_deref().and_then(SharedState::decode), cas)
}

impl Plugin {
    pub fn new(config: Config, now_ms: u64, owner: u64) -> Plugin {
        let slots = config.providers.iter().map(|p| KeySlot::new(p, now_ms, owner)).collect();
        let engine = Engine::new(config);
        let caches = engine.new_caches();
        Plugin {
            engine,
            slots,
            caches,
            pending: Vec::new(),
            metric_ids: Vec::new(),
            deltas: Vec::new(),
            served_requests: false,
            id_token_log: LogLimiter::new(ID_TOKEN_LOG_INTERVAL_MS, 1024),
        }
    }

    /// Defines every metric up front, so dashboards and alerts see zeros, not gaps.
    pub fn define_metrics(&mut self, host: &mut impl Host) {
        let names: Vec<String> = self.engine.config.providers.iter().map(|p| p.name.clone()).collect();
        let all = Metric::all(names.len());
        self.metric_ids = all.iter().map(|m| host.define_metric(m.is_gauge(), &m.name(&names))).collect();
        self.deltas = vec![0; all.len()];
    }

    fn count(&mut self, m: Metric, by: u64) {
        if by == 0 {
            return;
        }
        if let Some(d) = m.index(self.engine.config.providers.len()).and_then(|i| self.deltas.get_mut(i)) {
            *d += by;
        }
    }

    /// Hands the counts gathered since the last flush to the host.
    fn flush_metrics(&mut self, host: &mut impl Host) {
        for (delta, id) in self.deltas.iter_mut().zip(&self.metric_ids) {
            if let (true, Some(id)) = (*delta > 0, id) {
                host.increment_metric(*id, *delta);
            }
            *delta = 0;
        }
    }

    fn gauge(&self, host: &mut impl Host, m: Metric, value: u64) {
        if let Some(Some(id)) = m.index(self.engine.config.providers.len()).and_then(|i| self.metric_ids.get(i)) {
            host.record_metric(*id, value);
        }
    }

    fn record_gauges(&self, host: &mut impl Host) {
        let now = host.now_ms();
        for (i, slot) in self.slots.iter().enumerate() {
            self.gauge(host, Metric::KeysLoaded(i), slot.key_count() as u64);
            if let Some(age) = slot.age_ms(now) {
                self.gauge(host, Metric::JwksAgeSeconds(i), age / 1000);
            }
            // Envoy shares a gauge across VMs: only VMs that serve requests (workers, not the
            // main thread's) report their cache, so an idle VM cannot overwrite it with 0.
            if self.served_requests {
                self.gauge(host, Metric::CacheEntries(i), self.caches[i].len() as u64);
            }
        }
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Brings every provider in step with the shared record and starts fetches that are due,
    /// then decides waiting requests again. Called at start and on every tick.
    pub fn on_tick(&mut self, host: &mut impl Host) {
        for i in 0..self.slots.len() {
            self.step_provider(host, i);
        }
        if !self.pending.is_empty() {
            self.retry_pending(host);
        }
        self.record_gauges(host);
        self.flush_metrics(host);
    }

    fn step_provider(&mut self, host: &mut impl Host, i: usize) {
        let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { return };
        let now = host.now_ms();
        let key = state_key(&uri);
        let (shared, cas) = match read_shared(host, &key) {
            (Some(s), cas) => (s, cas),
            (None, _) => {
                // First VM up (Envoy configures the main-thread VM before workers start).
                let fresh = SharedState::default();
                host.set_shared(&key, &fresh.encode(), None);
                let (_, cas) = host.get_shared(&key);
                (fresh, cas)
            }
        };
        self.sync(host, i, &uri, &shared);
        if let Some(why) = self.slots[i].check_deadline(now) {
            self.publish(host, i, Err(why));
            return;
        }
        let Some(claimed) = self.slots[i].claim(now) else { return };
        if !host.set_shared(&key, &claimed.encode(), cas) {
            return; // another VM took the lease first
        }
        self.slots[i].observe(&claimed);
        if let Some(req) = self.slots[i].begin() {
            match host.dispatch_get(&req.cluster, &req.authority, &req.path, req.timeout_ms) {
                Ok(token) => self.slots[i].started(token, now),
                Err(e) => self.publish(host, i, Err(format!("dispatch failed: {e}"))),
            }
        }
    }

    /// Adopts keys another VM already published, without taking part in fetching. Returns
    /// true if any provider got newer keys.
    fn catch_up(&mut self, host: &mut impl Host) -> bool {
        let mut changed = false;
        for i in 0..self.slots.len() {
            let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { continue };
            let (Some(shared), _) = read_shared(host, &state_key(&uri)) else { continue };
            changed |= self.sync(host, i, &uri, &shared);
        }
        changed
    }

    /// Takes in the shared record just read and, if it names a newer generation, parses the
    /// keys another VM stored. Returns true if this VM's keys changed.
    fn sync(&mut self, host: &mut impl Host, i: usize, uri: &str, shared: &SharedState) -> bool {
        if !self.slots[i].observe(shared) {
            return false;
        }
        let (stored, _) = host.get_shared(&body_key(uri));
        let Some(stored) = stored else { return false };
        let before = self.slots[i].generation;
        let name = &self.engine.config.providers[i].name;
        match self.slots[i].adopt(&stored) {
            Ok(n) => {
                self.caches[i].clear();
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
    fn publish(&mut self, host: &mut impl Host, i: usize, result: Result<(Vec<u8>, KeySet), String>) {
        let Some(remote) = self.slots[i].remote().cloned() else { return };
        let now = host.now_ms();
        let jitter = host.random();
        let key = state_key(&remote.uri);
        let name = self.engine.config.providers[i].name.clone();
        for _ in 0..CAS_ATTEMPTS {
            let (shared, cas) = read_shared(host, &key);
            let shared = shared.unwrap_or_default();
            // A good JWKS becomes the next generation after any this VM or the record has seen.
            let fetched =
                result.as_ref().map(|(body, keys)| (body, keys, shared.generation.max(self.slots[i].generation) + 1));
            if let Ok((body, _, g)) = &fetched {
                host.set_shared(&body_key(&remote.uri), &encode_body(*g, now, body), None);
            }
            let next = self.slots[i].complete(now, &shared, fetched.as_ref().ok().map(|f| f.2), jitter);
            if !host.set_shared(&key, &next.encode(), cas) {
                continue;
            }
            self.slots[i].observe(&next);
            match fetched {
                Ok((_, keys, g)) => {
                    self.count(Metric::JwksFetchSuccess(i), 1);
                    info!(
                        "jwt-guard: provider {name} loaded {} keys from cluster {} (generation {g})",
                        keys.len(),
                        remote.cluster
                    );
                    for s in &keys.skipped {
                        warn!("jwt-guard: provider {name} skipped JWKS {s}");
                    }
                    self.slots[i].install(keys.clone(), g, now);
                    self.caches[i].clear();
                }
                Err(why) => {
                    self.count(Metric::JwksFetchFailure(i), 1);
                    let keep = if self.slots[i].is_loaded() { "keeping the previous keys" } else { "no keys yet" };
                    warn!(
                        "jwt-guard: provider {name} JWKS fetch via cluster {} failed: {why}; {keep}; retry in {} ms",
                        remote.cluster,
                        next.next_fetch_ms.saturating_sub(now)
                    );
                }
            }
            return;
        }
        warn!("jwt-guard: provider {name} could not publish its fetch result (shared data contention)");
    }

    /// A dispatched fetch answered. `status` is `None` when there was no response.
    pub fn on_fetch_response(&mut self, host: &mut impl Host, token: u32, status: Option<u32>, body: Option<Vec<u8>>) {
        let Some(i) = self.slots.iter().position(|s| s.owns(token)) else {
            debug!("jwt-guard: ignoring the response to superseded fetch {token}");
            return;
        };
        let issuer = self.engine.config.providers[i].issuer.clone();
        match self.slots[i].on_response(status, body.as_deref(), issuer.as_deref()) {
            Step::Next(req) => match host.dispatch_get(&req.cluster, &req.authority, &req.path, req.timeout_ms) {
                Ok(t) => {
                    let now = host.now_ms();
                    self.slots[i].started(t, now);
                }
                Err(e) => self.publish(host, i, Err(format!("dispatch failed: {e}"))),
            },
            Step::Fetched { body, keys } => self.publish(host, i, Ok((body, keys))),
            Step::Failed(why) => self.publish(host, i, Err(why)),
        }
        self.record_gauges(host);
        self.retry_pending(host);
        self.flush_metrics(host);
    }

    /// The VM is going away: release any fetch lease it holds so others need not wait for it
    /// to expire.
    pub fn on_shutdown(&mut self, host: &mut impl Host) {
        for i in 0..self.slots.len() {
            let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { continue };
            if !self.slots[i].fetching() {
                continue;
            }
            let key = state_key(&uri);
            let now = host.now_ms();
            for _ in 0..CAS_ATTEMPTS {
                let (Some(shared), cas) = read_shared(host, &key) else { break };
                let Some(next) = self.slots[i].release(now, &shared) else { break };
                if host.set_shared(&key, &next.encode(), cas) {
                    break;
                }
            }
        }
    }

    /// Asks, through the shared record, for one refetch of a provider's keys because a token
    /// named an unknown kid. The root context's tick starts it.
    fn request_refetch(&mut self, host: &mut impl Host, i: usize) {
        let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { return };
        let now = host.now_ms();
        let key = state_key(&uri);
        let (Some(shared), cas) = read_shared(host, &key) else { return };
        self.slots[i].observe(&shared);
        if let Some(next) = self.slots[i].request_kid_refetch(now) {
            if host.set_shared(&key, &next.encode(), cas) {
                self.slots[i].observe(&next);
                info!(
                    "jwt-guard: provider {} saw an unknown kid; refetching its keys",
                    self.engine.config.providers[i].name
                );
            }
        }
    }

    /// Decides the request of the current HTTP context.
    pub fn on_request(&mut self, host: &mut impl Host, context_id: u32) -> Action {
        self.served_requests = true;
        let mut applied = self.decide_and_apply(host);
        // Another VM may have published keys since our last tick: use them rather than wait.
        if matches!(&applied, Applied::Waiting(_)) && self.catch_up(host) {
            applied = self.decide_and_apply(host);
        }
        match applied {
            Applied::Continued => Action::Continue,
            Applied::Responded => Action::Pause,
            Applied::Waiting(refetch) => {
                for i in refetch {
                    self.request_refetch(host, i);
                }
                if self.pending.len() >= MAX_PENDING {
                    self.respond(host, &Reason::KeysUnavailable, None);
                } else {
                    self.count(Metric::Paused, 1);
                    self.pending.push(context_id);
                }
                Action::Pause
            }
        }
    }

    /// The request went away (client reset) before its keys came.
    pub fn on_done(&mut self, context_id: u32) {
        self.pending.retain(|id| *id != context_id);
    }

    fn retry_pending(&mut self, host: &mut impl Host) {
        let waiting = std::mem::take(&mut self.pending);
        for id in waiting {
            if !host.set_effective_context(id) {
                continue;
            }
            match self.decide_and_apply(host) {
                Applied::Continued => host.resume_request(),
                Applied::Responded => {}
                Applied::Waiting(refetch) => {
                    for i in refetch {
                        self.request_refetch(host, i);
                    }
                    self.pending.push(id);
                }
            }
        }
    }

    fn decide_and_apply(&mut self, host: &mut impl Host) -> Applied {
        let now_ms = host.now_ms();
        let raw = host.request_header_map();
        let headers = header_map::parse(&raw);
        let pseudo = |name: &str| {
            headers.iter().find(|(k, _)| *k == name).and_then(|(_, v)| std::str::from_utf8(v).ok()).unwrap_or("")
        };
        let (method, path) = (pseudo(":method"), pseudo(":path"));
        let req = Request { method, path, headers: &headers };
        let states: Vec<KeyState<'_>> = self.slots.iter().map(|s| s.state(now_ms)).collect();
        let outcome = self.engine.decide(&req, &states, now_ms / 1000, &mut self.caches);
        for i in 0..self.caches.len() {
            let hits = std::mem::take(&mut self.caches[i].hits);
            let misses = std::mem::take(&mut self.caches[i].misses);
            self.count(Metric::CacheHit(i), hits);
            self.count(Metric::CacheMiss(i), misses);
        }
        match outcome {
            Outcome::WaitForKeys { refetch } => Applied::Waiting(refetch),
            Outcome::Deny(denial) => {
                for m in for_denial(&denial.reason, denial.provider) {
                    self.count(m, 1);
                }
                self.log_denial(&denial, path, now_ms);
                let r = &denial.response;
                host.send_response(r.status, &r.headers, r.body.as_bytes());
                Applied::Responded
            }
            Outcome::Allow { mutations, verified } => {
                self.count(Metric::Allowed, 1);
                for (i, v) in &verified {
                    self.count(Metric::ProviderAllowed(*i), 1);
                    debug!(
                        "jwt-guard: allow provider={} kid={} iss={} sub={}",
                        self.engine.config.providers[*i].name,
                        v.kid.as_deref().unwrap_or("-"),
                        v.iss.as_deref().unwrap_or("-"),
                        v.sub.as_deref().unwrap_or("-")
                    );
                }
                for name in &mutations.remove_headers {
                    host.remove_request_header(name);
                }
                if let Some(p) = &mutations.path {
                    host.set_request_header(":path", p);
                }
                for (name, value) in &mutations.set_headers {
                    host.set_request_header(name, value);
                }
                Applied::Continued
            }
        }
    }

    /// One debug line per denial; an info line naming the client that sends ID tokens.
    fn log_denial(&mut self, denial: &crate::engine::Denial, path: &str, now_ms: u64) {
        let provider = denial.provider.map_or("-", |i| self.engine.config.providers[i].name.as_str());
        let route = path.split('?').next().unwrap_or("");
        let is_id_token = denial.reason == Reason::IdToken;
        if !(is_id_token || log_enabled!(Level::Debug)) {
            return;
        }
        let s = denial.token.as_deref().map(summarize).unwrap_or_default();
        debug!(
            "jwt-guard: deny {} reason={} provider={provider} kid={} iss={} sub={} token={} path={route}",
            denial.response.status,
            denial.reason.as_str(),
            s.kid.as_deref().unwrap_or("-"),
            s.iss.as_deref().unwrap_or("-"),
            s.sub.as_deref().unwrap_or("-"),
            if s.fingerprint.is_empty() { "-" } else { s.fingerprint.as_str() },
        );
        if is_id_token {
            let client = s.client.as_deref().unwrap_or("-");
            if self.id_token_log.allow(client, now_ms) {
                info!(
                    "jwt-guard: client {client} sent an ID token instead of an access token (provider {provider}, \
                     sub {}, path {route}); this client should request an access token for the API's audience",
                    s.sub.as_deref().unwrap_or("-")
                );
            }
        }
    }

    fn respond(&mut self, host: &mut impl Host, reason: &Reason, provider: Option<usize>) {
        for m in for_denial(reason, provider) {
            self.count(m, 1);
        }
        if let Outcome::Deny(d) = self.engine.deny(reason.clone(), provider) {
            host.send_response(d.response.status, &d.response.headers, d.response.body.as_bytes());
        }
    }
}

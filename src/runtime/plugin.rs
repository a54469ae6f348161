//! Per-VM plugin state and its lifecycle: keep each provider's keys in step with the shared
//! record (adopt new generations, take the fetch lease when a fetch is due, publish results),
//! decide requests, park those whose keys are loading or being refetched, and decide them
//! again as things change.

use log::{debug, info, log_enabled, warn, Level};

use crate::decision::token_cache::TokenCache;
use crate::decision::{Engine, Mutations, Outcome, Request};
use crate::deny::response::for_reason;
use crate::deny::Reason;
use crate::jwks::KeySet;
use crate::jwks::KeyState;
use crate::policy::Config;
use crate::refresh::fetch_error::FetchError;
use crate::refresh::{encode_body, KeySlot, SharedState, Step, MAX_JWKS_BYTES};
use crate::runtime::header_map;
use crate::runtime::log_limit::LogLimiter;
use crate::runtime::metrics::{for_denial, Metric};
use crate::token::summarize;

use super::host::{Host, HostResult};

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
    /// The last time the host told; used if the clock call fails.
    last_now_ms: u64,
}

/// Answers the current request 503 with the core's JSON body and `retry-after`, for when
/// there is no plugin to ask (not configured, or re-entered).
pub fn unavailable(host: &mut impl Host) -> Action {
    let r = for_reason(&Reason::Internal, "", &[]);
    if let Err(s) = host.send_response(r.status, &r.headers, r.body.as_bytes()) {
        warn!("jwt-guard: could not send a 503: {s}");
    }
    Action::Pause
}

/// Shared-data keys, per JWKS URI: providers with the same URI share one fetch.
fn state_key(uri: &str) -> String {
    format!("jwt-guard/v1/{uri}/state")
}

fn body_key(uri: &str) -> String {
    format!("jwt-guard/v1/{uri}/jwks")
}

/// The shared record under `key` (if it exists and decodes) and its CAS. An `Err` is a host
/// that could not say: never taken for "no record", which would overwrite the real one.
fn read_shared(host: &impl Host, key: &str) -> HostResult<(Option<SharedState>, Option<u32>)> {
    let (bytes, cas) = host.get_shared(key)?;
    Ok((bytes.as_deref().and_then(SharedState::decode), cas))
}

impl Plugin {
    /// A plugin for `config`, with its metrics defined: what the root context holds.
    pub fn configure(config: Config, host: &mut impl Host) -> Plugin {
        let owner = host.random();
        let now = host.now_ms().unwrap_or(0);
        let mut plugin = Plugin::new(config, now, owner);
        plugin.define_metrics(host);
        plugin
    }

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
            last_now_ms: now_ms,
        }
    }

    /// The host's clock; if the call fails, the last time it told (time never runs back).
    fn now(&mut self, host: &impl Host) -> u64 {
        if let Ok(t) = host.now_ms() {
            self.last_now_ms = self.last_now_ms.max(t);
        }
        self.last_now_ms
    }

    /// Defines every metric up front, so dashboards and alerts see zeros, not gaps.
    pub fn define_metrics(&mut self, host: &mut impl Host) {
        let names: Vec<String> = self.engine.config.providers.iter().map(|p| p.name.clone()).collect();
        let all = Metric::all(names.len());
        self.metric_ids = all.iter().map(|m| host.define_metric(m.is_gauge(), &m.name(&names)).ok()).collect();
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
                let _ = host.increment_metric(*id, *delta);
            }
            *delta = 0;
        }
    }

    fn gauge(&self, host: &mut impl Host, m: Metric, value: u64) {
        if let Some(Some(id)) = m.index(self.engine.config.providers.len()).and_then(|i| self.metric_ids.get(i)) {
            let _ = host.record_metric(*id, value);
        }
    }

    fn record_gauges(&mut self, host: &mut impl Host) {
        let now = self.now(host);
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

    pub fn is_pending(&self, context_id: u32) -> bool {
        self.pending.contains(&context_id)
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
        let now = self.now(host);
        if let Some(why) = self.slots[i].check_deadline(now) {
            self.publish(host, i, Err(why));
            return;
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
                    Err(s) => return debug!("jwt-guard: shared data unavailable ({s}); next tick"),
                }
            }
            Err(s) => return debug!("jwt-guard: shared data unavailable ({s}); next tick"),
        };
        self.sync(host, i, &uri, &shared);
        let Some(claimed) = self.slots[i].claim(now) else { return };
        if host.set_shared(&key, &claimed.encode(), cas).is_err() {
            return; // another VM took the lease first
        }
        self.slots[i].observe(&claimed);
        if let Some(req) = self.slots[i].begin() {
            self.dispatch(host, i, &req, now);
        }
    }

    fn dispatch(&mut self, host: &mut impl Host, i: usize, req: &crate::refresh::FetchRequest, now: u64) {
        match host.dispatch_get(&req.cluster, &req.authority, &req.path, req.timeout_ms) {
            Ok(token) => self.slots[i].started(token, now),
            Err(s) => self.publish(
                host,
                i,
                Err(FetchError::Dispatch { cluster: req.cluster.clone(), status: s.0, status_name: s.name() }),
            ),
        }
    }

    /// Adopts keys another VM already published, without taking part in fetching. Returns
    /// true if any provider got newer keys.
    fn catch_up(&mut self, host: &mut impl Host) -> bool {
        let mut changed = false;
        for i in 0..self.slots.len() {
            let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { continue };
            let Ok((Some(shared), _)) = read_shared(host, &state_key(&uri)) else { continue };
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
        let Ok((Some(stored), _)) = host.get_shared(&body_key(uri)) else { return false };
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
    fn publish(&mut self, host: &mut impl Host, i: usize, result: Result<(Vec<u8>, KeySet), FetchError>) {
        let Some(remote) = self.slots[i].remote().cloned() else { return };
        let now = self.now(host);
        let jitter = host.random();
        let key = state_key(&remote.uri);
        let name = self.engine.config.providers[i].name.clone();
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
                    self.count(Metric::JwksFetchSuccess(i), 1);
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
                    self.caches[i].clear();
                }
                Err(why) => {
                    self.count(Metric::JwksFetchFailure(i), 1);
                    self.count(Metric::JwksFetchError(i, why.cause()), 1);
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
            return;
        }
        warn!("jwt-guard: provider {name} could not publish its fetch result (shared data contention)");
    }

    /// A dispatched fetch answered: the proxy delivers `num_headers` headers (none when the
    /// call failed) and a body of `body_size` bytes, read here through the host.
    pub fn on_fetch_response(&mut self, host: &mut impl Host, token: u32, num_headers: usize, body_size: usize) {
        let Some(i) = self.slots.iter().position(|s| s.owns(token)) else {
            debug!("jwt-guard: ignoring the answer to fetch {token}, which is past its deadline or superseded");
            return;
        };
        let issuer = self.engine.config.providers[i].issuer.clone();
        let answer = read_answer(host, num_headers, body_size);
        match self.slots[i].on_response(answer, issuer.as_deref()) {
            Step::Next(req) => {
                let now = self.now(host);
                self.dispatch(host, i, &req, now);
            }
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
            let now = self.now(host);
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
    fn request_refetch(&mut self, host: &mut impl Host, i: usize) {
        let Some(uri) = self.slots[i].remote().map(|r| r.uri.clone()) else { return };
        let now = self.now(host);
        let key = state_key(&uri);
        let Ok((Some(shared), cas)) = read_shared(host, &key) else { return };
        self.slots[i].observe(&shared);
        if let Some(next) = self.slots[i].request_kid_refetch(now) {
            if host.set_shared(&key, &next.encode(), cas).is_ok() {
                self.slots[i].observe(&next);
                warn!(
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
            if host.set_effective_context(id).is_err() {
                continue; // the request is gone
            }
            match self.decide_and_apply(host) {
                Applied::Continued => {
                    if let Err(s) = host.resume_request() {
                        warn!("jwt-guard: could not resume request {id}: {s}");
                    }
                }
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
        let now_ms = self.now(host);
        let raw = match host.request_header_map() {
            Ok(raw) => raw,
            Err(s) => {
                warn!("jwt-guard: could not read the request headers ({s}); answering 503");
                self.respond(host, &Reason::Internal, None);
                return Applied::Responded;
            }
        };
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
                send(host, r.status, &r.headers, r.body.as_bytes());
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
                if let Err(s) = apply(host, &mutations) {
                    // A spoofed claim header or the token could still reach the upstream.
                    warn!("jwt-guard: could not edit the request headers ({s}); answering 503");
                    self.respond(host, &Reason::Internal, None);
                    return Applied::Responded;
                }
                Applied::Continued
            }
        }
    }

    /// One debug line per denial; an info line naming the client that sends ID tokens.
    fn log_denial(&mut self, denial: &crate::decision::Denial, path: &str, now_ms: u64) {
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
            send(host, d.response.status, &d.response.headers, d.response.body.as_bytes());
        }
    }
}

fn send(host: &mut impl Host, status: u32, headers: &[(String, String)], body: &[u8]) {
    if let Err(s) = host.send_response(status, headers, body) {
        warn!("jwt-guard: could not send a {status} response: {s}");
    }
}

fn apply(host: &mut impl Host, m: &Mutations) -> HostResult<()> {
    for name in &m.remove_headers {
        host.remove_request_header(name)?;
    }
    if let Some(p) = &m.path {
        host.set_request_header(":path", p)?;
    }
    for (name, value) in &m.set_headers {
        host.set_request_header(name, value)?;
    }
    Ok(())
}

/// The answer to a fetch, as the proxy delivers it. No headers means the call failed, and the
/// proxy's status says how; a body over the limit is not read at all.
fn read_answer(host: &impl Host, num_headers: usize, body_size: usize) -> Result<(u32, Vec<u8>), FetchError> {
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
    if body_size > MAX_JWKS_BYTES {
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

//! Per-VM plugin state and the request path: decide each request, park those whose keys are
//! loading or being refetched, decide them again as keys land, and apply the verdict through
//! the host, failing closed when the host fails. The key protocol is in `key_sync`, counting
//! and logging in `telemetry`.

use log::{debug, warn};

use super::header_map;
use super::host::{Host, HostResult};
use super::log_limit::LogLimiter;
use super::metrics::{for_denial, Metric};
use crate::decision::extractor::header_text;
use crate::decision::filter_state::{filter_state, PROPERTIES};
use crate::decision::request_kind::protocol;
use crate::decision::token_cache::TokenCache;
use crate::decision::{Engine, Mutations, Outcome, Request};
use crate::deny::response::{for_reason, Response};
use crate::deny::{Protocol, Reason, Scheme};
use crate::jwks::KeyState;
use crate::policy::Config;
use crate::refresh::KeySlot;

/// At most this many requests wait for keys per VM; more get 503 at once, so a flood
/// during an IdP outage cannot grow memory without bound.
pub const MAX_PENDING: usize = 1024;
/// Each client that sends ID tokens is named in an info line at most once a minute.
const ID_TOKEN_LOG_INTERVAL_MS: u64 = 60_000;

/// What the HTTP context returns to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

pub(super) enum Applied {
    Continued,
    Responded,
    /// Keys are on their way; the request's protocol shapes a refusal if it cannot wait.
    Waiting(Vec<usize>, Protocol),
}

pub struct Plugin {
    pub(super) engine: Engine,
    pub(super) slots: Vec<KeySlot>,
    pub(super) caches: Vec<TokenCache>,
    pub(super) pending: Vec<u32>,
    /// By `Metric::index`: the host's id, if the host defined the metric.
    pub(super) metric_ids: Vec<Option<u32>>,
    /// Counts not yet handed to the host: requests bump these, ticks flush them, so the
    /// request path makes no metric hostcalls.
    pub(super) deltas: Vec<u64>,
    pub(super) served_requests: bool,
    pub(super) id_token_log: LogLimiter,
    /// The last time the host told; used if the clock call fails.
    pub(super) last_now_ms: u64,
}

/// Answers the current request 503 with the core's JSON body and `retry-after`, for when
/// there is no plugin to ask (not configured, or re-entered).
pub fn unavailable(host: &mut impl Host) -> Action {
    send(host, &for_reason(&Reason::Internal, "", &[], Protocol::Http, Scheme::Bearer));
    Action::Pause
}

impl Plugin {
    /// A plugin for `config`, with its metrics defined: what the root context holds.
    pub fn configure(config: Config, host: &mut impl Host) -> Plugin {
        let owner = host.random();
        let now = host.now_ms().unwrap_or(0);
        for w in config.warnings() {
            warn!("jwt-guard: {w}");
        }
        let mut plugin = Plugin::new(config, now, owner);
        plugin.define_metrics(host);
        for name in PROPERTIES.iter().filter(|_| plugin.engine.config.filter_state) {
            // Undeclared, Envoy still stores it, as bytes its logs show in base64.
            if let Err(s) = host.declare_string_property(name) {
                debug!("jwt-guard: could not declare the filter-state property {name} as a string: {s}");
            }
        }
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
    pub(super) fn now(&mut self, host: &impl Host) -> u64 {
        if let Ok(t) = host.now_ms() {
            self.last_now_ms = self.last_now_ms.max(t);
        }
        self.last_now_ms
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

    /// Decides the request of the current HTTP context.
    pub fn on_request(&mut self, host: &mut impl Host, context_id: u32) -> Action {
        self.served_requests = true;
        let mut applied = self.decide_and_apply(host);
        // Another VM may have published keys since our last tick: use them rather than wait.
        if matches!(&applied, Applied::Waiting(..)) && self.catch_up(host) {
            applied = self.decide_and_apply(host);
        }
        match applied {
            Applied::Continued => Action::Continue,
            Applied::Responded => Action::Pause,
            Applied::Waiting(refetch, protocol) => {
                for i in refetch {
                    self.request_refetch(host, i);
                }
                if self.pending.len() >= MAX_PENDING {
                    self.respond(host, &Reason::KeysUnavailable, None, protocol);
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

    pub(super) fn retry_pending(&mut self, host: &mut impl Host) {
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
                Applied::Waiting(refetch, _) => {
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
                // Unknown protocol: for a gRPC request Envoy still derives UNAVAILABLE from 503.
                warn!("jwt-guard: could not read the request headers ({s}); answering 503");
                self.respond(host, &Reason::Internal, None, Protocol::Http);
                return Applied::Responded;
            }
        };
        let headers = header_map::parse(&raw);
        let pseudo = |name: &str| header_text(&headers, name).unwrap_or("");
        let (method, path) = (pseudo(":method"), pseudo(":path"));
        // Read only for a certificate-bound token; a host that cannot say means no certificate.
        let peer_certificate = || host.property(&["connection", "sha256_peer_certificate_digest"]).ok().flatten();
        let req = Request { method, path, headers: &headers, peer_certificate: &peer_certificate };
        let states: Vec<KeyState<'_>> = self.slots.iter().map(|s| s.state(now_ms)).collect();
        let outcome = self.engine.decide(&req, &states, now_ms / 1000, &mut self.caches);
        for i in 0..self.caches.len() {
            let hits = std::mem::take(&mut self.caches[i].hits);
            let misses = std::mem::take(&mut self.caches[i].misses);
            self.count(Metric::CacheHit(i), hits);
            self.count(Metric::CacheMiss(i), misses);
        }
        // Before the refusal is sent or the request goes on, so logs and RBAC see it.
        let mut state_failed = None;
        let state = if self.engine.config.filter_state { filter_state(&outcome) } else { Vec::new() };
        for (name, value) in state {
            if let Err(s) = host.set_property(name, value) {
                state_failed.get_or_insert(s);
            }
        }
        match outcome {
            Outcome::WaitForKeys { refetch, protocol } => Applied::Waiting(refetch, protocol),
            Outcome::Deny(denial) => {
                for m in for_denial(&denial.reason, denial.provider) {
                    self.count(m, 1);
                }
                self.log_denial(&denial, path, now_ms);
                send(host, &denial.response);
                Applied::Responded
            }
            Outcome::Allow { mutations, verified, preflight } => {
                self.count(Metric::Allowed, 1);
                if preflight {
                    self.count(Metric::Preflight, 1);
                }
                for (i, v) in &verified {
                    self.count(Metric::ProviderAllowed(*i), 1);
                    let any_audience = self.engine.config.providers[*i].allow_any_audience;
                    if any_audience {
                        self.count(Metric::AudienceUnchecked(*i), 1);
                    }
                    debug!(
                        "jwt-guard: allow provider={} kid={} iss={} tenant={} sub={}{}",
                        self.engine.config.providers[*i].name,
                        v.kid.as_deref().unwrap_or("-"),
                        v.iss.as_deref().unwrap_or("-"),
                        v.tenant.as_deref().unwrap_or("-"),
                        v.sub.as_deref().unwrap_or("-"),
                        if any_audience { " aud=unchecked" } else { "" }
                    );
                }
                if let Some(s) = state_failed {
                    // RBAC or a log keyed on the principal would judge this request blind.
                    warn!("jwt-guard: could not set the filter state ({s}); answering 503");
                    self.respond(host, &Reason::Internal, None, protocol(&headers));
                    return Applied::Responded;
                }
                if let Err(s) = apply(host, &mutations) {
                    // A spoofed claim header or the token could still reach the upstream.
                    warn!("jwt-guard: could not edit the request headers ({s}); answering 503");
                    self.respond(host, &Reason::Internal, None, protocol(&headers));
                    return Applied::Responded;
                }
                Applied::Continued
            }
        }
    }

    pub(super) fn respond(
        &mut self,
        host: &mut impl Host,
        reason: &Reason,
        provider: Option<usize>,
        protocol: Protocol,
    ) {
        for m in for_denial(reason, provider) {
            self.count(m, 1);
        }
        if let Outcome::Deny(d) = self.engine.deny(reason.clone(), provider, protocol) {
            send(host, &d.response);
        }
    }
}

fn send(host: &mut impl Host, r: &Response) {
    if let Err(s) = host.send_response(r.status, r.grpc_status, &r.headers, r.body.as_bytes()) {
        warn!("jwt-guard: could not send a {} response: {s}", r.status);
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

//! Per-VM plugin state and the request path: decide each request, park those whose keys are
//! loading or being refetched, decide them again as keys land, and apply the verdict through
//! the host, failing closed when the host fails. The key protocol is `KeySync` (key_sync.rs)
//! and counting and logging `Telemetry` (telemetry.rs), each owning its own state.

use std::cell::RefCell;

use log::{debug, warn};

use super::dpop_nonces::Nonces;
use super::header_map;
use super::host::{Host, HostResult};
use super::introspection_sync::{Introspector, Want};
use super::key_sync::KeySync;
use super::metrics::{for_denial, Metric};
use super::paused::Paused;
use super::proof_sync::ProofTables;
use super::telemetry::Telemetry;
use crate::decision::extractor::header_text;
use crate::decision::filter_state::{filter_state, PROPERTIES};
use crate::decision::introspected::TokenHash;
use crate::decision::proof_memory::ProofMemory;
use crate::decision::request_kind::protocol;
use crate::decision::token_cache::TokenCache;
use crate::decision::{Engine, Mutations, Outcome, Request, Shared};
use crate::deny::response::{for_reason, Response};
use crate::deny::{Protocol, Reason, Scheme};
use crate::jwks::KeyState;
use crate::policy::Config;

/// What the HTTP context returns to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

enum Applied {
    Continued,
    Responded,
    /// Keys or introspection answers are on their way: the providers to refetch keys for,
    /// the (provider, token) pairs to introspect, and the protocol that shapes a refusal.
    Waiting(Vec<usize>, Vec<(usize, String)>, Protocol),
}

pub struct Plugin {
    engine: Engine,
    keys: KeySync,
    introspector: Introspector,
    proof_tables: ProofTables,
    nonces: Nonces,
    caches: Vec<TokenCache>,
    paused: Paused,
    telemetry: Telemetry,
    served_requests: bool,
    /// The last time the host told; used if the clock call fails.
    last_now_ms: u64,
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
        plugin.proof_tables.create(host);
        plugin.nonces.create(host);
        for name in PROPERTIES.iter().filter(|_| plugin.engine.config.filter_state) {
            // Undeclared, Envoy still stores it, as bytes its logs show in base64.
            if let Err(s) = host.declare_string_property(name) {
                debug!("jwt-guard: could not declare the filter-state property {name} as a string: {s}");
            }
        }
        plugin
    }

    pub fn new(config: Config, now_ms: u64, owner: u64) -> Plugin {
        let keys = KeySync::new(&config, now_ms, owner);
        let introspector = Introspector::new(&config, owner);
        let proof_tables = ProofTables::new(&config);
        let nonces = Nonces::new(&config);
        let names = config.providers.iter().map(|p| p.name.clone()).collect();
        let engine = Engine::new(config);
        let caches = engine.new_caches();
        Plugin {
            engine,
            keys,
            introspector,
            proof_tables,
            nonces,
            caches,
            paused: Paused::new(now_ms),
            telemetry: Telemetry::new(names),
            served_requests: false,
            last_now_ms: now_ms,
        }
    }

    /// Defines every metric up front, so dashboards and alerts see zeros, not gaps.
    pub fn define_metrics(&mut self, host: &mut impl Host) {
        self.telemetry.define_metrics(host);
    }

    fn record_gauges(&mut self, host: &mut impl Host) {
        let now = self.now(host);
        for (i, slot) in self.keys.slots().iter().enumerate() {
            self.telemetry.gauge(host, Metric::KeysLoaded(i), slot.key_count() as u64);
            if let Some(age) = slot.age_ms(now) {
                self.telemetry.gauge(host, Metric::JwksAgeSeconds(i), age / 1000);
            }
            // Envoy shares a gauge across VMs: only VMs that serve requests (workers, not the
            // main thread's) report their cache, so an idle VM cannot overwrite it with 0.
            if self.served_requests {
                self.telemetry.gauge(host, Metric::CacheEntries(i), self.caches[i].len() as u64);
            }
        }
    }

    /// The host's clock; if the call fails, the last time it told (time never runs back).
    fn now(&mut self, host: &impl Host) -> u64 {
        if let Ok(t) = host.now_ms() {
            self.last_now_ms = self.last_now_ms.max(t);
        }
        self.last_now_ms
    }

    pub fn pending_len(&self) -> usize {
        self.paused.len()
    }

    pub fn is_pending(&self, context_id: u32) -> bool {
        self.paused.contains(context_id)
    }

    /// Asks the host for the tick the paused requests call for (see `WAITING_TICK_MS`).
    fn adjust_tick(&mut self, host: &mut impl Host) {
        if let Some(ms) = self.paused.tick_change() {
            match host.set_tick_period(ms) {
                Ok(()) => self.paused.tick_set(ms),
                Err(s) => debug!("jwt-guard: the host refused a {ms} ms tick ({s})"),
            }
        }
    }

    /// Brings every provider in step with the shared record and starts fetches that are due,
    /// then decides waiting requests again if keys or answers changed, or a full tick passed.
    /// Called at start and on every tick.
    pub fn on_tick(&mut self, host: &mut impl Host) {
        let mut changed = false;
        for i in 0..self.keys.slots().len() {
            let now = self.now(host);
            if self.keys.step_provider(host, i, now, &mut self.telemetry) {
                self.keys_changed(i);
                changed = true;
            }
        }
        let now = self.now(host);
        changed |= self.introspector.on_tick(host, now);
        let phases = self.keys.slots().iter().map(|s| s.state(now).phase()).collect();
        if self.paused.all_due(changed, phases, now) {
            self.retry_pending(host, None);
        }
        self.record_gauges(host);
        self.telemetry.flush(host);
        self.adjust_tick(host);
    }

    /// Decides the request of the current HTTP context.
    pub fn on_request(&mut self, host: &mut impl Host, context_id: u32) -> Action {
        self.served_requests = true;
        let mut applied = self.decide_and_apply(host, context_id);
        // Another VM may have published keys since our last tick: use them rather than wait.
        if matches!(&applied, Applied::Waiting(..)) {
            let changed = self.keys.catch_up(host);
            if !changed.is_empty() {
                changed.into_iter().for_each(|i| self.keys_changed(i));
                applied = self.decide_and_apply(host, context_id);
            }
        }
        match applied {
            Applied::Continued => Action::Continue,
            Applied::Responded => Action::Pause,
            Applied::Waiting(..) => match self.wait(host, applied, context_id) {
                Applied::Continued => Action::Continue,
                Applied::Responded => Action::Pause,
                Applied::Waiting(refetch, introspect, protocol) => {
                    if self.paused.is_full() {
                        // Named for what the request waits on: keys, or only introspection answers.
                        let (reason, provider) = match (refetch.is_empty(), introspect.first()) {
                            (true, Some((i, _))) => (Reason::IntrospectionOverloaded, Some(*i)),
                            _ => (Reason::KeysUnavailable, None),
                        };
                        self.respond(host, &reason, provider, protocol);
                    } else {
                        self.telemetry.count(Metric::Paused, 1);
                        self.paused.park(context_id, &introspect);
                        self.adjust_tick(host);
                    }
                    Action::Pause
                }
            },
        }
    }

    /// Starts what a waiting request needs (refetches, introspection calls). An answer this
    /// VM already has, or takes from another VM, decides it again at once, up to three times
    /// (each decision may reach another rule's provider, with a token of its own to ask about).
    /// A provider with `max_in_flight` calls open refuses it with 503.
    fn wait(&mut self, host: &mut impl Host, mut applied: Applied, context_id: u32) -> Applied {
        for _ in 0..3 {
            let Applied::Waiting(refetch, introspect, protocol) = &applied else { return applied };
            let now = self.now(host);
            for i in refetch {
                self.keys.request_refetch(host, *i, now);
            }
            let mut ready = false;
            for (i, token) in introspect {
                let slot = &self.keys.slots()[*i];
                let discovered = (slot.introspection_path(), matches!(slot.state(now), KeyState::Loading));
                match self.introspector.want(host, *i, token, now, discovered, &mut self.telemetry) {
                    Want::Ready => ready = true,
                    Want::Waiting => {}
                    Want::Overloaded => {
                        self.respond(host, &Reason::IntrospectionOverloaded, Some(*i), *protocol);
                        return Applied::Responded;
                    }
                }
            }
            if !ready {
                return applied;
            }
            applied = self.decide_and_apply(host, context_id);
        }
        applied
    }

    /// A dispatched fetch answered (see `KeySync::on_fetch_response`): new keys drop the
    /// provider's cached tokens, and waiting requests are decided again.
    pub fn on_fetch_response(&mut self, host: &mut impl Host, token: u32, num_headers: usize, body_size: usize) {
        let now = self.now(host);
        let delivered = (num_headers, body_size);
        let introspected = self.introspector.on_response(host, token, delivered, now, &mut self.telemetry);
        if introspected.is_none() {
            if let Some(i) = self.keys.on_fetch_response(host, token, num_headers, body_size, now, &mut self.telemetry)
            {
                self.keys_changed(i);
            }
        }
        self.record_gauges(host);
        // An introspection answer wakes its own requests; new keys (or a call we do not know) all.
        self.retry_pending(host, introspected);
        self.telemetry.flush(host);
        self.adjust_tick(host);
    }

    /// The VM is going away: release any fetch lease it holds so others need not wait for it
    /// to expire.
    pub fn on_shutdown(&mut self, host: &mut impl Host) {
        let now = self.now(host);
        self.keys.on_shutdown(host, now);
    }

    /// Provider `i`'s keys changed: tokens verified under the old ones are verified again, in
    /// every cache of that provider (its audience variants too).
    fn keys_changed(&mut self, i: usize) {
        for (v, cache) in self.caches.iter_mut().enumerate() {
            if self.engine.config.verifier(v).0 == i {
                cache.clear();
            }
        }
    }

    /// The request went away (client reset) before its keys came. The tick slows down on the
    /// next tick or answer, not here: the host is the request's.
    pub fn on_done(&mut self, context_id: u32) {
        self.paused.forget(context_id);
        self.nonces.forget(context_id);
    }

    /// The upstream's response to `context_id` is on its way back: add what the decision asked
    /// for (the next DPoP nonce).
    pub fn on_response_headers(&mut self, host: &mut impl Host, context_id: u32) {
        self.nonces.on_response_headers(host, context_id);
    }

    /// Decides paused requests again: those waiting for `answered` (provider, token hash), or
    /// all of them.
    fn retry_pending(&mut self, host: &mut impl Host, answered: Option<(usize, TokenHash)>) {
        let now = self.now(host);
        for id in self.paused.take(answered, now) {
            if host.set_effective_context(id).is_err() {
                continue; // the request is gone
            }
            let applied = self.decide_and_apply(host, id);
            match self.wait(host, applied, id) {
                Applied::Continued => {
                    if let Err(s) = host.resume_request() {
                        warn!("jwt-guard: could not resume request {id}: {s}");
                    }
                }
                Applied::Responded => {}
                Applied::Waiting(_, introspect, _) => self.paused.park(id, &introspect),
            }
        }
    }

    fn decide_and_apply(&mut self, host: &mut impl Host, context_id: u32) -> Applied {
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
        let states: Vec<KeyState<'_>> = self.keys.slots().iter().map(|s| s.state(now_ms)).collect();
        let nonce_secret = self.nonces.secret(host, headers.iter().any(|(k, _)| *k == "dpop"));
        let outcome = {
            // The decision reads the connection and writes the proof memory through one host.
            let cell = RefCell::new(&mut *host);
            // Read only for a certificate-bound token; a host that cannot say means no certificate.
            let peer_certificate = || {
                let host = cell.try_borrow().ok()?;
                host.property(&["connection", "sha256_peer_certificate_digest"]).ok().flatten()
            };
            let req = Request { method, path, headers: &headers, peer_certificate: &peer_certificate };
            let mut memory = self.proof_tables.memory(&cell);
            let proofs: Option<&mut dyn ProofMemory> = if self.proof_tables.any() { Some(&mut memory) } else { None };
            let shared = Shared { answers: self.introspector.answers(), proofs, nonce_secret: nonce_secret.as_ref() };
            self.engine.decide_with(&req, &states, now_ms / 1000, &mut self.caches, shared)
        };
        for i in 0..self.caches.len() {
            let hits = std::mem::take(&mut self.caches[i].hits);
            let misses = std::mem::take(&mut self.caches[i].misses);
            self.telemetry.count(Metric::CacheHit(i), hits);
            self.telemetry.count(Metric::CacheMiss(i), misses);
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
            Outcome::Wait { refetch, introspect, protocol } => Applied::Waiting(refetch, introspect, protocol),
            Outcome::Deny(denial) => {
                for m in for_denial(&denial.reason, denial.provider) {
                    self.telemetry.count(m, 1);
                }
                self.telemetry.log_denial(&denial, path, now_ms);
                send(host, &denial.response);
                Applied::Responded
            }
            Outcome::Allow { mutations, verified, preflight } => {
                self.telemetry.count(Metric::Allowed, 1);
                if preflight {
                    self.telemetry.count(Metric::Preflight, 1);
                }
                for (i, v) in &verified {
                    self.telemetry.count(Metric::ProviderAllowed(*i), 1);
                    let any_audience = self.engine.config.providers[*i].allow_any_audience;
                    if any_audience {
                        self.telemetry.count(Metric::AudienceUnchecked(*i), 1);
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
                self.nonces.hold(context_id, mutations.response_headers);
                Applied::Continued
            }
        }
    }

    fn respond(&mut self, host: &mut impl Host, reason: &Reason, provider: Option<usize>, protocol: Protocol) {
        for m in for_denial(reason, provider) {
            self.telemetry.count(m, 1);
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

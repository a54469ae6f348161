//! Per-VM plugin state and its lifecycle: start fetches, decide requests, park requests whose
//! keys are loading, and decide them again when the keys land or the wait is over.

use log::{debug, info, warn};

use crate::cache::TokenCache;
use crate::config::Config;
use crate::engine::{Engine, KeyState, Outcome, Request};
use crate::jwks_cache::{FetchOutcome, KeySlot};
use crate::reason::Reason;

use super::host::Host;

/// At most this many requests wait for keys per VM; more get 503 at once, so a flood
/// during an IdP outage cannot grow memory without bound.
pub const MAX_PENDING: usize = 1024;

/// What the HTTP context returns to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

enum Applied {
    Continued,
    Responded,
    Waiting,
}

pub struct Plugin {
    engine: Engine,
    slots: Vec<KeySlot>,
    caches: Vec<TokenCache>,
    pending: Vec<u32>,
}

impl Plugin {
    pub fn new(config: Config, now_ms: u64) -> Plugin {
        let slots = config.providers.iter().map(|p| KeySlot::new(p, now_ms)).collect();
        let engine = Engine::new(config);
        let caches = engine.new_caches();
        Plugin { engine, slots, caches, pending: Vec::new() }
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Starts due fetches, enforces fetch deadlines, and settles waiting requests whose
    /// wait is over. Called at start and on every tick.
    pub fn on_tick(&mut self, host: &mut impl Host) {
        let now = host.now_ms();
        for i in 0..self.slots.len() {
            if let Some(outcome) = self.slots[i].check_deadline(now) {
                self.log_fetch(i, &outcome);
            }
            if let Some(req) = self.slots[i].poll(now) {
                match host.dispatch_get(&req.cluster, &req.authority, &req.path, req.timeout_ms) {
                    Ok(token) => self.slots[i].started(token, now),
                    Err(e) => {
                        let outcome = self.slots[i].start_failed(now, &e);
                        self.log_fetch(i, &outcome);
                    }
                }
            }
        }
        if !self.pending.is_empty() {
            self.retry_pending(host);
        }
    }

    /// A dispatched fetch answered. `status` is `None` when there was no response.
    pub fn on_fetch_response(&mut self, host: &mut impl Host, token: u32, status: Option<u32>, body: Option<Vec<u8>>) {
        let now = host.now_ms();
        let Some(i) = self.slots.iter().position(|s| s.owns(token)) else {
            debug!("jwt-guard: ignoring response to superseded fetch {token}");
            return;
        };
        let outcome = self.slots[i].on_response(now, status, body.as_deref());
        if let FetchOutcome::Updated { .. } = outcome {
            self.caches[i].clear_provider(i);
        }
        self.log_fetch(i, &outcome);
        self.retry_pending(host);
    }

    fn log_fetch(&self, i: usize, outcome: &FetchOutcome) {
        let p = &self.engine.config.providers[i];
        let cluster = match &p.keys {
            crate::config::KeySource::Remote(r) => r.cluster.as_str(),
            crate::config::KeySource::Local(_) => "local",
        };
        match outcome {
            FetchOutcome::Updated { keys, skipped } => {
                info!("jwt-guard: provider {} loaded {keys} keys from cluster {cluster}", p.name);
                for s in skipped {
                    warn!("jwt-guard: provider {} skipped JWKS {s}", p.name);
                }
            }
            FetchOutcome::Failed(why) => {
                let keep = if self.slots[i].is_loaded() { "keeping previous keys" } else { "no keys yet" };
                warn!("jwt-guard: provider {} JWKS fetch via cluster {cluster} failed: {why}; {keep}", p.name);
            }
        }
    }

    /// Decides the request of the current HTTP context.
    pub fn on_request(&mut self, host: &mut impl Host, context_id: u32) -> Action {
        match self.decide_and_apply(host) {
            Applied::Continued => Action::Continue,
            Applied::Responded => Action::Pause,
            Applied::Waiting => {
                if self.pending.len() >= MAX_PENDING {
                    self.respond(host, &Reason::KeysUnavailable, None);
                } else {
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
                Applied::Waiting => self.pending.push(id),
            }
        }
    }

    fn decide_and_apply(&mut self, host: &mut impl Host) -> Applied {
        let now_ms = host.now_ms();
        let headers = host.request_headers();
        let pseudo = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let (method, path) = (pseudo(":method"), pseudo(":path"));
        let req = Request { method: &method, path: &path, headers: &headers };
        let states: Vec<KeyState<'_>> = self.slots.iter().map(|s| s.state(now_ms)).collect();
        let outcome = self.engine.decide(&req, &states, now_ms / 1000, &mut self.caches);
        match outcome {
            Outcome::WaitForKeys => Applied::Waiting,
            Outcome::Deny(denial) => {
                debug!(
                    "jwt-guard: deny {} reason={} provider={}",
                    denial.response.status,
                    denial.reason.as_str(),
                    denial.provider.as_deref().unwrap_or("-")
                );
                let r = &denial.response;
                host.send_response(r.status, &r.headers, r.body.as_bytes());
                Applied::Responded
            }
            Outcome::Allow { mutations, verified } => {
                for (provider, v) in &verified {
                    debug!(
                        "jwt-guard: allow provider={provider} kid={} iss={} sub={}",
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

    fn respond(&self, host: &mut impl Host, reason: &Reason, provider: Option<usize>) {
        if let Outcome::Deny(d) = self.engine.deny(reason.clone(), provider) {
            host.send_response(d.response.status, &d.response.headers, d.response.body.as_bytes());
        }
    }
}

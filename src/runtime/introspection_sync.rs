//! One VM's side of introspection: the answers it holds, the calls it has open (at most
//! `max_in_flight` per provider), and the shared slots through which the VMs of one Envoy
//! share answers and make one call per new token. What to send and what a slot means are the
//! core's (`refresh::introspection_call`, `refresh::introspection_slot`).

use std::collections::HashMap;
use std::rc::Rc;

use log::{debug, warn};
use serde_json::Value;

use super::host::{Host, HostResult};
use super::key_sync::read_answer;
use super::metrics::Metric;
use super::telemetry::Telemetry;
use crate::decision::introspected::{answer_until, token_hash, Answer, Answers, TokenHash};
use crate::policy::{Config, Introspection};
use crate::refresh::introspection_call::{read_result, request, CallResult, MAX_ANSWER_BYTES};
use crate::refresh::introspection_slot::{need, slot_key, Need, Slot, FAILURE_HOLD_SECONDS, LEASE_MARGIN_MS};

/// What became of a request's need for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// This VM now holds an answer: decide again.
    Ready,
    /// A call (this VM's or another's) is under way: park the request.
    Waiting,
    /// This VM has `max_in_flight` calls open for the provider: 503.
    Overloaded,
}

struct Call {
    provider: usize,
    hash: TokenHash,
    started_ms: u64,
    /// The slot's key, when this call holds its lease.
    leased: Option<String>,
}

/// The slot under `key` and its CAS. Envoy's CAS guards only a key that exists, so a slot's
/// first use creates it empty and reads it back: two VMs racing then compete on a real CAS
/// (only a create landing between another VM's create and its lease can still cost a second
/// call, once per slot).
fn read_slot(host: &mut impl Host, key: &str) -> HostResult<(Slot, Option<u32>)> {
    let (bytes, cas) = host.get_shared(key)?;
    if cas.is_some() {
        return Ok((bytes.map_or(Slot::Empty, |b| Slot::decode(&b)), cas));
    }
    host.set_shared(key, &Slot::Empty.encode(), None)?;
    let (bytes, cas) = host.get_shared(key)?;
    Ok((bytes.map_or(Slot::Empty, |b| Slot::decode(&b)), cas))
}

pub struct Introspector {
    /// Per provider: its endpoint (if it introspects) and its name, for logs; shared, so a call
    /// borrows them without copying the configuration.
    endpoints: Vec<(Option<Rc<Introspection>>, Rc<str>)>,
    answers: Vec<Answers>,
    calls: HashMap<u32, Call>,
    /// Tokens another VM is calling for: (provider, hash, slot key), looked at on each tick.
    awaited: Vec<(usize, TokenHash, String)>,
    owner: u64,
}

impl Introspector {
    pub fn new(config: &Config, owner: u64) -> Introspector {
        Introspector {
            endpoints: config
                .providers
                .iter()
                .map(|p| (p.introspection.clone().map(Rc::new), p.name.as_str().into()))
                .collect(),
            answers: config.providers.iter().map(|_| Answers::default()).collect(),
            calls: HashMap::new(),
            awaited: Vec::new(),
            owner,
        }
    }

    pub fn answers(&self) -> &[Answers] {
        &self.answers
    }

    pub fn in_flight(&self, provider: usize) -> usize {
        self.calls.values().filter(|c| c.provider == provider).count()
    }

    /// Provider `i` needs an answer about `token`. `discovered`: the endpoint path its discovery
    /// document named (when it takes its endpoint from there), and whether its keys (and so the
    /// document) are still loading.
    pub fn want(
        &mut self,
        host: &mut impl Host,
        i: usize,
        token: &str,
        now_ms: u64,
        discovered: (Option<&str>, bool),
        t: &mut Telemetry,
    ) -> Want {
        let Some((Some(intro), name)) = self.endpoints.get(i) else { return Want::Ready };
        let (intro, name) = (intro.clone(), name.clone());
        let hash = token_hash(token);
        let path = match (intro.discovered, discovered) {
            (false, _) => intro.path.clone(),
            (true, (Some(p), _)) => p.to_string(),
            // The document has not come yet: the request waits, and is decided again when it does.
            (true, (None, true)) => return Want::Waiting,
            (true, (None, false)) => {
                warn!("jwt-guard: provider {name}'s discovery document names no introspection_endpoint; answering 503");
                self.fail(host, i, hash, None, now_ms, t);
                return Want::Ready;
            }
        };
        if self.answers[i].get(&hash, now_ms / 1000).is_some() {
            return Want::Ready;
        }
        if self.calls.values().any(|c| c.provider == i && c.hash == hash)
            || self.awaited.iter().any(|(p, h, _)| *p == i && *h == hash)
        {
            return Want::Waiting;
        }
        let key = slot_key(&intro.uri, &hash, intro.cache_size);
        // The slot, read again once if another VM wrote it between our read and our lease (most
        // likely its own lease for this token); the second time a call goes without the lease.
        let mut leased = false;
        for attempt in 0..2 {
            // Shared data that cannot be read costs the single flight, never the answer.
            let (needed, cas) = match read_slot(host, &key) {
                Ok((slot, cas)) => (need(&slot, &hash, self.owner, now_ms), cas),
                Err(s) => {
                    debug!("jwt-guard: introspection slot unreadable ({s}); calling without it");
                    (Need::Call, None)
                }
            };
            let take_lease = match needed {
                Need::Use(s) => {
                    t.count(Metric::IntrospectionSharedHit(i), 1);
                    self.take(i, &s);
                    return Want::Ready;
                }
                Need::Wait => {
                    self.awaited.push((i, hash, key));
                    return Want::Waiting;
                }
                Need::CallLeased => attempt == 0,
                Need::Call => false,
            };
            if self.in_flight(i) >= intro.max_in_flight {
                return Want::Overloaded;
            }
            if !take_lease {
                break;
            }
            let deadline_ms = now_ms.saturating_add(intro.timeout_ms + LEASE_MARGIN_MS);
            let lease = Slot::Lease { hash, owner: self.owner, deadline_ms };
            if host.set_shared(&key, &lease.encode(), cas).is_ok() {
                leased = true;
                break;
            }
        }
        let Some(req) = request(&intro, &path, token) else {
            warn!("jwt-guard: provider {name} has no introspection client secret; answering 503");
            self.fail(host, i, hash, leased.then_some(key), now_ms, t);
            return Want::Ready;
        };
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        match host.dispatch(&intro.cluster, &headers, &req.body, intro.timeout_ms) {
            Ok(id) => {
                t.count(Metric::IntrospectionCall(i), 1);
                self.calls.insert(id, Call { provider: i, hash, started_ms: now_ms, leased: leased.then_some(key) });
                Want::Waiting
            }
            Err(s) => {
                warn!("jwt-guard: could not call provider {name}'s introspection endpoint: {s}");
                self.fail(host, i, hash, leased.then_some(key), now_ms, t);
                Want::Ready
            }
        }
    }

    /// A slot's answer into this VM's answers.
    fn take(&mut self, i: usize, slot: &Slot) {
        match slot {
            Slot::Answer { hash, until, body } => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => self.answers[i].put(*hash, Answer::Fields(Rc::new(map)), *until),
                _ => self.answers[i].put(*hash, Answer::Unreadable, *until),
            },
            Slot::Unreadable { hash, until } => self.answers[i].put(*hash, Answer::Unreadable, *until),
            Slot::Failed { hash, until } => self.answers[i].put(*hash, Answer::Unavailable, *until),
            Slot::Empty | Slot::Lease { .. } => {}
        }
    }

    fn fail(
        &mut self,
        host: &mut impl Host,
        i: usize,
        hash: TokenHash,
        leased: Option<String>,
        now_ms: u64,
        t: &mut Telemetry,
    ) {
        t.count(Metric::IntrospectionFailure(i), 1);
        let slot = Slot::Failed { hash, until: now_ms / 1000 + FAILURE_HOLD_SECONDS };
        self.take(i, &slot);
        if let Some(key) = leased {
            // Waiters elsewhere learn of the failure instead of waiting out the lease.
            let _ = host.set_shared(&key, &slot.encode(), None);
        }
    }

    /// The answer to call `token`, if it is one of ours: the provider and token it was for.
    pub fn on_response(
        &mut self,
        host: &mut impl Host,
        token: u32,
        (num_headers, body_size): (usize, usize),
        now_ms: u64,
        t: &mut Telemetry,
    ) -> Option<(usize, TokenHash)> {
        let call = self.calls.remove(&token)?;
        let i = call.provider;
        let (Some(intro), name) = self.endpoints.get(i)? else { return None };
        let (intro, name) = (intro.clone(), name.clone());
        t.count(Metric::IntrospectionLatencyMs(i), now_ms.saturating_sub(call.started_ms));
        let now = now_ms / 1000;
        let slot =
            match read_result(read_answer(host, num_headers, body_size, MAX_ANSWER_BYTES).map_err(|e| e.to_string())) {
                CallResult::Answer(map) => {
                    let until = answer_until(&map, now, intro.cache_seconds, intro.negative_cache_seconds);
                    if map.get("active") != Some(&Value::Bool(true)) {
                        t.count(Metric::IntrospectionInactive(i), 1);
                    }
                    Slot::Answer { hash: call.hash, until, body: Value::Object(map).to_string().into_bytes() }
                }
                CallResult::Unreadable => {
                    warn!("jwt-guard: provider {name}'s introspection answer is not a JSON object");
                    Slot::Unreadable { hash: call.hash, until: now + intro.negative_cache_seconds }
                }
                CallResult::Failed(why) => {
                    warn!("jwt-guard: provider {name}'s introspection call failed: {why}; answering 503");
                    self.fail(host, i, call.hash, call.leased, now_ms, t);
                    return Some((i, call.hash));
                }
            };
        self.take(i, &slot);
        // Shared even without the lease (a collision): the newest answer owns the slot.
        let key = call.leased.unwrap_or_else(|| slot_key(&intro.uri, &call.hash, intro.cache_size));
        if let Err(s) = host.set_shared(&key, &slot.encode(), None) {
            debug!("jwt-guard: could not share an introspection answer ({s})");
        }
        Some((i, call.hash))
    }

    /// Looks at the slots other VMs are filling; true if an answer (or their failure) came.
    /// Forgets this VM's calls that outlived their timeout: Envoy cancels a call without an
    /// answer when the request that made it goes away, and a forgotten call must not hold a
    /// `max_in_flight` place for ever. Their waiting requests call again.
    pub fn on_tick(&mut self, host: &impl Host, now_ms: u64) -> bool {
        let before = self.calls.len();
        let endpoints = &self.endpoints;
        self.calls.retain(|_, c| {
            let timeout = endpoints.get(c.provider).and_then(|e| e.0.as_ref()).map_or(0, |i| i.timeout_ms);
            now_ms < c.started_ms.saturating_add(timeout + LEASE_MARGIN_MS)
        });
        let mut changed = self.calls.len() != before;
        let awaited = std::mem::take(&mut self.awaited);
        for (i, hash, key) in awaited {
            let slot = match host.get_shared(&key) {
                Ok((Some(bytes), _)) => Slot::decode(&bytes),
                _ => Slot::Empty,
            };
            match need(&slot, &hash, self.owner, now_ms) {
                Need::Use(s) => {
                    self.take(i, &s);
                    changed = true;
                }
                Need::Wait => self.awaited.push((i, hash, key)),
                // The other VM's lease ran out: the waiting request calls itself when retried.
                Need::CallLeased | Need::Call => changed = true,
            }
        }
        changed
    }
}

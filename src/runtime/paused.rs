//! The requests this VM holds paused and what each waits for, and how often the VM looks at
//! what other VMs publish while any waits.

use crate::decision::introspected::{token_hash, TokenHash};
use crate::jwks::Phase;

/// At most this many requests wait per VM; more get 503 at once, so a flood during an IdP
/// outage cannot grow memory without bound.
pub const MAX_PENDING: usize = 1024;

/// The tick of a VM with nothing paused: key refreshes and gauges.
pub const TICK_MS: u64 = 200;

/// The tick while requests are paused. Another VM's fetch or introspection call ends in shared
/// data, which this VM only reads on a tick: a request parked on it waits at most this long
/// after the answer, not `TICK_MS`. Only a change (keys, answers, a provider's `Phase`), or
/// `TICK_MS` passing, decides every paused request again, so the faster tick costs a few
/// shared-data reads, not 8 times the decisions.
pub const WAITING_TICK_MS: u64 = 25;

/// A paused request and the introspection answers it waits for (none: it waits for keys). An
/// answer wakes only the requests that asked for it: a worker with n calls open decides each of
/// their requests again once, not all n requests for each of the n answers.
struct Parked {
    id: u32,
    answers: Vec<(usize, TokenHash)>,
}

pub struct Paused {
    parked: Vec<Parked>,
    /// When every paused request was last decided again.
    last_all_ms: u64,
    /// Each provider's phase at the last tick.
    phases: Vec<Phase>,
    /// The tick period the host was last given.
    tick_ms: u64,
}

impl Paused {
    pub fn new(now_ms: u64) -> Paused {
        Paused { parked: Vec::new(), last_all_ms: now_ms, phases: Vec::new(), tick_ms: TICK_MS }
    }

    pub fn len(&self) -> usize {
        self.parked.len()
    }

    pub fn is_full(&self) -> bool {
        self.parked.len() >= MAX_PENDING
    }

    pub fn contains(&self, id: u32) -> bool {
        self.parked.iter().any(|p| p.id == id)
    }

    /// Parks `id`, waiting for the answers about these (provider, token) pairs, or for keys.
    pub fn park(&mut self, id: u32, introspect: &[(usize, String)]) {
        let answers = introspect.iter().map(|(i, token)| (*i, token_hash(token))).collect();
        self.parked.push(Parked { id, answers });
    }

    /// The request went away.
    pub fn forget(&mut self, id: u32) {
        self.parked.retain(|p| p.id != id);
    }

    /// Takes out the requests to decide again: those waiting for `answered` (provider, token
    /// hash), or all of them.
    pub fn take(&mut self, answered: Option<(usize, TokenHash)>, now_ms: u64) -> Vec<u32> {
        if answered.is_none() {
            self.last_all_ms = now_ms;
        }
        let (woken, rest): (Vec<Parked>, Vec<Parked>) =
            std::mem::take(&mut self.parked).into_iter().partition(|p| answered.is_none_or(|a| p.answers.contains(&a)));
        self.parked = rest;
        woken.into_iter().map(|p| p.id).collect()
    }

    /// On a tick: whether to decide every paused request again, because keys or answers changed,
    /// a provider's phase moved (its fetch deadline passed), or `TICK_MS` passed since the last
    /// time.
    pub fn all_due(&mut self, changed: bool, phases: Vec<Phase>, now_ms: u64) -> bool {
        let moved = phases != self.phases;
        self.phases = phases;
        !self.parked.is_empty() && (changed || moved || now_ms >= self.last_all_ms.saturating_add(TICK_MS))
    }

    /// The tick period to ask the host for, if it is not the one it has.
    pub fn tick_change(&self) -> Option<u64> {
        let want = if self.parked.is_empty() { TICK_MS } else { WAITING_TICK_MS };
        (want != self.tick_ms).then_some(want)
    }

    /// The host took `ms` as the tick period.
    pub fn tick_set(&mut self, ms: u64) {
        self.tick_ms = ms;
    }
}

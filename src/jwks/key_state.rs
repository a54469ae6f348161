//! A provider's keys as one request sees them. `refresh` produces it; `decision` reads it.

use super::KeySet;

/// Whether a token with an unknown `kid` may wait for a refetch of the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidRefetch {
    /// The rate limit allows one: ask for it and wait.
    Allowed,
    /// One is asked for or under way: wait for it.
    Pending,
    /// One ran recently (or keys are local): the kid is unknown, full stop.
    Exhausted,
}

/// A provider's keys as the request sees them.
#[derive(Debug, Clone, Copy)]
pub enum KeyState<'a> {
    Ready(&'a KeySet, KidRefetch),
    /// Not loaded yet, fetch under way: the request waits.
    Loading,
    /// Never loaded and the wait is over: 503.
    Unavailable,
}

/// A `KeyState` without the keys: what a waiting request's fate turns on. When it changes (the
/// fetch deadline passing, say), the requests waiting on the provider are decided again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Ready(KidRefetch),
    Loading,
    Unavailable,
}

impl KeyState<'_> {
    pub fn phase(&self) -> Phase {
        match self {
            KeyState::Ready(_, refetch) => Phase::Ready(*refetch),
            KeyState::Loading => Phase::Loading,
            KeyState::Unavailable => Phase::Unavailable,
        }
    }
}

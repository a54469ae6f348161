//! Introspection answers shared by every VM of one Envoy, and the single-flight lease that
//! makes concurrent requests with one new token cost one call. Shared data never forgets a key,
//! so answers live in a fixed table: `cache_size` slots per endpoint, a token's slot chosen by
//! its hash; a newer token in a slot replaces the older one. Memory is bounded by the table.
//! Pure: the runtime reads and writes the slots with the host's CAS.

use crate::decision::introspected::TokenHash;

/// An answer for a token whose call failed is kept this long: requests then get 503 at once
/// instead of each calling a failing server again.
pub const FAILURE_HOLD_SECONDS: u64 = 1;
/// A lease outlives its call's timeout by this much before another VM takes over.
pub const LEASE_MARGIN_MS: u64 = 1_000;

/// The shared-data key of `hash`'s slot at the endpoint `uri`.
pub fn slot_key(uri: &str, hash: &TokenHash, slots: usize) -> String {
    let mut n = [0u8; 8];
    n.copy_from_slice(&hash[..8]);
    let slot = u64::from_be_bytes(n) % slots.max(1) as u64;
    format!("jwt-guard.introspection.{uri}.{slot}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Empty,
    /// A VM (`owner`) is calling for `hash` until `deadline_ms`.
    Lease {
        hash: TokenHash,
        owner: u64,
        deadline_ms: u64,
    },
    /// The endpoint's answer for `hash` (its JSON text), good until `until` (Unix seconds).
    Answer {
        hash: TokenHash,
        until: u64,
        body: Vec<u8>,
    },
    /// The answer was not JSON (`Unreadable`) or the call failed (`Failed`), until `until`.
    Unreadable {
        hash: TokenHash,
        until: u64,
    },
    Failed {
        hash: TokenHash,
        until: u64,
    },
}

impl Slot {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let (tag, hash, a, b) = match self {
            Slot::Empty => return Vec::new(),
            Slot::Lease { hash, owner, deadline_ms } => (b'L', hash, *owner, *deadline_ms),
            Slot::Answer { hash, until, .. } => (b'A', hash, *until, 0),
            Slot::Unreadable { hash, until } => (b'U', hash, *until, 0),
            Slot::Failed { hash, until } => (b'F', hash, *until, 0),
        };
        out.push(tag);
        out.extend_from_slice(hash);
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&b.to_be_bytes());
        if let Slot::Answer { body, .. } = self {
            out.extend_from_slice(body);
        }
        out
    }

    /// Anything that does not decode is an empty slot: the worst it costs is a call.
    pub fn decode(bytes: &[u8]) -> Slot {
        if bytes.len() < 49 {
            return Slot::Empty;
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[1..33]);
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(w)
        };
        let (a, b) = (word(33), word(41));
        match bytes[0] {
            b'L' => Slot::Lease { hash, owner: a, deadline_ms: b },
            b'A' => Slot::Answer { hash, until: a, body: bytes[49..].to_vec() },
            b'U' => Slot::Unreadable { hash, until: a },
            b'F' => Slot::Failed { hash, until: a },
            _ => Slot::Empty,
        }
    }
}

/// What a VM that needs `hash` answered does, given the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The slot has what another VM learned: use it.
    Use(Slot),
    /// Another VM is calling for this token: wait for its answer.
    Wait,
    /// Call, taking the slot's lease (written with the CAS just read).
    CallLeased,
    /// Call without the lease: another token's live lease holds the slot.
    Call,
}

pub fn need(slot: &Slot, hash: &TokenHash, owner: u64, now_ms: u64) -> Need {
    let now = now_ms / 1000;
    match slot {
        Slot::Answer { hash: h, until, .. } | Slot::Unreadable { hash: h, until } | Slot::Failed { hash: h, until }
            if h == hash && now < *until =>
        {
            Need::Use(slot.clone())
        }
        Slot::Lease { hash: h, owner: o, deadline_ms } if now_ms < *deadline_ms => {
            if h != hash {
                Need::Call
            } else if *o == owner {
                Need::CallLeased // ours, from before a restart of this VM's state: take it again
            } else {
                Need::Wait
            }
        }
        _ => Need::CallLeased,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: TokenHash = [7u8; 32];
    const OTHER: TokenHash = [9u8; 32];

    #[test]
    fn slots_round_trip_and_garbage_is_empty() {
        for s in [
            Slot::Lease { hash: H, owner: 42, deadline_ms: 5_000 },
            Slot::Answer { hash: H, until: 77, body: br#"{"active":true}"#.to_vec() },
            Slot::Unreadable { hash: H, until: 3 },
            Slot::Failed { hash: H, until: 4 },
        ] {
            assert_eq!(Slot::decode(&s.encode()), s);
        }
        assert_eq!(Slot::decode(b""), Slot::Empty);
        assert_eq!(Slot::decode(&[b'X'; 60]), Slot::Empty);
        assert_eq!(Slot::decode(&Slot::Lease { hash: H, owner: 1, deadline_ms: 2 }.encode()[..48]), Slot::Empty);
    }

    #[test]
    fn a_fresh_answer_is_used_a_stale_one_is_called_again() {
        let a = Slot::Answer { hash: H, until: 100, body: b"{}".to_vec() };
        assert_eq!(need(&a, &H, 1, 99_999), Need::Use(a.clone()));
        assert_eq!(need(&a, &H, 1, 100_000), Need::CallLeased, "until is exclusive");
        assert_eq!(need(&a, &OTHER, 1, 0), Need::CallLeased, "another token's answer is replaced");
        let f = Slot::Failed { hash: H, until: 10 };
        assert_eq!(need(&f, &H, 1, 9_000), Need::Use(f.clone()));
    }

    #[test]
    fn a_live_lease_makes_others_wait_and_an_expired_one_is_taken_over() {
        let l = Slot::Lease { hash: H, owner: 1, deadline_ms: 5_000 };
        assert_eq!(need(&l, &H, 2, 4_999), Need::Wait);
        assert_eq!(need(&l, &H, 2, 5_000), Need::CallLeased, "the caller died: take over");
        assert_eq!(need(&l, &OTHER, 2, 0), Need::Call, "a colliding token calls without the slot");
        assert_eq!(need(&Slot::Empty, &H, 2, 0), Need::CallLeased);
    }

    #[test]
    fn the_slot_is_chosen_by_hash_within_the_table() {
        let k = slot_key("https://idp/introspect", &H, 10);
        assert!(k.starts_with("jwt-guard.introspection.https://idp/introspect."));
        let n: u64 = k.rsplit('.').next().unwrap().parse().unwrap();
        assert!(n < 10);
        assert_eq!(slot_key("u", &H, 1), "jwt-guard.introspection.u.0");
    }
}

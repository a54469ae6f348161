//! DPoP proofs accepted once per Envoy (RFC 9449 §11.1): the memory every worker shares. A proof
//! is known by the SHA-256 of its key's thumbprint, `jti`, `htm` and `htu`, and remembered until
//! its `iat` + `max_proof_age` + clock skew, after which it is refused as stale anyway.
//!
//! Shared data never forgets a key, so the memory is a fixed table: `replay_cache_size / WAYS`
//! buckets of `WAYS` entries, a proof's bucket chosen by its hash. Writing a bucket drops its
//! expired entries first; a bucket whose every entry is still live refuses the new proof
//! (503 `dpop_replay_cache_full`) rather than forget one whose proof could then pass again.
//! Pure: the runtime reads and writes buckets with the host's CAS (`runtime::proof_sync`).

use sha2::{Digest, Sha256};

/// Entries per bucket. Proofs land in buckets at random, so a bucket can fill before the table
/// does: with 32 ways, a table loaded to a third (its proofs live within `max_proof_age` being a
/// third of `replay_cache_size`) overflows a bucket with odds below one in a billion, where 8 ways
/// overflowed one bucket in a `make bench` run at 15% load.
pub const WAYS: usize = 32;
/// Bytes per entry: 16 of the proof's hash, 8 of its expiry (Unix seconds).
const ENTRY: usize = 24;

pub type ProofKey = [u8; 32];

/// Where a proof's acceptance is recorded: the shared table in Envoy, a worker's own memory
/// where there is no proxy (the CLI, tests).
pub trait ProofMemory {
    /// Records proof `key`, live until `until`: `Ok(true)` the first time, `Ok(false)` for a
    /// replay, `Err` when it cannot be told (then the proof is refused with that reason).
    fn first_use(&mut self, provider: usize, key: &ProofKey, until: u64, now: u64)
        -> Result<bool, crate::deny::Reason>;
}

pub fn proof_key(jkt: &str, jti: &str, htm: &str, htu: &str) -> ProofKey {
    let mut h = Sha256::new();
    for part in [jkt, jti, htm, htu] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// The shared-data key of `key`'s bucket for `provider`, in a table of `buckets`.
pub fn bucket_key(provider: &str, key: &ProofKey, buckets: usize) -> String {
    let mut n = [0u8; 8];
    n.copy_from_slice(&key[16..24]);
    bucket_name(provider, u64::from_be_bytes(n) % buckets.max(1) as u64)
}

/// The shared-data key of `provider`'s bucket number `index`.
pub fn bucket_name(provider: &str, index: u64) -> String {
    format!("jwt-guard.dpop.{provider}.{index}")
}

/// Buckets for a `replay_cache_size`: at least one.
pub fn buckets(replay_cache_size: usize) -> usize {
    replay_cache_size.div_ceil(WAYS).max(1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The proof is new: write this bucket (with the CAS it was read with).
    Write(Vec<u8>),
    /// The proof is in the bucket and still live.
    Replay,
    /// Every entry of the bucket is live: refuse rather than forget one.
    Full,
}

/// What recording `key` (live until `until`) at `now` does to `bucket` (its bytes, empty for a
/// new bucket). Entries that do not decode are dropped: the worst that costs is a replay of a
/// proof that would be stale within `max_proof_age` anyway.
pub fn record(bucket: &[u8], key: &ProofKey, until: u64, now: u64) -> Record {
    let mut live: Vec<&[u8]> = Vec::with_capacity(WAYS);
    for entry in bucket.chunks_exact(ENTRY) {
        let mut t = [0u8; 8];
        t.copy_from_slice(&entry[16..]);
        let expires = u64::from_be_bytes(t);
        if expires < now {
            continue; // expired entries go first
        }
        if entry[..16] == key[..16] {
            return Record::Replay;
        }
        live.push(entry);
    }
    if live.len() >= WAYS {
        return Record::Full;
    }
    let mut out = Vec::with_capacity((live.len() + 1) * ENTRY);
    for e in live {
        out.extend_from_slice(e);
    }
    out.extend_from_slice(&key[..16]);
    out.extend_from_slice(&until.to_be_bytes());
    Record::Write(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> ProofKey {
        [i; 32]
    }

    fn write(r: Record) -> Vec<u8> {
        match r {
            Record::Write(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_proof_is_recorded_once_and_refused_while_live() {
        let b = write(record(&[], &key(1), 100, 10));
        assert_eq!(record(&b, &key(1), 100, 50), Record::Replay);
        assert_eq!(record(&b, &key(1), 100, 100), Record::Replay, "live through its last second");
        assert!(matches!(record(&b, &key(1), 200, 101), Record::Write(_)), "expired: stale anyway");
        assert!(matches!(record(&b, &key(2), 100, 50), Record::Write(_)));
    }

    #[test]
    fn expired_entries_go_first_and_a_full_bucket_of_live_ones_refuses() {
        let mut b = Vec::new();
        for i in 0..WAYS as u8 {
            b = write(record(&b, &key(i), 100 + u64::from(i), 10));
        }
        assert_eq!(record(&b, &key(50), 200, 50), Record::Full, "never forget a live proof");
        // At 101 the first entry (live until 100) has expired: one place.
        let b2 = write(record(&b, &key(50), 200, 101));
        assert_eq!(b2.len(), WAYS * ENTRY, "the expired entry made room, the live ones stayed");
        for i in 1..WAYS as u8 {
            assert_eq!(record(&b2, &key(i), 300, 101), Record::Replay, "entry {i} kept");
        }
        assert_eq!(record(&b2, &key(0), 300, 101), Record::Full, "full again: every entry is live");
    }

    #[test]
    fn keys_and_buckets() {
        assert_ne!(proof_key("k", "j", "GET", "https://a/x"), proof_key("k", "j", "POST", "https://a/x"));
        assert_ne!(proof_key("k", "j", "GET", "https://a/x"), proof_key("k", "j", "GET", "https://a/y"));
        assert_ne!(proof_key("kj", "", "GET", "u"), proof_key("k", "j", "GET", "u"), "lengths separate the parts");
        assert_eq!(buckets(10_000), 313);
        assert_eq!(buckets(1), 1);
        let k = bucket_key("auth0", &key(3), 10);
        assert!(k.starts_with("jwt-guard.dpop.auth0."));
        assert!(k.rsplit('.').next().unwrap().parse::<u64>().unwrap() < 10);
        assert_eq!(record(&[1, 2, 3], &key(1), 5, 0), Record::Write([&key(1)[..16], &5u64.to_be_bytes()].concat()));
    }
}

//! Per-provider token caches, so a client that reuses a token pays for its signature once.
//!
//! - The verified-token cache holds up to `jwt_cache_size` tokens, least recently used out
//!   first. An entry never outlives the token's `exp`, and every entry goes when the
//!   provider's keys change, so a key that leaves the JWKS stops vouching for cached tokens
//!   at once.
//! - The negative cache remembers up to `NEGATIVE_CACHE_SIZE` rejections whose answer cannot
//!   change for the same token and keys (a bad signature stays bad), so replaying a forged
//!   token costs a lookup, not a signature check.
//!
//! - The proof memory holds the DPoP proofs (`jkt` and `jti`) seen within their proof-age
//!   window, up to `dpop.replay_cache_size`, so a replayed proof is refused. It serves where
//!   there is no proxy (the CLI, tests); in Envoy the proof memory is Envoy-wide
//!   (`decision::proof_memory`). When more proofs than its size arrive within one window the
//!   oldest are forgotten. It is not cleared when keys change: a used proof stays used.
//!
//! Keys are the token strings themselves, hashed with std's SipHash seeded per process: an
//! attacker can neither collide entries nor confuse two tokens. Get, put and eviction are
//! O(1) (the `lru` crate).

use std::collections::hash_map::RandomState;
use std::num::NonZeroUsize;
use std::rc::Rc;

use crate::authn::client_keys::ClientKeys;
use crate::authn::Verified;
use crate::deny::Reason;

pub const NEGATIVE_CACHE_SIZE: usize = 1024;

/// Least-recently-used eviction in O(1) (the `lru` crate), keyed by the token string with
/// std's SipHash. Capacity 0 turns the cache off.
struct Lru<V> {
    map: Option<lru::LruCache<String, V, RandomState>>,
}

impl<V> std::fmt::Debug for Lru<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lru({} entries)", self.len())
    }
}

impl<V> Lru<V> {
    fn new(capacity: usize) -> Lru<V> {
        Lru { map: NonZeroUsize::new(capacity).map(|c| lru::LruCache::with_hasher(c, RandomState::new())) }
    }

    fn get(&mut self, key: &str) -> Option<&V> {
        self.map.as_mut()?.get(key)
    }

    fn put(&mut self, key: &str, value: V) {
        if let Some(map) = self.map.as_mut() {
            map.put(key.to_string(), value);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(map) = self.map.as_mut() {
            map.pop(key);
        }
    }

    fn clear(&mut self) {
        if let Some(map) = self.map.as_mut() {
            map.clear();
        }
    }

    fn len(&self) -> usize {
        self.map.as_ref().map_or(0, lru::LruCache::len)
    }
}

#[derive(Debug)]
pub struct TokenCache {
    /// With the time (Unix seconds) the entry stops counting: `u64::MAX` for a JWT, whose
    /// `exp` says; an introspection answer's `cache_duration` for an opaque token.
    verified: Lru<(Rc<Verified>, u64)>,
    rejected: Lru<(Reason, u64)>,
    proofs: Lru<u64>,
    /// DPoP clients' keys, prepared for a returning client.
    pub client_keys: ClientKeys,
    pub hits: u64,
    pub misses: u64,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(0)
    }
}

/// Rejections that hold for the same token and keys whatever the time: everything but
/// `nbf` (time will cure it) and unknown keys (a refetch may cure it).
fn is_permanent(reason: &Reason) -> bool {
    !matches!(reason, Reason::NotYetValid | Reason::UnknownKid | Reason::KeysUnavailable)
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache::with_proof_memory(capacity, 0)
    }

    pub fn with_proof_memory(capacity: usize, proofs: usize) -> TokenCache {
        TokenCache {
            verified: Lru::new(capacity),
            rejected: Lru::new(NEGATIVE_CACHE_SIZE),
            proofs: Lru::new(proofs),
            client_keys: if proofs == 0 { ClientKeys::new(0) } else { ClientKeys::default() },
            hits: 0,
            misses: 0,
        }
    }

    /// Records a DPoP proof (`jkt`, `jti`) good until `until`; false if the same proof was
    /// already recorded and is still within its window (a replay). A memory of size 0 refuses
    /// every proof rather than accepting replays (the configuration never allows 0).
    pub fn first_use_of_proof(&mut self, jkt: &str, jti: &str, until: u64, now: u64) -> bool {
        if self.proofs.map.is_none() {
            return false;
        }
        let key = format!("{jkt}.{jti}");
        if self.proofs.get(&key).is_some_and(|exp| *exp >= now) {
            return false;
        }
        self.proofs.put(&key, until);
        true
    }

    pub fn proofs_len(&self) -> usize {
        self.proofs.len()
    }

    pub fn len(&self) -> usize {
        self.verified.len()
    }

    pub fn rejected_len(&self) -> usize {
        self.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.verified.len() == 0
    }

    /// A cached verdict still within `exp` (with the same skew the check used): the verified
    /// claims, or a permanent rejection.
    pub fn get(&mut self, token: &str, now: u64, skew: u64) -> Option<Result<Rc<Verified>, Reason>> {
        if let Some((v, until)) = self.verified.get(token) {
            if now < *until && v.exp.is_none_or(|exp| !crate::authn::expired(exp, now, skew)) {
                let v = v.clone();
                self.hits += 1;
                return Some(Ok(v));
            }
            self.verified.remove(token);
        } else if let Some((r, until)) = self.rejected.get(token) {
            if now < *until {
                let r = r.clone();
                self.hits += 1;
                return Some(Err(r));
            }
            self.rejected.remove(token);
        }
        self.misses += 1;
        None
    }

    pub fn put(&mut self, token: &str, verdict: &Result<Rc<Verified>, Reason>) {
        match verdict {
            Ok(v) => self.verified.put(token, (v.clone(), u64::MAX)),
            Err(r) if is_permanent(r) => self.rejected.put(token, (r.clone(), u64::MAX)),
            Err(_) => {}
        }
    }

    /// A verdict that holds only until `until` (Unix seconds), whatever it is: what an
    /// introspection answer says is true only as long as the answer is kept.
    pub fn put_until(&mut self, token: &str, verdict: &Result<Rc<Verified>, Reason>, until: u64) {
        match verdict {
            Ok(v) => self.verified.put(token, (v.clone(), until)),
            Err(r) => self.rejected.put(token, (r.clone(), until)),
        }
    }

    /// Forgets every verdict: called whenever the provider's key set changes. Proofs stay.
    pub fn clear(&mut self) {
        self.verified.clear();
        self.rejected.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(exp: Option<u64>) -> Rc<Verified> {
        Rc::new(Verified {
            exp,
            kid: None,
            iss: None,
            sub: None,
            tenant: None,
            principal: None,
            scopes: vec![],
            claims: None,
            payload_metadata: None,
            claim_headers: vec![],
            payload_b64: String::new(),
            binding: Default::default(),
        })
    }

    #[test]
    fn least_recently_used_goes_first() {
        let mut c = TokenCache::new(2);
        c.put("a", &Ok(verified(None)));
        c.put("b", &Ok(verified(None)));
        assert!(c.get("a", 0, 0).is_some());
        c.put("c", &Ok(verified(None)));
        assert!(c.get("b", 0, 0).is_none(), "b was least recently used");
        assert!(c.get("a", 0, 0).is_some());
        assert!(c.get("c", 0, 0).is_some());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn entries_never_outlive_exp() {
        let mut c = TokenCache::new(10);
        c.put("t", &Ok(verified(Some(100))));
        assert!(c.get("t", 99, 0).is_some());
        assert!(c.get("t", 100, 0).is_none());
        assert!(c.is_empty());
        c.put("u", &Ok(verified(Some(100))));
        assert!(c.get("u", 159, 60).is_some(), "the same skew as the check");
    }

    #[test]
    fn size_zero_caches_no_verified_tokens() {
        let mut c = TokenCache::new(0);
        c.put("t", &Ok(verified(None)));
        assert!(c.get("t", 0, 0).is_none());
    }

    #[test]
    fn a_proof_is_used_once_within_its_window_and_survives_a_key_change() {
        let mut c = TokenCache::with_proof_memory(10, 2);
        assert!(c.first_use_of_proof("k", "j1", 160, 100));
        assert!(!c.first_use_of_proof("k", "j1", 160, 150), "a replay");
        assert!(c.first_use_of_proof("other-key", "j1", 160, 150), "the same jti from another key");
        c.clear();
        assert!(!c.first_use_of_proof("k", "j1", 160, 150), "keys changed, the proof stays used");
        assert!(c.first_use_of_proof("k", "j1", 230, 161), "after its window it would be refused as stale anyway");
        assert_eq!(c.proofs_len(), 2, "bounded");
        assert!(!TokenCache::new(10).first_use_of_proof("k", "j", 1, 0), "no memory: refuse");
    }

    #[test]
    fn negative_cache_keeps_permanent_rejections_only_and_is_bounded() {
        let mut c = TokenCache::new(0);
        c.put("forged", &Err(Reason::BadSignature));
        assert_eq!(c.get("forged", 0, 0), Some(Err(Reason::BadSignature)));
        c.put("early", &Err(Reason::NotYetValid));
        c.put("rotated", &Err(Reason::UnknownKid));
        assert!(c.get("early", 0, 0).is_none());
        assert!(c.get("rotated", 0, 0).is_none());
        for i in 0..3 * NEGATIVE_CACHE_SIZE {
            c.put(&format!("f{i}"), &Err(Reason::BadSignature));
        }
        assert_eq!(c.rejected_len(), NEGATIVE_CACHE_SIZE);
        c.clear();
        assert_eq!(c.rejected_len(), 0);
    }

    #[test]
    fn a_verdict_put_until_a_time_ends_then_whatever_it_was() {
        let mut c = TokenCache::new(10);
        c.put_until("opaque", &Ok(verified(Some(1000))), 130);
        assert!(c.get("opaque", 129, 0).is_some());
        assert!(c.get("opaque", 130, 0).is_none(), "kept for cache_duration, though exp is later");
        c.put_until("revoked", &Err(Reason::Inactive), 40);
        assert_eq!(c.get("revoked", 39, 0), Some(Err(Reason::Inactive)));
        assert!(c.get("revoked", 40, 0).is_none(), "negative_cache_duration ends it");
        assert_eq!(c.rejected_len(), 0);
        c.put_until("early", &Err(Reason::NotYetValid), 50);
        assert_eq!(c.get("early", 45, 0), Some(Err(Reason::NotYetValid)), "any verdict, for its time");
    }
}

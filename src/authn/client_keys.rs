//! DPoP clients' public keys, kept prepared for a returning client (RFC 9449 proofs carry the
//! key in every proof). A key seen once is only remembered; from its second proof on it gets its
//! fast verifier's table (`crypto::prepare`: about 6 ms for P-256 in V8, then a proof costs one
//! table-driven verify instead of a double-and-add: 441 µs -> about 115 µs), so a client that
//! sends one proof never pays for a table. Keyed by the key's RFC 7638 thumbprint, which commits
//! to the key's public members; bounded, least recently used out first. P-384 keys (a 900 KB
//! table each) and Ed25519 keys (nothing to prepare) are never prepared.

use std::num::NonZeroUsize;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::jwks::{prepare_one, Key};

/// Client keys kept per verifier: a P-256 table is about 400 KB, so at most about 6.5 MB.
pub const CLIENT_KEYS: usize = 16;

struct Entry {
    /// The JWK's optional `alg` member, which the thumbprint does not cover: a proof whose
    /// `jwk` says otherwise is parsed afresh.
    alg_member: Option<Value>,
    key: Rc<Key>,
}

pub struct ClientKeys {
    lru: Option<lru::LruCache<String, Entry>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientKeys({} keys)", self.lru.as_ref().map_or(0, lru::LruCache::len))
    }
}

impl Default for ClientKeys {
    fn default() -> Self {
        ClientKeys::new(CLIENT_KEYS)
    }
}

impl ClientKeys {
    pub fn new(capacity: usize) -> ClientKeys {
        ClientKeys { lru: NonZeroUsize::new(capacity).map(lru::LruCache::new) }
    }

    /// The key remembered for `jkt`, if this `jwk` is the one it was remembered from.
    pub fn get(&mut self, jkt: &str, jwk: &Map<String, Value>) -> Option<Rc<Key>> {
        let e = self.lru.as_mut()?.get(jkt)?;
        (e.alg_member.as_ref() == jwk.get("alg")).then(|| e.key.clone())
    }

    /// Remembers `key` (just parsed from `jwk`); prepared if the client was seen before.
    pub fn remember(&mut self, jkt: &str, jwk: &Map<String, Value>, mut key: Key, seen: bool) -> Rc<Key> {
        if seen {
            prepare_one(&mut key);
        }
        let key = Rc::new(key);
        if let Some(lru) = self.lru.as_mut() {
            lru.put(jkt.to_string(), Entry { alg_member: jwk.get("alg").cloned(), key: key.clone() });
        }
        key
    }

    pub fn prepared_len(&self) -> usize {
        self.lru.as_ref().map_or(0, |l| l.iter().filter(|(_, e)| e.key.prepared.is_some()).count())
    }
}

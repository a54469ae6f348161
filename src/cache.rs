//! The verified-token cache: a bounded map from token to what its verification produced, so a
//! client that reuses a token pays for the signature once. Entries are dropped when the token
//! expires and whenever the provider's keys change, so a key that leaves the JWKS stops
//! vouching for cached tokens at once.

use std::collections::{HashMap, VecDeque};

use crate::authenticator::Verified;

#[derive(Debug, Default)]
pub struct TokenCache {
    capacity: usize,
    entries: HashMap<(usize, String), Verified>,
    /// Insertion order, for eviction of the oldest entry.
    order: VecDeque<(usize, String)>,
    pub hits: u64,
    pub misses: u64,
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache { capacity, ..TokenCache::default() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A cached verdict that is still within `exp` (with the same skew the check used).
    pub fn get(&mut self, provider: usize, token: &str, now: u64, skew: u64) -> Option<Verified> {
        if self.capacity == 0 {
            return None;
        }
        let key = (provider, token.to_string());
        match self.entries.get(&key) {
            Some(v) if v.exp.is_none_or(|exp| now < exp.saturating_add(skew)) => {
                self.hits += 1;
                Some(v.clone())
            }
            Some(_) => {
                self.entries.remove(&key);
                self.misses += 1;
                None
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    pub fn put(&mut self, provider: usize, token: &str, verified: Verified) {
        if self.capacity == 0 {
            return;
        }
        let key = (provider, token.to_string());
        if self.entries.insert(key.clone(), verified).is_none() {
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        // Keys evicted by expiry leave stale order entries; keep the queue bounded too.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
    }

    /// Forgets every token of a provider: called whenever its key set changes.
    pub fn clear_provider(&mut self, provider: usize) {
        self.entries.retain(|(p, _), _| *p != provider);
        self.order.retain(|(p, _)| *p != provider);
    }
}

//! The introspection answers this VM holds, by provider and token hash, for the requests that
//! wait on them: an answer lands (from this VM's call or another's, through shared data), the
//! waiting requests are decided again and each verifier caches its verdict. A token is known
//! here only by its SHA-256, never kept or logged.

use std::num::NonZeroUsize;
use std::rc::Rc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub type TokenHash = [u8; 32];

pub fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Answers a VM holds per provider; its verified-token caches keep the verdicts, so this only
/// bridges the time from an answer to the decisions that wait on it.
pub const ANSWERS_PER_PROVIDER: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The endpoint's JSON object (`active` true or false), good until `until` (Unix seconds).
    Fields(Rc<Map<String, Value>>),
    /// 200, but not a JSON object: the token is refused (401) for the negative cache time.
    Unreadable,
    /// The call failed (unreachable, timed out, 5xx): requests deciding before `until` are
    /// refused with 503 rather than calling again at once.
    Unavailable,
}

#[derive(Debug)]
pub struct Answers {
    map: lru::LruCache<TokenHash, (Answer, u64)>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers::new(ANSWERS_PER_PROVIDER)
    }
}

impl Answers {
    pub fn new(capacity: usize) -> Answers {
        Answers { map: lru::LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)) }
    }

    /// The answer for `hash` and until when it holds, if it still does at `now`.
    pub fn get(&self, hash: &TokenHash, now: u64) -> Option<(&Answer, u64)> {
        self.map.peek(hash).filter(|(_, until)| now < *until).map(|(a, until)| (a, *until))
    }

    pub fn put(&mut self, hash: TokenHash, answer: Answer, until: u64) {
        self.map.put(hash, (answer, until));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Until when an answer holds (Unix seconds): an active one until the token's `exp` or
/// `cache_seconds`, whichever comes first; an inactive or unreadable one for
/// `negative_seconds`.
pub fn answer_until(answer: &Map<String, Value>, now: u64, cache_seconds: u64, negative_seconds: u64) -> u64 {
    match answer.get("active") {
        Some(Value::Bool(true)) => {
            let kept = now.saturating_add(cache_seconds);
            match answer.get("exp").and_then(Value::as_u64) {
                Some(exp) => kept.min(exp),
                None => kept,
            }
        }
        _ => now.saturating_add(negative_seconds),
    }
}

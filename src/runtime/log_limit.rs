//! Rate limit for log lines keyed by a client id, so a misbehaving app is named in the logs
//! without flooding them. Bounded: it forgets everything when it is full.

use std::collections::HashMap;

pub struct LogLimiter {
    interval_ms: u64,
    capacity: usize,
    last: HashMap<String, u64>,
}

impl LogLimiter {
    pub fn new(interval_ms: u64, capacity: usize) -> LogLimiter {
        LogLimiter { interval_ms, capacity, last: HashMap::new() }
    }

    /// True if a line about `key` may be written now.
    pub fn allow(&mut self, key: &str, now_ms: u64) -> bool {
        if let Some(t) = self.last.get(key) {
            if now_ms.saturating_sub(*t) < self.interval_ms {
                return false;
            }
        }
        if self.last.len() >= self.capacity && !self.last.contains_key(key) {
            self.last.clear();
        }
        self.last.insert(key.to_string(), now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_per_key_and_bounded() {
        let mut l = LogLimiter::new(60_000, 2);
        assert!(l.allow("a", 0));
        assert!(!l.allow("a", 59_999));
        assert!(l.allow("b", 1));
        assert!(l.allow("a", 60_000));
        assert!(l.allow("c", 60_001), "full: forgets and goes on");
        assert!(l.last.len() <= 2);
    }
}

//! Rate limits: fixed one-minute windows per key. A std `Mutex` because it
//! is held for a map lookup, never across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Keys kept at most, so a flood of addresses cannot grow the map forever.
const MAX_KEYS: usize = 100_000;

/// Counts events per key in fixed windows of `window_ms`.
#[derive(Debug)]
pub struct RateLimiter {
    window_ms: i64,
    counts: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    pub fn per_minute() -> RateLimiter {
        RateLimiter {
            window_ms: 60_000,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event for `key`; `Err(seconds)` to wait when over `limit`.
    pub fn hit(&self, key: &str, limit: u32, now_ms: i64) -> Result<(), u64> {
        let window = now_ms.div_euclid(self.window_ms);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() > MAX_KEYS {
            // Old windows are dead weight: drop them all at once. If the
            // current window alone is past the bound (keys sprayed from many
            // addresses), forget it: limits reset, memory stays bounded.
            counts.retain(|_, (w, _)| *w == window);
            if counts.len() > MAX_KEYS / 2 {
                counts.clear();
            }
        }
        let entry = counts.entry(key.to_string()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= limit {
            let next = (window + 1) * self.window_ms;
            return Err(((next - now_ms) as u64).div_ceil(1000));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Open connections per key and in all, released by a drop guard.
#[derive(Debug, Default)]
pub struct ConnectionCount {
    counts: Mutex<(u32, HashMap<String, u32>)>,
}

impl ConnectionCount {
    /// Takes a slot for `key` unless `per_key` or `total` is reached.
    pub fn acquire(
        self: &Arc<Self>,
        key: &str,
        per_key: u32,
        total: u32,
    ) -> Option<ConnectionGuard> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mine = c.1.get(key).copied().unwrap_or(0);
        if c.0 >= total || mine >= per_key {
            return None;
        }
        c.0 += 1;
        c.1.insert(key.to_string(), mine + 1);
        Some(ConnectionGuard {
            owner: Arc::clone(self),
            key: key.to_string(),
        })
    }

    pub fn open(&self) -> u32 {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

/// Gives the slot back when the connection ends, however it ends.
#[derive(Debug)]
pub struct ConnectionGuard {
    owner: Arc<ConnectionCount>,
    key: String,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut c = self.owner.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.0 = c.0.saturating_sub(1);
        if let Some(n) = c.1.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.1.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reset_and_say_when() {
        let r = RateLimiter::per_minute();
        assert!(r.hit("a", 2, 60_000).is_ok());
        assert!(r.hit("a", 2, 61_000).is_ok());
        assert_eq!(r.hit("a", 2, 90_500), Err(30));
        assert!(r.hit("b", 2, 90_500).is_ok(), "keys are apart");
        assert!(r.hit("a", 2, 120_000).is_ok(), "a new window");
    }

    #[test]
    fn connection_slots_come_back() {
        let c = Arc::new(ConnectionCount::default());
        let g1 = c.acquire("ip", 2, 3).unwrap();
        let _g2 = c.acquire("ip", 2, 3).unwrap();
        assert!(c.acquire("ip", 2, 3).is_none(), "per key");
        let _g3 = c.acquire("other", 2, 3).unwrap();
        assert!(c.acquire("third", 2, 3).is_none(), "in all");
        drop(g1);
        let g4 = c.acquire("ip", 2, 3);
        assert!(g4.is_some());
        assert_eq!(c.open(), 3);
        drop((g4, _g2, _g3));
        assert_eq!(c.open(), 0);
    }
}

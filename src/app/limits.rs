//! Rate limits and connection counts. Rates are a token bucket per key in
//! its GCRA form (one "theoretical arrival time" per key): `limit` events
//! may come at once, then one more every `60 s / limit`. A key's state
//! changes only when that key is hit, so a flood from one key never resets
//! or slows another.
//!
//! Our own ~100 lines rather than `governor`: governor's keyed stores
//! (`HashMapStateStore`, `DashMapStateStore`) have no bound on their size;
//! `retain_recent` drops only keys whose bucket has fully refilled, so a
//! flood of distinct keys (addresses) inside one minute grows them without
//! limit, and bounding them means writing a `StateStore` anyway. Governor
//! also reads time from its own clock, while our callers pass the `now_ms`
//! they stamp their events with (and tests inject it). Here memory is
//! bounded by [`MAX_KEYS`], spread over [`SHARDS`] locks.
//!
//! Std `Mutex`es because each is held for one map operation, never across
//! an `.await`.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

/// Keys kept at most (over all shards), so a flood of addresses cannot
/// grow the limiter without bound.
pub const MAX_KEYS: usize = 100_000;
/// Independent locks, so requests of different keys rarely wait on each
/// other.
pub const SHARDS: usize = 16;

/// GCRA state is kept in microseconds: `60 s / limit` is exact enough for
/// any limit up to millions per minute.
const MINUTE_US: i64 = 60_000_000;

/// A token bucket per key, `limit` events per minute with a burst of
/// `limit`, in bounded memory.
#[derive(Debug)]
pub struct RateLimiter {
    /// Per shard: key → theoretical arrival time (µs since the epoch) of
    /// its next event when the bucket is empty.
    shards: Vec<Mutex<HashMap<String, i64>>>,
    /// Keys kept at most per shard.
    per_shard: usize,
    /// Picks a key's shard; randomly seeded so nobody can aim a flood of
    /// keys at one shard.
    hasher: RandomState,
}

impl RateLimiter {
    pub fn per_minute() -> RateLimiter {
        RateLimiter::with_capacity(MAX_KEYS)
    }

    /// A limiter keeping about `max_keys` keys at most.
    pub fn with_capacity(max_keys: usize) -> RateLimiter {
        RateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// Counts one event for `key` at `now_ms`, allowing `limit` per minute
    /// (bursts of up to `limit`); `Err(seconds)` to wait before the next
    /// event can pass (for `Retry-After`, at least 1). A refused event
    /// costs nothing, so hammering does not push the wait further out.
    /// A `limit` of 0 refuses everything (with a one-minute wait).
    pub fn hit(&self, key: &str, limit: u32, now_ms: i64) -> Result<(), u64> {
        if limit == 0 {
            return Err(60);
        }
        let now = now_ms.saturating_mul(1000);
        let interval = MINUTE_US / i64::from(limit);
        // How far ahead of now the arrival time may run: `limit - 1`
        // events beyond the one arriving (the minute less one interval:
        // `interval * (limit - 1)` would shrink to nothing once the
        // interval rounds to 0 µs, past 60 million a minute).
        let tolerance = MINUTE_US - interval;
        let shard = &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let allowed_at = tat - tolerance;
        if now < allowed_at {
            let wait_us = (allowed_at - now) as u64;
            return Err(wait_us.div_ceil(1_000_000).max(1));
        }
        if !map.contains_key(key) && map.len() >= self.per_shard {
            evict(&mut map, now, self.per_shard);
        }
        map.insert(key.to_string(), tat + interval);
        Ok(())
    }

    /// Keys held now (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard. Keys whose arrival time has passed are
/// indistinguishable from new ones and go first, at no loss. If the shard
/// is still over half full (many keys active within one minute), the half
/// with the earliest arrival times go: they are the closest to a full
/// bucket, so forgetting them gives away the least. Halving keeps the
/// cost amortised: one sort per `per_shard / 2` new keys.
fn evict(map: &mut HashMap<String, i64>, now: i64, per_shard: usize) {
    map.retain(|_, tat| *tat > now);
    if map.len() <= per_shard / 2 {
        return;
    }
    let mut tats: Vec<i64> = map.values().copied().collect();
    let cut = tats.len() - per_shard / 2;
    let (_, &mut threshold, _) = tats.select_nth_unstable(cut - 1);
    // Everything before the threshold goes, and as many ties as needed.
    let mut ties = cut - tats.iter().filter(|&&t| t < threshold).count();
    map.retain(|_, tat| {
        if *tat == threshold && ties > 0 {
            ties -= 1;
            return false;
        }
        *tat > threshold
    });
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

    const MIN: i64 = 60_000;

    /// A limit past 60 million a minute makes the interval round to 0 µs;
    /// the burst must still cover the minute, so requests stamped a
    /// millisecond out of order (two threads, one lock) all pass.
    #[test]
    fn a_huge_limit_lets_requests_stamped_out_of_order_pass() {
        let r = RateLimiter::per_minute();
        let t0 = 1_700_000_000_000;
        assert_eq!(r.hit("ip", 100_000_000, t0 + 1), Ok(()));
        assert_eq!(r.hit("ip", 100_000_000, t0), Ok(()));
        assert_eq!(r.hit("ip", 1_000_000, t0 + 1), Ok(()));
        assert_eq!(r.hit("ip", 1_000_000, t0), Ok(()));
    }

    #[test]
    fn burst_then_refill_and_say_when() {
        let r = RateLimiter::per_minute();
        let t0 = 1_700_000_000_000;
        for i in 0..3 {
            assert_eq!(r.hit("a", 3, t0 + i), Ok(()), "burst event {i}");
        }
        // Empty: one token comes back every 20 s, counted from t0.
        assert_eq!(r.hit("a", 3, t0 + 2), Err(20));
        assert_eq!(
            r.hit("a", 3, t0 + 10_500),
            Err(10),
            "9.5 s left, rounded up"
        );
        assert_eq!(r.hit("a", 3, t0 + 19_999), Err(1));
        assert_eq!(r.hit("a", 3, t0 + 20_000), Ok(()));
        assert_eq!(r.hit("a", 3, t0 + 20_001), Err(20));
        // Idle for a minute: the whole burst is back, and no more.
        let t1 = t0 + 20_000 + MIN;
        for i in 0..3 {
            assert_eq!(r.hit("a", 3, t1), Ok(()), "refilled event {i}");
        }
        assert!(r.hit("a", 3, t1).is_err());
    }

    #[test]
    fn refused_events_do_not_push_the_wait_out() {
        let r = RateLimiter::per_minute();
        assert_eq!(r.hit("a", 1, 0), Ok(()));
        for ms in (0..MIN).step_by(1000) {
            assert!(r.hit("a", 1, ms).is_err());
        }
        assert_eq!(r.hit("a", 1, MIN), Ok(()));
    }

    #[test]
    fn one_keys_flood_leaves_others_alone() {
        let r = RateLimiter::per_minute();
        assert_eq!(r.hit("b", 2, 0), Ok(()));
        for i in 0..10_000 {
            let _ = r.hit("a", 2, i / 100);
        }
        assert_eq!(r.len(), 2);
        assert_eq!(r.hit("b", 2, 100), Ok(()), "b keeps its second token");
        assert_eq!(r.hit("b", 2, 100), Err(30), "and is not reset either");
    }

    #[test]
    fn a_flood_of_keys_stays_bounded_without_resetting_everyone() {
        let r = RateLimiter::with_capacity(1_600);
        // A busy key, empty for the next 30 s.
        assert_eq!(r.hit("busy", 2, 0), Ok(()));
        assert_eq!(r.hit("busy", 2, 0), Ok(()));
        for i in 0..50_000 {
            let _ = r.hit(&format!("ip:{i}"), 2, 1_000);
            assert!(r.len() <= 1_600 + SHARDS, "{} keys held", r.len());
        }
        // The busy key owes more (a later arrival time) than any key of
        // the flood, so eviction keeps it: it is not reset.
        assert_eq!(r.hit("busy", 2, 1_000), Err(29));
        // Keys that refilled go first and are not a loss: after a minute,
        // a new flood replaces the old one.
        for i in 0..5_000 {
            let _ = r.hit(&format!("v6:{i}"), 2, 2 * MIN);
        }
        assert!(r.len() <= 1_600 + SHARDS);
    }

    #[test]
    fn limit_zero_refuses() {
        let r = RateLimiter::per_minute();
        assert_eq!(r.hit("a", 0, 0), Err(60));
        assert!(r.is_empty());
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

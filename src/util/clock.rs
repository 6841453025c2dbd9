//! Where the application reads the time. The system clock in production;
//! a clock the caller sets in tests that script days of traffic through the
//! real server (reports, retention), so their expected numbers are exact.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// One day of 24 hours, in ms: what `durable_days`, `fcr_days` and
/// `[retention]` count in.
pub const DAY_MS: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A cheap-to-clone clock: the system's, or a manual one shared by every
/// clone (setting it on one moves them all).
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `start_ms` until it is set or advanced.
    pub fn manual(start_ms: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(start_ms))))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            None => system_ms(),
            Some(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Sets a manual clock (the system clock ignores it).
    pub fn set(&self, ms: i64) {
        if let Some(t) = &self.0 {
            t.store(ms, Ordering::SeqCst);
        }
    }

    /// Moves a manual clock on by `ms` (the system clock ignores it).
    pub fn advance(&self, ms: i64) {
        if let Some(t) = &self.0 {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_every_clone() {
        let c = Clock::manual(1_000);
        let d = c.clone();
        c.advance(500);
        assert_eq!(d.now_ms(), 1_500);
        d.set(7);
        assert_eq!(c.now_ms(), 7);
        assert!(!Clock::system().is_manual());
        let before = system_ms();
        Clock::system().set(0);
        assert!(Clock::system().now_ms() >= before);
    }
}

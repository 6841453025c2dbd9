//! Keeps the reports' facts fresh off the request path (`report::cache`):
//! a sync shortly after start (on a store without facts, or after an
//! upgrade that changed the fold, this is the cold build: every log folded
//! once) and then every `EVERY`, so the first report after a start or after
//! a burst of traffic finds little or nothing left to fold. A report that
//! arrives while a sync runs waits for it and then folds nothing again.

use std::time::Duration;

use super::*;

/// Not at once: the start itself (`/healthz`, the first requests) goes
/// first.
const AFTER_START: Duration = Duration::from_secs(5);

/// How often the facts are brought up to date after that.
const EVERY: Duration = Duration::from_secs(30);

/// Syncs the report cache after `AFTER_START` and then every `EVERY` until
/// `shutdown` resolves. Runs beside the retention sweeper.
pub async fn run(app: App, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => return,
        _ = tokio::time::sleep(AFTER_START) => {}
    }
    loop {
        let a = app.clone();
        let started = std::time::Instant::now();
        let sync = tokio::task::spawn_blocking(move || {
            a.report_cache().sync(a.store().as_ref(), a.now_ms())
        });
        // A shutdown does not wait for a cold build (its mark is written
        // last: an interrupted one is simply done again).
        let synced = tokio::select! {
            _ = &mut shutdown => return,
            s = sync => s,
        };
        match synced {
            Ok(Ok(r)) if r.rebuilt || r.folded > 1_000 => tracing::info!(
                folded = r.folded,
                rebuilt = r.rebuilt,
                ms = started.elapsed().as_millis() as u64,
                "report facts brought up to date"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "report facts refresh failed"),
            Err(e) => tracing::error!(error = %e, "report facts refresh panicked"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

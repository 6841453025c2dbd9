//! `[retention] closed_after_days`: conversations that are closed (and
//! still closed) and whose last event is older than that, by the app's
//! clock, are deleted with everything stored about them (`privacy.rs`'s
//! one way of deleting). Checked at start and then every hour by `run`.
//! Open conversations (with the bot, queued, with an agent) are never
//! deleted by age: a bot conversation the visitor left stays until it is
//! closed or an admin deletes it.

use std::time::Duration;

use super::*;

/// How often the sweep runs after the first one at start.
const EVERY: Duration = Duration::from_secs(3600);

use crate::util::clock::DAY_MS;

impl App {
    /// Deletes what `[retention]` says is too old; returns the ids deleted
    /// (none when `closed_after_days` is 0). Conversations with an event
    /// in the last N days are skipped by the time index without reading
    /// their logs; every other one's log is read to check it.
    pub fn sweep_retention(&self) -> Result<Vec<String>, ApiError> {
        let days = self.inner.config.retention.closed_after_days;
        if days == 0 {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let cutoff = now.saturating_sub(i64::from(days) * DAY_MS);
        // The time index's hints: a minute that starts at or after the
        // cutoff holds only events that are too recent (the minute of the
        // cutoff itself may hold older ones, so its conversations are
        // read). An entry whose event a crash lost only puts the deletion
        // off until that minute is old too.
        let recent: std::collections::HashSet<String> = self
            .inner
            .store
            .minutes(cutoff, i64::MAX / 2)?
            .into_iter()
            .filter(|(minute, _)| *minute >= cutoff)
            .map(|(_, id)| id)
            .collect();
        let mut deleted = Vec::new();
        for id in self.inner.store.conversations()? {
            if recent.contains(&id) {
                continue;
            }
            let _g = self.stripe(&id);
            let log = match self.inner.store.read(&id, 0) {
                Ok(log) => log,
                Err(crate::store::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(last) = log.last() else { continue };
            // Looked at under the stripe: a message that reopened it since
            // the time index was read keeps it.
            if last.at_ms >= cutoff || Conversation::from_log(&log).phase != Phase::Closed {
                continue;
            }
            self.inner.states.forget(&id);
            self.remove_locked(&id)?;
            deleted.push(id);
        }
        if !deleted.is_empty() {
            tracing::info!(
                deleted = deleted.len(),
                days,
                "retention: closed conversations deleted"
            );
        }
        Ok(deleted)
    }
}

/// Sweeps at start and then every hour until `shutdown` resolves (a no-op
/// loop when `closed_after_days` is 0). Runs beside the webhook sender.
pub async fn run(app: App, shutdown: impl std::future::Future<Output = ()>) {
    if app.config().retention.closed_after_days == 0 {
        return;
    }
    tokio::pin!(shutdown);
    loop {
        let a = app.clone();
        match tokio::task::spawn_blocking(move || a.sweep_retention()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
            Err(e) => tracing::error!(error = %e, "retention sweep panicked"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

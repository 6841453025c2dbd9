//! `[retention] closed_after_days`: a conversation whose last event is
//! older than that, by the app's clock, and that no person is involved in
//! (closed, or with the bot: nothing ever closes an idle bot chat, so
//! "nobody touched it for N days" is its end) is deleted with everything
//! stored about them (`privacy.rs`'s one way of deleting). Checked at
//! start and then every hour by `run`. One that is queued or with an
//! agent is never deleted by age: a visitor is waiting or an agent has it
//! on screen. A visitor who comes back to a deleted one (a tab left open)
//! gets a 404 and the widget starts a fresh conversation.

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
            // Looked at under the stripe: a message since the time index
            // was read keeps it.
            let ended = matches!(
                Conversation::from_log(&log).phase,
                Phase::Closed | Phase::Bot
            );
            if last.at_ms >= cutoff || !ended {
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
                "retention: closed or idle conversations deleted"
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

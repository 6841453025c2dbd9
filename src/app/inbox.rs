//! The inbox index's life in a server (`crate::inbox`): built from the
//! store in the background shortly after start, so a start is as fast
//! with 100,000 conversations as with none (`/healthz` answers at once;
//! the inbox answers `inbox_building` with `Retry-After` until the index
//! is live), and an agent's explicit reopen of a closed conversation.

use std::time::Duration;

use super::*;

/// The start itself (`/healthz`, the first requests) goes first.
const AFTER_START: Duration = Duration::from_millis(500);
/// A build that failed (a storage error) is tried again after this.
const RETRY: Duration = Duration::from_secs(30);

impl App {
    /// The agents' inbox index.
    pub fn inbox(&self) -> &crate::inbox::Inbox {
        &self.inner.inbox
    }

    /// An agent reopens a closed conversation: it goes to that agent (who
    /// must be online with room), recorded as a handoff taken over by
    /// them; the visitor sees the agent join.
    pub fn reopen(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::Reopen {
                agent: agent.name.clone(),
            },
        )
    }
}

/// Builds the inbox index after `AFTER_START` (again after `RETRY` if the
/// store fails), unless `shutdown` comes first.
pub async fn run(app: App, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut wait = AFTER_START;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let a = app.clone();
        let started = std::time::Instant::now();
        let built = tokio::task::spawn_blocking(move || a.inbox().build(a.store().as_ref()));
        let built = tokio::select! {
            _ = &mut shutdown => return,
            b = built => b,
        };
        match built {
            Ok(Ok(b)) => {
                tracing::info!(
                    conversations = b.conversations,
                    reread = b.reread,
                    ms = started.elapsed().as_millis() as u64,
                    bytes = app.inbox().bytes(),
                    "inbox index built"
                );
                return;
            }
            Ok(Err(e)) => tracing::error!(error = %e, "inbox index build failed"),
            Err(e) => tracing::error!(error = %e, "inbox index build panicked"),
        }
        wait = RETRY;
    }
}

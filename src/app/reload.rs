//! Hot reload of the intents directory. The directory is polled (names,
//! sizes and modification times of its files) every `reload_poll_ms`: no
//! platform notification API to depend on, and a change is seen well within
//! a second. A changed directory is loaded and validated fully off the
//! executor; only a set that passes replaces the running one. A change
//! that leaves the files' contents as the serving set was built from
//! (their digest, `replay::dir_digest`) reloads nothing.

use std::path::Path;
use std::time::Duration;

use super::App;

/// What identifies the directory's contents cheaply.
fn stamp(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.modified().ok(),
            ))
        })
        .collect();
    out.sort();
    out
}

/// Watches until `shutdown` resolves.
pub async fn watch(app: App, shutdown: impl std::future::Future<Output = ()>) {
    let dir = app.intents_dir();
    let every = Duration::from_millis(app.inner.config.server.reload_poll_ms);
    let mut last = stamp(&dir);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(every) => {}
        }
        let now = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || stamp(&dir))
                .await
                .unwrap_or_default()
        };
        if now == last {
            continue;
        }
        last = now;
        let app2 = app.clone();
        // An editor that writes in several steps is seen again next poll.
        // Files that hold exactly what the serving set was built from (a
        // save from the admin page swapped its validated set in already,
        // or a touch) are not built again.
        let _ = tokio::task::spawn_blocking(move || {
            if !app2.serves_files_as_they_are() {
                app2.reload_now();
            }
        })
        .await;
    }
}

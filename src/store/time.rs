//! Time-ordered reads over the time index, the same for every backend: a
//! backend only lists (minute, conversation) entries (`Store::minutes`);
//! checking them against the logs and ordering events happen here, so
//! every backend answers alike.

use std::collections::BTreeMap;

use super::{Result, Store, StoreError};
use crate::conversation::Record;

/// The time index's granularity: one entry per conversation per minute in
/// which it has events, so a busy conversation costs one index write a
/// minute, not one per message.
pub const MINUTE_MS: i64 = 60_000;

/// The minute an instant falls in, as its start in ms (saturating at the
/// ends of `i64`, so any window a caller passes is safe).
pub fn minute_of(at_ms: i64) -> i64 {
    at_ms.saturating_sub(at_ms.rem_euclid(MINUTE_MS))
}

/// A conversation seen in a time window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Activity {
    pub conversation: String,
    /// When it was created (its `Started` record).
    pub started_at_ms: i64,
    /// Its last event within the window.
    pub last_at_ms: i64,
}

/// One event with its conversation, as `events_between` returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Timed {
    pub conversation: String,
    pub record: Record,
}

impl Timed {
    /// Where the next page starts.
    pub fn cursor(&self) -> EventCursor {
        EventCursor {
            at_ms: self.record.at_ms,
            conversation: self.conversation.clone(),
            seq: self.record.seq,
        }
    }
}

/// A position in the (at_ms, conversation, seq) order of `events_between`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor {
    pub at_ms: i64,
    pub conversation: String,
    pub seq: u64,
}

/// The log of a conversation the index names; `None` if it is gone (a
/// dangling entry of a deleted conversation).
fn log_of<S: Store + ?Sized>(store: &S, id: &str) -> Result<Option<Vec<Record>>> {
    match store.read(id, 0) {
        Ok(log) => Ok(Some(log)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn active<S: Store + ?Sized>(store: &S, from_ms: i64, to_ms: i64) -> Result<Vec<Activity>> {
    let mut ids: Vec<String> = store
        .minutes(from_ms, to_ms)?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let Some(log) = log_of(store, &id)? else {
            continue;
        };
        let last = log
            .iter()
            .filter(|r| r.at_ms >= from_ms && r.at_ms < to_ms)
            .map(|r| r.at_ms)
            .max();
        // No event in the window: the entry's event was lost in a crash.
        if let (Some(last_at_ms), Some(first)) = (last, log.first()) {
            out.push(Activity {
                conversation: id,
                started_at_ms: first.at_ms,
                last_at_ms,
            });
        }
    }
    out.sort_by(|a, b| (a.last_at_ms, &a.conversation).cmp(&(b.last_at_ms, &b.conversation)));
    Ok(out)
}

pub fn events_between<S: Store + ?Sized>(
    store: &S,
    from_ms: i64,
    to_ms: i64,
    after: Option<&EventCursor>,
    limit: usize,
) -> Result<Vec<Timed>> {
    let from_ms = after.map_or(from_ms, |c| from_ms.max(c.at_ms));
    if limit == 0 || from_ms >= to_ms {
        return Ok(Vec::new());
    }
    // Minute by minute: within a minute the events of every conversation
    // the index names are sorted; minutes come in order, so the first
    // `limit` events overall are found without reading past them.
    let mut by_minute: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (minute, id) in store.minutes(from_ms, to_ms)? {
        by_minute.entry(minute).or_default().push(id);
    }
    let mut out = Vec::new();
    for (minute, ids) in by_minute {
        let (lo, hi) = (
            from_ms.max(minute),
            to_ms.min(minute.saturating_add(MINUTE_MS)),
        );
        let mut found = Vec::new();
        for id in ids {
            let Some(log) = log_of(store, &id)? else {
                continue;
            };
            for record in log {
                if record.at_ms < lo || record.at_ms >= hi {
                    continue;
                }
                let t = Timed {
                    conversation: id.clone(),
                    record,
                };
                if after.is_none_or(|c| t.cursor() > *c) {
                    found.push(t);
                }
            }
        }
        found.sort_by_key(Timed::cursor);
        for t in found {
            out.push(t);
            if out.len() == limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_round_down_also_before_1970() {
        assert_eq!(minute_of(0), 0);
        assert_eq!(minute_of(59_999), 0);
        assert_eq!(minute_of(60_000), 60_000);
        assert_eq!(minute_of(-1), -60_000);
        assert_eq!(minute_of(i64::MIN), i64::MIN);
        assert!(minute_of(i64::MAX) < i64::MAX);
    }
}

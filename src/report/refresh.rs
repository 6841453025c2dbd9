//! Facts kept in the store, refreshed lazily: before a report, the time
//! index (`Store::minutes`) names the conversations with events since the
//! last refresh's mark; only their logs are read and folded again. The
//! write path is untouched (a message costs nothing more), and a report
//! reads one small row per conversation of its window.
//!
//! The mark is `FACTS_VERSION` and a time: a fold of another version
//! clears every row and rebuilds them all (a "cold" build, the cost
//! BENCHMARKS.md gives). A restored backup has no facts (they are not
//! copied) and rebuilds them the same way.

use std::cell::RefCell;
use std::sync::Mutex;

use super::compute::{Period, Returns, StartsOf, WindowError, Zone};
use super::facts::{fold, Facts, FACTS_VERSION};
use super::model::Report;
use super::{drill, Filter, FilterError};
use crate::config::Reports;
use crate::store::{FactsRow, Store, StoreError, MINUTE_MS};

use crate::util::clock::DAY_MS;

/// Logs folded per `put_facts` call during a refresh.
const CHUNK: usize = 2_000;

/// One refresh at a time in a process: two at once would do the same work.
static REFRESHING: Mutex<()> = Mutex::new(());

/// What stops a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Conversations folded again.
    pub folded: u64,
    /// Every row was rebuilt (no mark, or another fold version).
    pub rebuilt: bool,
}

fn mark(ms: i64) -> Vec<u8> {
    format!("v{FACTS_VERSION}:{ms}").into_bytes()
}

/// The time the stored mark covers, if it is of this fold's version.
fn read_mark(bytes: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(bytes).ok()?;
    let (v, ms) = s.split_once(':')?;
    (v == format!("v{FACTS_VERSION}")).then_some(())?;
    ms.parse().ok()
}

/// A conversation's facts as a store row.
pub fn to_row(f: &Facts) -> FactsRow {
    FactsRow {
        conversation: f.id.clone(),
        started_ms: f.started_ms,
        visitor: f.visitor_key.clone(),
        data: serde_json::to_vec(f).expect("facts serialize"),
    }
}

/// Folds the conversations with events since the mark (all of them after
/// a version change) and moves the mark to `now_ms`.
pub fn refresh(store: &dyn Store, now_ms: i64) -> Result<Refreshed, StoreError> {
    let _one = REFRESHING.lock().unwrap_or_else(|p| p.into_inner());
    let since = store.facts_mark()?.as_deref().and_then(read_mark);
    let rebuilt = since.is_none();
    if rebuilt {
        store.clear_facts()?;
    }
    // From the minute before the mark's: an event written while the last
    // refresh ran, stamped just before its mark, is read again.
    let from = since.map_or(i64::MIN, |s| s.saturating_sub(MINUTE_MS));
    let mut ids: Vec<String> = store
        .minutes(from, i64::MAX)?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut folded = 0;
    for chunk in ids.chunks(CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        for id in chunk {
            match store.read(id, 0) {
                Ok(log) if !log.is_empty() => rows.push(to_row(&fold(id, &log))),
                // Deleted since (its row went with it).
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        folded += rows.len() as u64;
        store.put_facts(&rows)?;
        // A conversation deleted after its log was read above had its row
        // dropped by the delete before the put wrote it again: drop it now.
        // (A delete removes the log before the row, so a conversation
        // whose log is still there when checked keeps a row its own
        // delete will drop.)
        for r in &rows {
            if let Err(StoreError::NotFound(_)) = store.read(&r.conversation, u64::MAX) {
                store.drop_facts(&r.conversation)?;
            }
        }
    }
    store.put_facts_mark(&mark(now_ms))?;
    Ok(Refreshed { folded, rebuilt })
}

/// "Did the visitor come back?" from the rows already read, asking the
/// store only past them.
struct Lookahead<'a> {
    starts: StartsOf,
    /// Rows with a start before this were read.
    read_until: i64,
    store: &'a dyn Store,
    failed: RefCell<Option<StoreError>>,
}

impl Returns for Lookahead<'_> {
    fn came_back(&self, visitor: &str, after_ms: i64, until_ms: i64) -> bool {
        if until_ms < self.read_until {
            return self.starts.came_back(visitor, after_ms, until_ms);
        }
        match self.store.visitor_starts(
            visitor,
            after_ms.saturating_add(1),
            until_ms.saturating_add(1),
        ) {
            Ok(v) => !v.is_empty(),
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                false
            }
        }
    }
}

/// The facts of a window, fresh, with what durable and FCR look up.
pub struct Loaded<'a> {
    /// Conversations started in the window.
    pub facts: Vec<Facts>,
    returns: Lookahead<'a>,
}

impl Loaded<'_> {
    pub fn returns(&self) -> &dyn Returns {
        &self.returns
    }

    fn check(&self) -> Result<(), StoreError> {
        match self.returns.failed.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Refreshes, then reads the facts of `period` and the starts of the days
/// after it that durable and FCR look at.
pub fn load<'a>(
    store: &'a dyn Store,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
) -> Result<Loaded<'a>, StoreError> {
    refresh(store, now_ms)?;
    let (from_ms, to_ms) = period.bounds(&zone.tz);
    let ahead = i64::from(settings.durable_days.max(settings.fcr_days)) * DAY_MS;
    let read_until = to_ms.saturating_add(ahead).saturating_add(DAY_MS);
    let rows = store.facts(from_ms, read_until)?;
    let mut facts = Vec::new();
    let mut starts = StartsOf::new([]);
    let mut stale = Vec::new();
    for r in rows {
        if let Some(v) = &r.visitor {
            starts.insert(v, r.started_ms);
        }
        if r.started_ms >= to_ms {
            continue;
        }
        match serde_json::from_slice::<Facts>(&r.data) {
            Ok(f) => facts.push(f),
            // Unreadable (damaged): fold the log again.
            Err(_) => stale.push(r.conversation),
        }
    }
    for id in stale {
        if let Ok(log) = store.read(&id, 0) {
            let f = fold(&id, &log);
            store.put_facts(&[to_row(&f)])?;
            if let Err(StoreError::NotFound(_)) = store.read(&id, u64::MAX) {
                store.drop_facts(&id)?;
                continue;
            }
            facts.push(f);
        }
    }
    Ok(Loaded {
        facts,
        returns: Lookahead {
            starts,
            read_until,
            store,
            failed: RefCell::new(None),
        },
    })
}

/// The report of `period`, as of `now_ms`.
pub fn report(
    store: &dyn Store,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
) -> Result<Report, StoreError> {
    let loaded = load(store, period, zone, settings, now_ms)?;
    let r = Report::compute(
        &loaded.facts,
        period,
        zone,
        settings,
        loaded.returns(),
        now_ms,
    );
    loaded.check()?;
    Ok(r)
}

/// A page of the conversations behind `filter`.
#[allow(clippy::too_many_arguments)]
pub fn conversations(
    store: &dyn Store,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
    filter: &str,
    offset: usize,
    limit: usize,
) -> Result<super::model::ConversationPage, ReportError> {
    let parsed = Filter::parse(filter)?;
    let loaded = load(store, period, zone, settings, now_ms)?;
    let (total, rows) = drill(
        &loaded.facts,
        period,
        zone,
        settings,
        loaded.returns(),
        now_ms,
        &parsed,
        offset,
        limit,
    );
    loaded.check()?;
    Ok(super::model::ConversationPage {
        filter: filter.to_string(),
        total,
        offset: offset as u64,
        conversations: rows,
    })
}

/// Every cohort conversation of `period` as rows, in start order (the CSV).
pub fn all_rows(
    store: &dyn Store,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
) -> Result<Vec<super::model::ConversationRow>, StoreError> {
    let loaded = load(store, period, zone, settings, now_ms)?;
    let (_, rows) = drill(
        &loaded.facts,
        period,
        zone,
        settings,
        loaded.returns(),
        now_ms,
        &Filter::Named("cohort"),
        0,
        usize::MAX,
    );
    Ok(rows)
}

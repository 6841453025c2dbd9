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

use super::cache::FactsCache;
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

/// What a refresh tells whoever keeps facts of their own (the report
/// cache, `cache.rs`), in this order: `start` once, then `put` and `drop`
/// as chunks are written, then `done` once the mark is moved. Nothing
/// after a failure.
pub(crate) trait Sink {
    /// The mark the refresh starts from; `None`: every row is rebuilt.
    fn start(&mut self, since: Option<i64>);
    /// Facts just written to the store, replacing earlier ones.
    fn put(&mut self, facts: Vec<Facts>);
    /// A conversation found deleted after its facts were put.
    fn dropped(&mut self, id: &str);
    /// The store's mark now covers `mark`.
    fn done(&mut self, mark: i64);
}

/// No one listening.
struct Nobody;

impl Sink for Nobody {
    fn start(&mut self, _: Option<i64>) {}
    fn put(&mut self, _: Vec<Facts>) {}
    fn dropped(&mut self, _: &str) {}
    fn done(&mut self, _: i64) {}
}

/// Folds the conversations with events since the mark (all of them after
/// a version change) and moves the mark to `now_ms`.
pub fn refresh(store: &dyn Store, now_ms: i64) -> Result<Refreshed, StoreError> {
    refresh_into(store, now_ms, &mut Nobody)
}

/// `refresh`, telling `sink` what it wrote.
pub(crate) fn refresh_into(
    store: &dyn Store,
    now_ms: i64,
    sink: &mut dyn Sink,
) -> Result<Refreshed, StoreError> {
    let _one = REFRESHING.lock().unwrap_or_else(|p| p.into_inner());
    let since = store.facts_mark()?.as_deref().and_then(read_mark);
    let rebuilt = since.is_none();
    if rebuilt {
        store.clear_facts()?;
    }
    sink.start(since);
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
        let mut facts = Vec::with_capacity(chunk.len());
        for id in chunk {
            match store.read(id, 0) {
                Ok(log) if !log.is_empty() => facts.push(fold(id, &log)),
                // Deleted since (its row went with it).
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        folded += facts.len() as u64;
        store.put_facts(&facts.iter().map(to_row).collect::<Vec<_>>())?;
        let ids: Vec<String> = facts.iter().map(|f| f.id.clone()).collect();
        sink.put(facts);
        // A conversation deleted after its log was read above had its row
        // dropped by the delete before the put wrote it again: drop it now.
        // (A delete removes the log before the row, so a conversation
        // whose log is still there when checked keeps a row its own
        // delete will drop.) The sink got the facts before this check,
        // so the same holds for it.
        for id in &ids {
            if let Err(StoreError::NotFound(_)) = store.read(id, u64::MAX) {
                store.drop_facts(id)?;
                sink.dropped(id);
            }
        }
    }
    store.put_facts_mark(&mark(now_ms))?;
    sink.done(now_ms);
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

/// How far past a window durable and FCR look (with a day to spare).
fn read_until(to_ms: i64, settings: Reports) -> i64 {
    let ahead = i64::from(settings.durable_days.max(settings.fcr_days)) * DAY_MS;
    to_ms.saturating_add(ahead).saturating_add(DAY_MS)
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
    read_window(store, from_ms, to_ms, read_until(to_ms, settings))
}

/// The stored facts rows of `[from_ms, to_ms)` parsed, and the starts up
/// to `read_until`.
fn read_window(
    store: &dyn Store,
    from_ms: i64,
    to_ms: i64,
    read_until: i64,
) -> Result<Loaded<'_>, StoreError> {
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
        if let Some(f) = refold(store, &id)? {
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

/// Folds `id` again and stores its row (one that did not parse); `None`
/// if it is gone.
pub(crate) fn refold(store: &dyn Store, id: &str) -> Result<Option<Facts>, StoreError> {
    let Ok(log) = store.read(id, 0) else {
        return Ok(None);
    };
    if log.is_empty() {
        return Ok(None);
    }
    let f = fold(id, &log);
    store.put_facts(&[to_row(&f)])?;
    if let Err(StoreError::NotFound(_)) = store.read(id, u64::MAX) {
        store.drop_facts(id)?;
        return Ok(None);
    }
    Ok(Some(f))
}

/// Hands `f` the facts of `period` (started in it) and what durable and
/// FCR look up: from `cache` when it covers the window (kept fresh by the
/// same refresh), else read from the store.
fn with_window<R>(
    store: &dyn Store,
    cache: Option<&FactsCache>,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
    f: impl FnOnce(&[Facts], &dyn Returns) -> R,
) -> Result<R, StoreError> {
    let (from_ms, to_ms) = period.bounds(&zone.tz);
    let until = read_until(to_ms, settings);
    match cache {
        Some(cache) => {
            cache.sync(store, now_ms)?;
            if let Some(w) = cache.window(from_ms, to_ms, until) {
                let returns = Lookahead {
                    starts: StartsOf::new(w.ahead()),
                    read_until: until,
                    store,
                    failed: RefCell::new(None),
                };
                let r = f(w.facts(), &returns);
                drop(w);
                return match returns.failed.into_inner() {
                    Some(e) => Err(e),
                    None => Ok(r),
                };
            }
        }
        None => {
            refresh(store, now_ms)?;
        }
    }
    let loaded = read_window(store, from_ms, to_ms, until)?;
    let r = f(&loaded.facts, loaded.returns());
    loaded.check()?;
    Ok(r)
}

/// The report of `period`, as of `now_ms`, from the store alone (the
/// command line's `frontdesk report` on a stopped store).
pub fn report(
    store: &dyn Store,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
) -> Result<Report, StoreError> {
    report_with(store, None, period, zone, settings, now_ms)
}

/// The report of `period`, as of `now_ms`, through `cache` if given.
pub fn report_with(
    store: &dyn Store,
    cache: Option<&FactsCache>,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
) -> Result<Report, StoreError> {
    with_window(
        store,
        cache,
        period,
        zone,
        settings,
        now_ms,
        |facts, returns| Report::compute(facts, period, zone, settings, returns, now_ms),
    )
}

/// A page of the conversations behind `filter`.
#[allow(clippy::too_many_arguments)]
pub fn conversations(
    store: &dyn Store,
    cache: Option<&FactsCache>,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
    filter: &str,
    offset: usize,
    limit: usize,
) -> Result<super::model::ConversationPage, ReportError> {
    let parsed = Filter::parse(filter)?;
    let (total, rows) = with_window(
        store,
        cache,
        period,
        zone,
        settings,
        now_ms,
        |facts, returns| {
            drill(
                facts, period, zone, settings, returns, now_ms, &parsed, offset, limit,
            )
        },
    )?;
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
    cache: Option<&FactsCache>,
    period: &Period,
    zone: &Zone,
    settings: Reports,
    now_ms: i64,
) -> Result<Vec<super::model::ConversationRow>, StoreError> {
    let (_, rows) = with_window(
        store,
        cache,
        period,
        zone,
        settings,
        now_ms,
        |facts, returns| {
            drill(
                facts,
                period,
                zone,
                settings,
                returns,
                now_ms,
                &Filter::Named("cohort"),
                0,
                usize::MAX,
            )
        },
    )?;
    Ok(rows)
}

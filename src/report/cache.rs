//! The facts of the store's conversations, parsed, kept in this process
//! (BENCHMARKS.md, "Reports (issue 17)"): a warm report over 100,000
//! conversations then folds facts already in memory instead of reading and
//! parsing 100,000 stored rows on every request.
//!
//! The cache follows the store's facts, never leads them: it is updated by
//! the same refresh that writes the rows (`refresh::Sink`), and holds
//! exactly what the store holds as of the mark it was synced to. When it
//! cannot tell (first use, or the store's mark moved without it: another
//! process's refresh), it reads every row once. A window that starts
//! before what it covers (see `cap`) is read from the store as before.
//!
//! Deletes: the app calls `forget` right after `Store::delete` (privacy
//! deletion and retention both go through `App::remove_locked`); the ids
//! are removed before the next report reads the cache. A refresh that folded
//! a conversation while it was being deleted checks the store after handing
//! the facts over and drops them again (`refresh::refresh_into`). So once a
//! delete has returned, no later report or CSV shows the conversation.
//!
//! Memory: one `Facts` per conversation started at or after `floor_ms`,
//! at most `cap` of them (the oldest are let go first; windows before them
//! are read from the store).

use std::collections::HashSet;
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use super::facts::Facts;
use super::refresh::{refold, refresh_into, Refreshed, Sink};
use crate::store::{Store, StoreError};

/// Conversations kept by default (the oldest beyond it are read from the
/// store when a window reaches them).
pub const DEFAULT_CAP: usize = 1_000_000;

/// Parsed report facts of one store, shared by the requests of a process.
pub struct FactsCache {
    state: RwLock<State>,
    /// Deleted conversations not yet taken out (a delete never waits for a
    /// report in progress).
    forgotten: Mutex<Vec<String>>,
    cap: usize,
}

impl Default for FactsCache {
    fn default() -> Self {
        FactsCache::new(DEFAULT_CAP)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// The cache matched the store's mark: apply what the refresh folds.
    #[default]
    Apply,
    /// Every row is being rebuilt: so is the cache.
    Rebuild,
    /// The cache cannot tell what changed: read every row after.
    Reload,
}

#[derive(Default)]
struct State {
    /// The store's mark the facts match; `None`: not loaded.
    mark: Option<i64>,
    /// By (started_ms, id).
    facts: Vec<Facts>,
    /// Every conversation started at or after it is in `facts`.
    floor_ms: i64,
    // During a refresh:
    mode: Mode,
    pending: Vec<Facts>,
    dropped: HashSet<String>,
}

fn order(a: &Facts, b: &Facts) -> std::cmp::Ordering {
    (a.started_ms, &a.id).cmp(&(b.started_ms, &b.id))
}

impl State {
    fn reset(&mut self) {
        *self = State::default();
    }

    /// Takes out `gone`, then merges `new` (replacing their earlier facts).
    fn merge(&mut self, mut new: Vec<Facts>, gone: &HashSet<String>, cap: usize) {
        new.retain(|f| !gone.contains(&f.id) && f.started_ms >= self.floor_ms);
        if new.is_empty() && gone.is_empty() {
            return;
        }
        let old = std::mem::take(&mut self.facts);
        let replaced: HashSet<String> = if old.is_empty() {
            HashSet::new()
        } else {
            new.iter().map(|f| f.id.clone()).collect()
        };
        new.sort_unstable_by(order);
        let mut out = Vec::with_capacity(old.len() + new.len());
        let mut new = new.into_iter().peekable();
        for f in old {
            if gone.contains(&f.id) || replaced.contains(&f.id) {
                continue;
            }
            while let Some(n) = new.next_if(|n| order(n, &f).is_lt()) {
                out.push(n);
            }
            out.push(f);
        }
        out.extend(new);
        self.facts = out;
        self.trim(cap);
    }

    /// Lets the oldest go past `cap` (all of a start time, so the floor
    /// stays exact).
    fn trim(&mut self, cap: usize) {
        if self.facts.len() <= cap {
            return;
        }
        let floor = self.facts[self.facts.len() - cap].started_ms;
        let cut = self.facts.partition_point(|f| f.started_ms < floor);
        self.facts.drain(..cut);
        self.floor_ms = self.floor_ms.max(floor);
    }
}

impl Sink for State {
    fn start(&mut self, since: Option<i64>) {
        self.pending.clear();
        self.dropped.clear();
        self.mode = match since {
            None => Mode::Rebuild,
            Some(_) if self.mark == since => Mode::Apply,
            Some(_) => Mode::Reload,
        };
    }

    fn put(&mut self, facts: Vec<Facts>) {
        if self.mode != Mode::Reload {
            self.pending.extend(facts);
        }
    }

    fn dropped(&mut self, id: &str) {
        self.dropped.insert(id.to_string());
    }

    fn done(&mut self, mark: i64) {
        let pending = std::mem::take(&mut self.pending);
        let dropped = std::mem::take(&mut self.dropped);
        match self.mode {
            Mode::Reload => return,
            Mode::Rebuild => {
                self.facts.clear();
                self.floor_ms = i64::MIN;
            }
            Mode::Apply => {}
        }
        self.merge(pending, &dropped, usize::MAX);
        self.mark = Some(mark);
    }
}

/// The cached facts of a window, read-locked while it is used.
pub(crate) struct Window<'a> {
    state: RwLockReadGuard<'a, State>,
    lo: usize,
    hi: usize,
    ahead: usize,
}

impl Window<'_> {
    /// Started in the window.
    pub fn facts(&self) -> &[Facts] {
        &self.state.facts[self.lo..self.hi]
    }

    /// Started in the window or the days after it that are looked at.
    pub fn ahead(&self) -> impl Iterator<Item = &Facts> {
        self.state.facts[self.lo..self.ahead].iter()
    }
}

impl FactsCache {
    /// A cache of at most `cap` conversations' facts (the newest).
    pub fn new(cap: usize) -> FactsCache {
        FactsCache {
            state: RwLock::new(State::default()),
            forgotten: Mutex::new(Vec::new()),
            cap: cap.max(1),
        }
    }

    /// `id` was deleted from the store: it leaves the cache before the
    /// next report reads it. Call it after `Store::delete` returns.
    pub fn forget(&self, id: &str) {
        self.forgotten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id.to_string());
    }

    /// Refreshes the store's facts (`refresh::refresh`) and brings the
    /// cache to them: the conversations folded are swapped in, deleted
    /// ones taken out; on first use (or when it cannot tell what changed)
    /// every row is read once.
    pub fn sync(&self, store: &dyn Store, now_ms: i64) -> Result<Refreshed, StoreError> {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let done = refresh_into(store, now_ms, &mut *st).and_then(|r| {
            if st.mode == Mode::Reload {
                st.reset();
                Self::reload(&mut st, store)?;
                st.mark = Some(now_ms);
            }
            Ok(r)
        });
        let r = match done {
            Ok(r) => r,
            Err(e) => {
                st.reset();
                return Err(e);
            }
        };
        let gone: HashSet<String> =
            std::mem::take(&mut *self.forgotten.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        st.merge(Vec::new(), &gone, self.cap);
        st.trim(self.cap);
        Ok(r)
    }

    /// Every stored row, parsed (a damaged one folded again).
    fn reload(st: &mut State, store: &dyn Store) -> Result<(), StoreError> {
        let rows = store.facts(i64::MIN, i64::MAX)?;
        let mut facts = Vec::with_capacity(rows.len());
        for r in rows {
            match serde_json::from_slice::<Facts>(&r.data) {
                Ok(f) => facts.push(f),
                Err(_) => facts.extend(refold(store, &r.conversation)?),
            }
        }
        facts.sort_by(order);
        st.facts = facts;
        st.floor_ms = i64::MIN;
        Ok(())
    }

    /// The cached facts started in `[from_ms, to_ms)`, and those up to
    /// `until_ms` for the look-ahead; `None` when the cache does not
    /// cover `from_ms` (not loaded, or older than what it keeps).
    pub(crate) fn window(&self, from_ms: i64, to_ms: i64, until_ms: i64) -> Option<Window<'_>> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if state.mark.is_none() || from_ms < state.floor_ms {
            return None;
        }
        let at = |ms: i64| state.facts.partition_point(|f| f.started_ms < ms);
        let (lo, hi, ahead) = (at(from_ms), at(to_ms.max(from_ms)), at(until_ms.max(to_ms)));
        Some(Window {
            state,
            lo,
            hi: hi.max(lo),
            ahead: ahead.max(hi),
        })
    }

    /// Conversations held now.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .facts
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Reports;
    use crate::conversation::{Event, Visitor};
    use crate::report::refresh::{all_rows, report, report_with};
    use crate::report::{Period, Zone};
    use crate::store::MemStore;

    /// 2026-06-01 10:00 UTC.
    const T: i64 = 1_780_272_000_000 + 36_000_000;
    const MIN: i64 = 60_000;

    fn talk(store: &MemStore, id: &str, at: i64, visitor: Option<&str>, text: &str) {
        if store.read(id, 0).map(|l| l.is_empty()).unwrap_or(true) {
            let v = Visitor {
                id: visitor.map(String::from),
                name: Some(format!("name of {id}")),
                ..Visitor::default()
            };
            store.create(id, at, v).unwrap();
        }
        store
            .append(
                id,
                at + 1_000,
                vec![
                    Event::VisitorMessage {
                        text: text.into(),
                        client_id: format!("{id}-{at}"),
                    },
                    Event::BotReply {
                        text: "answer".into(),
                        intent: Some("greeting".into()),
                        confidence: 1.0,
                        trace: String::new(),
                        quick_replies: vec![],
                        slots: vec![],
                        decision: None,
                    },
                ],
            )
            .unwrap();
    }

    fn week() -> Period {
        Period::new(jiff::civil::date(2026, 6, 1), jiff::civil::date(2026, 6, 7)).unwrap()
    }

    fn day(d: i8) -> Period {
        Period::new(jiff::civil::date(2026, 6, d), jiff::civil::date(2026, 6, d)).unwrap()
    }

    /// The cached report of `period` and the store's own, checked equal.
    fn both(
        store: &MemStore,
        cache: &FactsCache,
        period: &Period,
        now: i64,
    ) -> crate::report::Report {
        let z = Zone::of(None);
        let s = Reports::default();
        let cached = report_with(store, Some(cache), period, &z, s, now).unwrap();
        assert_eq!(cached, report(store, period, &z, s, now).unwrap());
        cached
    }

    fn ids(store: &MemStore, cache: &FactsCache, now: i64) -> Vec<String> {
        all_rows(
            store,
            Some(cache),
            &week(),
            &Zone::of(None),
            Reports::default(),
            now,
        )
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
    }

    #[test]
    fn the_cache_follows_the_store_and_a_deleted_conversation_never_comes_back() {
        let store = MemStore::new();
        // `b`'s visitor comes back the next day (durable looks ahead).
        talk(&store, "a", T, Some("v1"), "hi");
        talk(&store, "b", T + MIN, Some("v2"), "hello");
        talk(&store, "c", T + 2 * MIN, None, "yo");
        talk(&store, "d", T + 86_400_000, Some("v2"), "again");
        let cache = FactsCache::default();
        let mut now = T + 2 * 86_400_000;
        let r = both(&store, &cache, &week(), now);
        assert_eq!(r.cohort.conversations, 4);
        assert_eq!(cache.len(), 4);
        // A day's window: the look-ahead sees `d` past it.
        assert_eq!(both(&store, &cache, &day(1), now).cohort.conversations, 3);

        // Deleted: out of the next report, the CSV's rows and the cache.
        store.delete("b").unwrap();
        cache.forget("b");
        now += MIN;
        assert_eq!(both(&store, &cache, &week(), now).cohort.conversations, 3);
        assert_eq!(ids(&store, &cache, now), ["a", "c", "d"]);
        assert_eq!(cache.len(), 3);

        // New traffic: only `a` is folded again, and `b` stays gone.
        now += MIN;
        talk(&store, "a", now, Some("v1"), "more");
        now += MIN;
        let synced = cache.sync(&store, now).unwrap();
        assert_eq!((synced.folded, synced.rebuilt), (1, false));
        let r = both(&store, &cache, &week(), now + MIN);
        assert_eq!(r.messages.visitor_messages, 4);
        assert_eq!(ids(&store, &cache, now + MIN), ["a", "c", "d"]);

        // Forgotten before the next refresh folds it: still gone.
        talk(&store, "c", now + 2 * MIN, None, "more");
        store.delete("c").unwrap();
        cache.forget("c");
        assert_eq!(ids(&store, &cache, now + 3 * MIN), ["a", "d"]);
    }

    #[test]
    fn the_cache_reloads_when_another_refresh_moved_the_mark_and_rebuilds_on_a_new_fold() {
        let store = MemStore::new();
        talk(&store, "a", T, Some("v1"), "hi");
        let cache = FactsCache::default();
        let now = T + 10 * MIN;
        both(&store, &cache, &week(), now);
        // Another refresh (another process) folds `b`: the cache cannot
        // tell what changed, so it reads every row.
        talk(&store, "b", now + MIN, None, "hello");
        crate::report::refresh(&store, now + 2 * MIN).unwrap();
        assert_eq!(
            both(&store, &cache, &week(), now + 3 * MIN)
                .cohort
                .conversations,
            2
        );
        assert_eq!(cache.len(), 2);
        // A fold of another version: everything rebuilt, cache included.
        store.put_facts_mark(b"v0:0").unwrap();
        assert!(cache.sync(&store, now + 4 * MIN).unwrap().rebuilt);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            both(&store, &cache, &week(), now + 5 * MIN)
                .cohort
                .conversations,
            2
        );
    }

    #[test]
    fn a_full_cache_keeps_the_newest_and_reads_older_windows_from_the_store() {
        let store = MemStore::new();
        for (i, d) in [1, 2, 3, 4].into_iter().enumerate() {
            let at = T + i64::from(d - 1) * 86_400_000;
            talk(&store, &format!("c{i}"), at, Some("v"), "hi");
        }
        let cache = FactsCache::new(2);
        let now = T + 5 * 86_400_000;
        // The week reaches before the cache's floor: read from the store.
        assert_eq!(both(&store, &cache, &week(), now).cohort.conversations, 4);
        assert_eq!(cache.len(), 2);
        assert!(cache.window(T, T + 1, T + 2).is_none());
        // June 3 from 10:00 (c2's start) on is cached, so June 4 is.
        let t4 = T - 36_000_000 + 3 * 86_400_000;
        assert_eq!(
            cache
                .window(t4, t4 + 86_400_000, i64::MAX)
                .map(|w| w.facts().len()),
            Some(1)
        );
        assert!(cache.window(t4 - 86_400_000, t4, i64::MAX).is_none());
        assert_eq!(both(&store, &cache, &day(4), now).cohort.conversations, 1);
        assert_eq!(both(&store, &cache, &day(3), now).cohort.conversations, 1);
        assert_eq!(both(&store, &cache, &day(1), now).cohort.conversations, 1);
    }
}

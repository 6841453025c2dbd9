//! Several nodes on one shared store (issue 20): what this node keeps in
//! memory (folded states, the queue and who holds what, tokens, the live
//! list, the inbox index) follows what the other nodes write, from the
//! store's feed of their changes (`Store::changes`; PostgreSQL's
//! LISTEN/NOTIFY). A store one process owns (sled, memory) has no feed,
//! and none of this runs.
//!
//! A change is a hint: the records are read from the store by seq, after
//! the last one this node has of that conversation, so a lost or merged
//! change costs latency, never data. The store stays the judge of every
//! write: a claim two nodes race is decided by the append's expected seq
//! (`write.rs`), and this node's queue is only brought in line with what
//! was stored. The node that wrote does what follows its write (queue
//! notices to other visitors, webhooks, emails, metrics); the others push
//! the records to their own sockets and mend their own memory.
//!
//! A change can be lost without the feed breaking: a node killed between
//! a write's commit and its notification (PostgreSQL's are sent after the
//! commit, `store::postgres::listen`). So every `SWEEP_EVERY` a node also
//! reads the stored queue, the holds, the agents and the last seq of each
//! conversation in the queue or held, here or in the store, and catches
//! up those that moved past what it keeps or sit elsewhere in its queue:
//! four small queries, and such a write reaches this node's sockets and
//! queue within that interval. What the sweep does not cover, a lost
//! change to a conversation nobody waits for or holds (a rating after the
//! close), is in the store and in reports, not pushed live.
//!
//! One thread per node applies the changes, in commit order, off the
//! async runtime (it reads the store and takes the stripes and the queue
//! in the usual order), and sweeps. It holds the app weakly: it ends with
//! the app.

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::handoff::Waiting;
use crate::store::{Change, StoreError};

/// How often a node sweeps (module doc): the longest a change whose
/// notification was lost takes to reach this node.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

impl App {
    /// Applies `changes` (other nodes' writes), and sweeps every
    /// `SWEEP_EVERY`, on a thread of its own until the feed or the app
    /// ends.
    pub(super) fn follow(&self, changes: Receiver<Change>) {
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("frontdesk-follow".into())
            .spawn(move || {
                let mut sweep_at = Instant::now() + SWEEP_EVERY;
                loop {
                    let got =
                        changes.recv_timeout(sweep_at.saturating_duration_since(Instant::now()));
                    let Some(inner) = weak.upgrade() else { return };
                    let app = App { inner };
                    match got {
                        Ok(change) => app.on_change(change),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    if Instant::now() >= sweep_at {
                        app.sweep();
                        sweep_at = Instant::now() + SWEEP_EVERY;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "no thread to follow other nodes' changes");
        }
    }

    /// One change another node made.
    pub fn on_change(&self, change: Change) {
        match change {
            Change::Appended {
                conversation,
                first,
                last,
            } => {
                if self.catch_up(&conversation, first, last, false, None) {
                    self.inner.hub.queue_changed();
                    self.auto_assign();
                }
            }
            Change::Deleted { conversation } => {
                self.forget_deleted(&conversation);
                self.inner.hub.queue_changed();
            }
            Change::Agents => self.reload_agents(true),
            Change::Typing {
                conversation,
                agent,
            } => self.inner.hub.typing(&conversation, agent),
            // Each socket of such a session checks its token again.
            Change::Sessions => self.inner.tokens_changed.send_modify(|g| *g += 1),
            Change::Resync => self.resync(),
        }
    }

    /// Reads what the store has of `id` past what this node has (past
    /// `first - 1` when this node keeps no state of it), pushes those
    /// records to this node's sockets and the inbox, keeps the state, and
    /// brings the queue in line when the phase moved (or `always`).
    /// `stored`: the stored queue, when the caller read it already.
    /// Whether the queue may have changed.
    fn catch_up(
        &self,
        id: &str,
        first: u64,
        last: u64,
        always: bool,
        stored: Option<&[Waiting]>,
    ) -> bool {
        let g = self.stripe(id);
        let read = match self.inner.states.take(id) {
            Some(c) if c.last_seq >= last && !always => {
                // Seen already (a write of this node's own that raced).
                self.keep(id, c);
                return false;
            }
            Some(c) => self
                .inner
                .store
                .read(id, c.last_seq)
                .map(|records| (c, records)),
            None => self.inner.store.read(id, 0).map(|log| {
                let split = log.partition_point(|r| r.seq < first);
                (Conversation::from_log(&log[..split]), log[split..].to_vec())
            }),
        };
        let (before, records) = match read {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => {
                drop(g);
                self.forget_deleted(id);
                return true;
            }
            Err(e) => {
                // The state is forgotten: the next write reads the log.
                tracing::warn!(conversation = %id, error = %e, "another node's write not read");
                return false;
            }
        };
        let was = before.phase.clone();
        let at_ms = records.last().map_or(before.last_at_ms, |r| r.at_ms);
        let now = if records.is_empty() {
            let phase = before.phase.clone();
            self.keep(id, before);
            phase
        } else {
            self.fan_out(id, before, &records, false)
        };
        if !always && was == now {
            return false;
        }
        let owned;
        let stored = match stored {
            Some(s) => Some(s),
            None if matches!(now, Phase::Queued { .. }) => match self.inner.store.waiting() {
                Ok(w) => {
                    owned = w;
                    Some(owned.as_slice())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the stored queue not read");
                    None
                }
            },
            None => None,
        };
        let find = |s: &[Waiting]| s.iter().find(|w| w.conversation == id).cloned();
        let entry = match stored.and_then(find) {
            // A snapshot older than the log (the sweep's, taken before
            // another node queued it again) lacks the entry: read now.
            None if stored.is_some() && matches!(now, Phase::Queued { .. }) => {
                match self.inner.store.waiting() {
                    Ok(w) => find(&w),
                    Err(e) => {
                        tracing::warn!(error = %e, "the stored queue not read");
                        None
                    }
                }
            }
            entry => entry,
        };
        let changed = self.reconcile(id, &now, entry, at_ms);
        drop(g);
        was != now || changed
    }

    /// Makes the queue say what the log says of `id` (its phase `now`):
    /// waiting (with the stored entry, so every node has one order), held
    /// by one agent, or neither. Idempotent. The caller holds the stripe.
    /// Whether this node's queue changed.
    fn reconcile(&self, id: &str, now: &Phase, entry: Option<Waiting>, at_ms: i64) -> bool {
        let mut q = self.queue();
        let place = |q: &crate::handoff::Queue| {
            let waiting = q.waiting().iter().find(|w| w.conversation == id).cloned();
            let holders: Vec<String> = q
                .agents()
                .filter(|(_, a)| a.active.contains(id))
                .map(|(n, _)| n.clone())
                .collect();
            (waiting, holders)
        };
        let before = place(&q);
        for h in before.1.clone() {
            if !matches!(now, Phase::WithAgent { agent } if *agent == h) {
                q.unhold(&h, id);
            }
        }
        match now {
            Phase::WithAgent { agent } => {
                // An agent this node does not know yet is learnt with the
                // agents' next change, and the hold with the next sweep.
                let _ = q.claim_restored(agent, id);
            }
            Phase::Queued { reason } => match entry {
                Some(w) => {
                    if q.waiting().iter().any(|x| *x != w && x.conversation == id) {
                        q.remove(id);
                    }
                    if q.position(id).is_none() {
                        q.restore(w);
                    }
                }
                None => {
                    q.enqueue(id, *reason, at_ms);
                }
            },
            Phase::Bot | Phase::Closed => {
                q.remove(id);
            }
        }
        place(&q) != before
    }

    /// Another node deleted `id`: it leaves what this node keeps.
    fn forget_deleted(&self, id: &str) {
        let _g = self.stripe(id);
        self.inner.states.forget(id);
        self.inner.inbox.remove(id);
        self.inner.report_cache.forget(id);
        self.touch_live(id, 0, false);
        self.reconcile(id, &Phase::Closed, None, 0);
    }

    /// Tokens, display names and the queue's agents from the stored
    /// agents: one made, disabled, removed or given a new token on
    /// another node counts here too (an old token's sockets close).
    /// Presence is each node's own (the consoles it holds). Consoles are
    /// sent the queue again when this node's agents changed, or `always`.
    pub(super) fn reload_agents(&self, always: bool) {
        let _w = self
            .inner
            .agent_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let agents = match self.inner.store.agents() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "agents not read again");
                return;
            }
        };

        let tokens = tokens_of(&agents);
        let tokens_changed = {
            let mut now = self.inner.tokens.write().unwrap_or_else(|e| e.into_inner());
            let changed = *now != tokens;
            if changed {
                *now = tokens;
            }
            changed
        };
        if tokens_changed {
            self.inner.tokens_changed.send_modify(|g| *g += 1);
        }
        let mut changed = tokens_changed;
        let names: BTreeSet<&String> = agents.iter().map(|(n, _)| n).collect();
        let mut gone = Vec::new();
        {
            let mut q = self.queue();
            for (name, a) in &agents {
                match q.agent(name) {
                    // As at start: nobody is online before a console
                    // says so on this node.
                    None => {
                        q.set_agent(name, unconnected(a), a.capacity);
                        changed = true;
                    }
                    Some(now) if a.disabled && now.presence != Presence::Offline => {
                        let capacity = now.capacity;
                        q.set_agent(name, Presence::Offline, capacity);
                        changed = true;
                    }
                    Some(_) => {}
                }
            }
            let known: Vec<String> = q.agents().map(|(n, _)| n.clone()).collect();
            for name in known {
                if !names.contains(&name) && q.agent(&name).is_some_and(|a| a.active.is_empty()) {
                    q.remove_agent(&name);
                    gone.push(name);
                }
            }
        }
        for (name, a) in &agents {
            self.inner.people.learn(name, a);
        }
        for name in &gone {
            self.inner.people.forget(name);
        }
        if changed || always || !gone.is_empty() {
            self.inner.hub.queue_changed();
        }
    }

    /// After the feed broke: agents, then every conversation the stored
    /// indexes or this node's queue name, read again (records this node
    /// missed are pushed to its sockets), then the queue in line with
    /// them.
    fn resync(&self) {
        self.reload_agents(true);
        // Sessions revoked meanwhile: their sockets check again.
        self.inner.tokens_changed.send_modify(|g| *g += 1);
        let (waiting, held) = match (self.inner.store.waiting(), self.inner.store.held()) {
            (Ok(w), Ok(h)) => (w, h),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "the stored queue not read again");
                return;
            }
        };
        let mut ids: BTreeSet<String> = waiting.iter().map(|w| w.conversation.clone()).collect();
        ids.extend(held.into_iter().map(|(c, _)| c));
        {
            let q = self.queue();
            ids.extend(q.waiting().iter().map(|w| w.conversation.clone()));
            for (_, a) in q.agents() {
                ids.extend(a.active.iter().cloned());
            }
        }
        for id in &ids {
            self.catch_up(id, u64::MAX, u64::MAX, true, Some(&waiting));
        }
        tracing::info!(
            conversations = ids.len(),
            "queue and holdings read again after the feed broke"
        );
        self.inner.hub.queue_changed();
        self.auto_assign();
    }

    /// The periodic sweep (module doc): agents read again if they changed,
    /// the attachments' total recounted at the next upload (other nodes'
    /// uploads count against `max_total_bytes` within a sweep), and each
    /// conversation in the stored or this node's queue or holds
    /// caught up when the store has records past this node's state, or
    /// this node's queue has it elsewhere than the store.
    pub(super) fn sweep(&self) {
        self.reload_agents(false);
        self.recount_storage();
        let (waiting, held) = match (self.inner.store.waiting(), self.inner.store.held()) {
            (Ok(w), Ok(h)) => (w, h),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "the stored queue not swept");
                return;
            }
        };
        let stored_waits: HashMap<&str, &Waiting> = waiting
            .iter()
            .map(|w| (w.conversation.as_str(), w))
            .collect();
        let stored_holds: HashMap<&str, &str> =
            held.iter().map(|(c, a)| (c.as_str(), a.as_str())).collect();
        let (waits, holds) = {
            let q = self.queue();
            let waits: HashMap<String, Waiting> = q
                .waiting()
                .iter()
                .map(|w| (w.conversation.clone(), w.clone()))
                .collect();
            let mut holds = HashMap::new();
            for (name, a) in q.agents() {
                for id in &a.active {
                    holds.insert(id.clone(), name.clone());
                }
            }
            (waits, holds)
        };
        let mut ids: BTreeSet<String> = waits.keys().cloned().collect();
        ids.extend(holds.keys().cloned());
        ids.extend(stored_waits.keys().map(|c| c.to_string()));
        ids.extend(stored_holds.keys().map(|c| c.to_string()));
        if ids.is_empty() {
            return;
        }
        let ids: Vec<String> = ids.into_iter().collect();
        let seqs: HashMap<String, u64> = match self.inner.store.last_seqs(&ids) {
            Ok(s) => s.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the queue's conversations not swept");
                return;
            }
        };
        let mut moved = false;
        for id in &ids {
            let Some(&last) = seqs.get(id) else {
                // Deleted (or never stored): it leaves this node's queue.
                self.forget_deleted(id);
                moved = true;
                continue;
            };
            let behind = self.inner.states.last_seq(id).is_none_or(|s| s < last);
            // Waiting elsewhere here (another place, or not at all), or
            // held by another agent here than in the store.
            let elsewhere = waits.get(id) != stored_waits.get(id.as_str()).copied()
                || holds.get(id).map(String::as_str) != stored_holds.get(id.as_str()).copied();
            if behind || elsewhere {
                moved |= self.catch_up(id, u64::MAX, last, elsewhere, Some(&waiting));
            }
        }
        if moved {
            tracing::debug!("the sweep found changes no notification told");
            self.inner.hub.queue_changed();
            self.auto_assign();
        }
    }
}

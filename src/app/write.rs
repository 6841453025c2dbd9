//! The one write path: a validated input → `conversation::step` (pure) →
//! the queue's part → the store's atomic append (events with their webhook
//! deliveries) → fan-out from the records just stored (sockets, metrics,
//! live list, suggestions, other visitors' queue places). Nothing here
//! reads the log again after the write.

use super::startup;
use super::views::suggest;
use super::*;
use crate::handoff::Waiting;

impl App {
    // ---- the one write path ----------------------------------------------

    pub(super) fn check_text(&self, text: &str) -> Result<(), ApiError> {
        let max = self.inner.config.limits.message_chars;
        if text.trim().is_empty() {
            return Err(ApiError::invalid("empty_message", "the message is empty"));
        }
        if text.chars().count() > max {
            return Err(ApiError::invalid(
                "message_too_long",
                format!("a message is at most {max} characters"),
            ));
        }
        Ok(())
    }

    pub(super) fn apply(&self, id: &str, input: Input) -> Result<Stored, ApiError> {
        let g = self.stripe(id);
        let (appended, before) = self.apply_locked(id, input, self.now_ms())?;
        drop(g);
        self.after_queue_change(id, before);
        Ok(Stored {
            records: appended.records,
            duplicate: appended.duplicate,
        })
    }

    /// The conversation's state: taken from what its last write left (no
    /// copy), or read and folded from its log. The caller holds its
    /// stripe, and gives the state back with `after_write` (or `keep`).
    pub(super) fn state(&self, id: &str) -> Result<Conversation, ApiError> {
        if let Some(c) = self.inner.states.take(id) {
            return Ok(c);
        }
        let log = self.inner.store.read(id, 0)?;
        if log.is_empty() {
            return Err(ApiError::not_found("conversation"));
        }
        Ok(Conversation::from_log(&log))
    }

    /// Gives back a state taken with `state` that no write changed.
    pub(super) fn keep(&self, id: &str, conv: Conversation) {
        self.inner.states.put(id, conv);
    }

    /// After the conversation's stripe is released (telling others takes
    /// their stripes): new places in the queue, and agents' queue views.
    pub(super) fn after_queue_change(&self, id: &str, before: Option<Positions>) {
        if let Some(before) = before {
            self.tell_positions(&before, id);
            self.inner.hub.queue_changed();
            // A visitor started waiting, or an agent has room again.
            self.auto_assign();
        }
    }

    /// Steps the conversation, does the queue's part, stores the events
    /// durably, then tells watchers, agents and webhooks. The caller holds
    /// the conversation's stripe, and passes the queue positions returned
    /// to `after_queue_change` once it has let go of it.
    pub(super) fn apply_locked(
        &self,
        id: &str,
        input: Input,
        now: i64,
    ) -> Result<(Appended, Option<Positions>), ApiError> {
        let conv = self.state(id)?;
        self.apply_to(id, conv, input, now, None)
    }

    /// `apply_locked` on a state the caller took already (`state`), with
    /// the action call made for this input, if any (`app::action`).
    pub(super) fn apply_to(
        &self,
        id: &str,
        conv: Conversation,
        input: Input,
        now: i64,
        called: Option<&crate::action::Called>,
    ) -> Result<(Appended, Option<Positions>), ApiError> {
        match self.try_apply(id, conv, input.clone(), now, called) {
            Err(Refused::Moved) => {
                // Another writer appended since this state was folded:
                // read the log again and decide again, once.
                self.inner.states.forget(id);
                match self.try_apply(id, self.state(id)?, input, now, called) {
                    Err(Refused::Moved) => Err(ApiError::conflict(
                        "busy",
                        "the conversation changed while this was written; try again",
                    )),
                    Err(Refused::Error(e)) => Err(e),
                    Ok(done) => Ok(done),
                }
            }
            Err(Refused::Error(e)) => Err(e),
            Ok(done) => Ok(done),
        }
    }

    /// Events the app itself adds to a conversation outside a step (the
    /// queue's notices when agents' presence changes), written like every
    /// other event: after the log's last record (a write that raced it is
    /// decided again, once), with their webhook deliveries, emails and
    /// index changes in the same atomic append, then the same fan-out
    /// (`after_write`: sockets, the inbox, metrics, the live list). The
    /// caller holds the conversation's stripe.
    pub(super) fn write_events(
        &self,
        id: &str,
        events: Vec<Event>,
        now: i64,
    ) -> Result<Appended, ApiError> {
        for _ in 0..2 {
            let conv = self.state(id)?;
            match self.try_write_events(id, conv, events.clone(), now) {
                Err(Refused::Moved) => self.inner.states.forget(id),
                Err(Refused::Error(e)) => return Err(e),
                Ok(a) => return Ok(a),
            }
        }
        Err(ApiError::conflict(
            "busy",
            "the conversation changed while this was written; try again",
        ))
    }

    /// `write_events` for a notice about the queue (`events`) to `id`,
    /// written only while its log says it is queued and not `told`
    /// already, both read again after a write that raced it. Another node
    /// may have given it to an agent, or told it, since this node's queue
    /// or state said otherwise: such a notice is not written, and the
    /// state read is not kept, so that the other node's records, when
    /// they reach this node (`cluster.rs`), still move its queue (a state
    /// kept past them made them look seen, and the visitor stayed in this
    /// node's queue). The caller holds the conversation's stripe.
    pub(super) fn write_queue_notice(
        &self,
        id: &str,
        events: Vec<Event>,
        now: i64,
        told: impl Fn(&Conversation) -> bool,
    ) -> Result<(), ApiError> {
        for _ in 0..2 {
            let conv = self.state(id)?;
            if !matches!(conv.phase, Phase::Queued { .. }) || told(&conv) {
                return Ok(());
            }
            match self.try_write_events(id, conv, events.clone(), now) {
                Err(Refused::Moved) => self.inner.states.forget(id),
                Err(Refused::Error(e)) => return Err(e),
                Ok(_) => return Ok(()),
            }
        }
        Err(ApiError::conflict(
            "busy",
            "the conversation changed while this was written; try again",
        ))
    }

    /// One attempt of `write_events` on the state `conv`.
    fn try_write_events(
        &self,
        id: &str,
        conv: Conversation,
        events: Vec<Event>,
        now: i64,
    ) -> Result<Appended, Refused> {
        let last_seq = conv.last_seq;
        let mut outbox = match self.webhook_packets(id, last_seq, &events, now) {
            Ok(o) => o,
            Err(Refused::Error(e)) => {
                self.keep(id, conv);
                return Err(Refused::Error(e));
            }
            Err(moved) => return Err(moved),
        };
        let notify_outbox = !outbox.is_empty();
        let mails = self.email_entries(id, &conv, &events);
        let notify_mail = !mails.is_empty();
        outbox.extend(mails);
        let index = startup::index_ops(&conv, &events, now, None);
        let batch = Batch {
            at_ms: now,
            events,
            after_seq: Some(last_seq),
            outbox,
            index,
        };
        let appended = match self.inner.store.append_batch(id, batch) {
            Ok(a) => a,
            Err(crate::store::StoreError::Conflict { .. }) => return Err(Refused::Moved),
            Err(e) => {
                self.keep(id, conv);
                return Err(Refused::Error(e.into()));
            }
        };
        if notify_outbox {
            self.inner.outbox.notify_one();
        }
        if notify_mail {
            self.mail_notify();
        }
        self.after_write(id, conv, &appended.records);
        Ok(appended)
    }

    /// One attempt of `apply_locked` on the state `conv`.
    fn try_apply(
        &self,
        id: &str,
        conv: Conversation,
        input: Input,
        now: i64,
        called: Option<&crate::action::Called>,
    ) -> Result<(Appended, Option<Positions>), Refused> {
        let classifier = self.classifier();
        let rules = crate::conversation::Rules {
            escalation: &self.inner.config.escalation,
            texts: &self.inner.config.texts,
        };
        let actions = crate::conversation::Actions {
            enabled: self.inner.config.actions.enabled(),
            called,
        };
        let mut events =
            crate::conversation::step_with(&conv, input.clone(), &classifier, &rules, actions)?;
        if events.is_empty() {
            self.keep(id, conv);
            let nothing = Appended {
                records: Vec::new(),
                duplicate: false,
            };
            return Ok((nothing, None));
        }
        let mut before = None;
        let mut enqueued = None;
        let mut waited = None;
        // What the queue's part did, step by step, so that a write the
        // store refuses leaves the queue as it was.
        let mut undo: Vec<Undo> = Vec::new();
        let mut handled = None;
        {
            let mut q = self.queue();
            // The queue's rules (capacity, who holds what) are checked
            // before anything is written.
            match &input {
                Input::Claim { agent } => {
                    before = Some(q.positions());
                    let was = q.waiting().iter().find(|w| w.conversation == id).cloned();
                    q.claim(agent, id, conv.phase == Phase::Bot)?;
                    waited = was
                        .as_ref()
                        .map(|w| (now - w.since_ms).max(0) as f64 / 1000.0);
                    undo.push(Undo::Unhold(agent.clone()));
                    undo.extend(was.map(Undo::Requeue));
                }
                Input::Reopen { agent } => {
                    // Like taking over a live bot conversation: the agent
                    // who reopens it holds it (online, with room).
                    before = Some(q.positions());
                    q.claim(agent, id, true)?;
                    undo.push(Undo::Unhold(agent.clone()));
                }
                Input::Transfer { from, to } => {
                    q.transfer(from, to, id)?;
                    undo.push(Undo::Unhold(to.clone()));
                    undo.push(Undo::Hold(from.clone()));
                }
                _ => {}
            }
            for e in &events.clone() {
                match e {
                    Event::Handoff { reason, .. } if *reason != HandoffReason::AgentTookOver => {
                        before.get_or_insert_with(|| q.positions());
                        q.enqueue(id, *reason, now);
                        events.extend(queue_notice(
                            &q,
                            self.inner.config.business_hours.as_ref(),
                            id,
                            now,
                            &self.inner.config.texts,
                            self.email_on(),
                        ));
                        enqueued = q.waiting().iter().find(|w| w.conversation == id).cloned();
                        undo.push(Undo::Dequeue);
                    }
                    Event::Closed { .. } | Event::ReturnedToBot { .. } => {
                        before.get_or_insert_with(|| q.positions());
                        match &conv.phase {
                            Phase::WithAgent { agent } => {
                                q.unhold(agent, id);
                                // Counted once the write is stored.
                                handled = Some(
                                    conv.handoff_at_ms
                                        .map_or(0, |t| ((now - t).max(0) / 1000) as u64),
                                );
                                undo.push(Undo::Hold(agent.clone()));
                            }
                            Phase::Queued { .. } => {
                                undo.extend(q.remove(id).map(Undo::Requeue));
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        let last_seq = conv.last_seq;
        let mut outbox = match self.webhook_packets(id, last_seq, &events, now) {
            Ok(o) => o,
            Err(refused) => {
                undo_all(&mut self.queue(), undo, id);
                return Err(refused);
            }
        };
        let notify_outbox = !outbox.is_empty();
        // Emails (`email.rs`) ride in the same atomic write.
        let mails = self.email_entries(id, &conv, &events);
        let notify_mail = !mails.is_empty();
        outbox.extend(mails);
        let index = startup::index_ops(&conv, &events, now, enqueued.as_ref());
        let batch = Batch {
            at_ms: now,
            events,
            after_seq: Some(last_seq),
            outbox,
            index,
        };
        let undo = |q: &mut Queue| undo_all(q, undo, id);
        let appended = match self.inner.store.append_batch(id, batch) {
            Ok(a) if a.duplicate => {
                // The store holds this message already (the caller's log
                // check missed it only if another writer raced it): nothing
                // was written, so the queue's part is undone too.
                undo(&mut self.queue());
                return Ok((a, None));
            }
            Ok(a) => a,
            Err(e) => {
                // Nothing was stored: undo the queue's part.
                undo(&mut self.queue());
                return Err(match e {
                    crate::store::StoreError::Conflict { .. } => Refused::Moved,
                    e => Refused::Error(e.into()),
                });
            }
        };
        if let Some(secs) = handled {
            self.queue().handled(secs);
        }
        if notify_outbox {
            self.inner.outbox.notify_one();
        }
        if notify_mail {
            self.mail_notify();
        }
        if let Some(w) = waited {
            self.inner.metrics.observe_wait(w);
        }
        self.after_write(id, conv, &appended.records);
        Ok((appended, before))
    }

    /// The webhook deliveries that `events`, about to be appended after
    /// `last_seq`, cause: built before the write so they are stored with
    /// it. Only then is the log read (a delivery carries the transcript).
    pub(super) fn webhook_packets(
        &self,
        id: &str,
        last_seq: u64,
        events: &[Event],
        now: i64,
    ) -> Result<Vec<(String, Vec<u8>)>, Refused> {
        let kind = webhook::kind_of;
        if self.inner.config.webhooks.is_empty() || !events.iter().any(|e| kind(e).is_some()) {
            return Ok(Vec::new());
        }
        let mut full = self
            .inner
            .store
            .read(id, 0)
            .map_err(|e| Refused::Error(e.into()))?;
        if full.last().map_or(0, |r| r.seq) != last_seq {
            return Err(Refused::Moved);
        }
        let first = last_seq + 1;
        full.extend(events.iter().enumerate().map(|(i, e)| Record {
            seq: first + i as u64,
            at_ms: now,
            event: e.clone(),
        }));
        Ok(events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| kind(e).map(|k| (first + i as u64, k)))
            .flat_map(|(seq, k)| webhook::packets(self, id, &full, k, seq))
            .collect())
    }

    /// Fan-out of records just stored, from the records themselves and the
    /// state before them (`conv`): live delivery with agents' suggested
    /// replies (computed here, once per visitor message, whatever the
    /// number of agent sockets), metrics and the live list.
    pub(super) fn after_write(&self, id: &str, conv: Conversation, records: &[Record]) {
        self.fan_out(id, conv, records, true);
    }

    /// `after_write`'s work; `count`: the decisions go into this node's
    /// metrics (not for records another node stored and counted,
    /// `cluster.rs`). The phase after the records.
    pub(super) fn fan_out(
        &self,
        id: &str,
        mut conv: Conversation,
        records: &[Record],
        count: bool,
    ) -> Phase {
        let mut holders: Vec<Option<Arc<str>>> = records
            .iter()
            .map(|r| {
                conv.apply(r);
                match &conv.phase {
                    Phase::WithAgent { agent } => Some(Arc::from(agent.as_str())),
                    _ => None,
                }
            })
            .collect();
        // Whoever holds the conversation once the write is done gets the
        // write's records held by nobody too: an agent taking over (or
        // reopening) stores a hand-off with the joining.
        let after = holders.last().cloned().flatten();
        for h in holders.iter_mut().filter(|h| h.is_none()) {
            h.clone_from(&after);
        }
        // An agent's socket forwards the records of the conversations its
        // agent holds: only then is a suggestion read.
        let suggestions: Vec<Suggestion> = if matches!(conv.phase, Phase::WithAgent { .. }) {
            let classifier = self.classifier();
            records
                .iter()
                .flat_map(|r| suggest(&classifier, &conv, r))
                .collect()
        } else {
            Vec::new()
        };
        self.inner.hub.publish(id, records, &holders, &suggestions);
        self.inner.inbox.record(id, records);
        let phase = conv.phase.clone();
        self.keep(id, conv);
        let inc = |c: Count| {
            if count {
                self.inner.metrics.inc(c)
            }
        };
        let mut bot = None;
        for r in records {
            match &r.event {
                Event::BotReply {
                    intent: Some(_), ..
                } => inc(Count::Decision("answer")),
                Event::Clarification { .. } => inc(Count::Decision("clarify")),
                Event::Fallback { .. } => inc(Count::Decision("fallback")),
                Event::Handoff { reason, .. } => {
                    inc(Count::Handoff(reason.as_str()));
                    bot = Some(false);
                }
                Event::Closed { .. } => {
                    bot = Some(false);
                }
                Event::Started { .. }
                | Event::VisitorMessage { .. }
                | Event::ReturnedToBot { .. } => {
                    bot.get_or_insert(true);
                }
                _ => {}
            }
        }
        if let Some(last) = records.last() {
            match bot {
                Some(true) => self.touch_live(id, last.at_ms, true),
                Some(false) => self.touch_live(id, last.at_ms, false),
                None => {}
            }
        }
        phase
    }

    pub(super) fn touch_live(&self, id: &str, at_ms: i64, live: bool) {
        let mut m = self.inner.live.lock().unwrap_or_else(|e| e.into_inner());
        if live {
            m.insert(id.to_string(), at_ms);
            // Bounded even if no agent ever asks for the list: past the
            // bound, the older half goes (rarely, so amortised O(1)).
            if m.len() > LIVE_MAX {
                m.retain(|_, t| at_ms - *t < LIVE_MS);
                if m.len() > LIVE_MAX / 2 {
                    let mut times: Vec<i64> = m.values().copied().collect();
                    let cut = times.len() - LIVE_MAX / 2;
                    let (_, nth, _) = times.select_nth_unstable(cut);
                    let nth = *nth;
                    m.retain(|_, t| *t > nth);
                }
            }
        } else {
            m.remove(id);
        }
    }

    /// Tells each waiting visitor whose place or estimate changed (but
    /// `except`, whose own events said it already).
    pub(super) fn tell_positions(&self, before: &[(String, u32, Option<u64>)], except: &str) {
        let changes = self.queue().changes(before);
        for (conv, _) in changes {
            if conv == except {
                continue;
            }
            let _g = self.stripe(&conv);
            // Read the place now, under the conversation's stripe: another
            // claim or close may have moved it since the list was made.
            let event = {
                let q = self.queue();
                match q.positions().into_iter().find(|(c, _, _)| *c == conv) {
                    Some((_, position, wait_secs)) => Event::Queued {
                        position,
                        wait_secs,
                    },
                    None => continue,
                }
            };
            if let Err(e) = self.write_queue_notice(&conv, vec![event], self.now_ms(), |_| false) {
                tracing::warn!(conversation = %conv, error = %e, "queue update not stored")
            }
        }
    }
}

/// One step of the queue's part of a write, undone if the store refuses
/// the write.
enum Undo {
    /// The conversation was queued: take it out again.
    Dequeue,
    /// It was taken out of the queue: put it back where it was.
    Requeue(Waiting),
    /// An agent stopped holding it: hold it again.
    Hold(String),
    /// An agent started holding it: stop.
    Unhold(String),
}

/// Undoes the queue's part of a write the store refused, last step first.
fn undo_all(q: &mut Queue, undo: Vec<Undo>, id: &str) {
    for step in undo.into_iter().rev() {
        match step {
            Undo::Dequeue => {
                q.remove(id);
            }
            Undo::Requeue(w) => q.restore(w),
            Undo::Hold(agent) => q.hold(&agent, id),
            Undo::Unhold(agent) => q.unhold(&agent, id),
        }
    }
}

/// Why one attempt at a write stored nothing.
pub(super) enum Refused {
    /// The log moved on since the state was folded: read it and retry.
    Moved,
    Error(ApiError),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        Refused::Error(e)
    }
}

impl From<crate::conversation::StepError> for Refused {
    fn from(e: crate::conversation::StepError) -> Refused {
        Refused::Error(e.into())
    }
}

impl From<crate::handoff::QueueError> for Refused {
    fn from(e: crate::handoff::QueueError) -> Refused {
        Refused::Error(e.into())
    }
}

//! Replay before deploy: every visitor message of a time window decided
//! again by an edited intent set, compared with what the bot did then, and
//! the threshold "what if" over the same traffic.
//!
//! How a message is replayed: the conversation's log is folded up to just
//! before the message (`Conversation::apply`), and the message goes
//! through `conversation::step` exactly as the server would have sent it,
//! with the server's escalation rules and texts. What the bot did with it
//! then is read from the records stored after it (its replies); what it
//! would do now is read from the events `step` returns. Both are reduced
//! to an [`Outcome`] (answered by X, clarified, fell back, slot prompt,
//! offered or handed off with a reason) and compared.
//!
//! What replay cannot know: once one message is decided differently, the
//! visitor's next message would have met another conversation (another
//! pending question, another count of fallbacks in a row), and may not have
//! been sent at all. Each message is replayed against the state its
//! conversation really had, so the predictions are per message; the
//! conversation-level numbers below are computed from them and are an
//! estimate, not a simulation.
//!
//! *Predicted containment*: a conversation of the window counts as
//! contained when at least one of its bot-decided messages is answered
//! and none is handed off, and no person took it over outside the bot's
//! decisions (the visitor's "talk to a person" button, an agent's
//! takeover: replay cannot change those, so such a conversation is never
//! contained, before or after). The same rule is applied to the stored
//! outcomes and to the replayed ones, so the delta is the edit's effect.
//!
//! Messages sent while the conversation was queued or with an agent were
//! not the bot's to decide: they are skipped and counted.
//!
//! This module reads the store through its trait and never writes; it
//! knows nothing of HTTP or of the running app.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::classify::{Classifier, Model};
use crate::conversation::{
    decide, step, Conversation, Decision, EscalationPolicy, Event, HandoffReason, Input, Phase,
    Record, Rules, Turn,
};
use crate::intents::{self, ErrorKind, LoadError, LoadErrors};
use crate::store::{Store, StoreError};

#[cfg(test)]
mod tests;

/// The most conversations one replay reads by default: a window with more
/// is refused with `ReplayError::TooLarge` rather than left to run for
/// minutes (about 1 s per 10,000 conversations without the model).
pub const MAX_CONVERSATIONS: usize = 50_000;

/// The thresholds the what-if curve is drawn at: 0.05 to 0.95.
pub fn threshold_grid() -> Vec<f32> {
    (1..20).map(|i| i as f32 * 0.05).collect()
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "the window holds {found} conversations, more than the {limit} a replay reads: \
         choose a shorter window"
    )]
    TooLarge { found: usize, limit: usize },
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
}

/// What the bot did with one visitor message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Replied with an intent's answer.
    Answer,
    /// Asked "Did you mean …?".
    Clarify,
    /// Asked for a slot value an answer needs.
    SlotPrompt,
    /// Said it did not understand (and did not escalate).
    Fallback,
    /// Offered a person.
    Offer,
    /// Handed off to a person.
    Handoff,
    /// Acknowledged a declined offer of a person.
    Declined,
    /// Said nothing (records written before decisions were stored).
    Silent,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Answer => "answer",
            Kind::Clarify => "clarify",
            Kind::SlotPrompt => "slot_prompt",
            Kind::Fallback => "fallback",
            Kind::Offer => "offer",
            Kind::Handoff => "handoff",
            Kind::Declined => "declined",
            Kind::Silent => "silent",
        }
    }
}

/// What the bot did with a message, reduced to what a change is judged by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub kind: Kind,
    /// The intent answered, prompted for, or recognised in a handoff.
    pub intent: Option<String>,
    /// The intents a clarification offered.
    pub options: Vec<String>,
    /// Why a person was offered or handed the conversation.
    pub reason: Option<HandoffReason>,
    /// The top candidate's score (1 for a turn the visitor's choice
    /// decided, 0 when nothing scored or no decision was stored).
    pub score: f32,
    /// A fallback came first (a fallback that escalated to an offer or a
    /// handoff).
    pub fell_back: bool,
    /// The visitor's choice decided it (an option picked, a slot filled,
    /// an offer answered), not a ranking: no threshold changes it.
    #[serde(skip)]
    pub chosen: bool,
}

impl Outcome {
    /// The same decision (the score may differ: a retrained model scores
    /// differently without deciding differently).
    fn same(&self, other: &Outcome) -> bool {
        self.kind == other.kind
            && self.intent == other.intent
            && self.options == other.options
            && self.reason == other.reason
    }

    /// Short words: `answer order_status (0.82)`, `handoff asked`.
    pub fn describe(&self) -> String {
        let mut s = self.kind.as_str().to_string();
        if self.fell_back && self.kind != Kind::Fallback {
            s = format!("fallback, {s}");
        }
        if let Some(r) = self.reason {
            s.push(' ');
            s.push_str(r.as_str());
        }
        if let Some(i) = &self.intent {
            s.push(' ');
            s.push_str(i);
        }
        if !self.options.is_empty() {
            s.push_str(&format!(" [{}]", self.options.join(", ")));
        }
        format!("{s} ({:.2})", self.score)
    }

    /// The outcome of a message from the bot's events that followed it.
    pub fn of(events: &[&Event]) -> Outcome {
        let mut out = Outcome {
            kind: Kind::Silent,
            intent: None,
            options: Vec::new(),
            reason: None,
            score: 0.0,
            fell_back: false,
            chosen: false,
        };
        let rank = |kind: Kind, turn: Option<&Turn>, out: &mut Outcome| {
            // The most consequential event names the outcome: a handoff
            // over an offer over anything else.
            let weight = |k: Kind| match k {
                Kind::Handoff => 3,
                Kind::Offer => 2,
                Kind::Silent => 0,
                _ => 1,
            };
            if weight(kind) >= weight(out.kind) {
                out.kind = kind;
                if let Some(t) = turn {
                    out.score = t.confidence;
                    out.chosen = t.signals.is_none() && t.candidates.is_empty();
                    if kind != Kind::Offer && kind != Kind::Handoff || t.intent.is_some() {
                        out.intent = t.intent.clone();
                    }
                }
            }
        };
        for e in events {
            let turn = e.decision();
            match e {
                Event::BotReply { .. } => {
                    let declined = turn
                        .is_some_and(|t| t.reason == crate::conversation::Reason::OfferDeclined);
                    let kind = if declined {
                        Kind::Declined
                    } else {
                        Kind::Answer
                    };
                    rank(kind, turn, &mut out);
                }
                Event::Clarification { options, .. } => {
                    rank(Kind::Clarify, turn, &mut out);
                    out.options = options.clone();
                }
                Event::SlotPrompt { intent, .. } => {
                    rank(Kind::SlotPrompt, turn, &mut out);
                    out.intent = Some(intent.clone());
                }
                Event::Fallback { .. } => {
                    out.fell_back = true;
                    rank(Kind::Fallback, turn, &mut out);
                }
                Event::HandoffOffered { reason, .. } => {
                    rank(Kind::Offer, turn, &mut out);
                    out.reason = Some(*reason);
                }
                Event::Handoff { reason, .. } => {
                    rank(Kind::Handoff, turn, &mut out);
                    out.reason = Some(*reason);
                }
                _ => {}
            }
        }
        out
    }
}

/// Whether a stored event is part of the bot's reply to the message before
/// it (as `step` writes it in the same batch): a handoff without a
/// decision is the visitor's button or an agent's takeover, not the bot's.
fn is_bot_reply(e: &Event) -> bool {
    match e {
        Event::BotReply { .. }
        | Event::Clarification { .. }
        | Event::SlotPrompt { .. }
        | Event::Fallback { .. }
        | Event::HandoffOffered { .. } => true,
        Event::Handoff { decision, .. } => decision.is_some(),
        Event::Closed { by } => by == "bot",
        _ => false,
    }
}

/// One message the edit would decide differently.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub conversation: String,
    pub seq: u64,
    pub at_ms: i64,
    pub text: String,
    pub before: Outcome,
    pub after: Outcome,
    /// `fallback_to_answer`, `answer_changed_intent`, … (see `change_of`).
    pub change: String,
}

impl Difference {
    /// In words for an admin: "this handoff would now be answered by X".
    pub fn describe(&self) -> String {
        let (b, a) = (&self.before, &self.after);
        let intent = a.intent.as_deref().unwrap_or("?");
        match self.change.as_str() {
            "handoff_to_answer" | "offer_to_answer" => {
                format!("this handoff would now be answered by {intent}")
            }
            "fallback_to_answer" => format!("this fallback would now be answered by {intent}"),
            "clarify_to_answer" => format!("this question would now be answered by {intent}"),
            "answer_changed_intent" => format!(
                "this answer would change intent: {} → {intent}",
                b.intent.as_deref().unwrap_or("?")
            ),
            _ => format!("{} → {}", b.describe(), a.describe()),
        }
    }
}

/// The name of a change, from the two outcomes' kinds (an escalated
/// fallback counts as the escalation).
pub fn change_of(before: &Outcome, after: &Outcome) -> String {
    let kind = |o: &Outcome| match o.kind {
        Kind::Offer => "offer",
        k => k.as_str(),
    };
    if before.kind == after.kind {
        return match before.kind {
            Kind::Answer | Kind::SlotPrompt if before.intent != after.intent => {
                format!("{}_changed_intent", kind(before))
            }
            Kind::Clarify => "clarify_options_changed".into(),
            Kind::Offer | Kind::Handoff if before.reason != after.reason => {
                format!("{}_reason_changed", kind(before))
            }
            _ => format!("{}_changed", kind(before)),
        };
    }
    format!("{}_to_{}", kind(before), kind(after))
}

/// Counts over one side (stored or replayed) of a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Bot-decided messages by outcome.
    pub answered: usize,
    pub clarified: usize,
    pub slot_prompts: usize,
    /// Messages the bot fell back on (escalated or not).
    pub fallbacks: usize,
    pub offers: usize,
    pub handoffs: usize,
    /// Conversations predicted contained (see the module's doc).
    pub contained: usize,
    /// Conversations with a handoff the bot decided.
    pub handed_off: usize,
    /// `contained / conversations`, 0 for an empty window.
    pub containment: f64,
}

impl Totals {
    fn count(&mut self, o: &Outcome) {
        match o.kind {
            Kind::Answer => self.answered += 1,
            Kind::Clarify => self.clarified += 1,
            Kind::SlotPrompt => self.slot_prompts += 1,
            Kind::Offer => self.offers += 1,
            Kind::Handoff => self.handoffs += 1,
            Kind::Fallback | Kind::Declined | Kind::Silent => {}
        }
        if o.fell_back {
            self.fallbacks += 1;
        }
    }
}

/// How many messages changed this way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `fallback_to_answer`, `answer_changed_intent`, … (see `change_of`).
    pub change: String,
    pub count: usize,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Conversations with an event in the window.
    pub conversations: usize,
    /// Visitor messages of the window the bot decided, each replayed.
    pub messages: usize,
    /// Visitor messages sent while a person held the conversation: not
    /// the bot's to decide, not replayed.
    pub skipped_with_agent: usize,
    /// Messages decided differently.
    pub changed: usize,
    /// Changed messages by kind of change, most frequent first.
    pub changes: Vec<Change>,
    pub before: Totals,
    pub after: Totals,
    /// The differences, in the window's order (at most the `max_differences`
    /// the replay was asked for; `changed` counts them all).
    pub differences: Vec<Difference>,
}

/// What to replay and how much to return.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
    /// A window with more conversations is refused.
    pub max_conversations: usize,
    /// At most this many differences are listed (all are counted).
    pub max_differences: usize,
}

impl Window {
    /// The last `days` days before `now_ms`, with the default limits.
    pub fn last_days(now_ms: i64, days: u32) -> Window {
        Window {
            from_ms: now_ms.saturating_sub(i64::from(days) * 86_400_000),
            to_ms: now_ms.saturating_add(1),
            max_conversations: MAX_CONVERSATIONS,
            max_differences: usize::MAX,
        }
    }
}

/// One visitor message of the window with the state before it and what
/// the bot did then.
struct Message<'a> {
    record: &'a Record,
    text: &'a str,
    client_id: &'a str,
    state: Conversation,
    stored: Outcome,
}

/// A conversation of the window, walked once.
struct Walked<'a> {
    id: String,
    /// The bot-decided messages of the window.
    messages: Vec<Message<'a>>,
    skipped: usize,
    /// A person took it over outside the bot's decisions in the window.
    taken_outside: bool,
}

fn walk<'a>(id: &str, log: &'a [Record], window: &Window) -> Walked<'a> {
    let mut state = Conversation::default();
    let mut out = Walked {
        id: id.to_string(),
        messages: Vec::new(),
        skipped: 0,
        taken_outside: false,
    };
    let inside = |r: &Record| r.at_ms >= window.from_ms && r.at_ms < window.to_ms;
    for (i, r) in log.iter().enumerate() {
        match &r.event {
            Event::VisitorMessage { text, client_id } if inside(r) => {
                if matches!(state.phase, Phase::Queued { .. } | Phase::WithAgent { .. }) {
                    out.skipped += 1;
                } else {
                    let replies: Vec<&Event> = log[i + 1..]
                        .iter()
                        .map(|r| &r.event)
                        .take_while(|e| is_bot_reply(e))
                        .collect();
                    out.messages.push(Message {
                        record: r,
                        text,
                        client_id,
                        state: state.clone(),
                        stored: Outcome::of(&replies),
                    });
                }
            }
            Event::Handoff { decision: None, .. } if inside(r) => out.taken_outside = true,
            _ => {}
        }
        state.apply(r);
    }
    out
}

/// Reads the window's conversations, each log once, in the order of
/// `Store::active` (by last event in the window, then id): the same
/// reading as `active`, which would read every log a second time.
pub fn read_window(
    store: &dyn Store,
    window: &Window,
) -> Result<Vec<(String, Vec<Record>)>, ReplayError> {
    let mut ids: Vec<String> = store
        .minutes(window.from_ms, window.to_ms)?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    ids.sort();
    ids.dedup();
    // The index may name conversations whose events in the window were lost
    // or deleted (it is a hint): the count is checked again below.
    if ids.len() > window.max_conversations {
        let found = ids.len();
        return Err(ReplayError::TooLarge {
            found,
            limit: window.max_conversations,
        });
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let log = match store.read(&id, 0) {
            Ok(log) => log,
            // Deleted since it was indexed: not part of the window any more.
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let last = log
            .iter()
            .filter(|r| r.at_ms >= window.from_ms && r.at_ms < window.to_ms)
            .map(|r| r.at_ms)
            .max();
        if let Some(last) = last {
            out.push((last, id, log));
        }
    }
    out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(out.into_iter().map(|(_, id, log)| (id, log)).collect())
}

/// The outcome `step` gives a message now.
fn replay_one(m: &Message<'_>, classifier: &Classifier, rules: &Rules<'_>) -> Outcome {
    let input = Input::Visitor {
        text: m.text.to_string(),
        client_id: m.client_id.to_string(),
    };
    match step(&m.state, input, classifier, rules) {
        Ok(events) => {
            let replies: Vec<&Event> = events.iter().skip(1).collect();
            Outcome::of(&replies)
        }
        // `step` refuses no visitor message; were it to, nothing is said.
        Err(_) => Outcome::of(&[]),
    }
}

/// Conversation-level counts of one side: `outcomes` are the conversation's
/// bot-decided messages.
fn tally_conversation(t: &mut Totals, outcomes: &[&Outcome], taken_outside: bool) {
    let answered = outcomes.iter().any(|o| o.kind == Kind::Answer);
    let handed = outcomes.iter().any(|o| o.kind == Kind::Handoff);
    if handed {
        t.handed_off += 1;
    }
    if answered && !handed && !taken_outside {
        t.contained += 1;
    }
}

fn share(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// Replays the window against `classifier` (the edited set) with the
/// server's `rules`. Synchronous and CPU-bound: call it on a blocking
/// thread. Deterministic: the same store, window and set give the same
/// report.
pub fn replay(
    store: &dyn Store,
    window: &Window,
    classifier: &Classifier,
    rules: &Rules<'_>,
) -> Result<Report, ReplayError> {
    let logs = read_window(store, window)?;
    let mut report = Report {
        from_ms: window.from_ms,
        to_ms: window.to_ms,
        conversations: logs.len(),
        messages: 0,
        skipped_with_agent: 0,
        changed: 0,
        changes: Vec::new(),
        before: Totals::default(),
        after: Totals::default(),
        differences: Vec::new(),
    };
    let mut changes: BTreeMap<String, usize> = BTreeMap::new();
    for (id, log) in &logs {
        let walked = walk(id, log, window);
        report.skipped_with_agent += walked.skipped;
        let mut afters = Vec::with_capacity(walked.messages.len());
        for m in &walked.messages {
            let after = replay_one(m, classifier, rules);
            report.messages += 1;
            report.before.count(&m.stored);
            report.after.count(&after);
            if !m.stored.same(&after) {
                report.changed += 1;
                let change = change_of(&m.stored, &after);
                *changes.entry(change.clone()).or_default() += 1;
                if report.differences.len() < window.max_differences {
                    report.differences.push(Difference {
                        conversation: walked.id.clone(),
                        seq: m.record.seq,
                        at_ms: m.record.at_ms,
                        text: m.text.to_string(),
                        before: m.stored.clone(),
                        after: after.clone(),
                        change,
                    });
                }
            }
            afters.push(after);
        }
        let before: Vec<&Outcome> = walked.messages.iter().map(|m| &m.stored).collect();
        let after: Vec<&Outcome> = afters.iter().collect();
        tally_conversation(&mut report.before, &before, walked.taken_outside);
        tally_conversation(&mut report.after, &after, walked.taken_outside);
    }
    report.before.containment = share(report.before.contained, report.conversations);
    report.after.containment = share(report.after.contained, report.conversations);
    let mut changes: Vec<Change> = changes
        .into_iter()
        .map(|(change, count)| Change { change, count })
        .collect();
    changes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.change.cmp(&b.change)));
    report.changes = changes;
    Ok(report)
}

/// One point of the what-if curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// The answer threshold every intent is held to.
    pub threshold: f32,
    /// Conversations predicted contained at this threshold.
    pub contained: usize,
    pub containment: f64,
    /// Messages answered at this threshold.
    pub answers: usize,
    /// Of those, answers the bot gave then to the same intent and that
    /// were rated not helpful or followed by a handoff.
    pub bad_answers: usize,
    /// Of those, answers the bot did not give then (so nobody rated them):
    /// their quality is unknown, and `bad_share` does not count them bad.
    pub unjudged_answers: usize,
    /// `bad_answers / answers`: a lower bound where answers are unjudged.
    pub bad_share: f64,
}

/// The what-if curve of the current set over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    pub from_ms: i64,
    pub to_ms: i64,
    pub conversations: usize,
    pub messages: usize,
    /// The set's global answer threshold now (intents may have their own).
    pub current: f32,
    /// Stored answers rated not helpful or followed by a handoff.
    pub bad_answers_stored: usize,
    pub points: Vec<Point>,
}

/// For each stored bot answer (by its seq): whether it was bad, that is
/// rated not helpful, or followed by a handoff before the next answer.
fn bad_answers(log: &[Record]) -> BTreeMap<u64, bool> {
    let mut bad: BTreeMap<u64, bool> = BTreeMap::new();
    let mut last_answer: Option<u64> = None;
    for r in log {
        match &r.event {
            Event::BotReply {
                intent: Some(_), ..
            } => {
                bad.insert(r.seq, false);
                last_answer = Some(r.seq);
            }
            Event::Handoff { .. } => {
                if let Some(a) = last_answer.take() {
                    bad.insert(a, true);
                }
            }
            Event::Feedback { about, helpful } => {
                if let Some(b) = bad.get_mut(about) {
                    // A later choice replaces an earlier one; a handoff
                    // after it still counts.
                    *b = !*helpful;
                }
            }
            _ => {}
        }
    }
    bad
}

/// Containment against the share of bad answers for every threshold of
/// `grid`, over the window's traffic and the current `classifier`.
///
/// Each bot-decided message is ranked once; turns the visitor's choice
/// decided (an option picked, a slot filled, an offer answered) keep their
/// stored outcome; the others are judged by `conversation::decide` with
/// every intent's answer threshold set to the point's (the clarify band
/// and the rest of the policy unchanged, escalation after repeated
/// fallbacks not simulated).
pub fn thresholds(
    store: &dyn Store,
    window: &Window,
    classifier: &Classifier,
    escalation: &EscalationPolicy,
    grid: &[f32],
) -> Result<Curve, ReplayError> {
    let logs = read_window(store, window)?;
    let set = classifier.intents();
    let sets: Vec<intents::IntentSet> = grid
        .iter()
        .map(|&t| {
            let mut s = (**set).clone();
            s.thresholds.answer = t;
            s.thresholds.per_intent.clear();
            for i in &mut s.intents {
                i.threshold = None;
            }
            s
        })
        .collect();
    let mut points: Vec<Point> = grid
        .iter()
        .map(|&t| Point {
            threshold: t,
            contained: 0,
            containment: 0.0,
            answers: 0,
            bad_answers: 0,
            unjudged_answers: 0,
            bad_share: 0.0,
        })
        .collect();
    let mut messages = 0;
    let mut bad_stored = 0;
    for (id, log) in &logs {
        let walked = walk(id, log, window);
        let bad = bad_answers(log);
        bad_stored += bad.values().filter(|b| **b).count();
        // Per point: (answered, handed off) in this conversation.
        let mut conv = vec![(false, false); grid.len()];
        for m in &walked.messages {
            messages += 1;
            // The stored answer's seq: the first BotReply after the message.
            let answer_seq = log
                .iter()
                .skip_while(|r| r.seq <= m.record.seq)
                .take_while(|r| is_bot_reply(&r.event))
                .find(|r| matches!(r.event, Event::BotReply { .. }))
                .map(|r| r.seq);
            let stored_bad = answer_seq.and_then(|s| bad.get(&s)).copied();
            let ranking = (!m.stored.chosen).then(|| classifier.classify(m.text));
            for (k, p) in points.iter_mut().enumerate() {
                let (kind, intent) = match &ranking {
                    None => (m.stored.kind, m.stored.intent.clone()),
                    Some(r) => match decide(r, &sets[k], escalation).0 {
                        Decision::Answer { intent } => (Kind::Answer, Some(intent)),
                        Decision::Clarify { .. } => (Kind::Clarify, None),
                        Decision::Fallback => (Kind::Fallback, None),
                        Decision::Handoff { intent, .. } => (Kind::Handoff, intent),
                    },
                };
                match kind {
                    Kind::Answer => {
                        conv[k].0 = true;
                        p.answers += 1;
                        let same = m.stored.kind == Kind::Answer && m.stored.intent == intent;
                        match stored_bad {
                            Some(b) if same => p.bad_answers += usize::from(b),
                            _ => p.unjudged_answers += 1,
                        }
                    }
                    Kind::Handoff => conv[k].1 = true,
                    _ => {}
                }
            }
        }
        for (k, (answered, handed)) in conv.into_iter().enumerate() {
            if answered && !handed && !walked.taken_outside {
                points[k].contained += 1;
            }
        }
    }
    for p in &mut points {
        p.containment = share(p.contained, logs.len());
        p.bad_share = share(p.bad_answers, p.answers);
    }
    Ok(Curve {
        from_ms: window.from_ms,
        to_ms: window.to_ms,
        conversations: logs.len(),
        messages,
        current: set.thresholds.answer,
        bad_answers_stored: bad_stored,
        points,
    })
}

/// The classifier of an edit that is not saved: the intent files of `dir`
/// with `files` (name → TOML) replaced or added, validated like `frontdesk
/// check` (inline tests included), with errors at `dir/name:line:col`.
/// Nothing is written anywhere.
pub fn edited_classifier(
    dir: &Path,
    files: &BTreeMap<String, String>,
    model: &Model,
) -> Result<Classifier, LoadErrors> {
    edited_set(dir, files, model).map(|(c, _)| c)
}

/// The bytes of every intent file a load of `dir` reads (`*.toml` files
/// directly in it), by name; a file that cannot be read holds its error.
type Sources = BTreeMap<String, Result<Vec<u8>, String>>;

fn read_sources(dir: &Path) -> Result<Sources, std::io::Error> {
    let mut sources = Sources::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                sources.insert(
                    name.to_string(),
                    std::fs::read(&p).map_err(|e| e.to_string()),
                );
            }
        }
    }
    Ok(sources)
}

/// A digest of what a load reads: every file's name and bytes (SHA-256).
/// Two directories with the same digest build the same set, so the
/// running app compares it to skip reloading a set it already serves.
fn digest_of(sources: &Sources) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, bytes) in sources {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        match bytes {
            Ok(b) => {
                h.update([1]);
                h.update((b.len() as u64).to_le_bytes());
                h.update(b);
            }
            Err(e) => {
                h.update([0]);
                h.update(e.as_bytes());
            }
        }
    }
    crate::util::hash::hex(&h.finalize())
}

/// The digest of the intent files of `dir` as they are now (see
/// [`edited_set`]); `None` when the directory cannot be read.
pub fn dir_digest(dir: &Path) -> Option<String> {
    read_sources(dir).ok().map(|s| digest_of(&s))
}

/// [`edited_classifier`], with the digest of the files it was built from
/// (what [`dir_digest`] gives once the edit is written as it is).
pub fn edited_set(
    dir: &Path,
    files: &BTreeMap<String, String>,
    model: &Model,
) -> Result<(Classifier, String), LoadErrors> {
    let err = |path: PathBuf, message: String| LoadError {
        path,
        line: 1,
        col: 1,
        kind: ErrorKind::Io(message),
    };
    let mut sources =
        read_sources(dir).map_err(|e| LoadErrors(vec![err(dir.to_path_buf(), e.to_string())]))?;
    let mut bad = Vec::new();
    for (name, text) in files {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
            && name.ends_with(".toml");
        if plain {
            sources.insert(name.clone(), Ok(text.clone().into_bytes()));
        } else {
            bad.push(err(
                dir.join(name.chars().take(80).collect::<String>()),
                "not an intent file name (a file name in the intents directory ending in .toml)"
                    .into(),
            ));
        }
    }
    if !bad.is_empty() {
        return Err(LoadErrors(bad));
    }
    let digest = digest_of(&sources);
    let sources = sources
        .into_iter()
        .map(|(name, bytes)| (dir.join(name), bytes))
        .collect();
    let set = intents::load_sources(dir, sources)?;
    let classifier = Classifier::new_with(Arc::new(set), model).map_err(|e| {
        LoadErrors(vec![LoadError {
            path: dir.to_path_buf(),
            line: 0,
            col: 0,
            kind: ErrorKind::Model(e.0),
        }])
    })?;
    crate::conversation::decide::passing_tests(classifier).map(|c| (c, digest))
}

//! The state of a conversation, derived from its log and nothing else: fold
//! the records with `apply` and you have it, after a restart as before.

use std::collections::BTreeMap;

use crate::util::normalize::normalize;

use super::decide::HandoffReason;
use super::event::{Event, Record, Visitor};

/// Where a conversation stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    /// The bot answers.
    #[default]
    Bot,
    /// Waiting for an agent; the bot is silent.
    Queued { reason: HandoffReason },
    /// An agent has it; the bot is silent.
    WithAgent { agent: String },
    /// Closed by an agent or the bot; the visitor may rate it, and a new
    /// message starts again with the bot.
    Closed,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Bot => "bot",
            Phase::Queued { .. } => "queued",
            Phase::WithAgent { .. } => "with_agent",
            Phase::Closed => "closed",
        }
    }
}

/// What the bot is waiting for from the visitor's next message.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Pending {
    #[default]
    Nothing,
    /// A slot value for `intent`.
    Slot { intent: String, slot: String },
    /// A pick among "Did you mean …?" options.
    Choice { options: Vec<String> },
    /// A yes or no to "Shall I get a person?".
    HandoffOffer { reason: HandoffReason },
}

/// Everything the rules need, derived from the log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversation {
    pub phase: Phase,
    pub visitor: Visitor,
    pub pending: Pending,
    /// Fallbacks in a row since the last understood message.
    pub fallbacks: u32,
    /// Slot values seen so far: (intent, slot) → value.
    pub slots: BTreeMap<(String, String), String>,
    /// Intents the bot recognised, in order, for the agent's summary.
    pub intents_seen: Vec<String>,
    /// Bot replies so far, to rotate between an intent's answers.
    pub replies: usize,
    /// Client ids of visitor messages already in the log.
    pub client_ids: Vec<String>,
    /// Last sequence number and time.
    pub last_seq: u64,
    pub last_at_ms: i64,
    /// When the current handoff happened, for "time waited".
    pub handoff_at_ms: Option<i64>,
    /// Why the current handoff happened (kept once an agent joins).
    pub handoff_reason: Option<HandoffReason>,
    /// The wait the visitor was last told while queued (`Event::Queued`):
    /// `Some(None)` is none to tell (nobody there, or closed); `None`
    /// before any since the handoff. Several nodes that see the last agent
    /// leave read it to tell the visitor once (`App::write_queue_notice`).
    pub told_wait: Option<Option<u64>>,
    /// A rating was given since the last close.
    pub rated: bool,
    /// Sequence numbers of the bot's answers (`BotReply`): what a visitor's
    /// helpful / not helpful may be about.
    pub bot_replies: Vec<u64>,
    /// The visitor's latest helpful / not helpful per answer (seq → helpful):
    /// the last choice counts, and the same choice again stores nothing.
    pub feedback: BTreeMap<u64, bool>,
    /// The intent of the bot's latest reply, if it answered one (a reply
    /// of no intent, such as acknowledging a declined offer, clears it):
    /// the same question again right after is a sign the answer did not
    /// help (`decide_turn`).
    pub last_answer: Option<String>,
    /// Lookups of a private answer that showed nothing (a wrong second
    /// fact, an unknown order, another customer's order), over the whole
    /// conversation: a close and reopen does not reset it, nor does a
    /// lookup that succeeded (`machine::MAX_FAILED_LOOKUPS`).
    pub failed_lookups: u32,
    /// The visitor's messages (normalised) since the bot's latest reply,
    /// written while the bot had the conversation: what the next answer
    /// replies to. Messages to a person are not kept (they would pile up
    /// through a long chat with an agent and all count as answered).
    pub asking: Vec<String>,
    /// The visitor's messages (normalised) that the latest answer replied
    /// to (a question and, say, the order number asked for after it):
    /// a message that adds no word to these restates the question
    /// (`decide_turn`). Empty when that reply was a lookup that found
    /// nothing or failed: asking again is a retry.
    pub answered: Vec<String>,
}

impl Conversation {
    /// The state after `records`, in order.
    pub fn from_log<'a>(records: impl IntoIterator<Item = &'a Record>) -> Conversation {
        let mut c = Conversation::default();
        for r in records {
            c.apply(r);
        }
        c
    }

    /// Folds one record into the state.
    pub fn apply(&mut self, r: &Record) {
        self.last_seq = r.seq;
        self.last_at_ms = r.at_ms;
        match &r.event {
            Event::Started { visitor } => self.visitor = visitor.clone(),
            Event::VisitorMessage { text, client_id } => {
                self.client_ids.push(client_id.clone());
                if self.phase == Phase::Closed {
                    // A new message after a close starts again with the bot,
                    // which decides it on a clean slate (`machine::fresh`).
                    self.phase = Phase::Bot;
                    self.reopen();
                    self.forget_the_bots_answer();
                }
                // Only what the bot will reply to: a message to a person
                // (queued or with an agent) is not.
                if self.phase == Phase::Bot {
                    self.asking.push(normalize(text));
                }
            }
            Event::BotReply {
                intent,
                slots,
                decision,
                ..
            } => {
                let looked_up = decision.as_ref().and_then(|d| d.action.as_ref());
                let outcome = looked_up.map(|a| a.outcome.as_str());
                if matches!(outcome, Some("fact_mismatch" | "not_found" | "not_owner")) {
                    self.failed_lookups += 1;
                }
                self.bot_replies.push(r.seq);
                self.replies += 1;
                self.fallbacks = 0;
                self.pending = Pending::Nothing;
                self.last_answer = intent.clone();
                self.answered = std::mem::take(&mut self.asking);
                // A lookup that found nothing (or failed) did not answer:
                // asking again retries it, it does not restate it.
                if outcome.is_some_and(|o| o != "ok") {
                    self.answered.clear();
                }
                if let Some(i) = intent {
                    self.intents_seen.push(i.clone());
                    self.remember(i, slots);
                }
            }
            Event::Clarification { options, .. } => {
                self.pending = Pending::Choice {
                    options: options.clone(),
                };
            }
            Event::SlotPrompt {
                intent,
                slot,
                slots,
                ..
            } => {
                self.fallbacks = 0;
                self.intents_seen.push(intent.clone());
                self.remember(intent, slots);
                self.pending = Pending::Slot {
                    intent: intent.clone(),
                    slot: slot.clone(),
                };
            }
            Event::Fallback { .. } => {
                self.fallbacks += 1;
                self.pending = Pending::Nothing;
            }
            Event::HandoffOffered { reason, .. } => {
                self.pending = Pending::HandoffOffer { reason: *reason };
            }
            Event::Handoff { reason, .. } => {
                if self.phase == Phase::Closed {
                    // "Talk to a person" after a close: a new session too.
                    self.reopen();
                }
                self.phase = Phase::Queued { reason: *reason };
                self.pending = Pending::Nothing;
                // What the bot left unanswered is the person's to answer,
                // and after a person the bot's answer is no longer the
                // latest word.
                self.forget_the_bots_answer();
                self.handoff_at_ms = Some(r.at_ms);
                self.handoff_reason = Some(*reason);
                self.told_wait = None;
            }
            Event::Queued { wait_secs, .. } => self.told_wait = Some(*wait_secs),
            Event::AgentJoined { agent } => {
                self.phase = Phase::WithAgent {
                    agent: agent.clone(),
                }
            }
            Event::Transfer { to, .. } => self.phase = Phase::WithAgent { agent: to.clone() },
            Event::AgentMessage { .. } | Event::InternalNote { .. } => {}
            Event::ReturnedToBot { .. } => {
                self.phase = Phase::Bot;
                self.fallbacks = 0;
                self.pending = Pending::Nothing;
                self.handoff_at_ms = None;
                self.handoff_reason = None;
            }
            Event::Closed { .. } => {
                self.phase = Phase::Closed;
                self.pending = Pending::Nothing;
                self.handoff_at_ms = None;
                self.handoff_reason = None;
            }
            Event::Rating { .. } => self.rated = true,
            Event::Feedback { about, helpful } => {
                self.feedback.insert(*about, *helpful);
            }
            Event::EmailLeft { email } => self.visitor.email = Some(email.clone()),
            // A file changes nothing the rules go by.
            Event::Attachment { .. } => {}
            Event::Identified {
                id,
                name,
                email,
                verified,
            } => {
                // A proven identity stays; only another proof replaces it.
                if self.visitor.verified && !verified {
                    return;
                }
                self.visitor.id = Some(id.clone());
                if name.is_some() {
                    self.visitor.name = name.clone();
                }
                if email.is_some() {
                    self.visitor.email = email.clone();
                }
                self.visitor.verified = *verified;
            }
        }
    }

    /// A closed conversation starts a new session: it may be rated again
    /// once closed, and the bot's fallback count starts over.
    fn reopen(&mut self) {
        self.rated = false;
        self.fallbacks = 0;
    }

    /// The bot's latest answer and what it replied to no longer count: the
    /// same question after a person or a close is not "again right after"
    /// (`decide::restated`).
    fn forget_the_bots_answer(&mut self) {
        self.asking.clear();
        self.answered.clear();
        self.last_answer = None;
    }

    fn remember(&mut self, intent: &str, slots: &[(String, String)]) {
        for (k, v) in slots {
            self.slots
                .insert((intent.to_string(), k.clone()), v.clone());
        }
    }

    /// Slot values for `intent` seen so far.
    pub fn slots_of(&self, intent: &str) -> Vec<(String, String)> {
        self.slots
            .iter()
            .filter(|((i, _), _)| i == intent)
            .map(|((_, s), v)| (s.clone(), v.clone()))
            .collect()
    }
}

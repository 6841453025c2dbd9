//! What one conversation contributes to any report, folded from its log:
//! compact, so a report over 100,000 conversations reads 100,000 small
//! rows instead of a million records. Pure: the same log gives the same
//! facts. Times are kept raw (business hours and the window are applied
//! when a report is computed, so a config change needs no rebuild).
//!
//! `FACTS_VERSION` names the fold: change what `fold` computes and bump
//! it, and stored facts are rebuilt (`refresh`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::conversation::{Event, Record};

/// The fold's version; stored facts of another version are rebuilt.
pub const FACTS_VERSION: u32 = 4;

/// Longest first question kept (characters).
pub const QUESTION_CHARS: usize = 120;

/// The bot's reaction to one visitor message it handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub fallback: bool,
    pub clarify: bool,
}

/// One handoff cycle: a `Handoff` while no person had the conversation,
/// until it went back to the bot (`ReturnedToBot`) or was closed. Wait and
/// first response are measured within it, so a join or a reply of a later
/// cycle never answers an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffCycle {
    pub at_ms: i64,
    /// `HandoffReason::as_str`.
    pub reason: String,
    /// The first `AgentJoined` in the cycle.
    pub joined_ms: Option<i64>,
    /// The first `AgentMessage` in the cycle.
    pub replied_ms: Option<i64>,
}

impl HandoffCycle {
    /// An agent took the conversation from the bot: nobody waited, so it
    /// gives no wait or first-response sample (README, "Reports").
    pub fn takeover(&self) -> bool {
        self.reason == "agent_took_over"
    }
}

/// A closed cycle: start → (first handoff) → close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cycle {
    pub start_ms: i64,
    pub handoff_ms: Option<i64>,
    pub close_ms: i64,
}

/// One intent's answers in the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentUse {
    pub intent: String,
    pub answers: u32,
    /// Answers whose latest feedback is helpful / not helpful.
    pub helpful: u32,
    pub not_helpful: u32,
}

/// The latest rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rated {
    pub score: u8,
    pub at_ms: i64,
    pub comment: Option<String>,
}

/// Everything a report needs of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub id: String,
    pub started_ms: i64,
    /// The time of its last record.
    pub last_ms: i64,
    /// `id:<shop id>`, else `email:<email, trimmed, lower case>`, else none
    /// (anonymous).
    pub visitor_key: Option<String>,
    /// Name, else email, else the shop's id, else empty.
    pub visitor: String,
    /// The first visitor message, up to `QUESTION_CHARS` characters.
    pub first_question: String,
    pub visitor_messages: u32,
    /// The first visitor message's turn, when the bot handled it.
    pub first: Option<Turn>,
    /// Later visitor messages the bot handled, and how many of them fell
    /// back / were clarified.
    pub later: u32,
    pub later_fallback: u32,
    pub later_clarify: u32,
    /// Bot-handled failures by `fallback:<reason>` / `clarify:<reason>`.
    pub failures: BTreeMap<String, u32>,
    /// At least one `BotReply` with an intent: an answer. The bot's own
    /// lines (a declined offer's "All right, ask me anything else") answer
    /// nothing and do not make a conversation contained.
    pub answered: bool,
    /// Every handoff cycle, in order (the first names the conversation's
    /// handoff reason).
    pub handoffs: Vec<HandoffCycle>,
    /// Intents answered, first seen first.
    pub intents: Vec<IntentUse>,
    /// Answers (any intent or none) whose latest feedback is helpful / not.
    pub helpful: u32,
    pub not_helpful: u32,
    pub cycles: Vec<Cycle>,
    /// The first `Closed`, and whether an agent (not the bot) closed it:
    /// told by the events, not by the name in `by` (an agent may log in
    /// as `bot`). The bot closes only in the batch of its own answer (an
    /// `end` intent): a `Closed` right after a `BotReply` with an intent,
    /// same time, while no person had the conversation.
    pub first_close_ms: Option<i64>,
    pub first_close_by_agent: bool,
    /// Distinct agents that joined, wrote or were transferred to or from
    /// before the first close (FCR judges the first contact; a later
    /// reopen is judged by `reopened_ms`).
    pub agents: u32,
    /// The first visitor message or handoff after the first close.
    pub reopened_ms: Option<i64>,
    pub rating: Option<Rated>,
}

impl Facts {
    /// Whether a person was involved (a handoff happened).
    pub fn handed_off(&self) -> bool {
        !self.handoffs.is_empty()
    }

    /// The first handoff cycle (its reason is the conversation's).
    pub fn first_handoff(&self) -> Option<&HandoffCycle> {
        self.handoffs.first()
    }

    /// The handoff cycles a visitor waited in (not an agent's takeover):
    /// the wait and first-response samples.
    pub fn waited(&self) -> impl Iterator<Item = &HandoffCycle> {
        self.handoffs.iter().filter(|h| !h.takeover())
    }

    /// `contained`, `handed_off` or `abandoned`.
    pub fn outcome(&self) -> &'static str {
        if self.handed_off() {
            "handed_off"
        } else if self.answered {
            "contained"
        } else {
            "abandoned"
        }
    }

    /// For a contained conversation: `confirmed`, `assumed` or `unhelpful`.
    pub fn containment(&self) -> &'static str {
        if self.not_helpful > 0 {
            "unhelpful"
        } else if self.helpful > 0 {
            "confirmed"
        } else {
            "assumed"
        }
    }
}

/// Folds a conversation's log (in seq order) into its facts.
pub fn fold(id: &str, records: &[Record]) -> Facts {
    let mut f = Facts {
        id: id.to_string(),
        ..Facts::default()
    };
    let (mut name, mut shop_id, mut email) = (None::<String>, None::<String>, None::<String>);
    // A person has the conversation (after a handoff, until it goes back
    // to the bot or is closed).
    let mut person = false;
    // Closed and not yet restarted.
    let mut closed = false;
    let mut cycle_start = 0i64;
    let mut cycle_handoff: Option<i64> = None;
    // The visitor message being answered: (is the first, its turn), for a
    // bot-handled message only.
    let mut current: Option<(bool, Turn)> = None;
    let mut answers: BTreeMap<u64, Option<String>> = BTreeMap::new();
    let mut feedback: BTreeMap<u64, bool> = BTreeMap::new();
    let mut agents: BTreeSet<&str> = BTreeSet::new();

    let finish = |f: &mut Facts, current: &mut Option<(bool, Turn)>| {
        if let Some((first, turn)) = current.take() {
            if first {
                f.first = Some(turn);
            } else {
                f.later += 1;
                f.later_fallback += u32::from(turn.fallback);
                f.later_clarify += u32::from(turn.clarify);
            }
        }
    };
    let reason_of = |e: &Event| {
        e.decision()
            .map_or("unknown", |t| t.reason.as_str())
            .to_string()
    };

    let mut prev: Option<&Record> = None;
    for (i, r) in records.iter().enumerate() {
        if i == 0 {
            f.started_ms = r.at_ms;
            cycle_start = r.at_ms;
        }
        f.last_ms = r.at_ms;
        // A message or a handoff after a close starts a new cycle.
        let restarts = matches!(
            r.event,
            Event::VisitorMessage { .. } | Event::Handoff { .. }
        );
        if closed && restarts {
            closed = false;
            cycle_start = r.at_ms;
            cycle_handoff = None;
            if f.reopened_ms.is_none() {
                f.reopened_ms = Some(r.at_ms);
            }
        }
        match &r.event {
            Event::Started { visitor } => {
                name = visitor.name.clone();
                shop_id = visitor.id.clone();
                email = visitor.email.clone();
            }
            Event::VisitorMessage { text, .. } => {
                finish(&mut f, &mut current);
                f.visitor_messages += 1;
                let first = f.visitor_messages == 1;
                if first {
                    f.first_question = text.chars().take(QUESTION_CHARS).collect();
                }
                if !person {
                    current = Some((first, Turn::default()));
                }
            }
            Event::BotReply { intent, .. } => {
                f.answered |= intent.is_some();
                answers.insert(r.seq, intent.clone());
            }
            Event::Fallback { .. } => {
                if let Some((_, turn)) = current.as_mut() {
                    if !turn.fallback {
                        turn.fallback = true;
                        *f.failures
                            .entry(format!("fallback:{}", reason_of(&r.event)))
                            .or_default() += 1;
                    }
                }
            }
            Event::Clarification { .. } => {
                if let Some((_, turn)) = current.as_mut() {
                    if !turn.clarify {
                        turn.clarify = true;
                        *f.failures
                            .entry(format!("clarify:{}", reason_of(&r.event)))
                            .or_default() += 1;
                    }
                }
            }
            Event::Handoff { reason, .. } => {
                // A person has it already: the same cycle goes on.
                if !person {
                    f.handoffs.push(HandoffCycle {
                        at_ms: r.at_ms,
                        reason: reason.as_str().to_string(),
                        joined_ms: None,
                        replied_ms: None,
                    });
                }
                if cycle_handoff.is_none() {
                    cycle_handoff = Some(r.at_ms);
                }
                person = true;
            }
            Event::AgentJoined { agent } => {
                if f.first_close_ms.is_none() {
                    agents.insert(agent);
                }
                if let Some(h) = f.handoffs.last_mut().filter(|_| person) {
                    h.joined_ms.get_or_insert(r.at_ms);
                }
            }
            Event::AgentMessage { agent, .. } => {
                if f.first_close_ms.is_none() {
                    agents.insert(agent);
                }
                if let Some(h) = f.handoffs.last_mut().filter(|_| person) {
                    h.replied_ms.get_or_insert(r.at_ms);
                }
            }
            Event::Transfer { from, to } if f.first_close_ms.is_none() => {
                agents.insert(from);
                agents.insert(to);
            }
            Event::Transfer { .. } => {}
            Event::ReturnedToBot { .. } => person = false,
            Event::Closed { .. } => {
                if !closed {
                    f.cycles.push(Cycle {
                        start_ms: cycle_start,
                        handoff_ms: cycle_handoff,
                        close_ms: r.at_ms,
                    });
                }
                if f.first_close_ms.is_none() {
                    let by_bot = !person
                        && prev.is_some_and(|p| {
                            p.seq + 1 == r.seq
                                && p.at_ms == r.at_ms
                                && matches!(
                                    &p.event,
                                    Event::BotReply {
                                        intent: Some(_),
                                        ..
                                    }
                                )
                        });
                    f.first_close_ms = Some(r.at_ms);
                    f.first_close_by_agent = !by_bot;
                }
                closed = true;
                person = false;
            }
            Event::Rating { score, comment } => {
                f.rating = Some(Rated {
                    score: *score,
                    at_ms: r.at_ms,
                    comment: comment.clone().filter(|c| !c.trim().is_empty()),
                });
            }
            Event::Feedback { about, helpful } => {
                // Only feedback about an answer counts; the latest wins.
                if answers.contains_key(about) {
                    feedback.insert(*about, *helpful);
                }
            }
            Event::EmailLeft { email: e } => email = Some(e.clone()),
            Event::SlotPrompt { .. }
            | Event::HandoffOffered { .. }
            | Event::Queued { .. }
            | Event::InternalNote { .. } => {}
            // A file is not a message: it counts for no metric (an
            // agent's first *reply* is a written one; a visitor's photo is
            // not a question the bot could answer).
            Event::Attachment { .. } => {}
            // The page identified the visitor after the chat began.
            Event::Identified {
                id,
                name: n,
                email: e,
                ..
            } => {
                shop_id = Some(id.clone());
                if n.is_some() {
                    name = n.clone();
                }
                if e.is_some() {
                    email = e.clone();
                }
            }
        }
        prev = Some(r);
    }
    finish(&mut f, &mut current);
    f.agents = agents.len() as u32;

    for (seq, intent) in &answers {
        // Only an answer of an intent is an answer (the bot's own lines
        // take no helpful / not helpful, though the API accepts their seq).
        let Some(intent) = intent else { continue };
        let verdict = feedback.get(seq).copied();
        f.helpful += u32::from(verdict == Some(true));
        f.not_helpful += u32::from(verdict == Some(false));
        let i = match f.intents.iter().position(|u| &u.intent == intent) {
            Some(i) => i,
            None => {
                f.intents.push(IntentUse {
                    intent: intent.clone(),
                    answers: 0,
                    helpful: 0,
                    not_helpful: 0,
                });
                f.intents.len() - 1
            }
        };
        let u = &mut f.intents[i];
        u.answers += 1;
        u.helpful += u32::from(verdict == Some(true));
        u.not_helpful += u32::from(verdict == Some(false));
    }

    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let (name, shop_id, email) = (nonempty(name), nonempty(shop_id), nonempty(email));
    // Only a conversation with a visitor message is "the visitor came back".
    f.visitor_key = if f.visitor_messages == 0 {
        None
    } else if let Some(id) = &shop_id {
        Some(format!("id:{id}"))
    } else {
        email
            .as_ref()
            .map(|e| format!("email:{}", e.to_lowercase()))
    };
    f.visitor = name.or(email).or(shop_id).unwrap_or_default();
    f
}

//! The rules of a conversation: `step(conversation, input) -> events`, pure
//! and synchronous. The classifier is read, never changed; time comes in as
//! an argument. Callers append the events to the log (and fold them into the
//! state) and do any I/O around it.

use crate::classify::normalize::normalize;
use crate::classify::Classifier;
use crate::intents::{render, Intent};
use crate::trace;

use super::decide::{decide, Decision, EscalationPolicy, HandoffReason};
use super::event::Event;
use super::state::{Conversation, Pending, Phase};
use super::turn::{Reason, Turn, TurnKind};

/// What can happen to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The visitor wrote (or tapped a quick reply, which sends its label).
    Visitor {
        text: String,
        client_id: String,
    },
    /// The visitor pressed "Talk to a person".
    AskForPerson,
    /// An agent claimed the conversation (from the queue, or taking over a
    /// live bot conversation).
    Claim {
        agent: String,
    },
    AgentMessage {
        agent: String,
        text: String,
    },
    Note {
        agent: String,
        text: String,
    },
    Transfer {
        from: String,
        to: String,
    },
    ReturnToBot {
        agent: String,
    },
    Close {
        agent: String,
    },
    Rate {
        score: u8,
        comment: Option<String>,
    },
    /// The visitor leaves an email address for the reply.
    LeaveEmail {
        email: String,
    },
}

/// An input that does not fit the conversation's state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    #[error("the conversation is {phase}, not with agent `{agent}`")]
    NotYourConversation { agent: String, phase: &'static str },
    #[error("the conversation is {0}: nothing to claim")]
    NotClaimable(&'static str),
    #[error("the conversation is {0}: it can only be rated once closed")]
    NotClosed(&'static str),
    #[error("the conversation was rated already")]
    AlreadyRated,
    #[error("a rating is 1 to 5, not {0}")]
    BadScore(u8),
    #[error("the conversation is closed already")]
    AlreadyClosed,
    #[error("the conversation is with the bot: nobody to transfer from")]
    NotWithAgent,
    #[error("{0:?} does not look like an email address")]
    BadEmail(String),
}

/// Words that accept "Shall I get a person?" and words that decline it.
const YES: &[&str] = &[
    "yes",
    "y",
    "yeah",
    "yep",
    "yes please",
    "please",
    "ok",
    "okay",
    "sure",
    "please do",
    "go ahead",
];
const NO: &[&str] = &[
    "no",
    "n",
    "nope",
    "no thanks",
    "no thank you",
    "not now",
    "nah",
];

/// What the bot says when it did not understand.
pub const FALLBACK_TEXT: &str =
    "Sorry, I didn't get that. Could you put it another way, or shall I get a person?";

/// Text of the offer, and of the reply to a decline.
pub const OFFER_TEXT: &str = "I'm not sure I can help with that. Shall I get a person?";
pub const DECLINED_TEXT: &str =
    "All right. Ask me anything else, or tap \"Talk to a person\" at any time.";

/// Applies one input; returns the events to append, in order.
pub fn step(
    conv: &Conversation,
    input: Input,
    classifier: &Classifier,
    policy: &EscalationPolicy,
) -> Result<Vec<Event>, StepError> {
    let phase = conv.phase.as_str();
    match input {
        Input::Visitor { text, client_id } => {
            if conv.client_ids.contains(&client_id) {
                // A retried send: stored once, answered once.
                return Ok(Vec::new());
            }
            let mut events = vec![Event::VisitorMessage {
                text: text.clone(),
                client_id,
            }];
            match conv.phase {
                // The agent has it: the bot stays silent, however the
                // message classifies.
                Phase::Queued { .. } | Phase::WithAgent { .. } => {}
                Phase::Bot => events.extend(bot_turn(conv, &text, classifier, policy)),
                Phase::Closed => {
                    // A new message restarts with the bot, with a clean slate.
                    let fresh = Conversation {
                        visitor: conv.visitor.clone(),
                        replies: conv.replies,
                        ..Conversation::default()
                    };
                    events.extend(bot_turn(&fresh, &text, classifier, policy));
                }
            }
            Ok(events)
        }
        Input::AskForPerson => Ok(match conv.phase {
            // The visitor's button: nothing for the bot to decide.
            Phase::Bot | Phase::Closed => vec![Event::Handoff {
                reason: HandoffReason::Asked,
                decision: None,
            }],
            // Already waiting or with a person: nothing to do.
            _ => Vec::new(),
        }),
        Input::Claim { agent } => match &conv.phase {
            Phase::Queued { .. } => Ok(vec![Event::AgentJoined { agent }]),
            Phase::Bot => Ok(vec![
                Event::Handoff {
                    reason: HandoffReason::AgentTookOver,
                    decision: None,
                },
                Event::AgentJoined { agent },
            ]),
            _ => Err(StepError::NotClaimable(phase)),
        },
        Input::AgentMessage { agent, text } => {
            owned_by(conv, &agent)?;
            Ok(vec![Event::AgentMessage { agent, text }])
        }
        Input::Note { agent, text } => Ok(vec![Event::InternalNote { agent, text }]),
        Input::Transfer { from, to } => match &conv.phase {
            Phase::WithAgent { .. } => {
                owned_by(conv, &from)?;
                Ok(vec![Event::Transfer { from, to }])
            }
            _ => Err(StepError::NotWithAgent),
        },
        Input::ReturnToBot { agent } => {
            owned_by(conv, &agent)?;
            Ok(vec![Event::ReturnedToBot { agent }])
        }
        Input::Close { agent } => match &conv.phase {
            Phase::Closed => Err(StepError::AlreadyClosed),
            // Any agent may close a queued ticket (spam, duplicates); a
            // conversation with an agent only that agent.
            Phase::WithAgent { .. } => {
                owned_by(conv, &agent)?;
                Ok(vec![Event::Closed { by: agent }])
            }
            _ => Ok(vec![Event::Closed { by: agent }]),
        },
        Input::LeaveEmail { email } => {
            let email = email.trim().to_string();
            let plausible = email.len() <= 254
                && email.split_once('@').is_some_and(|(user, host)| {
                    !user.is_empty()
                        && host.contains('.')
                        && !host.starts_with('.')
                        && !host.ends_with('.')
                })
                && !email.chars().any(|c| c.is_whitespace() || c.is_control());
            if !plausible {
                return Err(StepError::BadEmail(email.chars().take(80).collect()));
            }
            Ok(vec![Event::EmailLeft { email }])
        }
        Input::Rate { score, comment } => {
            if conv.phase != Phase::Closed {
                return Err(StepError::NotClosed(phase));
            }
            if conv.rated {
                return Err(StepError::AlreadyRated);
            }
            if !(1..=5).contains(&score) {
                return Err(StepError::BadScore(score));
            }
            Ok(vec![Event::Rating { score, comment }])
        }
    }
}

fn owned_by(conv: &Conversation, agent: &str) -> Result<(), StepError> {
    match &conv.phase {
        Phase::WithAgent { agent: a } if a == agent => Ok(()),
        _ => Err(StepError::NotYourConversation {
            agent: agent.to_string(),
            phase: conv.phase.as_str(),
        }),
    }
}

/// The bot's answer to one message, given what it was waiting for. What to
/// do with a classified message is `decide`'s; this turns the decision into
/// what the bot says, and escalates on the conversation's history.
fn bot_turn(
    conv: &Conversation,
    text: &str,
    classifier: &Classifier,
    policy: &EscalationPolicy,
) -> Vec<Event> {
    let intents = classifier.intents();
    let norm = normalize(text);
    match &conv.pending {
        Pending::HandoffOffer { reason } => {
            if YES.contains(&norm.as_str()) {
                let turn = Turn::chosen(TurnKind::Handoff, None, Reason::OfferAccepted);
                return vec![Event::Handoff {
                    reason: *reason,
                    decision: Some(Box::new(turn)),
                }];
            }
            if NO.contains(&norm.as_str()) {
                // Declined: never loop back into the same offer.
                let turn = Turn::chosen(TurnKind::Answer, None, Reason::OfferDeclined);
                return vec![bot_reply(DECLINED_TEXT.into(), turn, vec![], vec![])];
            }
        }
        Pending::Choice { options } => {
            let picked = options.iter().find(|o| {
                intents
                    .get(o)
                    .is_some_and(|i| normalize(i.label()) == norm || normalize(&i.id) == norm)
            });
            if let Some(id) = picked {
                if let Some(intent) = intents.get(id) {
                    let turn =
                        Turn::chosen(TurnKind::Answer, Some(id.clone()), Reason::PickedOption);
                    return answer(conv, intent, text, &[], turn);
                }
            }
            if NO.contains(&norm.as_str()) || norm == "neither" || norm == "none of these" {
                let turn = Turn::chosen(TurnKind::Handoff, None, Reason::LowConfidence);
                return escalate(HandoffReason::LowConfidence, policy, conv, &turn);
            }
        }
        Pending::Slot { intent, slot } => {
            if let Some(intent) = intents.get(intent) {
                if let Some(s) = intent.slots.iter().find(|s| &s.name == slot) {
                    if let Some(value) = slot_value(&s.pattern, text) {
                        let turn = Turn::chosen(
                            TurnKind::Answer,
                            Some(intent.id.clone()),
                            Reason::SlotFilled,
                        )
                        .with_detail(slot.clone());
                        return answer(conv, intent, text, &[(slot.clone(), value)], turn);
                    }
                }
            }
        }
        Pending::Nothing => {}
    }

    let ranking = classifier.classify(text);
    let (decision, turn) = decide(&ranking, intents, policy);
    match &decision {
        Decision::Answer { intent } => {
            let found = ranking
                .candidates
                .first()
                .map(|c| c.slots.clone())
                .unwrap_or_default();
            match intents.get(intent) {
                Some(i) => answer(conv, i, text, &found, turn),
                None => Vec::new(),
            }
        }
        Decision::Clarify { options } => {
            let labels: Vec<String> = options
                .iter()
                .filter_map(|o| intents.get(o).map(|i| i.label().to_string()))
                .collect();
            let mut quick_replies = labels.clone();
            quick_replies.push("Talk to a person".into());
            vec![Event::Clarification {
                text: format!("Did you mean: \"{}\"?", labels.join("\", or \"")),
                options: options.clone(),
                quick_replies,
                decision: Some(Box::new(turn)),
            }]
        }
        Decision::Fallback => {
            let mut events = vec![Event::Fallback {
                text: FALLBACK_TEXT.into(),
                trace: trace::trace(&turn),
                decision: Some(Box::new(turn.clone())),
            }];
            let fallbacks = conv.fallbacks + 1;
            if policy.max_fallbacks > 0 && fallbacks >= policy.max_fallbacks {
                let turn = turn.with_detail(format!("{fallbacks} times in a row"));
                events.extend(escalate(
                    HandoffReason::RepeatedFallback,
                    policy,
                    conv,
                    &turn,
                ));
            }
            events
        }
        Decision::Handoff { reason, intent } => {
            let mut events = Vec::new();
            if let Some(i) = intent.as_deref().and_then(|i| intents.get(i)) {
                if i.action == crate::intents::Action::Handoff {
                    events.push(bot_reply(pick(conv, i), turn.clone(), vec![], vec![]));
                }
            }
            events.push(Event::Handoff {
                reason: *reason,
                decision: Some(Box::new(turn)),
            });
            events
        }
    }
}

/// Hands off for `reason`, or first offers to when the policy says so. The
/// turn is what led here (a fallback, a declined choice); it is stored as
/// an offer or a handoff for this reason.
fn escalate(
    reason: HandoffReason,
    policy: &EscalationPolicy,
    conv: &Conversation,
    led_here: &Turn,
) -> Vec<Event> {
    let offered = matches!(conv.pending, Pending::HandoffOffer { .. });
    let kind = if policy.offer_first && !offered {
        TurnKind::Offer
    } else {
        TurnKind::Handoff
    };
    let mut turn = led_here.as_kind(kind);
    // A turn that escalates acts on no intent.
    turn.intent = None;
    if let Some(code) = reason.code() {
        turn.reason = code;
    }
    match kind {
        TurnKind::Offer => vec![Event::HandoffOffered {
            reason,
            text: OFFER_TEXT.into(),
            decision: Some(Box::new(turn)),
        }],
        _ => vec![Event::Handoff {
            reason,
            decision: Some(Box::new(turn)),
        }],
    }
}

/// Answers `intent`, or asks for the first slot it still lacks.
fn answer(
    conv: &Conversation,
    intent: &Intent,
    text: &str,
    found: &[(String, String)],
    turn: Turn,
) -> Vec<Event> {
    let mut slots = conv.slots_of(&intent.id);
    for (k, v) in found {
        slots.retain(|(name, _)| name != k);
        slots.push((k.clone(), v.clone()));
    }
    for s in &intent.slots {
        if !slots.iter().any(|(k, _)| k == &s.name) {
            if let Some(v) = slot_value(&s.pattern, text) {
                slots.push((s.name.clone(), v));
            }
        }
    }
    if let Some(missing) = intent
        .slots
        .iter()
        .find(|s| !slots.iter().any(|(k, _)| k == &s.name))
    {
        return vec![Event::SlotPrompt {
            intent: intent.id.clone(),
            slot: missing.name.clone(),
            text: missing.prompt.clone(),
            slots,
            decision: Some(Box::new(turn.as_kind(TurnKind::SlotPrompt))),
        }];
    }
    let template = pick(conv, intent);
    let name = conv.visitor.name.as_deref();
    let reply = render(&template, |k| {
        if k == "name" {
            return Some(name.unwrap_or("there"));
        }
        slots.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    });
    let mut events = vec![bot_reply(reply, turn, intent.quick_replies.clone(), slots)];
    if intent.action == crate::intents::Action::End {
        events.push(Event::Closed { by: "bot".into() });
    }
    events
}

/// The answer variant for this turn: variants rotate by reply count.
fn pick(conv: &Conversation, intent: &Intent) -> String {
    intent
        .answers
        .get(conv.replies % intent.answers.len().max(1))
        .cloned()
        .unwrap_or_default()
}

fn slot_value(pattern: &regex::Regex, text: &str) -> Option<String> {
    let c = pattern.captures(text)?;
    c.get(1)
        .or_else(|| c.get(0))
        .map(|m| m.as_str().to_string())
}

/// A bot reply carrying its decision: intent and confidence come from it,
/// and so does the trace.
fn bot_reply(
    text: String,
    turn: Turn,
    quick_replies: Vec<String>,
    slots: Vec<(String, String)>,
) -> Event {
    Event::BotReply {
        text,
        intent: turn.intent.clone(),
        confidence: turn.confidence,
        trace: trace::trace(&turn),
        quick_replies,
        slots,
        decision: Some(Box::new(turn)),
    }
}

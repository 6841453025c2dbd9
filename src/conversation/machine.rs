//! The rules of a conversation: `step(conversation, input) -> events`, pure
//! and synchronous. The classifier is read, never changed; time comes in as
//! an argument. Callers append the events to the log (and fold them into the
//! state) and do any I/O around it.

use crate::classify::{Classifier, Decision, HandoffReason};
use crate::intents::{render, Intent};
use crate::trace;

use super::event::Event;
use super::state::{Conversation, Pending, Phase};
use super::texts::Texts;
use crate::util::normalize::normalize;

/// When the bot hands a conversation to a person (`[escalation]` in
/// `frontdesk.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    /// Hand off after this many fallbacks in a row (`repeated_fallback`);
    /// 0 never does.
    pub max_fallbacks: u32,
    /// Hand off at once when the frustration detector calls a message upset.
    pub on_negative_sentiment: bool,
    /// Ask "Shall I get a person?" before a handoff the visitor did not ask
    /// for (`repeated_fallback`, `low_confidence`), instead of doing it.
    pub offer_first: bool,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            max_fallbacks: 2,
            on_negative_sentiment: true,
            offer_first: true,
        }
    }
}

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

/// What `step` goes by besides the conversation and the classifier: when to
/// get a person, and the sentences the bot says (`[texts]`).
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub escalation: &'a EscalationPolicy,
    pub texts: &'a Texts,
}

/// Applies one input; returns the events to append, in order.
pub fn step(
    conv: &Conversation,
    input: Input,
    classifier: &Classifier,
    rules: &Rules<'_>,
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
                Phase::Bot => events.extend(bot_turn(conv, &text, classifier, rules)),
                Phase::Closed => {
                    // A new message restarts with the bot, with a clean slate.
                    let fresh = Conversation {
                        visitor: conv.visitor.clone(),
                        replies: conv.replies,
                        ..Conversation::default()
                    };
                    events.extend(bot_turn(&fresh, &text, classifier, rules));
                }
            }
            Ok(events)
        }
        Input::AskForPerson => Ok(match conv.phase {
            Phase::Bot | Phase::Closed => vec![Event::Handoff {
                reason: HandoffReason::Asked,
            }],
            // Already waiting or with a person: nothing to do.
            _ => Vec::new(),
        }),
        Input::Claim { agent } => match &conv.phase {
            Phase::Queued { .. } => Ok(vec![Event::AgentJoined { agent }]),
            Phase::Bot => Ok(vec![
                Event::Handoff {
                    reason: HandoffReason::AgentTookOver,
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

/// The bot's answer to one message, given what it was waiting for.
fn bot_turn(
    conv: &Conversation,
    text: &str,
    classifier: &Classifier,
    rules: &Rules<'_>,
) -> Vec<Event> {
    let (policy, texts) = (rules.escalation, rules.texts);
    let intents = classifier.intents();
    let norm = normalize(text);
    match &conv.pending {
        Pending::HandoffOffer { reason } => {
            if YES.contains(&norm.as_str()) || texts.is_yes(&norm) {
                return vec![Event::Handoff { reason: *reason }];
            }
            if NO.contains(&norm.as_str()) || texts.is_no(&norm) {
                // Declined: never loop back into the same offer.
                return vec![bot_reply(
                    texts.declined(),
                    None,
                    1.0,
                    String::new(),
                    vec![],
                    vec![],
                )];
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
                    return answer(
                        conv,
                        intent,
                        text,
                        &[],
                        1.0,
                        "picked from the options".into(),
                        texts,
                    );
                }
            }
            if NO.contains(&norm.as_str())
                || texts.is_no(&norm)
                || norm == "neither"
                || norm == "none of these"
            {
                return escalate(HandoffReason::LowConfidence, rules, conv);
            }
        }
        Pending::Slot { intent, slot } => {
            if let Some(intent) = intents.get(intent) {
                if let Some(s) = intent.slots.iter().find(|s| &s.name == slot) {
                    if let Some(value) = slot_value(&s.pattern, text) {
                        return answer(
                            conv,
                            intent,
                            text,
                            &[(slot.clone(), value)],
                            1.0,
                            format!("slot `{slot}` filled"),
                            texts,
                        );
                    }
                }
            }
        }
        Pending::Nothing => {}
    }

    let mut outcome = classifier.decide(text);
    if !policy.on_negative_sentiment && outcome.ranking.frustration.negative {
        // Escalation by mood is off: decide on the words alone, through the
        // same path as any other message.
        outcome.ranking.frustration = Default::default();
        let (decision, why) = crate::classify::policy::decide(&outcome.ranking, intents);
        outcome.decision = decision;
        outcome.why = why;
    }
    let why = trace::trace(&outcome);
    let top = outcome.ranking.candidates.first();
    let confidence = top.map_or(0.0, |c| c.score);
    match &outcome.decision {
        Decision::Answer { intent } => {
            let found = top.map(|c| c.slots.clone()).unwrap_or_default();
            match intents.get(intent) {
                Some(i) => answer(conv, i, text, &found, confidence, why, texts),
                None => Vec::new(),
            }
        }
        Decision::Clarify { options } => {
            let labels: Vec<String> = options
                .iter()
                .filter_map(|o| intents.get(o).map(|i| i.label().to_string()))
                .collect();
            let mut quick_replies = labels.clone();
            quick_replies.push(texts.talk_to_person.clone());
            vec![Event::Clarification {
                text: texts.clarify(&labels),
                options: options.clone(),
                quick_replies,
            }]
        }
        Decision::Fallback => {
            let mut events = vec![Event::Fallback {
                text: texts.fallback.clone(),
                trace: why,
            }];
            if policy.max_fallbacks > 0 && conv.fallbacks + 1 >= policy.max_fallbacks {
                events.extend(escalate(HandoffReason::RepeatedFallback, rules, conv));
            }
            events
        }
        Decision::Handoff { reason, intent } => {
            let mut events = Vec::new();
            if let Some(i) = intent.as_deref().and_then(|i| intents.get(i)) {
                if i.action == crate::intents::Action::Handoff {
                    events.push(bot_reply(
                        pick(conv, i),
                        Some(i.id.clone()),
                        confidence,
                        why.clone(),
                        vec![],
                        vec![],
                    ));
                }
            }
            events.push(Event::Handoff { reason: *reason });
            events
        }
    }
}

/// Hands off, or first offers to when the policy says so.
fn escalate(reason: HandoffReason, rules: &Rules<'_>, conv: &Conversation) -> Vec<Event> {
    let offered = matches!(conv.pending, Pending::HandoffOffer { .. });
    if rules.escalation.offer_first && !offered {
        vec![Event::HandoffOffered {
            reason,
            text: rules.texts.offer.clone(),
        }]
    } else {
        vec![Event::Handoff { reason }]
    }
}

/// Answers `intent`, or asks for the first slot it still lacks.
fn answer(
    conv: &Conversation,
    intent: &Intent,
    text: &str,
    found: &[(String, String)],
    confidence: f32,
    why: String,
    texts: &Texts,
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
        }];
    }
    let template = pick(conv, intent);
    let name = conv.visitor.name.as_deref();
    let reply = render(&template, |k| {
        if k == "name" {
            return Some(name.unwrap_or(&texts.no_name));
        }
        slots.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    });
    let mut events = vec![bot_reply(
        reply,
        Some(intent.id.clone()),
        confidence,
        why,
        intent.quick_replies.clone(),
        slots,
    )];
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

fn bot_reply(
    text: String,
    intent: Option<String>,
    confidence: f32,
    trace: String,
    quick_replies: Vec<String>,
    slots: Vec<(String, String)>,
) -> Event {
    Event::BotReply {
        text,
        intent,
        confidence,
        trace,
        quick_replies,
        slots,
    }
}

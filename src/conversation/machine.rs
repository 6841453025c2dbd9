//! The rules of a conversation: `step(conversation, input) -> events`, pure
//! and synchronous. The classifier is read, never changed; time comes in as
//! an argument. Callers append the events to the log (and fold them into the
//! state) and do any I/O around it.

use super::trace;
use crate::action::{respond, Call, Called, Outcome, Plan, Proof, Response};
use crate::classify::Classifier;
use crate::intents::{render, Intent, Slot};
use std::sync::Arc;

use super::decide::{decide_turn, EscalationPolicy, HandoffReason, Move};
use super::event::Event;
use super::identity::verified_visitor;
use super::state::{Conversation, Pending, Phase};
use super::texts::Texts;
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
    /// The visitor says whether the bot's answer at seq `about` helped.
    /// Taken in any phase (a visitor may judge an answer after a person
    /// took over, or after the close); the latest choice per answer counts.
    Feedback {
        about: u64,
        helpful: bool,
    },
    /// A file whose bytes are stored already: the visitor's (`agent:
    /// None`) in any phase but closed, an agent's only while it holds the
    /// conversation (as for its messages).
    Attachment {
        id: String,
        kind: super::AttachmentKind,
        size: u64,
        name: String,
        agent: Option<String>,
    },
    /// An agent reopens a closed conversation and takes it (README,
    /// "Inbox"): recorded as a handoff taken over by that agent.
    Reopen {
        agent: String,
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
    #[error("record {0} of this conversation is not an answer of the bot")]
    NotABotReply(u64),
    #[error("the conversation is closed: send a message to start again, then the file")]
    ClosedForFiles,
    #[error("the conversation is {0}: only a closed one can be reopened")]
    NotReopenable(&'static str),
}

/// What `step` goes by besides the conversation and the classifier: when to
/// get a person, and the sentences the bot says (`[texts]`).
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub escalation: &'a EscalationPolicy,
    pub texts: &'a Texts,
}

/// Applies one input; returns the events to append, in order. Actions
/// are off: an intent with a `[call]` says its plain `answer`.
pub fn step(
    conv: &Conversation,
    input: Input,
    classifier: &Classifier,
    rules: &Rules<'_>,
) -> Result<Vec<Event>, StepError> {
    step_with(conv, input, classifier, rules, Actions::default())
}

/// Actions as a step sees them (README, "Actions"): whether calls are on,
/// and the call the app made for this input (`planned_call`), if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actions<'a> {
    pub enabled: bool,
    pub called: Option<&'a Called>,
}

/// Whether an action may be called for this conversation now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Call it.
    Open,
    /// Ask the visitor for this slot (the second fact) first, and call
    /// only to compare it with the reply.
    NeedFact(String),
    /// Call it, and answer only if the reply's `verified_field` is this
    /// verified visitor's id.
    Owner(String),
    /// Do not call: the action answers verified visitors only, and this
    /// one is not (say its `unverified_answer`).
    SignIn,
    /// Do not call: this conversation has had `MAX_FAILED_LOOKUPS` lookups
    /// that showed nothing, so it may be guessing the second fact or order
    /// numbers. The bot says `lookup_locked` and offers a person.
    Locked,
}

/// Lookups that show nothing (`Conversation::failed_lookups`) after which a
/// conversation looks up no more private answers. Three lets a visitor
/// mistype an email twice; a guesser gets three tries per conversation,
/// and new conversations are limited per address by the server's rate
/// limits (README, "Actions").
pub const MAX_FAILED_LOOKUPS: u32 = 3;

impl Gate {
    /// The proof `action::respond` must see in the reply.
    fn proof(&self) -> Proof<'_> {
        match self {
            Gate::Open | Gate::SignIn | Gate::Locked => Proof::None,
            Gate::NeedFact(_) => Proof::Fact,
            Gate::Owner(id) => Proof::Owner(id),
        }
    }
}

/// The one place that decides whether an action's private answer may be
/// given, and what the visitor must prove first (README, "Actions"):
/// - a visitor the shop verified (`identify()` with a valid hash,
///   `verified_visitor`), for an action with `verified_field`: call, and
///   answer only if the reply's field is their id (no second fact asked);
/// - otherwise an action with `second_fact` asks for it and compares it
///   with the reply;
/// - an action with `verified_field` and no `second_fact` is not called
///   for a visitor who is not verified (`SignIn`);
/// - an action with neither is called as it is;
/// - after `MAX_FAILED_LOOKUPS` lookups that showed nothing, an action
///   with either is not called again in this conversation (`Locked`).
pub fn may_call(conv: &Conversation, call: &Call) -> Gate {
    let private = call.second_fact.is_some() || call.verified_field.is_some();
    if private && conv.failed_lookups >= MAX_FAILED_LOOKUPS {
        return Gate::Locked;
    }
    if let (Some(v), Some(_)) = (verified_visitor(conv), &call.verified_field) {
        return Gate::Owner(v.id.to_string());
    }
    match (&call.second_fact, &call.verified_field) {
        (Some(f), _) => Gate::NeedFact(f.slot.clone()),
        (None, Some(_)) => Gate::SignIn,
        (None, None) => Gate::Open,
    }
}

/// The call `step_with` would need for a visitor's message, decided
/// exactly as the step decides (same conversation, text and classifier):
/// the app makes it (with a deadline, off the executor) and passes the
/// outcome to `step_with`. `None` when the message does not lead to a
/// filled action.
pub fn planned_call(
    conv: &Conversation,
    input: &Input,
    classifier: &Classifier,
    rules: &Rules<'_>,
) -> Option<Plan> {
    let Input::Visitor { text, client_id } = input else {
        return None;
    };
    if conv.client_ids.contains(client_id) {
        return None;
    }
    let fresh_conv;
    let conv = match conv.phase {
        Phase::Bot => conv,
        Phase::Closed => {
            fresh_conv = fresh(conv);
            &fresh_conv
        }
        _ => return None,
    };
    let intents = classifier.intents();
    for (next, _) in decide_turn(conv, text, classifier, rules.escalation, rules.texts) {
        if let Move::Answer { intent, found } = next {
            let i = intents.get(&intent)?;
            let call = i.call.as_ref()?;
            let Filled {
                slots,
                missing,
                gate,
            } = fill_slots(conv, i, text, &found, true);
            if missing.is_none() && !matches!(gate, Some(Gate::SignIn | Gate::Locked)) {
                return Some(Plan {
                    intent,
                    call: Arc::clone(call),
                    slots,
                });
            }
        }
    }
    None
}

/// A closed conversation a new message restarts: the bot with a clean
/// slate. An offer of a person made after the close (a "not helpful" on
/// an earlier answer) still stands.
fn fresh(conv: &Conversation) -> Conversation {
    let pending = match &conv.pending {
        p @ Pending::HandoffOffer { .. } => p.clone(),
        _ => Pending::Nothing,
    };
    Conversation {
        visitor: conv.visitor.clone(),
        replies: conv.replies,
        pending,
        ..Conversation::default()
    }
}

/// `step` with actions (see `Actions`).
pub fn step_with(
    conv: &Conversation,
    input: Input,
    classifier: &Classifier,
    rules: &Rules<'_>,
    actions: Actions<'_>,
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
                Phase::Bot => events.extend(bot_turn(conv, &text, classifier, rules, actions)),
                // A new message restarts with the bot, with a clean slate.
                Phase::Closed => {
                    events.extend(bot_turn(&fresh(conv), &text, classifier, rules, actions))
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
        Input::Feedback { about, helpful } => feedback(conv, about, helpful, rules.texts),
        Input::Attachment {
            id,
            kind,
            size,
            name,
            agent,
        } => {
            match &agent {
                Some(a) => owned_by(conv, a)?,
                None if conv.phase == Phase::Closed => return Err(StepError::ClosedForFiles),
                None => {}
            }
            Ok(vec![Event::Attachment {
                id,
                kind,
                size,
                name,
                agent,
            }])
        }
        // The reopening is on the record as a handoff the agent took over
        // (a new session: the visitor may rate it again at its close).
        Input::Reopen { agent } => match conv.phase {
            Phase::Closed => Ok(vec![
                Event::Handoff {
                    reason: HandoffReason::AgentTookOver,
                    decision: None,
                },
                Event::AgentJoined { agent },
            ]),
            _ => Err(StepError::NotReopenable(phase)),
        },
    }
}

/// The visitor's helpful / not helpful on the answer at seq `about`.
///
/// Every change of mind is stored (the log keeps both; the last counts);
/// the same choice again stores nothing, so a double click or a retried
/// request is harmless. "Not helpful" offers a person while the bot has the
/// conversation or after the close: a `HandoffOffered` with the reason
/// `asked` (accepting it is the visitor asking for a person) and no
/// decision (the bot decided nothing), which the widget shows with its
/// yes / no quick replies. While queued or with an agent a person is
/// there already, so nothing is offered.
fn feedback(
    conv: &Conversation,
    about: u64,
    helpful: bool,
    texts: &Texts,
) -> Result<Vec<Event>, StepError> {
    if !conv.bot_replies.contains(&about) {
        return Err(StepError::NotABotReply(about));
    }
    if conv.feedback.get(&about) == Some(&helpful) {
        return Ok(Vec::new());
    }
    let mut events = vec![Event::Feedback { about, helpful }];
    if !helpful && matches!(conv.phase, Phase::Bot | Phase::Closed) {
        events.push(Event::HandoffOffered {
            reason: HandoffReason::Asked,
            text: texts.not_helpful.clone(),
            decision: None,
        });
    }
    Ok(events)
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

/// The bot's answer to one message: `decide_turn` decides, this says it.
fn bot_turn(
    conv: &Conversation,
    text: &str,
    classifier: &Classifier,
    rules: &Rules<'_>,
    actions: Actions<'_>,
) -> Vec<Event> {
    let texts = rules.texts;
    let intents = classifier.intents();
    let mut events = Vec::new();
    for (next, turn) in decide_turn(conv, text, classifier, rules.escalation, texts) {
        match next {
            Move::Answer { intent, found } => {
                if let Some(i) = intents.get(&intent) {
                    events.extend(answer(conv, i, text, &found, turn, texts, actions));
                }
            }
            Move::Clarify { options } => {
                let labels: Vec<String> = options
                    .iter()
                    .filter_map(|o| intents.get(o).map(|i| i.label().to_string()))
                    .collect();
                let mut quick_replies = labels.clone();
                quick_replies.push(texts.talk_to_person.clone());
                // A vague message gets the menu of topics, not a guess.
                let text = if turn.reason == crate::conversation::Reason::VagueMessage {
                    texts.menu.clone()
                } else {
                    texts.clarify(&labels)
                };
                events.push(Event::Clarification {
                    text,
                    options,
                    quick_replies,
                    decision: Some(Box::new(turn)),
                });
            }
            Move::Fallback => events.push(Event::Fallback {
                text: texts.fallback.clone(),
                trace: trace::trace(&turn),
                decision: Some(Box::new(turn)),
            }),
            Move::Offer { reason } => events.push(Event::HandoffOffered {
                reason,
                // A repeated question says the answer did not help.
                text: if turn.reason == crate::conversation::Reason::RepeatedQuestion {
                    texts.not_helpful.clone()
                } else {
                    texts.offer.clone()
                },
                decision: Some(Box::new(turn)),
            }),
            Move::Declined => {
                events.push(bot_reply(texts.declined(), turn, vec![], vec![]));
            }
            Move::Handoff { reason, intent } => {
                // An intent whose action is handoff says its answer first.
                if let Some(i) = intent.as_deref().and_then(|i| intents.get(i)) {
                    if i.action == crate::intents::Action::Handoff {
                        events.push(bot_reply(pick(conv, i), turn.clone(), vec![], vec![]));
                    }
                }
                events.push(Event::Handoff {
                    reason,
                    decision: Some(Box::new(turn)),
                });
            }
        }
    }
    events
}

/// What `fill_slots` found for an answer.
struct Filled<'i> {
    /// Remembered, found by the decision, matched in the text.
    slots: Vec<(String, String)>,
    /// The first slot the answer still lacks.
    missing: Option<&'i Slot>,
    /// `may_call`'s gate, decided once here, for an intent with a `[call]`
    /// while actions are on.
    gate: Option<Gate>,
}

/// The slots `intent` has for this message (remembered, found by the
/// decision, matched in `text`), the first it still lacks, and the action
/// gate (which may ask for the second fact). The second fact is never
/// taken from memory (nor stored): it must come with this answer.
fn fill_slots<'i>(
    conv: &Conversation,
    intent: &'i Intent,
    text: &str,
    found: &[(String, String)],
    actions_on: bool,
) -> Filled<'i> {
    let declared_fact = intent
        .call
        .as_ref()
        .and_then(|c| c.second_fact.as_ref())
        .map(|f| f.slot.clone());
    let gate = match (&intent.call, actions_on) {
        (Some(call), true) => Some(may_call(conv, call)),
        _ => None,
    };
    let needed_fact = match &gate {
        Some(Gate::NeedFact(slot)) => Some(slot.clone()),
        _ => None,
    };
    let mut slots = conv.slots_of(&intent.id);
    slots.retain(|(k, _)| Some(k) != declared_fact.as_ref());
    for (k, v) in found {
        slots.retain(|(name, _)| name != k);
        slots.push((k.clone(), v.clone()));
    }
    // A slot the answer does without: the second fact when the gate
    // does not ask for it.
    let skip = |s: &Slot| Some(&s.name) == declared_fact.as_ref() && needed_fact.is_none();
    // For an action, a value in this message wins over a remembered one
    // ("and order 654321?" after 123456 asks about 654321).
    let fresh_wins = intent.call.is_some();
    for s in &intent.slots {
        let known = slots.iter().any(|(k, _)| k == &s.name);
        if !skip(s) && (!known || fresh_wins) {
            if let Some(v) = slot_value(&s.pattern, text) {
                if !found.iter().any(|(k, _)| k == &s.name) {
                    slots.retain(|(k, _)| k != &s.name);
                    slots.push((s.name.clone(), v));
                }
            }
        }
    }
    if needed_fact.is_none() {
        slots.retain(|(k, _)| Some(k) != declared_fact.as_ref());
    }
    let missing = intent
        .slots
        .iter()
        .find(|s| !skip(s) && !slots.iter().any(|(k, _)| k == &s.name));
    Filled {
        slots,
        missing,
        gate,
    }
}

/// `slots` without the second fact, as events store them.
fn storable(intent: &Intent, slots: &[(String, String)]) -> Vec<(String, String)> {
    let fact = intent
        .call
        .as_ref()
        .and_then(|c| c.second_fact.as_ref())
        .map(|f| f.slot.as_str());
    slots
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != fact)
        .cloned()
        .collect()
}

/// Answers `intent`, or asks for the first slot it still lacks. An intent
/// with a `[call]` answers from the call's outcome while actions are on.
fn answer(
    conv: &Conversation,
    intent: &Intent,
    text: &str,
    found: &[(String, String)],
    turn: Turn,
    texts: &Texts,
    actions: Actions<'_>,
) -> Vec<Event> {
    let Filled {
        slots,
        missing,
        gate,
    } = fill_slots(conv, intent, text, found, actions.enabled);
    if let Some(missing) = missing {
        return vec![Event::SlotPrompt {
            intent: intent.id.clone(),
            slot: missing.name.clone(),
            text: missing.prompt.clone(),
            slots: storable(intent, &slots),
            decision: Some(Box::new(turn.as_kind(TurnKind::SlotPrompt))),
        }];
    }
    if let (Some(call), Some(gate)) = (&intent.call, gate) {
        if gate == Gate::Locked {
            let mut turn = turn;
            turn.action = Some(not_made(call, "locked"));
            return vec![Event::HandoffOffered {
                reason: HandoffReason::Asked,
                text: texts.lookup_locked.clone(),
                decision: Some(Box::new(turn)),
            }];
        }
        if gate == Gate::SignIn {
            let mut turn = turn;
            turn.action = Some(not_made(call, "unverified"));
            let stored = storable(intent, &slots);
            return vec![bot_reply(
                call.unverified_answer.clone(),
                turn,
                intent.quick_replies.clone(),
                stored,
            )];
        }
        return called(conv, intent, call, slots, &gate, turn, texts, actions);
    }
    let template = pick(conv, intent);
    let name = conv.visitor.name.as_deref();
    let reply = render(&template, |k| {
        if k == "name" {
            return Some(name.unwrap_or(&texts.no_name));
        }
        slots.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    });
    let mut events = vec![bot_reply(reply, turn, intent.quick_replies.clone(), slots)];
    if intent.action == crate::intents::Action::End {
        events.push(Event::Closed { by: "bot".into() });
    }
    events
}

/// The record of a call the gate did not let be made (`outcome`:
/// `locked`, `unverified`).
fn not_made(call: &Call, outcome: &str) -> crate::action::ActionRecord {
    crate::action::ActionRecord {
        name: call.name.clone(),
        outcome: outcome.into(),
        status: None,
        latency_ms: 0,
    }
}

/// The answer from a call's outcome (`action::respond`): the rendered
/// reply, "not found" (also for a wrong second fact), or the configured
/// failure: an answer, or a handoff with the reason `backend_error`.
#[allow(clippy::too_many_arguments)]
fn called(
    conv: &Conversation,
    intent: &Intent,
    call: &Call,
    slots: Vec<(String, String)>,
    gate: &Gate,
    turn: Turn,
    texts: &Texts,
    actions: Actions<'_>,
) -> Vec<Event> {
    let not_called = Called {
        action: call.name.clone(),
        slots: slots.clone(),
        outcome: Outcome::NotCalled,
        latency_ms: 0,
    };
    let made = actions
        .called
        .filter(|c| c.action == call.name && c.slots == slots)
        .unwrap_or(&not_called);
    let (response, record) = respond(call, made, &slots, gate.proof());
    let mut turn = turn;
    turn.action = Some(record);
    let stored = storable(intent, &slots);
    match response {
        Response::Answer(text) => {
            let mut events = vec![bot_reply(text, turn, intent.quick_replies.clone(), stored)];
            if intent.action == crate::intents::Action::End {
                events.push(Event::Closed { by: "bot".into() });
            }
            events
        }
        Response::NotFound(text) => {
            vec![bot_reply(text, turn, intent.quick_replies.clone(), stored)]
        }
        Response::Failed {
            answer,
            handoff,
            failure,
        } => {
            let turn = turn.with_detail(failure);
            let mut events = Vec::new();
            if handoff {
                if let Some(a) = answer {
                    events.push(bot_reply(a, turn.clone(), vec![], stored));
                }
                let mut h = turn.as_kind(TurnKind::Handoff);
                h.reason = Reason::BackendError;
                events.push(Event::Handoff {
                    reason: HandoffReason::BackendError,
                    decision: Some(Box::new(h)),
                });
            } else {
                let text = answer.unwrap_or_else(|| texts.fallback.clone());
                let _ = conv;
                events.push(bot_reply(text, turn, intent.quick_replies.clone(), stored));
            }
            events
        }
    }
}

/// The answer variant for this turn: variants rotate by reply count.
fn pick(conv: &Conversation, intent: &Intent) -> String {
    intent
        .answers
        .get(conv.replies % intent.answers.len().max(1))
        .cloned()
        .unwrap_or_default()
}

/// The value of a slot in `text`: the pattern's first group, or its match.
pub(super) fn slot_value(pattern: &regex::Regex, text: &str) -> Option<String> {
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

//! The one place where the bot decides what to do with a message: answer,
//! ask "Did you mean …?", fall back, or hand off, and why. The classifier
//! ranks; this module judges the ranking against the intent set's
//! thresholds and the escalation settings, and says why as data (`Turn`);
//! `decide_turn` adds what depends on the conversation (the reply to a
//! question the bot asked, escalation after repeated fallbacks, offering a
//! person first). The conversation rules (`machine.rs`) only put its
//! moves in words. Anything that needs a decision outside a conversation (the
//! intents' inline tests, `eval`, `frontdesk chat`, the admin's "try a
//! message") goes through `Decide`, which calls the same `decide`.
//!
//! Two rules keep the bot from guessing where a person would not:
//! - a short, vague message ("help", "jacket": at most `VAGUE_WORDS` words,
//!   no keyword or pattern hit, no example close to it, and a model less
//!   than `VAGUE_CONFIDENT` sure) that the bot
//!   would answer or ask about gets a menu of the main topics (`menu`)
//!   rather than the top intent, however confident the model is: a model
//!   trained on sentences has little to go on with one word, and an answer
//!   to the wrong question costs more than a tap. One that falls back
//!   (the out-of-scope class wins, or nothing scores) still falls back;
//! - the same question again right after the bot answered it (`restated`)
//!   gets "Sorry that didn't help. Shall I get a person?" (the "not
//!   helpful" button's words) instead of the same answer: an offer, never a
//!   handoff the visitor did not ask for; accepting counts as the visitor
//!   asking. A restatement is the same intent with no new slot value that
//!   either adds no word to what the answer replied to (fillers aside, a
//!   typo of an earlier word counts as that word) or says it with
//!   impatience ("again", "already asked", "it's been ages"). A follow-up
//!   that adds a word ("How much is shipping?" then "… to Canada?") is
//!   answered: word for word, a paraphrase looks like a follow-up, and an
//!   answer costs the visitor less than a wrong offer.

use std::path::Path;

use crate::classify::{Classifier, Model, Ranking};
use crate::intents::{self, Action, ErrorKind, IntentSet, LoadError, LoadErrors};
use crate::util::normalize::normalize;
use crate::util::typo::{self, Edit};

use super::machine::slot_value;
use super::state::{Conversation, Pending};
use super::texts::Texts;
use super::turn::{Reason, Thresholds, Turn, TurnKind};

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

/// Why a conversation goes to a person. Stored on the handoff event; the
/// policy produces the first three, the conversation rules the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The visitor asked for a person (the `human_agent` intent or a button).
    Asked,
    /// Another intent whose `action` is `handoff` won.
    IntentAction,
    /// The message reads as upset (see `classify::frustration`).
    NegativeSentiment,
    /// The bot was unsure.
    LowConfidence,
    /// The bot fell back several times in a row.
    RepeatedFallback,
    /// An agent picked up a live bot conversation.
    AgentTookOver,
    /// An action's call to the shop's backend failed (a timeout, an error
    /// status, a malformed reply) and the action hands off on error; the
    /// failure is on the decision (`Turn::action`, `detail`).
    BackendError,
}

impl HandoffReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffReason::Asked => "asked",
            HandoffReason::IntentAction => "intent_action",
            HandoffReason::NegativeSentiment => "negative_sentiment",
            HandoffReason::LowConfidence => "low_confidence",
            HandoffReason::RepeatedFallback => "repeated_fallback",
            HandoffReason::AgentTookOver => "agent_took_over",
            HandoffReason::BackendError => "backend_error",
        }
    }

    /// The decision's reason code for a handoff (or an offer) for this
    /// reason; none for an agent's takeover, which the bot does not decide.
    pub fn code(self) -> Option<Reason> {
        Some(match self {
            HandoffReason::Asked => Reason::Asked,
            HandoffReason::IntentAction => Reason::IntentAction,
            HandoffReason::NegativeSentiment => Reason::NegativeSentiment,
            HandoffReason::LowConfidence => Reason::LowConfidence,
            HandoffReason::RepeatedFallback => Reason::RepeatedFallback,
            HandoffReason::AgentTookOver => return None,
            HandoffReason::BackendError => Reason::BackendError,
        })
    }
}

/// The intent id whose handoff counts as the visitor asking for a person.
pub const HUMAN_AGENT_INTENT: &str = "human_agent";

/// Intent ids that are small talk, not topics: never on the menu, and
/// saying them twice is no sign that an answer failed.
pub const SMALL_TALK: &[&str] = &["greeting", "thanks", "goodbye", "bot_identity"];

/// A message of at most this many words can be vague.
pub const VAGUE_WORDS: usize = 3;

/// A short message whose closest example (word cosine) is at least this
/// close is clear ("thank you", "refund status"): it is answered.
pub const VAGUE_SIMILARITY: f32 = 0.75;

/// A short message the model is this sure of ("hellooo" as a greeting,
/// "appreciate it, thanks") is answered: only a guess becomes a menu
/// ("help" was `thanks` at 0.65).
pub const VAGUE_CONFIDENT: f32 = 0.8;

/// How many topics the menu for a vague message offers.
pub const MENU_SIZE: usize = 4;

/// The main topics of a set, for the menu a vague message gets. The admin
/// chooses them with `menu = 1`, `menu = 2`, … in intent files (places
/// first, ties by id, at most `MENU_SIZE`). A set that names none gets
/// the intents that answer (not small talk, not handoffs, not endings)
/// with the most examples, ties by id: the examples an admin wrote are
/// where the shop's questions are.
pub fn menu(intents: &IntentSet) -> Vec<String> {
    let mut chosen: Vec<&intents::Intent> = intents
        .intents
        .iter()
        .filter(|i| i.menu.is_some())
        .collect();
    if !chosen.is_empty() {
        chosen.sort_by(|a, b| a.menu.cmp(&b.menu).then_with(|| a.id.cmp(&b.id)));
        return chosen
            .into_iter()
            .take(MENU_SIZE)
            .map(|i| i.id.clone())
            .collect();
    }
    let mut topics: Vec<&intents::Intent> = intents
        .intents
        .iter()
        .filter(|i| i.action == Action::Answer && !SMALL_TALK.contains(&i.id.as_str()))
        .collect();
    topics.sort_by(|a, b| {
        b.examples
            .len()
            .cmp(&a.examples.len())
            .then_with(|| a.id.cmp(&b.id))
    });
    topics
        .into_iter()
        .take(MENU_SIZE)
        .map(|i| i.id.clone())
        .collect()
}

/// Whether a message is too short and vague to guess its intent from: few
/// words, no rule hit, and no example of the top intent close to it.
fn vague(ranking: &Ranking, top: &crate::classify::Candidate) -> bool {
    let words = ranking
        .normalized
        .split(' ')
        .filter(|w| !w.is_empty())
        .count();
    if words == 0 || words > VAGUE_WORDS || top.rule > 0.0 || top.score >= VAGUE_CONFIDENT {
        return false;
    }
    let closest = top
        .evidence
        .iter()
        .map(|e| match e {
            crate::classify::Evidence::Example { similarity, .. } => *similarity,
            _ => 0.0,
        })
        .fold(0.0f32, f32::max);
    closest < VAGUE_SIMILARITY
}

/// What the bot does with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Reply with this intent's answer.
    Answer { intent: String },
    /// Ask "Did you mean …?" with these intents as quick replies.
    Clarify { options: Vec<String> },
    /// Say the bot did not understand.
    Fallback,
    /// Get a person; `intent` is the top intent when one was recognised.
    Handoff {
        reason: HandoffReason,
        intent: Option<String>,
    },
}

impl Decision {
    /// `answer`, `clarify`, `fallback` or `handoff`.
    pub fn kind(&self) -> &'static str {
        self.turn_kind().as_str()
    }

    fn turn_kind(&self) -> TurnKind {
        match self {
            Decision::Answer { .. } => TurnKind::Answer,
            Decision::Clarify { .. } => TurnKind::Clarify,
            Decision::Fallback => TurnKind::Fallback,
            Decision::Handoff { .. } => TurnKind::Handoff,
        }
    }
}

/// Judges a ranking: the decision, and why as data. Thresholds come from
/// the intent set (measured by `frontdesk calibrate`, or defaults), the
/// sentiment rule from `escalation`, so the policy has no numbers of its
/// own to tune.
pub fn decide(
    ranking: &Ranking,
    intents: &IntentSet,
    escalation: &EscalationPolicy,
) -> (Decision, Turn) {
    let (decision, reason, thresholds) = judge(ranking, intents, escalation);
    let turn = Turn::ranked(ranking, decision.turn_kind(), reason);
    let turn = shaped(turn, &decision, thresholds);
    (decision, turn)
}

/// The turn's fields that come from the decision, not the ranking.
fn shaped(mut turn: Turn, decision: &Decision, thresholds: Option<Thresholds>) -> Turn {
    turn.thresholds = thresholds;
    turn.intent = match decision {
        Decision::Answer { intent } => Some(intent.clone()),
        Decision::Handoff { intent, .. } => intent.clone(),
        Decision::Clarify { .. } | Decision::Fallback => None,
    };
    if let Decision::Clarify { options } = decision {
        turn.options = options.clone();
    }
    turn
}

/// The policy proper: the first rule that applies, in order.
fn judge(
    ranking: &Ranking,
    intents: &IntentSet,
    escalation: &EscalationPolicy,
) -> (Decision, Reason, Option<Thresholds>) {
    let top = ranking.candidates.first();
    // Escalation by mood, when on, wins over everything; off, the words
    // alone decide.
    if escalation.on_negative_sentiment && ranking.frustration.negative {
        let handoff = Decision::Handoff {
            reason: HandoffReason::NegativeSentiment,
            intent: top.map(|c| c.intent.clone()),
        };
        return (handoff, Reason::NegativeSentiment, None);
    }
    let t = &intents.thresholds;
    let Some(top) = top else {
        return (Decision::Fallback, Reason::NoCandidates, None);
    };
    if ranking.out_of_scope > top.score {
        return (Decision::Fallback, Reason::OutOfScope, None);
    }
    let Some(intent) = intents.get(&top.intent) else {
        return (Decision::Fallback, Reason::UnknownIntent, None);
    };
    let answer_at = intents.answer_threshold(intent);
    let applied = Some(Thresholds {
        answer: answer_at,
        clarify: t.clarify,
        clarify_coverage: t.clarify_coverage,
        margin: t.margin,
    });
    // Where the bot would guess (answer, or ask about the top intent), a
    // vague message gets the menu instead; what falls back still does (a
    // short off-topic word is no topic of the shop). A request for a
    // person is never vague: "human please" hands off.
    let guess = top.score >= answer_at
        || (top.score >= t.clarify && ranking.coverage >= t.clarify_coverage);
    if guess && intent.action != Action::Handoff && vague(ranking, top) {
        let options = menu(intents);
        if options.len() >= 2 {
            return (Decision::Clarify { options }, Reason::VagueMessage, applied);
        }
    }
    if top.score >= answer_at {
        return match intent.action {
            Action::Handoff => {
                let (reason, code) = if intent.id == HUMAN_AGENT_INTENT {
                    (HandoffReason::Asked, Reason::Asked)
                } else {
                    (HandoffReason::IntentAction, Reason::IntentAction)
                };
                let handoff = Decision::Handoff {
                    reason,
                    intent: Some(top.intent.clone()),
                };
                (handoff, code, applied)
            }
            Action::Answer | Action::End => {
                let answer = Decision::Answer {
                    intent: top.intent.clone(),
                };
                (answer, Reason::AboveAnswerThreshold, applied)
            }
        };
    }
    if top.score >= t.clarify && ranking.coverage < t.clarify_coverage {
        return (Decision::Fallback, Reason::LowCoverage, applied);
    }
    if top.score >= t.clarify {
        let mut options = vec![top.intent.clone()];
        if let Some(second) = ranking.candidates.get(1) {
            if second.score >= t.clarify && top.score - second.score <= t.margin {
                options.push(second.intent.clone());
            }
        }
        return (
            Decision::Clarify { options },
            Reason::InClarifyBand,
            applied,
        );
    }
    (Decision::Fallback, Reason::BelowClarifyThreshold, applied)
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

/// One thing the bot does in a conversation turn; the rules
/// (`machine.rs`) put it in words.
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// Answer `intent` with the slot values `found` in the message (or ask
    /// for a slot it still lacks).
    Answer {
        intent: String,
        found: Vec<(String, String)>,
    },
    /// Ask "Did you mean …?".
    Clarify { options: Vec<String> },
    /// Say the bot did not understand.
    Fallback,
    /// Ask "Shall I get a person?".
    Offer { reason: HandoffReason },
    /// Acknowledge a declined offer, and stay.
    Declined,
    /// Hand off; `intent` is the one recognised, if any.
    Handoff {
        reason: HandoffReason,
        intent: Option<String>,
    },
}

/// The bot's moves on one visitor message, in order, each with the decision
/// behind it: first what the bot was waiting for (a yes or no to an offer,
/// a pick among options, a slot value), else `decide` on the message, then
/// escalation on the conversation's history (too many fallbacks in a row,
/// offer first or hand off at once).
pub fn decide_turn(
    conv: &Conversation,
    text: &str,
    classifier: &Classifier,
    escalation: &EscalationPolicy,
    texts: &Texts,
) -> Vec<(Move, Turn)> {
    let intents = classifier.intents();
    let norm = normalize(text);
    match &conv.pending {
        Pending::HandoffOffer { reason } => {
            if YES.contains(&norm.as_str()) || texts.is_yes(&norm) {
                let turn = Turn::chosen(TurnKind::Handoff, None, Reason::OfferAccepted);
                let handoff = Move::Handoff {
                    reason: *reason,
                    intent: None,
                };
                return vec![(handoff, turn)];
            }
            if NO.contains(&norm.as_str()) || texts.is_no(&norm) {
                // Declined: never loop back into the same offer.
                let turn = Turn::chosen(TurnKind::Answer, None, Reason::OfferDeclined);
                return vec![(Move::Declined, turn)];
            }
        }
        Pending::Choice { options } => {
            let picked = options.iter().find(|o| {
                intents
                    .get(o)
                    .is_some_and(|i| normalize(i.label()) == norm || normalize(&i.id) == norm)
            });
            if let Some(id) = picked {
                let turn = Turn::chosen(TurnKind::Answer, Some(id.clone()), Reason::PickedOption);
                let answer = Move::Answer {
                    intent: id.clone(),
                    found: Vec::new(),
                };
                return vec![(answer, turn)];
            }
            if NO.contains(&norm.as_str())
                || texts.is_no(&norm)
                || norm == "neither"
                || norm == "none of these"
            {
                let turn = Turn::chosen(TurnKind::Handoff, None, Reason::LowConfidence);
                return vec![escalate(
                    HandoffReason::LowConfidence,
                    escalation,
                    conv,
                    &turn,
                )];
            }
        }
        Pending::Slot { intent, slot } => {
            let filled = intents.get(intent).and_then(|i| {
                let s = i.slots.iter().find(|s| &s.name == slot)?;
                slot_value(&s.pattern, text)
            });
            if let Some(value) = filled {
                let turn = Turn::chosen(TurnKind::Answer, Some(intent.clone()), Reason::SlotFilled)
                    .with_detail(slot.clone());
                let answer = Move::Answer {
                    intent: intent.clone(),
                    found: vec![(slot.clone(), value)],
                };
                return vec![(answer, turn)];
            }
        }
        Pending::Nothing => {}
    }

    let ranking = classifier.classify(text);
    let (decision, reason, thresholds) = judge(&ranking, intents, escalation);
    let found = ranking
        .candidates
        .first()
        .map(|c| c.slots.clone())
        .unwrap_or_default();
    // The ranking is not needed after this: moved into the turn, not copied.
    let turn = Turn::from_ranking(ranking, decision.turn_kind(), reason);
    let turn = shaped(turn, &decision, thresholds);
    match decision {
        Decision::Answer { intent } => {
            if restated(conv, &intent, &found, &norm) {
                // A repeat is a hint, not a request: an offer, never a
                // handoff the visitor did not ask for.
                let mut turn = turn.as_kind(TurnKind::Offer);
                turn.intent = None;
                turn.reason = Reason::RepeatedQuestion;
                let offer = Move::Offer {
                    reason: HandoffReason::Asked,
                };
                return vec![(offer, turn)];
            }
            vec![(Move::Answer { intent, found }, turn)]
        }
        Decision::Clarify { options } => vec![(Move::Clarify { options }, turn)],
        Decision::Fallback => {
            let mut moves = vec![(Move::Fallback, turn.clone())];
            let fallbacks = conv.fallbacks + 1;
            if escalation.max_fallbacks > 0 && fallbacks >= escalation.max_fallbacks {
                let turn = turn.with_detail(format!("{fallbacks} times in a row"));
                moves.push(escalate(
                    HandoffReason::RepeatedFallback,
                    escalation,
                    conv,
                    &turn,
                ));
            }
            moves
        }
        Decision::Handoff { reason, intent } => vec![(Move::Handoff { reason, intent }, turn)],
    }
}

/// Whether answering `intent` with the message `norm` (normalised) would
/// repeat the bot's latest reply: the same intent, not small talk, no offer
/// of a person waiting (who ignores the offer and asks again is answered),
/// a reply that answered (not a lookup that found nothing: that is retried),
/// no new slot value, and either impatience or no word the messages that
/// answer replied to lacked.
fn restated(conv: &Conversation, intent: &str, found: &[(String, String)], norm: &str) -> bool {
    conv.last_answer.as_deref() == Some(intent)
        && !conv.answered.is_empty()
        && !SMALL_TALK.contains(&intent)
        && !matches!(conv.pending, Pending::HandoffOffer { .. })
        && found
            .iter()
            .all(|(name, value)| conv.slots.get(&(intent.to_string(), name.clone())) == Some(value))
        && (impatient(norm) || adds_nothing(norm, &conv.answered))
}

/// Phrases (normalised, whole words) that say a question was asked before
/// and is still open. Each one alone: "still" is not ("can I still return
/// it after 30 days" asks something new).
const IMPATIENT: &[&str] = &[
    "again",
    "already asked",
    "asked already",
    "asked before",
    "already told",
    "i asked",
    "i already said",
    "how many times",
    "been ages",
    "been forever",
    "for ages",
    "still havent",
    "still hasnt",
    "still dont",
    "still didnt",
    "still no",
    "still not",
    "still nothing",
    "same answer",
    "not what i asked",
    "that doesnt help",
    "that didnt help",
    "nochmal",
    "noch einmal",
    "schon gefragt",
    "immer noch",
];

/// Words that carry no question of their own: a restatement may add them.
const FILLER: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "so", "then", "well", "now", "please", "pls", "ok",
    "okay", "hey", "hi", "hello", "um", "uh", "just", "really", "actually", "i", "me", "my", "you",
    "your", "we", "us", "our", "it", "its", "is", "are", "was", "be", "do", "does", "did", "can",
    "could", "will", "would", "what", "how", "when", "where", "which", "who", "why", "not", "no",
    "yes", "to", "of", "for", "on", "in", "at", "with", "about", "this", "that", "there", "here",
    "tell", "know", "want", "need", "like", "thanks", "thank",
];

fn impatient(norm: &str) -> bool {
    let padded = format!(" {norm} ");
    IMPATIENT
        .iter()
        .any(|cue| padded.contains(&format!(" {cue} ")))
}

/// Whether every word of `norm` but fillers is a word of `earlier` or one
/// typo from one.
fn adds_nothing(norm: &str, earlier: &[String]) -> bool {
    if earlier.is_empty() {
        return false;
    }
    let known: Vec<&str> = earlier.iter().flat_map(|m| m.split(' ')).collect();
    norm.split(' ')
        .filter(|w| !w.is_empty() && !FILLER.contains(w))
        .all(|w| known.iter().any(|k| *k == w || one_typo(k, w)))
}

/// The same word or one typo from it (`typo::edit`): a letter left out or
/// added when the shorter word has 4 letters or more, one changed or two
/// neighbours swapped from 5 letters; digits never (another order number is
/// another order). The lexical layer forgives shorter words only where the
/// likely intents use the word they miss; here there is no such context.
fn one_typo(a: &str, b: &str) -> bool {
    if a == b {
        return !a.bytes().any(|c| c.is_ascii_digit());
    }
    let shorter = a.chars().count().min(b.chars().count());
    match typo::edit(a, b) {
        Some(Edit::LeftOut | Edit::Added) => shorter >= 4,
        Some(Edit::Changed | Edit::Swapped) => shorter >= 5,
        None => false,
    }
}

/// Hands off for `reason`, or first offers to when the settings say so and
/// no offer is pending. `led_here` is the decision that escalates (a
/// fallback, a rejected choice); it is kept as an offer or a handoff for
/// this reason.
fn escalate(
    reason: HandoffReason,
    escalation: &EscalationPolicy,
    conv: &Conversation,
    led_here: &Turn,
) -> (Move, Turn) {
    let offered = matches!(conv.pending, Pending::HandoffOffer { .. });
    let offer = escalation.offer_first && !offered;
    let mut turn = led_here.as_kind(if offer {
        TurnKind::Offer
    } else {
        TurnKind::Handoff
    });
    // A turn that escalates acts on no intent.
    turn.intent = None;
    if let Some(code) = reason.code() {
        turn.reason = code;
    }
    if offer {
        (Move::Offer { reason }, turn)
    } else {
        let handoff = Move::Handoff {
            reason,
            intent: None,
        };
        (handoff, turn)
    }
}

/// A ranking and what the policy made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ranking: Ranking,
    pub decision: Decision,
    pub reason: Reason,
    /// The thresholds the decision was held against.
    pub thresholds: Option<Thresholds>,
}

impl Outcome {
    /// Why, as data (built on demand: a caller that wants only the
    /// decision pays for no copies); `crate::conversation::trace::trace`
    /// puts it in words.
    pub fn turn(&self) -> Turn {
        let turn = Turn::ranked(&self.ranking, self.decision.turn_kind(), self.reason);
        shaped(turn, &self.decision, self.thresholds)
    }

    /// One line saying why.
    pub fn why(&self) -> String {
        crate::conversation::trace::why(&self.turn())
    }
}

/// One inline test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub intent: String,
    pub text: String,
    pub location: intents::Location,
    /// The bot answered (or handed off) with this intent, confidently.
    pub passed: bool,
    /// What it did instead, e.g. `refund_status (clarify)`.
    pub got: String,
    pub outcome: Outcome,
}

/// Decisions outside a conversation: a classifier's ranking judged by
/// `decide`, and loading that holds the intents to their inline tests
/// (which are decisions too). The classifier itself knows nothing of
/// decisions; bring this trait into scope to ask it for one.
pub trait Decide {
    /// Ranks `text` and decides with the default escalation settings.
    fn decide(&self, text: &str) -> Outcome {
        self.decide_with(text, &EscalationPolicy::default())
    }

    /// Ranks `text` and decides with these escalation settings.
    fn decide_with(&self, text: &str, escalation: &EscalationPolicy) -> Outcome;

    /// Runs every intent's inline tests.
    fn run_tests(&self) -> Vec<TestResult>;

    /// Loads, validates and builds from a directory, running the intents'
    /// inline tests: a test that fails is a load error at its line.
    fn load(dir: &Path) -> Result<Self, LoadErrors>
    where
        Self: Sized,
    {
        Self::load_with(dir, &Model::none())
    }

    /// `load` with the semantic layer of `model`.
    fn load_with(dir: &Path, model: &Model) -> Result<Self, LoadErrors>
    where
        Self: Sized;
}

impl Decide for Classifier {
    fn decide_with(&self, text: &str, escalation: &EscalationPolicy) -> Outcome {
        let ranking = self.classify(text);
        let (decision, reason, thresholds) = judge(&ranking, self.intents(), escalation);
        Outcome {
            ranking,
            decision,
            reason,
            thresholds,
        }
    }

    fn run_tests(&self) -> Vec<TestResult> {
        let mut out = Vec::new();
        for intent in &self.intents().intents {
            for t in &intent.tests {
                let outcome = self.decide(&t.text);
                let got = match &outcome.decision {
                    Decision::Fallback => "fallback".to_string(),
                    d => match outcome.ranking.candidates.first() {
                        Some(c) => format!("{} ({})", c.intent, d.kind()),
                        None => d.kind().to_string(),
                    },
                };
                let passed = match &outcome.decision {
                    Decision::Answer { intent: i } => i == &intent.id,
                    Decision::Handoff {
                        reason: HandoffReason::Asked | HandoffReason::IntentAction,
                        intent: Some(i),
                    } => i == &intent.id,
                    _ => false,
                };
                out.push(TestResult {
                    intent: intent.id.clone(),
                    text: t.text.clone(),
                    location: t.location.clone(),
                    passed,
                    got,
                    outcome,
                });
            }
        }
        out
    }

    fn load_with(dir: &Path, model: &Model) -> Result<Classifier, LoadErrors> {
        passing_tests(Classifier::build(dir, model)?)
    }
}

/// `classifier` when every inline test of its intents passes; else each
/// failed test at its `path:line:col` (what `load_with` and a replay of an
/// unsaved edit both demand of a set).
pub fn passing_tests(classifier: Classifier) -> Result<Classifier, LoadErrors> {
    let errors: Vec<LoadError> = classifier
        .run_tests()
        .into_iter()
        .filter(|t| !t.passed)
        .map(|t| LoadError {
            path: t.location.path,
            line: t.location.line,
            col: t.location.col,
            kind: ErrorKind::TestFailed {
                text: t.text,
                got: t.got,
            },
        })
        .collect();
    if errors.is_empty() {
        Ok(classifier)
    } else {
        Err(LoadErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_typo_of_an_earlier_word_is_that_word() {
        use super::one_typo;
        for (a, b, want) in [
            ("password", "pasword", true),
            ("password", "passwrod", true),
            ("policy", "polcy", true),
            ("take", "takes", true),
            ("cost", "costs", true),
            ("refund", "refund", true),
            ("ship", "shop", false),
            ("mars", "maps", false),
            ("order", "ordered", false),
            ("123456", "123457", false),
            ("canada", "", false),
        ] {
            assert_eq!(one_typo(a, b), want, "{a:?} {b:?}");
            assert_eq!(one_typo(b, a), want, "{b:?} {a:?}");
        }
    }

    #[test]
    fn restatements_add_no_word_or_are_impatient() {
        use super::{adds_nothing, impatient};
        let earlier = ["how much is shipping".to_string()];
        assert!(adds_nothing("so how much is shipping then", &earlier));
        assert!(adds_nothing("how much is shiping", &earlier));
        assert!(!adds_nothing("how much is shipping to canada", &earlier));
        assert!(!adds_nothing("how much is shipping", &[]));
        assert!(impatient("how much is shipping again"));
        assert!(impatient("its been ages"));
        assert!(!impatient("can i still return it after 30 days"));
        assert!(!impatient("against the rules"));
    }

    use std::path::PathBuf;

    use super::*;
    use crate::classify::{Candidate, Frustration, Ranking};
    use crate::intents::Action;
    use crate::intents::{Intent, Thresholds};

    fn intent(id: &str, action: Action) -> Intent {
        Intent {
            id: id.into(),
            path: PathBuf::from(format!("{id}.toml")),
            description: id.into(),
            keywords: vec![],
            patterns: vec![],
            examples: vec!["x".into()],
            answers: vec!["a".into()],
            quick_replies: vec![],
            action,
            slots: vec![],
            tests: vec![],
            threshold: None,
            call: None,
            menu: None,
        }
    }

    fn set(open_world: bool) -> IntentSet {
        let mut thresholds = Thresholds::uncalibrated(3);
        thresholds.clarify = 0.3;
        thresholds.clarify_coverage = if open_world { 0.6 } else { 0.0 };
        let mut strict = intent("refund", Action::Answer);
        strict.threshold = Some(0.9);
        IntentSet {
            dir: PathBuf::from("."),
            intents: vec![
                intent("human_agent", Action::Handoff),
                strict,
                intent("ship", Action::Answer),
                intent("track", Action::Answer),
                intent("vip", Action::Handoff),
            ],
            out_of_scope: vec![],
            thresholds,
            fingerprint: String::new(),
            calibration_stale: false,
        }
    }

    /// A ranking of (intent, score), with out-of-scope probability, coverage
    /// and whether the message reads as upset.
    fn ranking(c: &[(&str, f32)], oos: f32, coverage: f32, upset: bool) -> Ranking {
        Ranking {
            normalized: String::new(),
            candidates: c
                .iter()
                .map(|(i, s)| Candidate {
                    intent: (*i).into(),
                    score: *s,
                    lexical: *s,
                    rule: 0.0,
                    semantic: 0.0,
                    evidence: vec![],
                    slots: vec![],
                })
                .collect(),
            out_of_scope: oos,
            coverage,
            frustration: Frustration {
                score: if upset { 3.0 } else { 0.0 },
                cues: vec![],
                negative: upset,
            },
        }
    }

    fn answer(i: &str) -> Decision {
        Decision::Answer { intent: i.into() }
    }
    fn clarify(o: &[&str]) -> Decision {
        Decision::Clarify {
            options: o.iter().map(|s| s.to_string()).collect(),
        }
    }
    fn handoff(reason: HandoffReason, i: Option<&str>) -> Decision {
        Decision::Handoff {
            reason,
            intent: i.map(Into::into),
        }
    }

    #[test]
    fn table() {
        use HandoffReason::*;
        let t = |c: &[(&str, f32)], oos, cov, upset, open, want: Decision| {
            let r = ranking(c, oos, cov, upset);
            let (got, turn) = decide(&r, &set(open), &EscalationPolicy::default());
            let why = crate::conversation::trace::why(&turn);
            assert_eq!(got, want, "{c:?} oos {oos} cov {cov} upset {upset}: {why}");
            assert_eq!(turn.kind.as_str(), got.kind(), "{why}");
        };
        // Confident: answer; at exactly the threshold too.
        t(
            &[("ship", 0.8), ("track", 0.1)],
            0.0,
            1.0,
            false,
            false,
            answer("ship"),
        );
        t(
            &[("ship", 0.5), ("track", 0.1)],
            0.0,
            1.0,
            false,
            false,
            answer("ship"),
        );
        // A per-intent threshold overrides the global one.
        t(
            &[("refund", 0.8), ("ship", 0.1)],
            0.0,
            1.0,
            false,
            false,
            clarify(&["refund"]),
        );
        // Close runner-up in the band: both offered; far one: only the top.
        t(
            &[("ship", 0.45), ("track", 0.35)],
            0.0,
            1.0,
            false,
            false,
            clarify(&["ship", "track"]),
        );
        t(
            &[("ship", 0.45), ("track", 0.1)],
            0.0,
            1.0,
            false,
            false,
            clarify(&["ship"]),
        );
        // Below the band: fallback.
        t(
            &[("ship", 0.2), ("track", 0.1)],
            0.0,
            1.0,
            false,
            false,
            Decision::Fallback,
        );
        // The out-of-scope class beats the top intent: fallback.
        t(&[("ship", 0.6)], 0.7, 1.0, false, false, Decision::Fallback);
        // Open world: a guess at a mostly unknown message falls back; a
        // confident answer does not depend on coverage.
        t(&[("ship", 0.45)], 0.0, 0.5, false, true, Decision::Fallback);
        t(
            &[("ship", 0.45)],
            0.0,
            0.5,
            false,
            false,
            clarify(&["ship"]),
        );
        t(&[("ship", 0.9)], 0.0, 0.5, false, true, answer("ship"));
        // Handoff intents: `human_agent` is the visitor asking; others are
        // the intent's action.
        t(
            &[("human_agent", 0.9)],
            0.0,
            1.0,
            false,
            false,
            handoff(Asked, Some("human_agent")),
        );
        t(
            &[("vip", 0.9)],
            0.0,
            1.0,
            false,
            false,
            handoff(IntentAction, Some("vip")),
        );
        // Upset wins over everything, and keeps the recognised intent.
        t(
            &[("ship", 0.9)],
            0.0,
            1.0,
            true,
            false,
            handoff(NegativeSentiment, Some("ship")),
        );
        t(&[], 0.0, 0.0, true, false, handoff(NegativeSentiment, None));
        // No candidates at all.
        t(&[], 0.0, 0.0, false, false, Decision::Fallback);
    }
}

//! A bot turn's decision as data: what the bot did, on which intent, how
//! sure it was, the candidates and thresholds it weighed, and a stable
//! reason code. Stored on every bot-turn event (`decision`), so the agent
//! console and any later analysis read numbers, not prose; the trace text
//! is rendered from it (`crate::conversation::trace`).
//!
//! Storage form: records written before this existed have no `decision`;
//! every field added later must be `#[serde(default)]` so they still load.

use serde::{Deserialize, Serialize};

use crate::classify::{Candidate, Evidence, Ranking};

/// Candidates whose evidence a turn keeps (what the trace shows).
pub const EVIDENCE_FOR: usize = 3;

/// What the bot did in a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnKind {
    /// Replied with an intent's answer (or a fixed reply).
    Answer,
    /// Asked "Did you mean …?".
    Clarify,
    /// Said it did not understand.
    Fallback,
    /// Asked for a slot value the answer needs.
    SlotPrompt,
    /// Offered a person.
    Offer,
    /// Handed off to a person.
    Handoff,
}

impl TurnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TurnKind::Answer => "answer",
            TurnKind::Clarify => "clarify",
            TurnKind::Fallback => "fallback",
            TurnKind::SlotPrompt => "slot_prompt",
            TurnKind::Offer => "offer",
            TurnKind::Handoff => "handoff",
        }
    }
}

/// Why the bot did what it did: a stable code for dashboards and tests;
/// the words are `crate::conversation::trace::why`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The top intent reached its answer threshold.
    AboveAnswerThreshold,
    /// The top intent is between the clarify and the answer threshold.
    InClarifyBand,
    /// The top intent is below the clarify threshold.
    BelowClarifyThreshold,
    /// In the clarify band, but too little of the message is known to guess.
    LowCoverage,
    /// The out-of-scope class beat the top intent.
    OutOfScope,
    /// No intent scored at all.
    NoCandidates,
    /// The top intent is not in the intent set (cannot happen with a
    /// classifier built from the set).
    UnknownIntent,
    /// The message reads as upset and sentiment escalation is on.
    NegativeSentiment,
    /// The `human_agent` intent reached its answer threshold.
    Asked,
    /// An intent whose action is `handoff` reached its answer threshold.
    IntentAction,
    /// The visitor picked one of the "Did you mean …?" options.
    PickedOption,
    /// The visitor gave the slot value the bot asked for.
    SlotFilled,
    /// The visitor said yes to "Shall I get a person?".
    OfferAccepted,
    /// The visitor said no to "Shall I get a person?".
    OfferDeclined,
    /// The bot fell back too many times in a row.
    RepeatedFallback,
    /// The visitor meant none of the "Did you mean …?" options.
    LowConfidence,
    /// An action's call to the shop's backend failed.
    BackendError,
    /// A short message that names no topic clearly ("help", a product
    /// name): the bot shows a menu of its main topics instead of guessing.
    VagueMessage,
    /// The visitor asked again what the bot had just answered: the bot
    /// offers a person instead of the same answer.
    RepeatedQuestion,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AboveAnswerThreshold => "above_answer_threshold",
            Reason::InClarifyBand => "in_clarify_band",
            Reason::BelowClarifyThreshold => "below_clarify_threshold",
            Reason::LowCoverage => "low_coverage",
            Reason::OutOfScope => "out_of_scope",
            Reason::NoCandidates => "no_candidates",
            Reason::UnknownIntent => "unknown_intent",
            Reason::NegativeSentiment => "negative_sentiment",
            Reason::Asked => "asked",
            Reason::IntentAction => "intent_action",
            Reason::PickedOption => "picked_option",
            Reason::SlotFilled => "slot_filled",
            Reason::OfferAccepted => "offer_accepted",
            Reason::OfferDeclined => "offer_declined",
            Reason::RepeatedFallback => "repeated_fallback",
            Reason::LowConfidence => "low_confidence",
            Reason::BackendError => "backend_error",
            Reason::VagueMessage => "vague_message",
            Reason::RepeatedQuestion => "repeated_question",
        }
    }
}

/// Why a candidate scored what it did (the classifier's `Evidence`, in the
/// stored form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Clue {
    Keyword {
        phrase: String,
    },
    Pattern {
        index: usize,
        source: String,
    },
    /// The most similar example (word cosine).
    Example {
        text: String,
        similarity: f32,
    },
    /// The example closest in meaning (embedding cosine).
    Meaning {
        text: String,
        similarity: f32,
    },
}

impl From<Evidence> for Clue {
    fn from(e: Evidence) -> Clue {
        match e {
            Evidence::Keyword { phrase } => Clue::Keyword { phrase },
            Evidence::Pattern { index, source } => Clue::Pattern { index, source },
            Evidence::Example { text, similarity } => Clue::Example { text, similarity },
            Evidence::Meaning { text, similarity } => Clue::Meaning { text, similarity },
        }
    }
}

/// One candidate intent as the decision saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub intent: String,
    /// The fused confidence compared to the thresholds.
    pub score: f32,
    /// The layers behind `score`, for the trace.
    #[serde(default)]
    pub lexical: f32,
    #[serde(default)]
    pub rule: f32,
    #[serde(default)]
    pub semantic: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Clue>,
    /// Slot values found in the message: (name, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<(String, String)>,
}

/// The thresholds the top intent was held to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// The top intent's answer threshold (its own, calibrated or global).
    pub answer: f32,
    pub clarify: f32,
    /// Share of known words a guess in the clarify band needs.
    pub clarify_coverage: f32,
    /// How close a runner-up must be to be offered too.
    pub margin: f32,
}

/// The other signals of the message the policy reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Probability of the out-of-scope class.
    pub out_of_scope: f32,
    /// Share of the message's words the examples know.
    pub coverage: f32,
    /// The frustration score and the cues behind it.
    pub frustration: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cues: Vec<String>,
}

/// A bot turn's decision, as stored on its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub kind: TurnKind,
    /// The intent the bot acted on (answered, prompted a slot for, or
    /// recognised in a handoff); none for a clarification or a fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The intents a clarification offers, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The top candidate's score; 1 for a turn decided by the visitor's
    /// choice (an option picked, a slot filled, an offer answered), 0 when
    /// nothing scored. Always finite.
    pub confidence: f32,
    /// The candidates weighed, best first (none when the turn followed
    /// from the visitor's choice without classifying).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Scored>,
    /// The thresholds the top intent was held to, when it got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<Signals>,
    pub reason: Reason,
    /// What the code alone does not say: the slot filled, the fallbacks
    /// in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The call to the shop's backend this turn made, if any: its name,
    /// outcome and latency (never the reply, never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<crate::action::ActionRecord>,
}

impl Turn {
    /// A turn that follows from the visitor's choice, not from a ranking.
    pub fn chosen(kind: TurnKind, intent: Option<String>, reason: Reason) -> Turn {
        Turn {
            kind,
            intent,
            options: Vec::new(),
            confidence: 1.0,
            candidates: Vec::new(),
            thresholds: None,
            signals: None,
            reason,
            detail: None,
            action: None,
        }
    }

    /// A turn judged on `ranking`; the policy fills in the rest. Copies
    /// only what the turn keeps (see `from_ranking`).
    pub fn ranked(ranking: &Ranking, kind: TurnKind, reason: Reason) -> Turn {
        let kept = Ranking {
            normalized: String::new(),
            candidates: ranking
                .candidates
                .iter()
                .enumerate()
                .map(|(i, c)| Candidate {
                    intent: c.intent.clone(),
                    score: c.score,
                    lexical: c.lexical,
                    rule: c.rule,
                    semantic: c.semantic,
                    evidence: if i < EVIDENCE_FOR {
                        c.evidence.clone()
                    } else {
                        Vec::new()
                    },
                    slots: c.slots.clone(),
                })
                .collect(),
            out_of_scope: ranking.out_of_scope,
            coverage: ranking.coverage,
            frustration: ranking.frustration.clone(),
        };
        Turn::from_ranking(kept, kind, reason)
    }

    /// A turn judged on `ranking`, taking it rather than copying from it:
    /// the scores of every candidate, the evidence of those a trace shows
    /// (past those, scores are enough), and the signals.
    pub fn from_ranking(ranking: Ranking, kind: TurnKind, reason: Reason) -> Turn {
        let signals = Signals {
            out_of_scope: ranking.out_of_scope,
            coverage: ranking.coverage,
            frustration: ranking.frustration.score,
            cues: ranking.frustration.cues,
        };
        Turn {
            kind,
            intent: None,
            options: Vec::new(),
            confidence: ranking.candidates.first().map_or(0.0, |c| c.score),
            candidates: ranking
                .candidates
                .into_iter()
                .enumerate()
                .map(|(i, c)| Scored {
                    intent: c.intent,
                    score: c.score,
                    lexical: c.lexical,
                    rule: c.rule,
                    semantic: c.semantic,
                    evidence: if i < EVIDENCE_FOR {
                        c.evidence.into_iter().map(Clue::from).collect()
                    } else {
                        Vec::new()
                    },
                    slots: c.slots,
                })
                .collect(),
            thresholds: None,
            signals: Some(signals),
            reason,
            detail: None,
            action: None,
        }
    }

    pub fn as_kind(&self, kind: TurnKind) -> Turn {
        Turn {
            kind,
            ..self.clone()
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Turn {
        self.detail = Some(detail.into());
        self
    }
}

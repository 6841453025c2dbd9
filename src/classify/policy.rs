//! The decision policy on top of a `Ranking`: answer, ask "Did you mean …?",
//! fall back, or hand off. Thresholds come from the intent set (measured by
//! `frontdesk calibrate`, or defaults), so the policy itself has no numbers
//! of its own to tune.

use super::Ranking;
use crate::intents::{Action, IntentSet};

/// Why a conversation goes to a person. Stored on the handoff event; the
/// classifier produces the first three, the conversation the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The visitor asked for a person (the `human_agent` intent or a button).
    Asked,
    /// Another intent whose `action` is `handoff` won.
    IntentAction,
    /// The message reads as upset (see `frustration`).
    NegativeSentiment,
    /// The bot was unsure.
    LowConfidence,
    /// The bot fell back several times in a row.
    RepeatedFallback,
    /// An agent picked up a live bot conversation.
    AgentTookOver,
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
        }
    }
}

/// The intent id whose handoff counts as the visitor asking for a person.
pub const HUMAN_AGENT_INTENT: &str = "human_agent";

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
        match self {
            Decision::Answer { .. } => "answer",
            Decision::Clarify { .. } => "clarify",
            Decision::Fallback => "fallback",
            Decision::Handoff { .. } => "handoff",
        }
    }
}

/// Applies the policy; returns the decision and a one-line reason for it.
pub fn decide(ranking: &Ranking, intents: &IntentSet) -> (Decision, String) {
    let top = ranking.candidates.first();
    if ranking.frustration.negative {
        return (
            Decision::Handoff {
                reason: HandoffReason::NegativeSentiment,
                intent: top.map(|c| c.intent.clone()),
            },
            format!(
                "the message reads as upset (score {:.1}: {})",
                ranking.frustration.score,
                ranking.frustration.cues.join(", ")
            ),
        );
    }
    let t = &intents.thresholds;
    let Some(top) = top else {
        return (Decision::Fallback, "no intent scored at all".to_string());
    };
    if ranking.out_of_scope > top.score {
        return (
            Decision::Fallback,
            format!(
                "out-of-scope {:.2} beats the top intent {} {:.2}",
                ranking.out_of_scope, top.intent, top.score
            ),
        );
    }
    let Some(intent) = intents.get(&top.intent) else {
        return (Decision::Fallback, "top intent vanished".to_string());
    };
    let answer_at = intents.answer_threshold(intent);
    if top.score >= answer_at {
        let why = format!(
            "{} {:.2} ≥ answer threshold {:.2}",
            top.intent, top.score, answer_at
        );
        return match intent.action {
            Action::Handoff => (
                Decision::Handoff {
                    reason: if intent.id == HUMAN_AGENT_INTENT {
                        HandoffReason::Asked
                    } else {
                        HandoffReason::IntentAction
                    },
                    intent: Some(top.intent.clone()),
                },
                format!("{why}; its action is handoff"),
            ),
            Action::Answer | Action::End => (
                Decision::Answer {
                    intent: top.intent.clone(),
                },
                why,
            ),
        };
    }
    if top.score >= t.clarify && ranking.coverage < t.clarify_coverage {
        return (
            Decision::Fallback,
            format!(
                "{} {:.2} is below the answer threshold {:.2}, and only {:.0}% of the message is known (a guess needs {:.0}%)",
                top.intent,
                top.score,
                answer_at,
                ranking.coverage * 100.0,
                t.clarify_coverage * 100.0
            ),
        );
    }
    if top.score >= t.clarify {
        let mut options = vec![top.intent.clone()];
        if let Some(second) = ranking.candidates.get(1) {
            if second.score >= t.clarify && top.score - second.score <= t.margin {
                options.push(second.intent.clone());
            }
        }
        let why = format!(
            "{} {:.2} is in the clarify band [{:.2}, {:.2})",
            top.intent, top.score, t.clarify, answer_at
        );
        return (Decision::Clarify { options }, why);
    }
    (
        Decision::Fallback,
        format!(
            "{} {:.2} < clarify threshold {:.2}",
            top.intent, top.score, t.clarify
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::classify::{Candidate, Frustration, Ranking};
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
            let (got, why) = decide(&r, &set(open));
            assert_eq!(got, want, "{c:?} oos {oos} cov {cov} upset {upset}: {why}");
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

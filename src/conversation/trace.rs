//! The decision trace in words, rendered from a turn's decision data
//! (`conversation::Turn`): the one renderer behind `frontdesk chat`, `test`,
//! the traces stored on bot turns and the admin's "try a message". What the
//! bot *says* is the conversation's business (`conversation::step`).

use std::fmt::Write as _;

use super::turn::{Clue, Reason, Turn, TurnKind};

/// How many candidates the trace lists.
const SHOWN: usize = super::turn::EVIDENCE_FOR;

/// One line saying why the turn went as it did.
pub fn why(turn: &Turn) -> String {
    let top = turn.candidates.first();
    let top_is = || {
        top.map_or_else(
            || "nothing".to_string(),
            |c| format!("{} {:.2}", c.intent, c.score),
        )
    };
    let (answer, clarify, coverage) = turn.thresholds.map_or((f32::NAN, f32::NAN, f32::NAN), |t| {
        (t.answer, t.clarify, t.clarify_coverage)
    });
    let detail = turn.detail.as_deref().unwrap_or_default();
    match turn.reason {
        Reason::NegativeSentiment => {
            let (score, cues) = turn
                .signals
                .as_ref()
                .map_or((0.0, String::new()), |s| (s.frustration, s.cues.join(", ")));
            format!("the message reads as upset (score {score:.1}: {cues})")
        }
        Reason::NoCandidates => "no intent scored at all".to_string(),
        Reason::OutOfScope => format!(
            "out-of-scope {:.2} beats the top intent {}",
            turn.signals.as_ref().map_or(0.0, |s| s.out_of_scope),
            top_is()
        ),
        Reason::UnknownIntent => "top intent vanished".to_string(),
        Reason::AboveAnswerThreshold => {
            format!("{} ≥ answer threshold {answer:.2}", top_is())
        }
        Reason::Asked | Reason::IntentAction => format!(
            "{} ≥ answer threshold {answer:.2}; its action is handoff",
            top_is()
        ),
        Reason::LowCoverage => format!(
            "{} is below the answer threshold {answer:.2}, and only {:.0}% of the message is known (a guess needs {:.0}%)",
            top_is(),
            turn.signals.as_ref().map_or(0.0, |s| s.coverage) * 100.0,
            coverage * 100.0
        ),
        Reason::InClarifyBand => format!(
            "{} is in the clarify band [{clarify:.2}, {answer:.2})",
            top_is()
        ),
        Reason::BelowClarifyThreshold => {
            format!("{} < clarify threshold {clarify:.2}", top_is())
        }
        Reason::PickedOption => "picked from the options".to_string(),
        Reason::SlotFilled => format!("slot `{detail}` filled"),
        Reason::OfferAccepted => "the visitor accepted the offer of a person".to_string(),
        Reason::OfferDeclined => "the visitor declined the offer of a person".to_string(),
        Reason::RepeatedFallback => format!("the bot fell back {detail}"),
        Reason::LowConfidence => "the visitor meant none of the options".to_string(),
        Reason::BackendError => format!("the shop's backend failed: {detail}"),
        Reason::VagueMessage => format!(
            "{}, but the message is too short and vague to guess from: a menu of topics",
            top_is()
        ),
        Reason::RepeatedQuestion => {
            "the visitor asked again what the bot had just answered".to_string()
        }
    }
}

/// The trace: decision and why, then each candidate with its evidence and
/// the message's other signals.
pub fn trace(turn: &Turn) -> String {
    let mut s = String::new();
    let target = match (turn.kind, &turn.intent) {
        (TurnKind::Handoff | TurnKind::Offer, _) => format!(" ({})", turn.reason.as_str()),
        (TurnKind::Clarify, _) => format!(" {}", turn.options.join(" | ")),
        (_, Some(intent)) => format!(" {intent}"),
        (_, None) => String::new(),
    };
    let _ = write!(
        s,
        "  decision: {}{} because {}",
        turn.kind.as_str(),
        target,
        why(turn)
    );
    let has_semantic = turn
        .candidates
        .iter()
        .flat_map(|c| &c.evidence)
        .any(|e| matches!(e, Clue::Meaning { .. }));
    for (i, c) in turn.candidates.iter().enumerate().take(SHOWN) {
        let _ = write!(
            s,
            "\n  {}. {:<20} {:.2}  (lexical {:.2}, rule {:.2}",
            i + 1,
            c.intent,
            c.score,
            c.lexical,
            c.rule
        );
        // The semantic layer's share, when it is on (fusion: its
        // probability and the lexical one averaged, then noisy-or with the
        // rule).
        if has_semantic {
            let _ = write!(s, ", semantic {:.2}", c.semantic);
        }
        s.push(')');
        let evidence: Vec<String> = c
            .evidence
            .iter()
            .map(|e| match e {
                Clue::Keyword { phrase } => format!("keyword \"{phrase}\""),
                Clue::Pattern { index, source } => format!("patterns[{index}] '{source}'"),
                Clue::Meaning { text, similarity } => {
                    format!("closest in meaning \"{text}\" ({similarity:.2})")
                }
                Clue::Example { text, similarity } => {
                    format!("nearest \"{text}\" ({similarity:.2})")
                }
            })
            .collect();
        if !evidence.is_empty() {
            let _ = write!(s, " {}", evidence.join("; "));
        }
        if !c.slots.is_empty() {
            let slots: Vec<String> = c.slots.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(s, "; slots {}", slots.join(" "));
        }
    }
    if let Some(g) = &turn.signals {
        let _ = write!(
            s,
            "\n  out-of-scope {:.2} · coverage {:.2} · frustration {:.1}",
            g.out_of_scope, g.coverage, g.frustration
        );
        if !g.cues.is_empty() {
            let _ = write!(s, " ({})", g.cues.join(", "));
        }
    }
    s
}

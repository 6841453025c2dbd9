//! The decision trace in words, shared by `frontdesk chat`, `test` and
//! (later) the admin API. What the bot *says* is the conversation's business
//! (`conversation::step`).

use std::fmt::Write as _;

use crate::classify::{Decision, Evidence, Outcome};

/// The trace: decision and why, then each candidate with its evidence.
pub fn trace(outcome: &Outcome) -> String {
    let r = &outcome.ranking;
    let mut s = String::new();
    let target = match &outcome.decision {
        Decision::Answer { intent } => format!(" {intent}"),
        Decision::Clarify { options } => format!(" {}", options.join(" | ")),
        Decision::Handoff { reason, .. } => format!(" ({})", reason.as_str()),
        Decision::Fallback => String::new(),
    };
    let _ = writeln!(
        s,
        "  decision: {}{} because {}",
        outcome.decision.kind(),
        target,
        outcome.why
    );
    let has_semantic = r
        .candidates
        .iter()
        .flat_map(|c| &c.evidence)
        .any(|e| matches!(e, Evidence::Meaning { .. }));
    for (i, c) in r.candidates.iter().enumerate().take(3) {
        let _ = write!(
            s,
            "  {}. {:<20} {:.2}  (lexical {:.2}, rule {:.2}",
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
                Evidence::Keyword { phrase } => format!("keyword \"{phrase}\""),
                Evidence::Pattern { index, source } => format!("patterns[{index}] '{source}'"),
                Evidence::Meaning { text, similarity } => {
                    format!("closest in meaning \"{text}\" ({similarity:.2})")
                }
                Evidence::Example { text, similarity } => {
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
        s.push('\n');
    }
    let _ = write!(
        s,
        "  out-of-scope {:.2} · coverage {:.2} · frustration {:.1}",
        r.out_of_scope, r.coverage, r.frustration.score
    );
    if !r.frustration.cues.is_empty() {
        let _ = write!(s, " ({})", r.frustration.cues.join(", "));
    }
    s
}

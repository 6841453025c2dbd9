//! The decision trace in words, and the bot's reply for a decision, shared by
//! `frontdesk chat`, `test` and (later) the admin API.

use std::fmt::Write as _;

use crate::classify::{Decision, Evidence, Outcome};
use crate::intents::{render, IntentSet};

/// What the bot says for `outcome`. `turn` rotates between answer variants;
/// `name` fills `{name}`.
pub fn reply(outcome: &Outcome, intents: &IntentSet, turn: usize, name: Option<&str>) -> String {
    let answer_of = |id: &str| -> Option<String> {
        let intent = intents.get(id)?;
        let cand = outcome.ranking.candidates.iter().find(|c| c.intent == id);
        for slot in &intent.slots {
            let filled = cand.is_some_and(|c| c.slots.iter().any(|(n, _)| n == &slot.name));
            if !filled {
                return Some(slot.prompt.clone());
            }
        }
        let text = intent.answers.get(turn % intent.answers.len().max(1))?;
        Some(render(text, |k| {
            if k == "name" {
                return Some(name.unwrap_or("there"));
            }
            cand.and_then(|c| c.slots.iter().find(|(n, _)| n == k))
                .map(|(_, v)| v.as_str())
        }))
    };
    let label = |id: &str| {
        intents
            .get(id)
            .map(|i| i.label().to_string())
            .unwrap_or_else(|| id.to_string())
    };
    match &outcome.decision {
        Decision::Answer { intent } => answer_of(intent).unwrap_or_default(),
        Decision::Clarify { options } => {
            let names: Vec<String> = options.iter().map(|o| label(o)).collect();
            format!("Did you mean: \"{}\"?", names.join("\", or \""))
        }
        Decision::Fallback => {
            "Sorry, I didn't get that. Could you put it another way, or shall I get a person?"
                .to_string()
        }
        Decision::Handoff { intent, .. } => intent
            .as_deref()
            .filter(|i| {
                intents
                    .get(i)
                    .is_some_and(|x| x.action == crate::intents::Action::Handoff)
            })
            .and_then(answer_of)
            .unwrap_or_else(|| "I'm getting a person to help you. One moment, please.".to_string()),
    }
}

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
    for (i, c) in r.candidates.iter().enumerate().take(3) {
        let _ = write!(
            s,
            "  {}. {:<20} {:.2}  (lexical {:.2}, rule {:.2})",
            i + 1,
            c.intent,
            c.score,
            c.lexical,
            c.rule
        );
        let evidence: Vec<String> = c
            .evidence
            .iter()
            .map(|e| match e {
                Evidence::Keyword { phrase } => format!("keyword \"{phrase}\""),
                Evidence::Pattern { index, source } => format!("patterns[{index}] '{source}'"),
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

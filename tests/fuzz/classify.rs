//! The classifier and `decide` on arbitrary text: no panic, every
//! confidence finite and in [0, 1], the decision one of the defined kinds
//! and consistent with the ranking it came from.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;

use frontdesk::classify::TOP_N;
use frontdesk::conversation::{
    decide, Decide, Decision, EscalationPolicy, HandoffReason, Outcome, Reason,
};

const DEFAULT_CASES: u32 = 2000;

/// Characters that break naive text handling: controls, bidi overrides,
/// zero-width and combining marks, emoji parts, full-width and ligature
/// forms that NFKD expands, case-mapping oddities, noncharacters.
const NASTY: &[char] = &[
    '\0',
    '\u{1}',
    '\u{7}',
    '\u{8}',
    '\t',
    '\n',
    '\r',
    '\u{b}',
    '\u{c}',
    '\u{1b}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{ad}',
    '\u{200b}',
    '\u{200c}',
    '\u{200d}',
    '\u{200e}',
    '\u{200f}',
    '\u{202a}',
    '\u{202b}',
    '\u{202c}',
    '\u{202d}',
    '\u{202e}',
    '\u{2066}',
    '\u{2067}',
    '\u{2069}',
    '\u{2028}',
    '\u{2029}',
    '\u{2060}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10ffff}',
    '\u{e000}',
    '\u{300}',
    '\u{301}',
    '\u{327}',
    '\u{308}',
    '\u{36f}',
    '\u{489}',
    '\u{1f469}',
    '\u{1f466}',
    '\u{1f3fb}',
    '\u{fe0f}',
    '\u{1f1e9}',
    '\u{1f1ea}',
    '\u{fb01}',
    '\u{fdfa}',
    '\u{2163}',
    '\u{3391}',
    '\u{ff21}',
    '\u{130}',
    '\u{131}',
    '\u{1e9e}',
    '\u{df}',
    '\u{3c2}',
    '\u{5d0}',
    '\u{627}',
    '\u{e01}',
    '\u{4e2d}',
    '\u{d55c}',
    '\'',
    '\u{2019}',
    '!',
    '?',
    '.',
    '-',
    '_',
    '@',
    '#',
    '$',
    '0',
    '9',
    ' ',
];

/// Any string of any chars (proptest's own `String` leaves out controls).
fn any_chars(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

/// A word: a shipped phrase, a nasty char run, or random chars.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(crate::shipped_phrases()),
        2 => prop::collection::vec(select(NASTY), 1..6).prop_map(String::from_iter),
        1 => any_chars(12),
        1 => select(crate::seed_lines("messages.txt")),
    ]
}

/// Messages of every shape, weighted towards ones the intents half know.
pub fn message() -> BoxedStrategy<String> {
    let joined = prop::collection::vec(piece(), 0..12).prop_map(|p| p.join(" "));
    let glued = prop::collection::vec(piece(), 1..6).prop_map(|p| p.concat());
    // Very long: a piece repeated (up to ~30k chars, past any API limit).
    let long = (piece(), 100usize..2000).prop_map(|(p, n)| {
        let p = if p.is_empty() { "x".to_string() } else { p };
        p.repeat(n).chars().take(30_000).collect::<String>()
    });
    let mutated = (
        select(crate::shipped_phrases()),
        any::<u64>(),
        select(NASTY),
    )
        .prop_map(|(p, at, c)| {
            let mut chars: Vec<char> = p.chars().collect();
            let i = (at as usize) % (chars.len() + 1);
            match at % 3 {
                0 => chars.insert(i, c),
                1 if i < chars.len() => chars[i] = c,
                _ if i < chars.len() => {
                    chars.remove(i);
                }
                _ => chars.push(c),
            }
            chars.into_iter().collect()
        });
    prop_oneof![
        5 => joined,
        2 => glued,
        3 => mutated,
        3 => any_chars(64),
        1 => Just(String::new()),
        1 => long,
    ]
    .boxed()
}

/// Every invariant of one outcome.
pub fn check_outcome(o: &Outcome, n_intents: usize) -> Result<(), TestCaseError> {
    let unit = |what: &str, v: f32| -> Result<(), TestCaseError> {
        prop_assert!(
            v.is_finite() && (0.0..=1.0).contains(&v),
            "{what} = {v} is not a confidence in [0, 1]"
        );
        Ok(())
    };
    let r = &o.ranking;
    unit("out_of_scope", r.out_of_scope)?;
    unit("coverage", r.coverage)?;
    // Not a confidence: polite words count against it, so it may be < 0.
    prop_assert!(
        r.frustration.score.is_finite(),
        "frustration score {}",
        r.frustration.score
    );
    if r.frustration.negative {
        prop_assert!(
            matches!(
                o.decision,
                Decision::Handoff {
                    reason: HandoffReason::NegativeSentiment,
                    ..
                }
            ),
            "an upset message is handed off, not {:?}",
            o.decision
        );
    }
    prop_assert_eq!(r.candidates.len(), TOP_N.min(n_intents));
    for c in &r.candidates {
        unit(&format!("{} score", c.intent), c.score)?;
        unit(&format!("{} lexical", c.intent), c.lexical)?;
        unit(&format!("{} rule", c.intent), c.rule)?;
        unit(&format!("{} semantic", c.intent), c.semantic)?;
    }
    for w in r.candidates.windows(2) {
        prop_assert!(w[0].score >= w[1].score, "candidates out of order");
    }
    let known = |id: &str| r.candidates.iter().any(|c| c.intent == id);
    let top = r.candidates.first().map(|c| c.intent.as_str());
    match &o.decision {
        Decision::Answer { intent } => {
            prop_assert_eq!(Some(intent.as_str()), top, "answers the top intent");
        }
        // A short, vague message gets the menu of the set's main topics,
        // which need not be ranked.
        Decision::Clarify { options } if o.reason == Reason::VagueMessage => {
            prop_assert!(
                (2..=decide::MENU_SIZE).contains(&options.len()),
                "{:?}",
                options
            );
            let mut distinct = options.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), options.len(), "{:?}", options);
        }
        Decision::Clarify { options } => {
            prop_assert!(!options.is_empty() && options.len() <= 2, "{:?}", options);
            prop_assert_eq!(Some(options[0].as_str()), top);
            prop_assert!(options.iter().all(|o| known(o)), "{:?}", options);
        }
        Decision::Fallback => {}
        Decision::Handoff { intent, .. } => {
            if let Some(i) = intent {
                prop_assert!(known(i), "handoff names unranked intent {}", i);
            }
        }
    }
    prop_assert!(
        ["answer", "clarify", "fallback", "handoff"].contains(&o.decision.kind()),
        "kind {}",
        o.decision.kind()
    );
    prop_assert!(!o.why().is_empty(), "a decision says why");
    // The stored form agrees with the decision.
    prop_assert_eq!(o.turn().kind.as_str(), o.decision.kind());
    prop_assert!(
        o.turn().confidence.is_finite(),
        "confidence {}",
        o.turn().confidence
    );
    prop_assert_eq!(o.turn().candidates.len(), r.candidates.len());
    Ok(())
}

#[test]
fn classify_arbitrary_text() {
    let classifier = crate::shipped_classifier();
    let n = classifier.intents().intents.len();
    let mut runner = TestRunner::new(crate::config(
        DEFAULT_CASES,
        "tests/fuzz/regressions/classify.txt",
    ));
    runner
        .run(&message(), |text| {
            let outcome = classifier.decide(&text);
            check_outcome(&outcome, n)?;
            // The policy is a pure function of the ranking.
            let again = decide(
                &outcome.ranking,
                classifier.intents(),
                &EscalationPolicy::default(),
            );
            prop_assert_eq!(&again.0, &outcome.decision);
            // Every decision renders as a trace (the bot's log and the
            // agent console show it).
            let trace = frontdesk::conversation::trace::trace(&outcome.turn());
            prop_assert!(!trace.is_empty());
            Ok(())
        })
        .unwrap();
}

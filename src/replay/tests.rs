//! The engine on logs made by the real rules (`step`) with the shipped
//! intents, stored in a `MemStore`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use super::*;
use crate::conversation::{Decide, Texts, Visitor};
use crate::store::MemStore;

const T0: i64 = 1_700_000_000_000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents")
}

fn shipped() -> &'static Classifier {
    static C: OnceLock<Classifier> = OnceLock::new();
    C.get_or_init(|| Classifier::load(&dir()).expect("the shipped intents load"))
}

fn texts() -> &'static Texts {
    static T: OnceLock<Texts> = OnceLock::new();
    T.get_or_init(Texts::default)
}

fn rules<'a>(escalation: &'a EscalationPolicy) -> Rules<'a> {
    Rules {
        escalation,
        texts: texts(),
    }
}

/// Runs `inputs` through the real rules with `classifier` and stores what
/// they produce, one second apart from `at`.
fn converse(store: &MemStore, id: &str, at: i64, inputs: Vec<Input>, classifier: &Classifier) {
    let escalation = EscalationPolicy::default();
    let rules = rules(&escalation);
    store.create(id, at, Visitor::default()).expect("create");
    for (n, input) in inputs.into_iter().enumerate() {
        let log = store.read(id, 0).expect("read");
        let conv = Conversation::from_log(&log);
        let events = step(&conv, input, classifier, &rules).expect("step");
        if !events.is_empty() {
            store
                .append(id, at + 1000 * (n as i64 + 1), events)
                .expect("append");
        }
    }
}

fn say(text: &str) -> Input {
    Input::Visitor {
        text: text.into(),
        client_id: format!("c-{text}"),
    }
}

fn window() -> Window {
    Window {
        from_ms: T0 - 1,
        to_ms: T0 + 86_400_000,
        max_conversations: 100,
        max_differences: usize::MAX,
    }
}

fn run(store: &MemStore, c: &Classifier) -> Report {
    let escalation = EscalationPolicy::default();
    replay(store, &window(), c, &rules(&escalation)).expect("replay")
}

/// A message the shipped set falls back on. ("gift wrapping for presents"
/// no longer does: near misses of known words count as known, "presents".)
const UNKNOWN: &str = "do you offer engraving on jewellery";

/// The shipped set with `example` added to `intent`'s examples.
fn with_example(intent: &str, example: &str) -> Classifier {
    let name = format!("{intent}.toml");
    let text = std::fs::read_to_string(dir().join(&name)).expect("read");
    assert!(text.contains("examples = ["), "{name} has examples");
    let edited = text.replacen("examples = [", &format!("examples = [\n  {example:?},"), 1);
    let files = BTreeMap::from([(name, edited)]);
    edited_classifier(&dir(), &files, &Model::none()).expect("the edit validates")
}

#[test]
fn the_unchanged_set_changes_nothing() {
    let store = MemStore::new();
    let c = shipped();
    converse(
        &store,
        "a",
        T0,
        vec![say("How much is shipping to Canada?"), say(UNKNOWN)],
        c,
    );
    converse(
        &store,
        "b",
        T0 + 10,
        vec![say("where is my order"), say("thanks, bye")],
        c,
    );
    let r = run(&store, c);
    assert_eq!(r.conversations, 2);
    assert_eq!(r.messages, 4);
    assert_eq!(r.changed, 0, "{:#?}", r.differences);
    assert!(r.differences.is_empty());
    assert_eq!(r.before, r.after);
    assert!(r.before.answered >= 2, "{:?}", r.before);
}

#[test]
fn the_stored_fallback_is_seen_as_one() {
    let store = MemStore::new();
    converse(&store, "a", T0, vec![say(UNKNOWN)], shipped());
    let r = run(&store, shipped());
    assert_eq!(r.before.fallbacks, 1, "{:?}", r.before);
    assert_eq!(r.before.answered, 0);
    assert_eq!(r.before.contained, 0);
}

#[test]
fn an_added_example_turns_a_fallback_into_an_answer() {
    let store = MemStore::new();
    converse(
        &store,
        "a",
        T0,
        vec![say("How much is shipping to Canada?"), say(UNKNOWN)],
        shipped(),
    );
    let edited = with_example("gift_card", UNKNOWN);
    let r = run(&store, &edited);
    assert_eq!(r.changed, 1, "{:#?}", r.differences);
    let d = &r.differences[0];
    assert_eq!((d.conversation.as_str(), d.text.as_str()), ("a", UNKNOWN));
    assert_eq!(d.before.kind, Kind::Fallback);
    assert_eq!(d.after.kind, Kind::Answer);
    assert_eq!(d.after.intent.as_deref(), Some("gift_card"));
    assert_eq!(d.change, "fallback_to_answer");
    assert_eq!(
        r.changes,
        vec![Change {
            change: "fallback_to_answer".into(),
            count: 1
        }]
    );
    assert_eq!(r.before.fallbacks - r.after.fallbacks, 1);
    assert_eq!(r.after.answered - r.before.answered, 1);
    assert!(
        d.describe().contains("answered by gift_card"),
        "{}",
        d.describe()
    );
    // The shipping answer was the same before and after.
    let log = store.read("a", 0).expect("read");
    assert!(!r.differences.iter().any(|d| d.seq == log[1].seq));
}

#[test]
fn a_removed_intent_turns_its_answers_into_something_else() {
    let store = MemStore::new();
    converse(
        &store,
        "a",
        T0,
        vec![
            say("How much is shipping to Canada?"),
            say("where is my order"),
        ],
        shipped(),
    );
    // The set without shipping_cost (built straight: no inline tests, some
    // of which may lean on it).
    let tmp = tempfile::tempdir().expect("tmp");
    for e in std::fs::read_dir(dir()).expect("ls").flatten() {
        let name = e.file_name();
        if name != "shipping_cost.toml" {
            std::fs::copy(e.path(), tmp.path().join(&name)).expect("copy");
        }
    }
    let without = Classifier::build(tmp.path(), &Model::none()).expect("build");
    let r = run(&store, &without);
    assert_eq!(r.changed, 1, "{:#?}", r.differences);
    let d = &r.differences[0];
    assert_eq!(d.before.intent.as_deref(), Some("shipping_cost"));
    assert_ne!(d.after.intent.as_deref(), Some("shipping_cost"));
    assert_eq!(
        r.after.answered,
        r.before.answered - usize::from(d.after.kind != Kind::Answer)
    );
}

#[test]
fn messages_held_by_an_agent_are_skipped_and_counted() {
    let store = MemStore::new();
    converse(
        &store,
        "a",
        T0,
        vec![
            say("How much is shipping to Canada?"),
            Input::AskForPerson,
            Input::Claim {
                agent: "ann".into(),
            },
            say(UNKNOWN),
            say("where is my order"),
        ],
        shipped(),
    );
    let edited = with_example("gift_card", UNKNOWN);
    let r = run(&store, &edited);
    assert_eq!(r.messages, 1, "only the first message was the bot's");
    assert_eq!(r.skipped_with_agent, 2);
    assert_eq!(r.changed, 0, "{:#?}", r.differences);
    // Answered but taken over by a person: never contained.
    assert_eq!(r.before.contained, 0);
    assert_eq!(r.after.contained, 0);
}

#[test]
fn a_window_over_the_limit_is_refused() {
    let store = MemStore::new();
    for i in 0..3 {
        converse(&store, &format!("c{i}"), T0 + i, vec![say("hi")], shipped());
    }
    let escalation = EscalationPolicy::default();
    let w = Window {
        max_conversations: 2,
        ..window()
    };
    let e = replay(&store, &w, shipped(), &rules(&escalation)).expect_err("too large");
    assert!(
        matches!(e, ReplayError::TooLarge { found: 3, limit: 2 }),
        "{e}"
    );
    assert!(e.to_string().contains("choose a shorter window"));
}

#[test]
fn messages_outside_the_window_are_not_replayed() {
    let store = MemStore::new();
    converse(&store, "old", T0 - 100_000, vec![say(UNKNOWN)], shipped());
    let edited = with_example("gift_card", UNKNOWN);
    let r = run(&store, &edited);
    assert_eq!((r.conversations, r.messages, r.changed), (0, 0, 0));
}

#[test]
fn a_bad_edit_is_refused_at_its_place() {
    let files = BTreeMap::from([(
        "order_status.toml".to_string(),
        "description = \"x\"\nexamples = [\"a\", 3]\n".to_string(),
    )]);
    let e = edited_classifier(&dir(), &files, &Model::none()).expect_err("invalid");
    let text = e.to_string();
    assert!(text.contains("order_status.toml:2:"), "{text}");
    let files = BTreeMap::from([("../evil.toml".to_string(), String::new())]);
    let e = edited_classifier(&dir(), &files, &Model::none()).expect_err("bad name");
    assert!(e.to_string().contains("not an intent file name"), "{e}");
}

#[test]
fn the_threshold_curve_trades_containment_for_bad_answers() {
    let store = MemStore::new();
    let c = shipped();
    converse(
        &store,
        "a",
        T0,
        vec![say("How much is shipping to Canada?")],
        c,
    );
    converse(
        &store,
        "b",
        T0 + 1,
        vec![say("what are your opening hours")],
        c,
    );
    // Rated not helpful.
    let log = store.read("b", 0).expect("read");
    let answer = log
        .iter()
        .find(|r| matches!(r.event, Event::BotReply { .. }))
        .expect("an answer")
        .seq;
    store
        .append(
            "b",
            T0 + 5000,
            vec![Event::Feedback {
                about: answer,
                helpful: false,
            }],
        )
        .expect("feedback");
    let escalation = EscalationPolicy::default();
    let curve = thresholds(&store, &window(), c, &escalation, &threshold_grid()).expect("curve");
    assert_eq!(curve.conversations, 2);
    assert_eq!(curve.bad_answers_stored, 1);
    let low = &curve.points[0];
    let high = curve.points.last().expect("points");
    assert!(low.threshold < high.threshold);
    assert_eq!(low.answers, 2, "{low:?}");
    assert_eq!(low.bad_answers, 1);
    assert!((low.bad_share - 0.5).abs() < 1e-9);
    assert!((low.containment - 1.0).abs() < 1e-9);
    // A higher bar answers no more than a lower one.
    for w in curve.points.windows(2) {
        assert!(w[1].answers <= w[0].answers, "{:?}", curve.points);
    }
}

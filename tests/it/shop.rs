//! The default shop intents behave as a shop needs: inline tests pass,
//! off-topic messages fall back, requests for a person and angry messages
//! hand off.

use frontdesk::classify::Classifier;
use frontdesk::conversation::{Decide, Decision, HandoffReason};

use super::default_intents;

fn shop() -> Classifier {
    match Classifier::load(default_intents()) {
        Ok(c) => c,
        Err(e) => panic!("default intents must load and pass their tests:\n{e}"),
    }
}

#[test]
fn default_intents_load_and_pass_their_tests() {
    let c = shop();
    assert!(c.intents().intents.len() >= 18);
    for i in &c.intents().intents {
        assert!(
            i.examples.len() >= 12,
            "{} has {} examples",
            i.id,
            i.examples.len()
        );
        assert!(i.tests.len() >= 5, "{} has {} tests", i.id, i.tests.len());
    }
}

#[test]
fn off_topic_messages_fall_back() {
    let c = shop();
    for text in [
        "do you ship to mars",
        "who will win the election",
        "recommend a podcast",
    ] {
        let o = c.decide(text);
        assert_eq!(o.decision, Decision::Fallback, "{text}: {:?}", o);
    }
}

#[test]
fn asking_for_a_person_hands_off() {
    let c = shop();
    for text in [
        "can a human take over?",
        "put me through to your support staff",
    ] {
        let o = c.decide(text);
        assert_eq!(
            o.decision,
            Decision::Handoff {
                reason: HandoffReason::Asked,
                intent: Some("human_agent".into())
            },
            "{text}: {}",
            o.why()
        );
    }
}

#[test]
fn an_angry_message_hands_off_with_its_cues() {
    let c = shop();
    let o = c.decide("THIS IS A JOKE, nobody ever replies!!!");
    assert!(
        matches!(
            o.decision,
            Decision::Handoff {
                reason: HandoffReason::NegativeSentiment,
                ..
            }
        ),
        "{:?}",
        o.decision
    );
    assert!(o.why().contains("shouting"), "{}", o.why());
}

#[test]
fn order_number_fills_the_slot() {
    let c = shop();
    let o = c.decide("where is my order 12345678?");
    assert_eq!(
        o.decision,
        Decision::Answer {
            intent: "order_status".into()
        },
        "{}",
        o.why()
    );
    let top = &o.ranking.candidates[0];
    assert!(
        top.slots.contains(&("order_id".into(), "12345678".into())),
        "{:?}",
        top.slots
    );
}

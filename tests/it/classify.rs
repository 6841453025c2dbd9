//! Fusion of the layers: rules raise an intent without erasing the others'
//! evidence; pattern groups fill slots; evidence names what matched.

use frontdesk::classify::{Classifier, Evidence};
use frontdesk::conversation::{Decide, Decision};

use super::intent_dir;

fn two_intents() -> (tempfile::TempDir, Classifier) {
    let ship = "description = \"Shipping cost\"\nanswer = \"a\"\nkeywords = [\"postage\"]\npatterns = ['ship(ping)? to (?P<country>[a-z]+)']\nexamples = [\"how much is shipping\", \"shipping price\", \"what does delivery cost\"]\n";
    let track = "description = \"Where is my order\"\nanswer = \"a\"\nexamples = [\"where is my order\", \"track my order\", \"has my order shipped\", \"where is my parcel\"]\n";
    let dir = intent_dir(&[("ship.toml", ship), ("track.toml", track)]);
    let c = Classifier::load(dir.path()).expect("loads");
    (dir, c)
}

#[test]
fn a_rule_hit_keeps_the_other_evidence() {
    let (_d, c) = two_intents();
    // Lexically a tracking question, but it says a shipping keyword.
    let r = c.classify("where is my order, and the postage?");
    let ship = r.candidates.iter().find(|x| x.intent == "ship").unwrap();
    let track = r.candidates.iter().find(|x| x.intent == "track").unwrap();
    assert!(
        ship.evidence.contains(&Evidence::Keyword {
            phrase: "postage".into()
        }),
        "{ship:?}"
    );
    assert!(ship.rule > 0.0 && track.rule == 0.0);
    assert!(track.lexical > ship.lexical, "{r:?}");
    assert!(
        track
            .evidence
            .iter()
            .any(|e| matches!(e, Evidence::Example { text, .. } if text == "where is my order")),
        "{track:?}"
    );
}

#[test]
fn keywords_match_whole_words_only() {
    let (_d, c) = two_intents();
    let r = c.classify("postages and impostage");
    let ship = r.candidates.iter().find(|x| x.intent == "ship").unwrap();
    assert_eq!(ship.rule, 0.0, "{ship:?}");
}

#[test]
fn pattern_groups_fill_slots() {
    let (_d, c) = two_intents();
    let o = c.decide("Do you ship to Canada?");
    let ship = o
        .ranking
        .candidates
        .iter()
        .find(|x| x.intent == "ship")
        .unwrap();
    assert!(
        ship.slots.contains(&("country".into(), "canada".into())),
        "{ship:?}"
    );
    assert!(ship
        .evidence
        .iter()
        .any(|e| matches!(e, Evidence::Pattern { index: 0, .. })));
    assert_eq!(
        o.decision,
        Decision::Answer {
            intent: "ship".into()
        },
        "{}",
        o.why()
    );
}

#[test]
fn scores_are_probabilities_and_ranked() {
    let (_d, c) = two_intents();
    for text in [
        "",
        "!!!",
        "where is my order",
        "ünïcödé ☕ 12345678",
        &"a".repeat(10_000),
    ] {
        let r = c.classify(text);
        for w in r.candidates.windows(2) {
            assert!(w[0].score >= w[1].score);
        }
        for x in &r.candidates {
            assert!((0.0..=1.0).contains(&x.score), "{text:?}: {x:?}");
        }
        assert!((0.0..=1.0).contains(&r.coverage));
    }
}

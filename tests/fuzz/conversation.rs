//! `conversation::step` on arbitrary input sequences, the events folded
//! into the state the way the app does (a handoff into the queue gets a
//! `Queued` notice after its batch; sequence numbers follow the state's
//! last one). Invariants: the bot never speaks while the conversation is
//! queued, with an agent or closed; a closed conversation reopens only by
//! the visitor (a message, or "Talk to a person", which the rules accept
//! on a closed conversation on purpose), never by an agent or the bot,
//! and a reopened conversation can be rated again; sequence numbers are
//! gap-free; the state is the fold of the log and nothing else.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;

use frontdesk::conversation::{
    step, Conversation, EscalationPolicy, Event, HandoffReason, Input, Language, Phase, Record,
    Rules, Texts, Visitor,
};

const DEFAULT_CASES: u32 = 1000;

const AGENTS: &[&str] = &["ann", "bob", "cy"];

/// What the visitor types: arbitrary messages, and the words the rules
/// listen for (yes/no to an offer, picks of "Did you mean", order numbers).
fn visitor_text() -> BoxedStrategy<String> {
    let words: &[&str] = &[
        "yes",
        "no",
        "ok",
        "nope",
        "neither",
        "none of these",
        "bye",
        "talk to a person",
        "where is my order",
        "my order number is 48213977",
        "48213977",
        "this is ridiculous, nobody helps!!!",
        "asdf qwerty",
        "what is the weather",
        // The German quick replies and answers (`[texts] language = "de"`).
        "Ja, bitte",
        "Nein, danke",
        "ja",
        "keine davon",
    ];
    prop_oneof![
        3 => crate::classify::message(),
        3 => select(words).prop_map(str::to_string),
        2 => select(crate::shipped_phrases()),
    ]
    .boxed()
}

fn agent() -> impl Strategy<Value = String> {
    select(AGENTS).prop_map(str::to_string)
}

fn input() -> impl Strategy<Value = Input> {
    let email = prop_oneof![
        Just("ada@example.com".to_string()),
        Just(" ada@example.com ".to_string()),
        Just("not an email".to_string()),
        Just("a@.b".to_string()),
        crate::classify::message(),
    ];
    prop_oneof![
        // Few client ids, so retries of a stored message happen.
        8 => (visitor_text(), 0u8..12).prop_map(|(text, c)| Input::Visitor {
            text,
            client_id: format!("c{c}"),
        }),
        2 => Just(Input::AskForPerson),
        2 => agent().prop_map(|agent| Input::Claim { agent }),
        2 => (agent(), crate::classify::message())
            .prop_map(|(agent, text)| Input::AgentMessage { agent, text }),
        1 => (agent(), crate::classify::message())
            .prop_map(|(agent, text)| Input::Note { agent, text }),
        1 => (agent(), agent()).prop_map(|(from, to)| Input::Transfer { from, to }),
        1 => agent().prop_map(|agent| Input::ReturnToBot { agent }),
        2 => agent().prop_map(|agent| Input::Close { agent }),
        2 => (0u8..8, prop::option::of("[a-z ]{0,12}"))
            .prop_map(|(score, comment)| Input::Rate { score, comment }),
        1 => email.prop_map(|email| Input::LeaveEmail { email }),
        // Low seqs, so some name a bot answer and some name anything else.
        2 => (0u64..24, any::<bool>())
            .prop_map(|(about, helpful)| Input::Feedback { about, helpful }),
    ]
}

fn escalation() -> impl Strategy<Value = EscalationPolicy> {
    (0u32..4, any::<bool>(), any::<bool>()).prop_map(
        |(max_fallbacks, on_negative_sentiment, offer_first)| EscalationPolicy {
            max_fallbacks,
            on_negative_sentiment,
            offer_first,
        },
    )
}

/// Events only the bot produces.
fn from_bot(e: &Event) -> bool {
    matches!(
        e,
        Event::BotReply { .. }
            | Event::Clarification { .. }
            | Event::SlotPrompt { .. }
            | Event::Fallback { .. }
            | Event::HandoffOffered { .. }
    )
}

/// A log and its state, grown the way the app grows them.
struct Chat {
    log: Vec<Record>,
    conv: Conversation,
    clock: i64,
}

impl Chat {
    fn new(name: Option<String>) -> Chat {
        let mut c = Chat {
            log: Vec::new(),
            conv: Conversation::default(),
            clock: 1_700_000_000_000,
        };
        c.append(
            Event::Started {
                visitor: Visitor {
                    name,
                    ..Visitor::default()
                },
            },
            false,
        )
        .expect("a fresh conversation starts");
        c
    }

    /// Stores one event with the next sequence number and folds it in,
    /// checking the rules that hold event by event.
    /// `by_visitor`: the input came from the visitor (a message or
    /// "Talk to a person").
    fn append(&mut self, event: Event, by_visitor: bool) -> Result<(), TestCaseError> {
        let before = self.conv.phase.clone();
        // "Not helpful" on an answer after the close offers a person
        // (`machine::feedback`): the one time the bot speaks in a closed
        // conversation without reopening it.
        let offer_after_no = before == Phase::Closed
            && matches!(event, Event::HandoffOffered { .. })
            && matches!(
                self.log.last().map(|r| &r.event),
                Some(Event::Feedback { helpful: false, .. })
            );
        if from_bot(&event) && !offer_after_no {
            prop_assert!(
                before == Phase::Bot,
                "the bot speaks ({:?}) while the conversation is {}",
                event,
                before.as_str()
            );
        }
        self.clock += 1000;
        let record = Record {
            seq: self.conv.last_seq + 1,
            at_ms: self.clock,
            event,
        };
        self.conv.apply(&record);
        if before == Phase::Closed && self.conv.phase != Phase::Closed {
            prop_assert!(
                by_visitor
                    && matches!(
                        record.event,
                        Event::VisitorMessage { .. }
                            | Event::Handoff {
                                reason: HandoffReason::Asked,
                                ..
                            }
                    ),
                "a closed conversation was reopened by {:?} (now {})",
                record.event,
                self.conv.phase.as_str()
            );
            // A new session: its close may be rated like the first.
            prop_assert!(
                !self.conv.rated,
                "reopened by {:?} but still marked rated: its next close cannot be rated",
                record.event
            );
        }
        self.log.push(record);
        Ok(())
    }
}

#[test]
fn step_arbitrary_sequences() {
    let classifier = crate::shipped_classifier();
    // The rules run with the English texts or the German ones.
    let texts = [Texts::builtin(Language::En), Texts::builtin(Language::De)];
    let strategy = (
        (escalation(), 0..texts.len()),
        prop::option::of("[A-Za-z]{1,8}"),
        prop::collection::vec(input(), 1..40),
    );
    let mut runner = TestRunner::new(crate::config(
        DEFAULT_CASES,
        "tests/fuzz/regressions/conversation.txt",
    ));
    runner
        .run(&strategy, |((policy, language), name, inputs)| {
            let mut chat = Chat::new(name);
            for input in inputs {
                let before = chat.conv.clone();
                let retry = matches!(&input, Input::Visitor { client_id, .. }
                    if before.client_ids.contains(client_id));
                let rules = Rules {
                    escalation: &policy,
                    texts: &texts[language],
                };
                let Ok(events) = step(&before, input.clone(), &classifier, &rules) else {
                    // A refused input changes nothing (the app answers 4xx).
                    continue;
                };
                if retry {
                    prop_assert!(events.is_empty(), "a retried message is stored once");
                }
                if matches!(before.phase, Phase::Queued { .. } | Phase::WithAgent { .. }) {
                    prop_assert!(
                        !events.iter().any(from_bot),
                        "the bot answers while {}: {:?}",
                        before.phase.as_str(),
                        events
                    );
                }
                if let Input::Visitor { .. } = &input {
                    if !retry {
                        prop_assert!(
                            matches!(events.first(), Some(Event::VisitorMessage { .. })),
                            "a visitor message is stored first: {:?}",
                            events
                        );
                    }
                }
                // The app queues every handoff except an agent's takeover
                // and tells the visitor their place after the batch.
                let queued = events.iter().any(|e| {
                    matches!(e, Event::Handoff { reason, .. } if *reason != HandoffReason::AgentTookOver)
                });
                let by_visitor = matches!(input, Input::Visitor { .. } | Input::AskForPerson);
                for e in events {
                    chat.append(e, by_visitor)?;
                }
                if queued {
                    chat.append(
                        Event::Queued {
                            position: 1,
                            wait_secs: None,
                        },
                        false,
                    )?;
                }
            }
            for (i, r) in chat.log.iter().enumerate() {
                prop_assert_eq!(r.seq, i as u64 + 1, "sequence numbers are gap-free");
            }
            prop_assert_eq!(
                chat.conv.last_seq,
                chat.log.len() as u64,
                "the state's last seq is the log's last"
            );
            // The state is derived from the log alone (a restart sees the
            // same conversation).
            prop_assert_eq!(&Conversation::from_log(&chat.log), &chat.conv);
            Ok(())
        })
        .unwrap();
}

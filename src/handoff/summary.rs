use crate::conversation::HandoffReason;
use crate::conversation::{Conversation, Phase, Visitor};

/// What an agent reads at the top of a handed-off transcript.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub reason: Option<HandoffReason>,
    /// Intents the bot recognised, first seen first, without repeats.
    pub intents: Vec<String>,
    /// Slot values gathered: (intent, slot, value).
    pub slots: Vec<(String, String, String)>,
    pub visitor: Visitor,
    /// Seconds since the handoff, if one is under way.
    pub waited_secs: Option<u64>,
}

impl Summary {
    pub fn of(conv: &Conversation, now_ms: i64) -> Summary {
        let mut intents: Vec<String> = Vec::new();
        for i in &conv.intents_seen {
            if !intents.contains(i) {
                intents.push(i.clone());
            }
        }
        Summary {
            reason: match &conv.phase {
                Phase::Queued { reason } => Some(*reason),
                _ => conv.handoff_reason,
            },
            intents,
            slots: conv
                .slots
                .iter()
                .map(|((i, s), v)| (i.clone(), s.clone(), v.clone()))
                .collect(),
            visitor: conv.visitor.clone(),
            waited_secs: conv
                .handoff_at_ms
                .map(|t| (now_ms.saturating_sub(t).max(0) / 1000) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Event, Record};

    fn rec(seq: u64, at_ms: i64, event: Event) -> Record {
        Record { seq, at_ms, event }
    }

    #[test]
    fn summary_has_reason_intents_slots_visitor_and_wait() {
        let visitor = Visitor {
            name: Some("Ada".into()),
            page_url: Some("https://shop.example/cart".into()),
            ..Visitor::default()
        };
        let reply = |intent: &str, slots: Vec<(String, String)>| Event::BotReply {
            text: "x".into(),
            intent: Some(intent.into()),
            confidence: 0.9,
            trace: String::new(),
            quick_replies: vec![],
            slots,
            decision: None,
        };
        let log = vec![
            rec(
                1,
                0,
                Event::Started {
                    visitor: visitor.clone(),
                },
            ),
            rec(
                2,
                1_000,
                reply("order_status", vec![("order_id".into(), "12345678".into())]),
            ),
            rec(3, 2_000, reply("shipping_cost", vec![])),
            rec(4, 3_000, reply("order_status", vec![])),
            rec(
                5,
                4_000,
                Event::Handoff {
                    reason: HandoffReason::NegativeSentiment,
                    decision: None,
                },
            ),
        ];
        let s = Summary::of(&Conversation::from_log(&log), 94_000);
        assert_eq!(s.reason, Some(HandoffReason::NegativeSentiment));
        assert_eq!(s.intents, ["order_status", "shipping_cost"]);
        assert_eq!(
            s.slots,
            [("order_status".into(), "order_id".into(), "12345678".into())]
        );
        assert_eq!(s.visitor, visitor);
        assert_eq!(s.waited_secs, Some(90));
        // The reason stays once an agent joins; the wait stops counting at close.
        let mut log = log;
        log.push(rec(
            6,
            5_000,
            Event::AgentJoined {
                agent: "alex".into(),
            },
        ));
        assert_eq!(
            Summary::of(&Conversation::from_log(&log), 9_000).reason,
            Some(HandoffReason::NegativeSentiment)
        );
        log.push(rec(7, 6_000, Event::Closed { by: "alex".into() }));
        assert_eq!(
            Summary::of(&Conversation::from_log(&log), 9_000).waited_secs,
            None
        );
    }
}

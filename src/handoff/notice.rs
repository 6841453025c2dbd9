//! What a visitor is told when their conversation is queued: the place and
//! the estimated wait, or, outside business hours or with nobody online, an
//! honest word on when a person will reply and an offer to leave an email.

use super::{BusinessHours, Queue};
use crate::conversation::Event;

/// Quick reply offered when nobody can answer now.
pub const LEAVE_EMAIL: &str = "Leave my email";

/// The events that tell the visitor of `conversation` where they stand.
pub fn queue_notice(
    queue: &Queue,
    hours: Option<&BusinessHours>,
    conversation: &str,
    now_ms: i64,
) -> Vec<Event> {
    let Some(position) = queue.position(conversation) else {
        return Vec::new();
    };
    let closed = hours.is_some_and(|h| !h.is_open(now_ms));
    let nobody = queue.online() == 0;
    let wait_secs = if closed || nobody {
        None
    } else {
        queue.estimate_wait_secs(position)
    };
    let mut events = vec![Event::Queued {
        position,
        wait_secs,
    }];
    let when = || {
        hours
            .and_then(|h| h.next_open_ms(now_ms))
            .and_then(|t| hours.and_then(|h| h.describe(t)))
    };
    let text = if closed {
        Some(match when() {
            Some(at) => format!(
                "We're closed right now. A person will reply when we open, {at}. Your message is saved; leave your email if you'd like the answer there too."
            ),
            None => "We're closed right now. Your message is saved and a person will reply as soon as we can; leave your email if you'd like the answer there too.".to_string(),
        })
    } else if nobody {
        Some("Nobody from the team is available at this moment. Your message is saved and a person will reply as soon as someone is back; leave your email if you'd like the answer there too.".to_string())
    } else {
        None
    };
    if let Some(text) = text {
        events.push(Event::BotReply {
            text,
            intent: None,
            confidence: 1.0,
            trace: "queued outside hours or with nobody online".into(),
            quick_replies: vec![LEAVE_EMAIL.into()],
            slots: vec![],
            // A notice about the queue, not a decision on a message.
            decision: None,
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::HandoffReason;
    use crate::handoff::{Presence, RawHours};

    fn weekdays_9_to_5() -> BusinessHours {
        let p = || vec!["09:00-17:00".to_string()];
        BusinessHours::new(&RawHours {
            timezone: "UTC".into(),
            monday: p(),
            tuesday: p(),
            wednesday: p(),
            thursday: p(),
            friday: p(),
            saturday: vec![],
            sunday: vec![],
            closed: vec![],
        })
        .unwrap()
    }

    // 2026-11-23 (Monday) 10:00 and 20:00 UTC.
    const MONDAY_10: i64 = 1_795_428_000_000;
    const MONDAY_20: i64 = MONDAY_10 + 10 * 3_600_000;

    #[test]
    fn open_with_agents_tells_position_and_wait() {
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 1);
        q.claim("alex", "busy", true).unwrap();
        q.enqueue("a", HandoffReason::Asked, MONDAY_10);
        let got = queue_notice(&q, Some(&weekdays_9_to_5()), "a", MONDAY_10);
        assert_eq!(
            got,
            vec![Event::Queued {
                position: 1,
                wait_secs: Some(300)
            }]
        );
    }

    #[test]
    fn closed_says_when_we_open_and_offers_email() {
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 1);
        q.enqueue("a", HandoffReason::Asked, MONDAY_20);
        let got = queue_notice(&q, Some(&weekdays_9_to_5()), "a", MONDAY_20);
        assert_eq!(
            got[0],
            Event::Queued {
                position: 1,
                wait_secs: None
            }
        );
        match &got[1] {
            Event::BotReply {
                text,
                quick_replies,
                ..
            } => {
                assert!(text.contains("Tuesday 09:00 (UTC)"), "{text}");
                assert_eq!(quick_replies, &[LEAVE_EMAIL.to_string()]);
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn open_but_nobody_online_is_said_so() {
        let mut q = Queue::default();
        q.enqueue("a", HandoffReason::Asked, MONDAY_10);
        let got = queue_notice(&q, None, "a", MONDAY_10);
        assert_eq!(
            got[0],
            Event::Queued {
                position: 1,
                wait_secs: None
            }
        );
        assert!(
            matches!(&got[1], Event::BotReply { text, .. } if text.contains("Nobody from the team"))
        );
        assert!(queue_notice(&q, None, "not-queued", MONDAY_10).is_empty());
    }
}

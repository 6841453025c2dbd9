//! What a visitor is told when their conversation is queued: the place and
//! the estimated wait, or, outside business hours or with nobody online, an
//! honest word on when a person will reply and an offer to leave an email.

use super::{BusinessHours, Queue};
use crate::conversation::{Event, Texts};

/// The events that tell the visitor of `conversation` where they stand, in
/// the words of `texts`. `email`: whether emails can be sent (`[email]`);
/// only then is the visitor invited to leave an address.
pub fn queue_notice(
    queue: &Queue,
    hours: Option<&BusinessHours>,
    conversation: &str,
    now_ms: i64,
    texts: &Texts,
    email: bool,
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
        let h = hours?;
        h.describe(h.next_open_ms(now_ms)?, texts)
    };
    let text = if closed {
        Some(match when() {
            Some(opens) => {
                crate::conversation::texts::fill(&texts.queue_closed_until, &[("opens", &opens)])
            }
            None => texts.queue_closed.clone(),
        })
    } else if nobody {
        Some(texts.queue_nobody.clone())
    } else {
        None
    };
    if let Some(mut text) = text {
        if email {
            text.push(' ');
            text.push_str(&texts.queue_email_offer);
        }
        events.push(Event::BotReply {
            text,
            intent: None,
            confidence: 1.0,
            trace: "queued outside hours or with nobody online".into(),
            quick_replies: if email {
                vec![texts.leave_email.clone()]
            } else {
                Vec::new()
            },
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
    use crate::conversation::{HandoffReason, Language};
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

    fn en() -> Texts {
        Texts::default()
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
        let got = queue_notice(&q, Some(&weekdays_9_to_5()), "a", MONDAY_10, &en(), true);
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
        let got = queue_notice(&q, Some(&weekdays_9_to_5()), "a", MONDAY_20, &en(), true);
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
                assert_eq!(quick_replies, &["Leave my email".to_string()]);
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn open_but_nobody_online_is_said_so() {
        let mut q = Queue::default();
        q.enqueue("a", HandoffReason::Asked, MONDAY_10);
        let got = queue_notice(&q, None, "a", MONDAY_10, &en(), true);
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
        assert!(queue_notice(&q, None, "not-queued", MONDAY_10, &en(), true).is_empty());
    }

    #[test]
    fn german_notices_are_german_with_german_weekdays() {
        let de = Texts::builtin(Language::De);
        let mut q = Queue::default();
        q.set_agent("alex", Presence::Online, 1);
        q.enqueue("a", HandoffReason::Asked, MONDAY_20);
        let got = queue_notice(&q, Some(&weekdays_9_to_5()), "a", MONDAY_20, &de, true);
        match &got[1] {
            Event::BotReply {
                text,
                quick_replies,
                ..
            } => {
                assert!(text.starts_with("Wir haben gerade geschlossen."), "{text}");
                assert!(text.contains("Dienstag um 09:00 Uhr (UTC)"), "{text}");
                assert_eq!(quick_replies, std::slice::from_ref(&de.leave_email));
            }
            e => panic!("{e:?}"),
        }
        let mut q = Queue::default();
        q.enqueue("a", HandoffReason::Asked, MONDAY_10);
        let got = queue_notice(&q, None, "a", MONDAY_10, &de, false);
        assert!(
            matches!(&got[1], Event::BotReply { text, .. } if *text == de.queue_nobody),
            "{got:?}"
        );
    }

    /// Without an SMTP server (`[email]`) nobody is told to leave an
    /// address: the reply could never be sent.
    #[test]
    fn no_email_offer_without_a_mail_server() {
        let mut q = Queue::default();
        q.enqueue("a", HandoffReason::Asked, MONDAY_10);
        let texts = en();
        match &queue_notice(&q, None, "a", MONDAY_10, &texts, false)[1] {
            Event::BotReply {
                text,
                quick_replies,
                ..
            } => {
                assert_eq!(*text, texts.queue_nobody);
                assert!(!text.to_lowercase().contains("email"), "{text}");
                assert!(quick_replies.is_empty());
            }
            e => panic!("{e:?}"),
        }
        match &queue_notice(&q, None, "a", MONDAY_10, &texts, true)[1] {
            Event::BotReply {
                text,
                quick_replies,
                ..
            } => {
                assert!(text.ends_with(&texts.queue_email_offer), "{text}");
                assert_eq!(quick_replies, std::slice::from_ref(&texts.leave_email));
            }
            e => panic!("{e:?}"),
        }
    }
}

//! The fold and the formulas on hand-made logs whose answers are worked
//! out by hand in the comments.

use jiff::civil::date;

use super::*;
use crate::config::Reports;
use crate::conversation::turn::{Reason, Turn as Decision, TurnKind};
use crate::conversation::{Event, HandoffReason, Record, Visitor};
use crate::handoff::{BusinessHours, RawHours};
use crate::store::{MemStore, Store};

const S: i64 = 1_000;
const MIN: i64 = 60 * S;
const DAY: i64 = 86_400_000;

/// 2026-06-01 00:00 UTC (a Monday).
const JUNE_1: i64 = 1_780_272_000_000;

/// A log built event by event; `at` moves the clock.
struct Log {
    records: Vec<Record>,
    now: i64,
}

impl Log {
    fn start(at: i64, visitor: Visitor) -> Log {
        let mut l = Log {
            records: Vec::new(),
            now: at,
        };
        l.push(Event::Started { visitor });
        l
    }
    fn at(mut self, dt: i64) -> Log {
        self.now += dt;
        self
    }
    fn push(&mut self, event: Event) {
        self.records.push(Record {
            seq: self.records.len() as u64 + 1,
            at_ms: self.now,
            event,
        });
    }
    fn e(mut self, event: Event) -> Log {
        self.push(event);
        self
    }
    fn msg(self, text: &str) -> Log {
        let n = self.records.len();
        self.e(Event::VisitorMessage {
            text: text.into(),
            client_id: format!("m{n}"),
        })
    }
    fn reply(self, intent: &str) -> Log {
        self.e(Event::BotReply {
            text: "answer".into(),
            intent: Some(intent.into()),
            confidence: 0.9,
            trace: String::new(),
            quick_replies: vec![],
            slots: vec![],
            decision: None,
        })
    }
    fn fallback(self, reason: Option<Reason>) -> Log {
        self.e(Event::Fallback {
            text: "sorry".into(),
            trace: String::new(),
            decision: reason.map(|reason| {
                Box::new(Decision {
                    kind: TurnKind::Fallback,
                    intent: None,
                    options: vec![],
                    confidence: 0.1,
                    candidates: vec![],
                    thresholds: None,
                    signals: None,
                    reason,
                    detail: None,
                    action: None,
                })
            }),
        })
    }
    fn clarify(self) -> Log {
        self.e(Event::Clarification {
            text: "did you mean".into(),
            options: vec!["a".into(), "b".into()],
            quick_replies: vec![],
            decision: None,
        })
    }
    fn handoff(self, reason: HandoffReason) -> Log {
        self.e(Event::Handoff {
            reason,
            decision: None,
        })
    }
    fn joined(self, agent: &str) -> Log {
        self.e(Event::AgentJoined {
            agent: agent.into(),
        })
    }
    fn says(self, agent: &str) -> Log {
        self.e(Event::AgentMessage {
            agent: agent.into(),
            text: "hello".into(),
        })
    }
    fn closed(self, by: &str) -> Log {
        self.e(Event::Closed { by: by.into() })
    }
    fn rated(self, score: u8, comment: Option<&str>) -> Log {
        self.e(Event::Rating {
            score,
            comment: comment.map(String::from),
        })
    }
    fn feedback(self, about: u64, helpful: bool) -> Log {
        self.e(Event::Feedback { about, helpful })
    }
    fn facts(&self, id: &str) -> Facts {
        fold(id, &self.records)
    }
}

fn who(id: Option<&str>, email: Option<&str>) -> Visitor {
    Visitor {
        name: None,
        id: id.map(String::from),
        email: email.map(String::from),
        page_url: None,
        verified: false,
    }
}

fn june() -> Period {
    Period::new(date(2026, 6, 1), date(2026, 6, 7)).unwrap()
}

/// The week of the module comment in `scripted`: 9 conversations.
fn week() -> Vec<Facts> {
    let d = |n: i64| JUNE_1 + n * DAY + 10 * 60 * MIN;
    vec![
        // Contained, confirmed (helpful on the answer at seq 3), durable.
        Log::start(d(0), who(Some("v1"), None))
            .msg("where is my order")
            .at(S)
            .reply("order_status")
            .at(S)
            .feedback(3, true)
            .facts("c1"),
        // Contained, assumed; first message a fallback; the visitor comes
        // back (c5) three days later: not durable.
        Log::start(d(1), who(None, Some("A@x.com")))
            .msg("hm")
            .fallback(None)
            .at(S)
            .msg("shipping to canada")
            .reply("shipping_cost")
            .facts("c2"),
        // Contained, unhelpful (a later "helpful" on nothing answered is
        // ignored); anonymous.
        Log::start(d(1), Visitor::default())
            .msg("return")
            .clarify()
            .msg("returns policy")
            .reply("returns")
            .feedback(5, false)
            .feedback(2, true)
            .facts("c3"),
        // Asked for a person: wait 30 s, first response 90 s, closed by
        // alex 300 s after the start, rated 5: FCR.
        Log::start(d(2), who(Some("v4"), None))
            .msg("a person please")
            .at(10 * S)
            .handoff(HandoffReason::Asked)
            .at(30 * S)
            .joined("alex")
            .at(20 * S)
            .msg("still there?")
            .at(40 * S)
            .says("alex")
            .at(200 * S)
            .closed("alex")
            .rated(5, Some("great"))
            .facts("c4"),
        // c2's visitor, upset, never answered.
        Log::start(d(4), who(None, Some(" a@x.com ")))
            .msg("this is useless")
            .handoff(HandoffReason::NegativeSentiment)
            .facts("c5"),
        // No visitor message: not in the cohort.
        Log::start(d(5), Visitor::default()).facts("c6"),
        // Abandoned after a fallback.
        Log::start(d(5), Visitor::default())
            .msg("asdf")
            .fallback(Some(Reason::OutOfScope))
            .facts("c7"),
        // Outside the window (c1's visitor, too late to matter).
        Log::start(d(19), who(Some("v1"), None))
            .msg("hello again")
            .facts("c8"),
        // Taken over by bob, transferred to carol: two agents, not FCR.
        Log::start(d(6), who(Some("v9"), None))
            .msg("order?")
            .reply("order_status")
            .at(60 * S)
            .handoff(HandoffReason::AgentTookOver)
            .joined("bob")
            .at(10 * S)
            .says("bob")
            .e(Event::Transfer {
                from: "bob".into(),
                to: "carol".into(),
            })
            .at(130 * S)
            .closed("carol")
            .rated(2, None)
            .facts("c9"),
    ]
}

/// Long after June: every look-ahead has ended, nothing is pending.
const LATER: i64 = JUNE_1 + 60 * DAY;

fn compute(facts: &[Facts]) -> Report {
    compute_at(facts, LATER)
}

fn compute_at(facts: &[Facts], now_ms: i64) -> Report {
    Report::compute(
        facts,
        &june(),
        &Zone::of(None),
        Reports::default(),
        &StartsOf::new(facts),
        now_ms,
    )
}

#[test]
fn the_scripted_week_adds_up() {
    let r = compute(&week());
    assert_eq!(
        (
            r.cohort.started,
            r.cohort.without_visitor_message,
            r.cohort.conversations
        ),
        (8, 1, 7)
    );
    let o = &r.outcomes;
    assert_eq!(
        (o.contained.num, o.handed_off.num, o.abandoned.num),
        (3, 3, 1)
    );
    assert_eq!(o.contained.num + o.handed_off.num + o.abandoned.num, 7);
    assert_eq!(o.contained.den, 7);
    assert_eq!((o.confirmed.num, o.assumed.num, o.unhelpful.num), (1, 1, 1));
    assert_eq!(o.confirmed.den, 3);
    assert_eq!(
        (o.durable.num, o.durable.den, o.contained_anonymous),
        (1, 2, 1)
    );

    let reasons: Vec<(String, u64)> = r
        .handoff_reasons
        .iter()
        .map(|c| (c.reason.clone(), c.rate.num))
        .collect();
    assert_eq!(
        reasons,
        [
            ("asked".to_string(), 1),
            ("negative_sentiment".into(), 1),
            ("repeated_fallback".into(), 0),
            ("low_confidence".into(), 0),
            ("intent_action".into(), 0),
            ("agent_took_over".into(), 1),
            ("backend_error".into(), 0)
        ]
    );
    assert_eq!(r.handoff_reasons[0].share, Rate::new(1, 3));

    let m = &r.messages;
    assert_eq!(m.visitor_messages, 10);
    assert_eq!(
        (m.first.messages, m.first.fallback.num, m.first.clarify.num),
        (7, 2, 1)
    );
    // c4's second message went to a person: in neither rate.
    assert_eq!(
        (m.later.messages, m.later.fallback.num, m.later.clarify.num),
        (2, 0, 0)
    );
    assert_eq!(m.all.fallback, Rate::new(2, 9));

    let h = &r.human;
    // c9 was bob's takeover: nobody waited, no sample. c4 waited 30 s
    // for alex and 90 s for his first message; c5 was never answered.
    assert_eq!(h.wait.clock.count, 1);
    assert_eq!(h.wait.clock.median_ms, Some(30 * S));
    assert_eq!(h.wait.clock.p90_ms, Some(30 * S));
    assert_eq!(h.wait.clock.within_60s, Rate::new(1, 1));
    assert_eq!(h.first_response.clock.median_ms, Some(90 * S));
    assert_eq!(h.first_response.clock.p90_ms, Some(90 * S));
    assert_eq!(h.first_response.clock.within_60s, Rate::new(0, 1));
    // No schedule: business time is clock time.
    assert_eq!(h.first_response.business, h.first_response.clock);
    assert_eq!(h.never_answered, Rate::new(1, 2));
    assert_eq!(h.never_joined, 1);
    assert_eq!(h.takeovers, 1);
    // c4: 300 s (10 s bot, 290 s human); c9: 200 s (60 s bot, 140 s human).
    assert_eq!(h.resolution.total.clock.median_ms, Some(200 * S));
    assert_eq!(h.resolution.total.clock.p90_ms, Some(300 * S));
    assert_eq!(h.resolution.bot.clock.median_ms, Some(10 * S));
    assert_eq!(h.resolution.human.clock.p90_ms, Some(290 * S));

    assert_eq!(r.fcr.rate, Rate::new(1, 2));
    assert_eq!(r.csat.all.positive, Rate::new(1, 2));
    assert_eq!(r.csat.all.response, Rate::new(2, 2));
    assert_eq!(r.csat.bot_only.response, Rate::new(0, 0));
    assert_eq!(r.csat.with_person.positive, Rate::new(1, 2));
    assert_eq!(r.csat.comments.len(), 1);
    assert_eq!(r.csat.comments[0].comment, "great");

    let intents: Vec<(&str, u64, u64, u64)> = r
        .intents
        .iter()
        .map(|i| {
            (
                i.intent.as_str(),
                i.answers,
                i.conversations,
                i.handed_off.num,
            )
        })
        .collect();
    assert_eq!(
        intents,
        [
            ("order_status", 2, 2, 1),
            ("returns", 1, 1, 0),
            ("shipping_cost", 1, 1, 0)
        ]
    );
    assert_eq!(r.intents[0].helpful, Rate::new(1, 1));
    assert_eq!(r.intents[1].not_helpful, Rate::new(1, 1));

    let failures: Vec<(&str, &str, u64)> = r
        .failures
        .iter()
        .map(|f| (f.kind.as_str(), f.reason.as_str(), f.messages))
        .collect();
    assert_eq!(
        failures,
        [
            ("clarify", "unknown", 1),
            ("fallback", "out_of_scope", 1),
            ("fallback", "unknown", 1)
        ]
    );

    assert_eq!(r.days.len(), 7);
    let day = |i: usize| {
        let d = &r.days[i];
        (d.conversations, d.contained, d.handed_off, d.abandoned)
    };
    assert_eq!(day(0), (1, 1, 0, 0));
    assert_eq!(day(1), (2, 2, 0, 0));
    assert_eq!(day(3), (0, 0, 0, 0));
    assert_eq!(day(5), (1, 0, 0, 1));
    assert_eq!(r.days[6].csat, Rate::new(0, 1));
    // A wait of 30 s: buckets are [from, to).
    let counts: Vec<u64> = r.histograms.wait.iter().map(|b| b.count).collect();
    assert_eq!(counts, [0, 1, 0, 0, 0, 0, 0]);
    let counts: Vec<u64> = r
        .histograms
        .first_response
        .iter()
        .map(|b| b.count)
        .collect();
    assert_eq!(counts, [0, 0, 1, 0, 0, 0, 0]);
}

#[test]
fn outcomes_always_partition_the_cohort() {
    // Many logs made of random steps: whatever happens, each cohort
    // conversation is exactly one of contained, handed off, abandoned.
    let mut seed = 7u64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut all = Vec::new();
    for c in 0..300 {
        let mut log = Log::start(JUNE_1 + c * MIN, Visitor::default());
        for _ in 0..next(8) {
            log = match next(7) {
                0 => log.msg("hi"),
                1 => log.reply("x"),
                2 => log.fallback(None),
                3 => log.handoff(HandoffReason::LowConfidence),
                4 => log.says("a"),
                5 => log.closed("a"),
                _ => log.rated(next(5) as u8 + 1, None),
            }
            .at(S);
        }
        all.push(log.facts(&format!("r{c}")));
    }
    let r = compute(&all);
    let o = &r.outcomes;
    assert!(r.cohort.conversations > 100);
    assert_eq!(
        o.contained.num + o.handed_off.num + o.abandoned.num,
        r.cohort.conversations
    );
    assert_eq!(
        o.confirmed.num + o.assumed.num + o.unhelpful.num,
        o.contained.num
    );
    let shares: u64 = r.handoff_reasons.iter().map(|c| c.rate.num).sum();
    assert_eq!(shares, o.handed_off.num);
    let days: u64 = r.days.iter().map(|d| d.conversations).sum();
    assert_eq!(days, r.cohort.conversations);
}

#[test]
fn business_hours_count_only_open_time() {
    let hours = BusinessHours::new(&RawHours {
        timezone: "UTC".into(),
        monday: vec!["09:00-17:00".into()],
        tuesday: vec!["09:00-17:00".into()],
        wednesday: vec!["09:00-17:00".into()],
        thursday: vec!["09:00-17:00".into()],
        friday: vec!["09:00-17:00".into()],
        saturday: vec![],
        sunday: vec![],
        closed: vec![],
    })
    .unwrap();
    // Friday 5 June 16:59:30 handoff, joined Monday 09:00:45: 30 s + 45 s
    // of open time, 64 hours on the clock.
    let fri = JUNE_1 + 4 * DAY + 16 * 60 * MIN + 59 * MIN + 30 * S;
    let f = Log::start(fri - S, Visitor::default())
        .msg("help")
        .at(S)
        .handoff(HandoffReason::Asked)
        .at(2 * DAY + 16 * 60 * MIN + 75 * S)
        .joined("alex")
        .facts("c");
    let r = Report::compute(
        &[f],
        &june(),
        &Zone::of(Some(&hours)),
        Reports::default(),
        &StartsOf::new([]),
        LATER,
    );
    assert!(r.window.business_hours);
    assert_eq!(r.human.wait.business.median_ms, Some(75 * S));
    assert_eq!(r.human.wait.business.within_60s, Rate::new(0, 1));
    assert_eq!(
        r.human.wait.clock.median_ms,
        Some(2 * DAY + 16 * 60 * MIN + 75 * S)
    );
}

#[test]
fn a_window_is_local_days_and_bad_dates_are_named() {
    let today = date(2026, 6, 7);
    let p = Period::parse(None, None, today).unwrap();
    assert_eq!((p.from, p.to), (date(2026, 6, 1), today));
    assert_eq!(
        p.bounds(&jiff::tz::TimeZone::UTC),
        (JUNE_1, JUNE_1 + 7 * DAY)
    );
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    // Midnight in Berlin (summer) is 22:00 UTC the day before.
    assert_eq!(p.bounds(&berlin).0, JUNE_1 - 2 * 60 * MIN);
    assert_eq!(
        Period::parse(Some("2026-13-01"), None, today),
        Err(WindowError::NotADate("2026-13-01".into()))
    );
    assert!(matches!(
        Period::parse(Some("2026-06-08"), Some("2026-06-07"), today),
        Err(WindowError::Backwards { .. })
    ));
    assert!(matches!(
        Period::parse(Some("2020-01-01"), None, today),
        Err(WindowError::TooLong(_))
    ));
    assert!(Period::parse(Some("2026-6-1"), None, today).is_err());
}

#[test]
fn drill_down_names_the_conversations_behind_a_number() {
    let facts = week();
    let ids = |filter: &str| -> Vec<String> {
        let (total, rows) = drill(
            &facts,
            &june(),
            &Zone::of(None),
            Reports::default(),
            &StartsOf::new(&facts),
            LATER,
            &Filter::parse(filter).unwrap(),
            0,
            100,
        );
        assert_eq!(total as usize, rows.len());
        rows.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids("contained"), ["c1", "c2", "c3"]);
    assert_eq!(ids("contained_confirmed"), ["c1"]);
    assert_eq!(ids("durable"), ["c1"]);
    assert_eq!(ids("not_durable"), ["c2"]);
    assert_eq!(ids("handoff:asked"), ["c4"]);
    assert_eq!(ids("never_answered"), ["c5"]);
    assert_eq!(ids("fcr"), ["c4"]);
    assert_eq!(ids("csat_positive"), ["c4"]);
    assert_eq!(ids("intent:order_status"), ["c1", "c9"]);
    assert_eq!(ids("intent_handoff:order_status"), ["c9"]);
    assert_eq!(ids("day:2026-06-02"), ["c2", "c3"]);
    assert_eq!(ids("cohort").len(), 7);
    assert!(Filter::parse("handoff:bored").is_err());
    assert!(Filter::parse("everything").is_err());
    let row = row(&facts[3]);
    assert_eq!(
        (
            row.outcome.as_str(),
            row.reason.as_str(),
            row.wait_ms,
            row.first_response_ms
        ),
        ("handed_off", "asked", Some(30 * S), Some(90 * S))
    );
    assert_eq!(row.resolution_ms, Some(300 * S));
    assert_eq!(row.first_question, "a person please");
}

#[test]
fn a_reopened_conversation_is_not_resolved_at_first_contact() {
    let f = Log::start(JUNE_1, who(Some("v"), None))
        .msg("help")
        .handoff(HandoffReason::Asked)
        .joined("alex")
        .says("alex")
        .at(MIN)
        .closed("alex")
        .at(DAY)
        .msg("it broke again")
        .facts("c");
    assert_eq!(f.reopened_ms, Some(JUNE_1 + MIN + DAY));
    assert_eq!(
        judge(&f, Reports::default(), &StartsOf::new([]), LATER).fcr,
        Some(Verdict::No)
    );
    let later = Reports {
        durable_days: 7,
        fcr_days: 0,
    };
    assert_eq!(
        judge(&f, later, &StartsOf::new([]), LATER).fcr,
        Some(Verdict::Yes)
    );
}

#[test]
fn stored_facts_refresh_only_what_changed_and_deletes_leave() {
    let store = MemStore::new();
    let t = JUNE_1 + 10 * 60 * MIN;
    store.create("a", t, who(Some("v1"), None)).unwrap();
    store
        .append(
            "a",
            t + S,
            vec![Event::VisitorMessage {
                text: "hi".into(),
                client_id: "1".into(),
            }],
        )
        .unwrap();
    store.create("b", t, Visitor::default()).unwrap();
    store
        .append(
            "b",
            t + S,
            vec![Event::VisitorMessage {
                text: "yo".into(),
                client_id: "1".into(),
            }],
        )
        .unwrap();
    // The mark is a few minutes on: the next refresh reads from the
    // minute before it.
    let now = t + 5 * MIN;
    let first = refresh::refresh(&store, now).unwrap();
    assert_eq!((first.folded, first.rebuilt), (2, true));
    let r = report(&store, &june(), &Zone::of(None), Reports::default(), now).unwrap();
    assert_eq!(r.outcomes.abandoned.num, 2);
    // An hour later the bot answers `a`: only `a` is folded again.
    let later = t + 60 * MIN;
    store
        .append(
            "a",
            later,
            vec![Event::BotReply {
                text: "hello".into(),
                intent: Some("greeting".into()),
                confidence: 1.0,
                trace: String::new(),
                quick_replies: vec![],
                slots: vec![],
                decision: None,
            }],
        )
        .unwrap();
    let second = refresh::refresh(&store, later + S).unwrap();
    assert_eq!((second.folded, second.rebuilt), (1, false));
    let r = report(
        &store,
        &june(),
        &Zone::of(None),
        Reports::default(),
        later + S,
    )
    .unwrap();
    assert_eq!((r.outcomes.contained.num, r.outcomes.abandoned.num), (1, 1));
    store.delete("b").unwrap();
    let r = report(
        &store,
        &june(),
        &Zone::of(None),
        Reports::default(),
        later + 2 * S,
    )
    .unwrap();
    assert_eq!(r.cohort.conversations, 1);
    // Another fold version rebuilds everything.
    store.put_facts_mark(b"v0:0").unwrap();
    assert!(refresh::refresh(&store, later + 3 * S).unwrap().rebuilt);
}

/// A visitor's comment cannot drive the admin's terminal: control
/// characters (an escape sequence that clears the screen or writes the
/// clipboard) are shown, not sent.
#[test]
fn the_terminal_view_shows_control_characters_instead_of_sending_them() {
    let f = Log::start(JUNE_1 + 2 * DAY, who(Some("v9"), None))
        .msg("I want a person")
        .handoff(HandoffReason::Asked)
        .joined("alex")
        .closed("alex")
        .rated(
            1,
            Some("bad\u{1b}]52;c;aGk=\u{7}\u{1b}[2J bot\r\nfake line"),
        )
        .facts("c1");
    let out = super::text::render(&compute(&[f]));
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert!(out.contains("bad"), "{out}");
    assert_eq!(out.matches("fake line").count(), 1);
    assert!(!out.contains("\nfake line"), "{out}");
}

/// Regression (review of issue 17): wait and first response were taken
/// from the first handoff to the first join / agent message at any time
/// after it, so a handoff nobody answered, a return to the bot and a
/// second handoff weeks later made a wait of weeks. Each handoff cycle is
/// measured on its own; the unanswered one is "never answered".
#[test]
fn wait_and_first_response_are_measured_within_each_handoff_cycle() {
    let f = Log::start(JUNE_1, who(Some("v"), None))
        .msg("a person please")
        .handoff(HandoffReason::Asked)
        // Nobody comes; an agent closes the queued ticket.
        .at(10 * MIN)
        .closed("alex")
        .at(3 * DAY)
        .msg("hello again, a person please")
        .handoff(HandoffReason::Asked)
        .at(20 * S)
        .joined("ben")
        .at(40 * S)
        .says("ben")
        .at(MIN)
        .closed("ben")
        .facts("c");
    let r = compute(&[f]);
    let h = &r.human;
    assert_eq!(h.wait.clock.count, 1);
    assert_eq!(h.wait.clock.median_ms, Some(20 * S));
    assert_eq!(h.first_response.clock.count, 1);
    assert_eq!(h.first_response.clock.median_ms, Some(60 * S));
    // One cycle of two was never answered.
    assert_eq!(h.never_answered, Rate::new(1, 2));
    assert_eq!(h.never_joined, 1);
}

/// A return to the bot ends a cycle too: an agent joining much later
/// belongs to the next handoff, not to the first one.
#[test]
fn a_return_to_the_bot_ends_the_handoff_cycle() {
    let f = Log::start(JUNE_1, who(Some("v"), None))
        .msg("a person please")
        .handoff(HandoffReason::Asked)
        .at(30 * S)
        .joined("alex")
        .e(Event::ReturnedToBot {
            agent: "alex".into(),
        })
        .at(2 * DAY)
        .msg("shipping?")
        .reply("shipping_cost")
        .at(MIN)
        .handoff(HandoffReason::LowConfidence)
        .at(45 * S)
        .joined("ben")
        .says("ben")
        .facts("c");
    let r = compute(&[f]);
    let h = &r.human;
    // Waits of 30 s and 45 s; alex never wrote in the first cycle.
    assert_eq!(h.wait.clock.count, 2);
    assert_eq!(h.wait.clock.p90_ms, Some(45 * S));
    assert_eq!(h.first_response.clock.count, 1);
    assert_eq!(h.first_response.clock.median_ms, Some(45 * S));
    assert_eq!(h.never_answered, Rate::new(1, 2));
    // The conversation counts once, under its first handoff's reason.
    assert_eq!(r.outcomes.handed_off, Rate::new(1, 1));
    assert_eq!(r.handoff_reasons[0].rate, Rate::new(1, 1));
}

/// Regression: an agent's takeover (nobody waited) added a 0 ms wait
/// sample that pulled the median down.
#[test]
fn a_takeover_is_no_wait_sample() {
    let waited = Log::start(JUNE_1, who(Some("v1"), None))
        .msg("a person please")
        .handoff(HandoffReason::Asked)
        .at(90 * S)
        .joined("alex")
        .says("alex")
        .facts("a");
    let taken = Log::start(JUNE_1, who(Some("v2"), None))
        .msg("where is my order")
        .reply("order_status")
        .at(MIN)
        .handoff(HandoffReason::AgentTookOver)
        .joined("ben")
        .at(5 * S)
        .says("ben")
        .facts("b");
    let r = compute(&[waited, taken]);
    let h = &r.human;
    assert_eq!(h.wait.clock.count, 1);
    assert_eq!(h.wait.clock.median_ms, Some(90 * S));
    assert_eq!(h.first_response.clock.count, 1);
    assert_eq!(h.first_response.clock.median_ms, Some(90 * S));
    assert_eq!(h.never_answered, Rate::new(0, 1));
    // Still a handoff of its conversation.
    assert_eq!(r.outcomes.handed_off, Rate::new(2, 2));
}

/// Regression: an agent whose login is `bot` closing a handed-off
/// conversation was taken for the bot (FCR's denominator lost it).
#[test]
fn an_agent_called_bot_is_an_agent() {
    let f = Log::start(JUNE_1, who(Some("v"), None))
        .msg("a person please")
        .handoff(HandoffReason::Asked)
        .joined("bot")
        .says("bot")
        .at(MIN)
        .closed("bot")
        .facts("c");
    assert!(f.first_close_by_agent);
    // The bot's own close (an `end` intent) follows its answer at once.
    let g = Log::start(JUNE_1, who(Some("w"), None))
        .msg("bye")
        .reply("goodbye")
        .closed("bot")
        .facts("g");
    assert!(!g.first_close_by_agent);
}

/// Regression: a clock that stepped back (an agent's join stamped before
/// the handoff) gave the CSV a negative wait.
#[test]
fn a_row_has_no_negative_duration() {
    let f = Log::start(JUNE_1, who(Some("v"), None))
        .msg("a person please")
        .at(MIN)
        .handoff(HandoffReason::Asked)
        .at(-10 * S)
        .joined("alex")
        .says("alex")
        .facts("c");
    let row = row(&f);
    assert_eq!(row.wait_ms, Some(0));
    assert_eq!(row.first_response_ms, Some(0));
}

/// Regression: durable and FCR of conversations whose look-ahead had not
/// ended were judged on what was known so far (a contained conversation
/// of yesterday counted as durable). They are pending: counted apart and
/// out of the rate's denominator until their days have passed.
#[test]
fn young_conversations_are_pending_for_durable_and_fcr() {
    let week = week();
    // 8 June 00:00, the window's end: c1 (1 June 10:00) is still inside
    // its 7 days; c2's visitor already came back, but c2 is pending too
    // (judging early failures and not early successes would bias it).
    let r = compute_at(&week, JUNE_1 + 7 * DAY);
    assert_eq!(r.outcomes.durable, Rate::new(0, 0));
    assert_eq!(r.outcomes.durable_pending, 2);
    assert_eq!(r.outcomes.contained_anonymous, 1);
    // c4 (closed 3 June) and c9 (closed 7 June) are within fcr_days.
    assert_eq!(r.fcr.rate, Rate::new(0, 0));
    assert_eq!(r.fcr.pending, 2);

    // 10 June 11:00: c1's 7 days are over (durable), c2's too (not).
    let r = compute_at(&week, JUNE_1 + 9 * DAY + 11 * 60 * MIN);
    assert_eq!(r.outcomes.durable, Rate::new(1, 2));
    assert_eq!(r.outcomes.durable_pending, 0);
    // c4's close was 3 June 10:05: judged (FCR); c9's is still pending.
    assert_eq!(r.fcr.rate, Rate::new(1, 1));
    assert_eq!(r.fcr.pending, 1);

    let ids = |filter: &str, now: i64| -> Vec<String> {
        let (_, rows) = drill(
            &week,
            &june(),
            &Zone::of(None),
            Reports::default(),
            &StartsOf::new(&week),
            now,
            &Filter::parse(filter).unwrap(),
            0,
            100,
        );
        rows.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids("durable_pending", JUNE_1 + 7 * DAY), ["c1", "c2"]);
    assert_eq!(ids("fcr_pending", JUNE_1 + 7 * DAY), ["c4", "c9"]);
    assert!(ids("not_durable", JUNE_1 + 7 * DAY).is_empty());
    assert_eq!(ids("fcr_pending", LATER), Vec::<String>::new());
}

/// The terminal view says how many are not judged yet, and that takeovers
/// are counted apart from the waits.
#[test]
fn the_terminal_view_shows_pending_and_takeovers() {
    let out = super::text::render(&compute_at(&week(), JUNE_1 + 7 * DAY));
    let line = |start: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no {start} line in {out}"))
            .to_string()
    };
    assert!(line("durable").contains("2 pending"), "{out}");
    assert!(line("FCR").contains("2 pending"), "{out}");
    assert!(line("takeovers").contains('1'), "{out}");
}

/// FCR is judged on the first contact: a reopen after `fcr_days`, handled
/// by another agent, does not turn a Yes into a No (README: "a reopen
/// after fcr_days does not undo it"; the agents were counted over the
/// whole log).
#[test]
fn a_late_reopen_by_another_agent_does_not_undo_fcr() {
    let f = Log::start(JUNE_1, who(Some("v"), None))
        .msg("help")
        .handoff(HandoffReason::Asked)
        .joined("alex")
        .says("alex")
        .at(MIN)
        .closed("alex")
        .at(10 * DAY)
        .msg("it broke again")
        .handoff(HandoffReason::Asked)
        .joined("sam")
        .says("sam")
        .facts("c");
    assert_eq!(
        judge(&f, Reports::default(), &StartsOf::new([]), LATER).fcr,
        Some(Verdict::Yes)
    );
}

/// Only answers of an intent take helpful / not helpful in reports: the
/// bot's own line ("All right, ask me anything else") is no answer, and
/// the API accepts feedback on any bot reply's seq.
#[test]
fn feedback_on_a_line_without_an_intent_counts_for_nothing() {
    let f = Log::start(JUNE_1, who(Some("v"), None))
        .msg("where is my order")
        .reply("order_status")
        .e(Event::BotReply {
            text: "All right, ask me anything else".into(),
            intent: None,
            confidence: 0.0,
            trace: String::new(),
            quick_replies: vec![],
            slots: vec![],
            decision: None,
        })
        .feedback(4, false)
        .facts("c");
    assert_eq!((f.helpful, f.not_helpful), (0, 0));
    assert_eq!(f.containment(), "assumed");
}

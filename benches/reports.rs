//! Report speed for BENCHMARKS.md (issue 17's acceptance: a report over
//! 100,000 conversations and 1,000,000 visitor messages in under 1 s).
//!
//! Seeds a sled store through the `Store` API (64 writers, durable appends
//! as the server makes them): 100,000 conversations over 7 days, each with
//! 10 visitor messages and the bot's turn after each (answers, some
//! fallbacks), 15% handed off with an agent joining, replying and closing,
//! ratings and feedback. Then times:
//!
//! - a cold report (no facts yet: every log is folded once),
//! - a warm report from the store alone (every row read and parsed),
//! - the first report through a `FactsCache` (the server's way: every row
//!   read once into memory), then five warm cached reports (printed as
//!   `WARM CACHED`; the last line gives their median and the load average),
//! - a report after 1,000 new conversations (only those are folded), cached
//!   and from the store alone, checked equal.
//!
//! Run: `cargo bench --bench reports`. `REPORTS_DATA=DIR` keeps the seeded
//! store in DIR and reuses it on the next run (seeding takes minutes);
//! `REPORTS_CONVERSATIONS` changes the 100,000.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use frontdesk::config::Reports;
use frontdesk::conversation::{Event, HandoffReason, Visitor};
use frontdesk::report::{self, FactsCache, Period, Zone};
use frontdesk::store::{SledStore, Store};

/// 2026-06-01 00:00 UTC.
const T0: i64 = 1_780_272_000_000;
const DAY: i64 = 86_400_000;
const ROUNDS: u64 = 10;
const INTENTS: [&str; 8] = [
    "order_status",
    "shipping_cost",
    "returns",
    "opening_hours",
    "payment_methods",
    "track_package",
    "cancel_order",
    "greeting",
];
const REASONS: [HandoffReason; 4] = [
    HandoffReason::Asked,
    HandoffReason::NegativeSentiment,
    HandoffReason::RepeatedFallback,
    HandoffReason::LowConfidence,
];

fn bot_turn(n: u64, round: u64) -> Event {
    if (n + round).is_multiple_of(7) {
        Event::Fallback {
            text: "Sorry, I didn't get that.".into(),
            trace: String::new(),
            decision: None,
        }
    } else {
        Event::BotReply {
            text: "Here is what I know about that: …".into(),
            intent: Some(INTENTS[((n + round) % 8) as usize].into()),
            confidence: 0.8,
            trace: String::new(),
            quick_replies: vec![],
            slots: vec![],
            decision: None,
        }
    }
}

/// Writes conversation `n` starting at `start`: 10 rounds a few seconds
/// apart, the person part for every 7th (15%).
fn conversation(store: &SledStore, n: u64, start: i64) {
    let id = format!("c{n:07}");
    let visitor = Visitor {
        name: Some(format!("Visitor {n}")),
        id: (n % 5 < 3).then(|| format!("v{}", n % 60_000)),
        email: None,
        page_url: None,
        verified: false,
    };
    store.create(&id, start, visitor).expect("create");
    let mut at = start;
    let handed = n % 7 == 3;
    for round in 0..ROUNDS {
        at += 3_000;
        let mut events = vec![Event::VisitorMessage {
            text: format!("Where is my order {n:07}, question {round}?"),
            client_id: format!("{n}-{round}"),
        }];
        if !(handed && round >= 3) {
            events.push(bot_turn(n, round));
        }
        if round == 0 && n.is_multiple_of(4) {
            // The visitor's verdict on the answer just given (seq 3).
            events.push(Event::Feedback {
                about: 3,
                helpful: !n.is_multiple_of(8),
            });
        }
        if handed && round == 2 {
            events.push(Event::Handoff {
                reason: REASONS[(n % 4) as usize],
                decision: None,
            });
        }
        store.append(&id, at, events).expect("append");
        if handed && round == 3 {
            let wait = 5_000 + (n % 120) as i64 * 1_000;
            store
                .append(
                    &id,
                    at + wait,
                    vec![Event::AgentJoined {
                        agent: "alex".into(),
                    }],
                )
                .expect("append");
            store
                .append(
                    &id,
                    at + wait + 20_000,
                    vec![Event::AgentMessage {
                        agent: "alex".into(),
                        text: "Let me look.".into(),
                    }],
                )
                .expect("append");
            at += wait + 20_000;
        }
    }
    if handed {
        store
            .append(&id, at + 60_000, vec![Event::Closed { by: "alex".into() }])
            .expect("append");
        store
            .append(
                &id,
                at + 70_000,
                vec![Event::Rating {
                    score: 1 + (n % 5) as u8,
                    comment: n.is_multiple_of(3).then(|| "thanks".to_string()),
                }],
            )
            .expect("append");
    }
}

fn seed(store: &SledStore, from: u64, count: u64, start: i64, span_ms: i64) {
    let next = AtomicU64::new(from);
    std::thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= from + count {
                    break;
                }
                let offset = (n - from) as i64 * span_ms / count as i64;
                conversation(store, n, start + offset);
            });
        }
    });
}

fn main() {
    let total: u64 = std::env::var("REPORTS_CONVERSATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let kept = std::env::var("REPORTS_DATA").ok();
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = kept
        .as_ref()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().join("data"));
    let seeded = dir.join("seeded").exists();
    let store = SledStore::open(&dir).expect("open");
    if !seeded {
        let t = Instant::now();
        seed(&store, 0, total, T0, 7 * DAY - 10 * 60_000);
        std::fs::write(dir.join("seeded"), total.to_string()).expect("mark");
        println!(
            "reports: seeded {total} conversations ({} visitor messages) in {:.0} s",
            total * ROUNDS,
            t.elapsed().as_secs_f64()
        );
    }
    // Always start cold: the facts of a previous run are dropped.
    store.clear_facts().expect("clear");

    let zone = Zone::of(None);
    let period =
        Period::new(jiff::civil::date(2026, 6, 1), jiff::civil::date(2026, 6, 7)).expect("period");
    let settings = Reports::default();
    // A kept store (`REPORTS_DATA`) has the earlier runs' 1,000 new ones,
    // an hour apart after the week: the clock starts after them (else
    // every refresh would fold them again, being newer than its mark).
    let earlier = store.conversations().expect("list").len() as u64 - total;
    let now = T0 + 8 * DAY + (earlier / 1_000) as i64 * 3_600_000;
    // The server's way: the facts kept parsed in memory (`FactsCache`),
    // synced by the same refresh. `None`: the store alone (every request
    // reads and parses the rows; the command line on a stopped store).
    let cache = FactsCache::default();
    // Reports that are compared are made at one instant: durable and FCR
    // are pending until their days have passed, so a report a minute
    // later differs by the conversations that came of age in that minute.
    let time = |label: &str, cache: Option<&FactsCache>, period: &Period, now: i64| {
        let t = Instant::now();
        let r = report::report_with(&store, cache, period, &zone, settings, now).expect("report");
        let s = t.elapsed().as_secs_f64();
        println!(
            "reports: {label}: {s:.3} s ({} conversations, {} visitor messages, {} handed off)",
            r.cohort.conversations, r.messages.visitor_messages, r.outcomes.handed_off.num
        );
        (r, s)
    };
    let (cold, _) = time("cold, store only (every log folded)", None, &period, now);
    let (warm, _) = time(
        "warm, store only (rows read and parsed)",
        None,
        &period,
        now,
    );
    assert_eq!(cold, warm, "a warm report equals the cold one");
    let rss = rss_mb();
    let (first, _) = time(
        "first cached (every row read once into the cache)",
        Some(&cache),
        &period,
        now,
    );
    assert_eq!(cold, first, "the cached report equals the stored one");
    println!(
        "reports: cache holds {} conversations, resident memory +{:.0} MB",
        cache.len(),
        rss_mb() - rss
    );
    let mut warms = Vec::new();
    for _ in 0..5 {
        let (r, s) = time("WARM CACHED", Some(&cache), &period, now);
        assert_eq!(cold, r, "a cached report equals the stored one");
        warms.push(s);
    }
    // What of a warm cached report is the refresh (time index, mark).
    let t = Instant::now();
    cache.sync(&store, now).expect("sync");
    println!(
        "reports: of which the refresh alone (nothing to fold): {:.3} s",
        t.elapsed().as_secs_f64()
    );
    time("warm, store only, again", None, &period, now);

    // 1,000 new conversations inside the window's last hour... of a later
    // week: written after the mark, so the next report folds only them.
    let t = Instant::now();
    let fresh_start = now + 10 * 60_000;
    // The next 1,000 ids after the earlier runs' ones.
    seed(
        &store,
        10_000_000 + earlier,
        1_000,
        fresh_start,
        30 * 60_000,
    );
    println!(
        "reports: 1,000 new conversations written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let later =
        Period::new(jiff::civil::date(2026, 6, 3), jiff::civil::date(2026, 6, 9)).expect("period");
    let (after, _) = time(
        "AFTER 1,000 NEW, CACHED (only they are folded)",
        Some(&cache),
        &later,
        fresh_start + DAY,
    );
    let (again, _) = time(
        "the same again, warm cached",
        Some(&cache),
        &later,
        fresh_start + DAY,
    );
    assert_eq!(after, again);
    let (stored, _) = time("the same, store only", None, &later, fresh_start + DAY);
    assert_eq!(
        after, stored,
        "the cache agrees with the store after new traffic"
    );
    warms.sort_by(f64::total_cmp);
    println!(
        "reports: warm cached report over {} conversations: median {:.3} s (min {:.3}, max {:.3}; load average {})",
        cold.cohort.conversations,
        warms[warms.len() / 2],
        warms[0],
        warms[warms.len() - 1],
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// This process's resident memory (MB), 0 where `/proc` is not there.
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split(' ').nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / 1e6)
}

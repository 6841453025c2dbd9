//! Storage numbers for BENCHMARKS.md: durable appends per second with one
//! writer and with 64 concurrent writers (group commit), and disk space per
//! 1,000 messages after 1,000,000 messages and after deleting half of them.
//! Run: `cargo bench --bench store` (set STORE_MESSAGES to change the 1M).
//! The same appends go to PostgreSQL too, in the same run (alternating
//! with sled), when it is installed: a throwaway cluster with fsync on
//! (`tests/it/pg.rs`), one transaction per message. STORE_APPEND_ONLY=1
//! stops after the appends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use frontdesk::conversation::{Event, Visitor};
use frontdesk::store::{disk_usage, PgStore, SledStore, Store};

/// The tests' throwaway PostgreSQL (only `Cluster` is used here).
#[allow(dead_code)]
#[path = "../tests/it/pg.rs"]
mod pg;

fn message(n: u64) -> Event {
    Event::VisitorMessage {
        text: format!("Hi, where is my order {n:08}? It was supposed to arrive on Tuesday."),
        client_id: format!("{n:016x}"),
    }
}

/// Appends `per_writer` messages from each of `writers` threads, each into
/// its own conversations of `conv_len` messages; returns appends per second.
fn run(store: &dyn Store, writers: u64, per_writer: u64, conv_len: u64, tag: &str) -> f64 {
    let counter = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            let counter = &counter;
            scope.spawn(move || {
                let mut conv = String::new();
                for i in 0..per_writer {
                    if i % conv_len == 0 {
                        conv = format!("{tag}-{w}-{}", i / conv_len);
                        store.create(&conv, 0, Visitor::default()).expect("create");
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    store
                        .append(&conv, n as i64, vec![message(n)])
                        .expect("append");
                }
            });
        }
    });
    (writers * per_writer) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let total: u64 = std::env::var("STORE_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);

    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path()).expect("open");
    let one = run(&store, 1, 2_000, 100, "one");
    let (w1, f1) = store.commit_stats();
    let many = run(&store, 64, 100, 100, "many");
    let (w2, f2) = store.commit_stats();
    println!(
        "store: durable appends/s, 1 writer: {one:.0} ({:.1} writes per flush)",
        w1 as f64 / f1.max(1) as f64
    );
    println!(
        "store: durable appends/s, 64 writers: {many:.0} ({:.1}x; {:.1} writes per flush)",
        many / one,
        (w2 - w1) as f64 / (f2 - f1).max(1) as f64
    );
    drop(store);
    append_pg();
    if std::env::var_os("STORE_APPEND_ONLY").is_some() {
        return;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path()).expect("open");
    let start = Instant::now();
    let rate = run(&store, 64, total / 64, 100, "fill");
    let written = (total / 64) * 64;
    let convs = store.conversations().expect("list");
    let full = disk_usage(dir.path());
    println!(
        "store: {written} messages in {} conversations written in {:.0} s ({rate:.0}/s, 64 writers); {:.1} MB on disk, {:.0} KB per 1,000 messages",
        convs.len(),
        start.elapsed().as_secs_f64(),
        full as f64 / 1e6,
        full as f64 / written as f64
    );
    let start = Instant::now();
    for c in convs.iter().step_by(2) {
        store.delete(c).expect("delete");
    }
    let after_delete = disk_usage(dir.path());
    println!(
        "store: deleted half the conversations in {:.0} s: {:.1} MB on disk ({:.0} KB per 1,000 remaining messages)",
        start.elapsed().as_secs_f64(),
        after_delete as f64 / 1e6,
        after_delete as f64 / (written / 2) as f64
    );
    drop(store);
    // Reopening lets sled recover and rewrite what it can reclaim. An open
    // also checks the store (reads every entry: issue 15), so it is timed.
    let start = Instant::now();
    let store = SledStore::open(dir.path()).expect("reopen");
    let opened_in = start.elapsed().as_secs_f64();
    let sealed = !store.walked_on_open();
    // The same open after a crash: no seal, so every entry is read.
    drop(store);
    let marker = dir.path().join("frontdesk-store.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&marker).expect("marker")).expect("marker JSON");
    m["seal"] = serde_json::Value::Null;
    std::fs::write(&marker, m.to_string()).expect("write marker");
    let start = Instant::now();
    let store = SledStore::open(dir.path()).expect("reopen after a crash");
    println!(
        "store: open after a clean stop {opened_in:.2} s (seal held: {sealed}); after a crash (every entry read) {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let remaining = store.conversations().expect("list").len();
    let reopened = disk_usage(dir.path());
    println!(
        "store: after reopening: {:.1} MB on disk, {remaining} conversations ({:.0} KB per 1,000 remaining messages)",
        reopened as f64 / 1e6,
        reopened as f64 / (written / 2) as f64
    );
    // Is the space freed by deletes reused? Write the deleted half again.
    run(&store, 64, total / 64 / 2, 100, "refill");
    let refilled_plain = disk_usage(dir.path());
    drop(store);
    // And with compaction: the same delete, `compact`, then the refill.
    let start = Instant::now();
    let (before, after) = SledStore::compact(dir.path()).expect("compact");
    println!(
        "store: compacting the refilled store: {:.1} MB → {:.1} MB in {:.0} s",
        before as f64 / 1e6,
        after as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    let store = SledStore::open(dir.path()).expect("reopen");
    let convs = store.conversations().expect("list");
    for c in convs.iter().step_by(2) {
        store.delete(c).expect("delete");
    }
    drop(store);
    let (before, after) = SledStore::compact(dir.path()).expect("compact");
    println!(
        "store: deleting half again, then compacting: {:.1} MB → {:.1} MB ({:.0} KB per 1,000 remaining messages)",
        before as f64 / 1e6,
        after as f64 / 1e6,
        after as f64 / (written / 2) as f64
    );
    let store = SledStore::open(dir.path()).expect("reopen");
    run(&store, 64, total / 64 / 2, 100, "refill2");
    let refilled = disk_usage(dir.path());
    println!(
        "store: after writing {} new messages into the freed space: {:.1} MB on disk ({:.0} KB per 1,000 messages; {:+.1} MB)",
        written / 2,
        refilled_plain as f64 / 1e6,
        refilled_plain as f64 / written as f64,
        (refilled_plain as f64 - reopened as f64) / 1e6
    );
    println!(
        "store: after compaction and writing {} new messages again: {:.1} MB on disk ({:.0} KB per 1,000 messages)",
        written / 2,
        refilled as f64 / 1e6,
        refilled as f64 / written as f64
    );
}

/// The appends above, sled and PostgreSQL alternating (two rounds each,
/// the machine is noisy): appends/s and PostgreSQL's ratio to sled. Then
/// PostgreSQL again with fsync off (not durable: only to show how much of
/// its time is the WAL flush, and how much the round trips).
fn append_pg() {
    for durable in [true, false] {
        let Some(cluster) = pg::Cluster::start(durable) else {
            return;
        };
        let pg = PgStore::open(&cluster.database(), 64).expect("open postgres");
        let dir = tempfile::tempdir().expect("temp dir");
        let sled = SledStore::open(dir.path()).expect("open");
        let fsync = if durable { "fsync on" } else { "fsync OFF" };
        for writers in [1, 64] {
            let per_writer = if writers == 1 { 2_000 } else { 100 };
            let (mut s, mut p) = (Vec::new(), Vec::new());
            for round in 0..2 {
                let tag = format!("w{writers}r{round}");
                s.push(run(&sled, writers, per_writer, 100, &tag));
                p.push(run(&pg, writers, per_writer, 100, &tag));
            }
            let (s, p) = (s.iter().sum::<f64>() / 2.0, p.iter().sum::<f64>() / 2.0);
            println!(
                "store: durable appends/s, {writers} writer(s): sled {s:.0}, postgres ({fsync}) {p:.0} ({:.2}x sled)",
                p / s
            );
        }
    }
}

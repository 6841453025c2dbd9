//! Classification speed: `decide` (normalise, rules, lexical model, fusion,
//! evidence, policy, frustration) on the default shop intents and on the
//! 9,000 BANKING77 training examples imported as intents.
//!
//! Criterion measures the mean per call over a rotating set of real
//! messages; the bench also prints p50/p99 of single calls, since a tail is
//! what a visitor feels. Run: `cargo bench --bench classify`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use frontdesk::classify::Classifier;
use frontdesk::conversation::Decide;
use frontdesk::{eval, intents};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// The default intents and the messages of their inline tests.
fn shop() -> (Classifier, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let set = intents::load_dir(&dir).expect("default intents load");
    let messages = set
        .intents
        .iter()
        .flat_map(|i| i.tests.iter().map(|t| t.text.clone()))
        .collect();
    (Classifier::new(Arc::new(set)), messages)
}

/// BANKING77's train set imported as intents, and its dev messages.
fn banking() -> Option<(Classifier, Vec<String>)> {
    let data = shared().join("banking77");
    let train = eval::read_csv(&data.join("train.csv")).ok()?;
    let dev = eval::read_csv(&data.join("dev.csv")).ok()?;
    let dir = tempfile::tempdir().ok()?;
    eval::import(&train, Path::new("train.csv"), dir.path(), false).ok()?;
    let set = intents::load_dir(dir.path()).ok()?;
    Some((
        Classifier::new(Arc::new(set)),
        dev.into_iter().map(|r| r.text).collect(),
    ))
}

/// p50 and p99 of single `decide` calls over `rounds` passes of `messages`.
fn percentiles(c: &Classifier, messages: &[String], rounds: usize) -> (f64, f64) {
    let mut lat = Vec::with_capacity(messages.len() * rounds);
    for _ in 0..rounds {
        for m in messages {
            let start = Instant::now();
            black_box(c.decide(black_box(m)));
            lat.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    lat.sort_by(f64::total_cmp);
    (lat[lat.len() / 2], lat[lat.len() * 99 / 100])
}

fn bench(crit: &mut Criterion) {
    let mut sets = vec![("shop", shop())];
    match banking() {
        Some(b) => sets.push(("banking77", b)),
        None => eprintln!("../shared/data/banking77 not found: skipping that bench"),
    }
    for (name, (classifier, messages)) in &sets {
        let mut i = 0;
        crit.bench_function(&format!("decide/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % messages.len();
                black_box(classifier.decide(black_box(&messages[i])))
            })
        });
        let (p50, p99) = percentiles(classifier, messages, 20);
        println!(
            "decide/{name}: single-call latency over {} calls: p50 {p50:.1} µs, p99 {p99:.1} µs",
            messages.len() * 20
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

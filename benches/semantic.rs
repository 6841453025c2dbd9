//! The semantic layer's cost (feature `semantic` or `transformer`,
//! models/fetch.sh first): loading the model, the memory it adds, starting
//! with 9,000 cached example embeddings, and single-message latency with
//! the model.
//!
//! Every message is embedded for real: the bench points the model at a
//! fresh directory (links to the model files, an empty embedding cache),
//! so no message is found in a cache; each is measured once (the memory of
//! recent messages, which agent suggestions use, is measured apart). On one core:
//!
//!   LIBTORCH=$PWD/models/libtorch LIBTORCH_CXX11_ABI=0 OMP_NUM_THREADS=1 \
//!     taskset -c 0 cargo bench --features transformer --bench semantic
//!
//! Runs f32, then bf16, then int8 (`classify::Precision`) once per int8
//! kernel this CPU runs (vnni, avx2, portable: `FRONTDESK_INT8_KERNEL`
//! forced for each); a `semantic` build (no libtorch) runs the int8 ones
//! alone. `FRONTDESK_PRECISION=int8` (or f32, bf16) runs one precision,
//! `FRONTDESK_INT8_KERNEL=avx2` one kernel; `SEMANTIC_BENCH_SHOP=1` skips
//! BANKING77 (the shop's messages only). The memory figures of a later run
//! include what the earlier ones left allocated: for those, run one alone.
//! Prints one line per measurement; BENCHMARKS.md has the numbers.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use frontdesk::classify::semantic::{Kernel, KERNEL_VAR};
use frontdesk::classify::{Classifier, Model, Precision};
use frontdesk::conversation::Decide;
use frontdesk::{eval, intents};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Resident memory of this process, in MB (Linux).
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A model directory whose files link to the real ones and whose caches
/// start empty.
fn fresh_model_dir() -> tempfile::TempDir {
    let src = std::env::var_os("FRONTDESK_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/all-MiniLM-L6-v2"));
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&src).expect("run models/fetch.sh first") {
        let entry = entry.expect("model dir entry");
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("frontdesk-") {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).expect("link");
    }
    dir
}

/// p50, p99 and max of single `decide` calls, each message once, in ms.
fn latency(c: &Classifier, messages: &[String]) -> (f64, f64, f64) {
    let mut lat: Vec<f64> = messages
        .iter()
        .map(|m| {
            let start = Instant::now();
            black_box(c.decide(black_box(m)));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    (
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        lat[lat.len() - 1],
    )
}

/// First calls allocate: a few messages no measurement uses.
fn warm_up(c: &Classifier) {
    for i in 0..20 {
        black_box(c.decide(&format!("warming up the classifier, round {i}")));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments. All
    // precisions in one run, f32 first (the machine is noisy: compare
    // within a run).
    // FRONTDESK_PRECISION=int8 runs one alone (for its memory figures).
    let only: Option<Vec<Precision>> = std::env::var("FRONTDESK_PRECISION").ok().map(|p| {
        p.split(',')
            .map(|p| {
                p.trim()
                    .parse()
                    .expect("FRONTDESK_PRECISION: auto, f32, bf16 or int8 (or a list: f32,int8)")
            })
            .collect()
    });
    #[cfg(feature = "transformer")]
    let all = [Precision::F32, Precision::Bf16, Precision::Int8];
    #[cfg(not(feature = "transformer"))]
    let all = [Precision::Int8];
    let kernels: Vec<Kernel> = match std::env::var(KERNEL_VAR) {
        Ok(k) if !k.is_empty() => vec![k.parse().expect("FRONTDESK_INT8_KERNEL")],
        _ => [Kernel::Vnni, Kernel::Avx2, Kernel::Portable]
            .into_iter()
            .filter(|k| k.supported())
            .collect(),
    };
    for precision in only.unwrap_or(all.to_vec()) {
        if precision == Precision::Int8 {
            // The kernels compute the same embeddings (one cache key), so
            // they share a directory: the first kernel's run embeds the
            // 9,000 examples, the others find them cached. Messages are
            // never cached on disk, so each kernel embeds every one.
            let shared = fresh_model_dir();
            for &kernel in &kernels {
                // One thread (this one) reads the environment: setting it
                // is sound here.
                std::env::set_var(KERNEL_VAR, kernel.name());
                println!("== precision int8, kernel {kernel}");
                run(precision, shared.path());
            }
        } else {
            println!("== precision {precision}");
            run(precision, fresh_model_dir().path());
        }
    }
}

fn run(precision: Precision, model_dir: &Path) {
    let before = rss_mb();
    let start = Instant::now();
    let model = Model::load_at(Some(model_dir), precision).expect("model loads");
    let load = start.elapsed().as_secs_f64();
    let loaded = rss_mb();
    println!(
        "model load: {load:.2} s ({}{}); resident {before:.0} MB -> {loaded:.0} MB (+{:.0} MB)",
        model.precision().map(|p| p.to_string()).unwrap_or_default(),
        model
            .kernel()
            .map(|k| format!(", {k} kernel"))
            .unwrap_or_default(),
        loaded - before
    );

    let shop = intents::load_dir(&root().join("intents")).expect("default intents load");
    let messages: Vec<String> = shop
        .intents
        .iter()
        .flat_map(|i| i.tests.iter().map(|t| t.text.clone()))
        .collect();
    let start = Instant::now();
    let c = Classifier::new_with(Arc::new(shop), &model).expect("shop with the model");
    println!(
        "shop intents with the model: built in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    warm_up(&c);
    let (p50, p99, max) = latency(&c, &messages);
    println!(
        "decide/shop with the model: {} messages, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; resident {:.0} MB",
        messages.len(),
        rss_mb()
    );

    if std::env::var_os("SEMANTIC_BENCH_SHOP").is_some() {
        return;
    }
    let data = root().join("../shared/data/banking77");
    let (Ok(train), Ok(dev)) = (
        eval::read_csv(&data.join("train.csv")),
        eval::read_csv(&data.join("dev.csv")),
    ) else {
        eprintln!("../shared/data/banking77 not found: skipping the BANKING77 part");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    eval::import(&train, Path::new("train.csv"), dir.path(), false).expect("import");
    let set = Arc::new(intents::load_dir(dir.path()).expect("imported set loads"));
    let start = Instant::now();
    let c = Classifier::new_with(Arc::clone(&set), &model).expect("banking77 with the model");
    println!(
        "banking77 ({} examples; caches empty but for an earlier int8 kernel's): built in {:.1} s",
        train.len(),
        start.elapsed().as_secs_f64()
    );
    drop(c);
    drop(model);
    // A restart: a new model instance over the same caches.
    let start = Instant::now();
    let model = Model::load_at(Some(model_dir), precision).expect("model loads again");
    let load = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let c = Classifier::new_with(Arc::clone(&set), &model).expect("banking77 again");
    println!(
        "banking77 restart: model load {load:.2} s, then the set with cached embeddings and weights {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let messages: Vec<String> = dev.into_iter().map(|r| r.text).collect();
    warm_up(&c);
    let (p50, p99, max) = latency(&c, &messages);
    println!(
        "decide/banking77 with the model: {} messages, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; resident {:.0} MB",
        messages.len(),
        rss_mb()
    );
    // The agent's suggested replies classify a message the conversation
    // has just classified: its embedding is remembered in memory.
    let recent = &messages[messages.len() - 200..];
    let (p50, p99, max) = latency(&c, recent);
    println!(
        "decide/banking77 again (the same {} messages, as for suggestions): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        recent.len()
    );
}

//! The semantic layer's cost (feature `semantic` or `transformer`,
//! models/fetch.sh first): loading the model, the memory it adds, starting
//! with 9,000 cached example embeddings, and single-message latency with
//! the model.
//!
//! Every message is embedded for real: the bench points the model at a
//! fresh directory (links to the model files, an empty embedding cache),
//! so no message is found in a cache; each is measured once per
//! configuration (the memory of recent messages, which agent suggestions
//! use, is measured apart). On one core:
//!
//!   LIBTORCH=$PWD/models/libtorch LIBTORCH_CXX11_ABI=0 OMP_NUM_THREADS=1 \
//!     taskset -c 0 cargo bench --features transformer --bench semantic
//!
//! Loads f32, then bf16, then int8 (`classify::Precision`) once per int8
//! kernel this CPU runs (vnni, avx2, portable: `FRONTDESK_INT8_KERNEL`
//! forced for each); a `semantic` build (no libtorch) has the int8 ones
//! alone. Each configuration's load, memory and (unless
//! `SEMANTIC_BENCH_SHOP=1`) BANKING77 figures are measured in turn; the
//! shop's messages are measured last, interleaved across all the
//! configurations (`shop_latency`), with ratios to the first int8 kernel
//! and to f32. `FRONTDESK_PRECISION=int8` (or f32, bf16) runs one
//! precision, `FRONTDESK_INT8_KERNEL=avx2` one kernel. The memory figures
//! of a later configuration include what the earlier ones keep allocated:
//! for those, run one alone. Prints one line per measurement;
//! BENCHMARKS.md has the numbers.

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
    // Every configuration's shop classifier, kept for the interleaved
    // latency run at the end.
    let mut shop: Vec<(String, Classifier)> = Vec::new();
    // The kernels compute the same embeddings (one cache key), so they
    // share a directory: the first kernel's run embeds the examples, the
    // others find them cached. Messages are never cached on disk, so each
    // kernel embeds every one.
    let int8_dir = fresh_model_dir();
    let mut dirs = Vec::new();
    for precision in only.unwrap_or(all.to_vec()) {
        if precision == Precision::Int8 {
            for &kernel in &kernels {
                // One thread (this one) reads the environment: setting it
                // is sound here.
                std::env::set_var(KERNEL_VAR, kernel.name());
                println!("== precision int8, kernel {kernel}");
                let c = run(precision, int8_dir.path());
                shop.push((format!("int8 {kernel}"), c));
            }
        } else {
            println!("== precision {precision}");
            let dir = fresh_model_dir();
            let c = run(precision, dir.path());
            dirs.push(dir);
            shop.push((precision.to_string(), c));
        }
    }
    shop_latency(&shop);
}

/// The shop's test messages, each once per configuration, interleaved:
/// message i goes to every configuration in turn (the first one rotating),
/// so a busy spell of the machine falls on all of them alike. Prints p50,
/// p99 and max wall time per message, and the mean CPU time of this
/// thread per message (a message preempted by another process waits on
/// the wall clock, not on the CPU: on a shared machine the CPU times
/// compare the configurations more fairly), with ratios to the first
/// int8 kernel and to f32.
fn shop_latency(shop: &[(String, Classifier)]) {
    let set = intents::load_dir(&root().join("intents")).expect("default intents load");
    let messages: Vec<String> = set
        .intents
        .iter()
        .flat_map(|i| i.tests.iter().map(|t| t.text.clone()))
        .collect();
    for (_, c) in shop {
        warm_up(c);
    }
    let mut wall = vec![Vec::new(); shop.len()];
    let mut cpu = vec![0f64; shop.len()];
    for (i, m) in messages.iter().enumerate() {
        for turn in 0..shop.len() {
            let at = (i + turn) % shop.len();
            let (start, cpu_start) = (Instant::now(), cpu_ms());
            black_box(shop[at].1.decide(black_box(m)));
            wall[at].push(start.elapsed().as_secs_f64() * 1e3);
            cpu[at] += cpu_ms() - cpu_start;
        }
    }
    let stats: Vec<(f64, f64, f64, f64)> = wall
        .iter_mut()
        .zip(&cpu)
        .map(|(lat, cpu)| {
            lat.sort_by(f64::total_cmp);
            (
                lat[lat.len() / 2],
                lat[lat.len() * 99 / 100],
                lat[lat.len() - 1],
                cpu / lat.len() as f64,
            )
        })
        .collect();
    let find = |name: &str| shop.iter().position(|(n, _)| n.starts_with(name));
    let int8 = find("int8");
    let f32 = find("f32");
    println!(
        "== decide/shop with the model, interleaved: {} messages, each once per configuration",
        messages.len()
    );
    for ((name, _), &(p50, p99, max, cpu)) in shop.iter().zip(&stats) {
        let mut line =
            format!("{name}: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms, cpu {cpu:.2} ms");
        for (to, at) in [("first int8", int8), ("f32", f32)] {
            if let Some(at) = at {
                let (b50, b99, _, bcpu) = stats[at];
                line += &format!(
                    "; / {to}: p50 {:.2}x, p99 {:.2}x, cpu {:.2}x",
                    p50 / b50,
                    p99 / b99,
                    cpu / bcpu
                );
            }
        }
        println!("{line}");
    }
}

/// This thread's CPU time so far, in ms (Linux; the scheduler's running
/// total, updated at its ticks and switches: sum it over many calls).
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6)
}

/// Loads the model, prints its cost, builds the shop's classifier with it
/// (returned for `shop_latency`), and unless `SEMANTIC_BENCH_SHOP` is set,
/// measures BANKING77 with it.
fn run(precision: Precision, model_dir: &Path) -> Classifier {
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

    let set = intents::load_dir(&root().join("intents")).expect("default intents load");
    let start = Instant::now();
    let shop = Classifier::new_with(Arc::new(set), &model).expect("shop with the model");
    println!(
        "shop intents with the model: built in {:.2} s; resident {:.0} MB",
        start.elapsed().as_secs_f64(),
        rss_mb()
    );

    if std::env::var_os("SEMANTIC_BENCH_SHOP").is_some() {
        return shop;
    }
    let data = root().join("../shared/data/banking77");
    let (Ok(train), Ok(dev)) = (
        eval::read_csv(&data.join("train.csv")),
        eval::read_csv(&data.join("dev.csv")),
    ) else {
        eprintln!("../shared/data/banking77 not found: skipping the BANKING77 part");
        return shop;
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
    shop
}

//! The forward pass alone, per kernel, alternating, on sentence-length
//! inputs (no tokenizer: ids drawn from the vocabulary), so a kernel can
//! be timed without building frontdesk:
//!
//!   taskset -c 0 cargo run --release -p int8bert --example kernels -- models/all-MiniLM-L6-v2
//!
//! Prints, per kernel, for 8, 16 and 32 word pieces, the p50 wall time and
//! the mean CPU time (which a busy machine inflates less: a call that is
//! preempted waits on the wall clock, not on its CPU time).

use std::time::Instant;

use int8bert::{Bert, Kernel};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("models/all-MiniLM-L6-v2".into());
    let kernels: Vec<Kernel> = [Kernel::Vnni, Kernel::Avx2, Kernel::Portable]
        .into_iter()
        .filter(|k| {
            k.supported() && std::env::var("KERNELS").map_or(true, |v| v.contains(k.name()))
        })
        .collect();
    let models: Vec<Bert> = kernels
        .iter()
        .map(|&k| Bert::load_with(std::path::Path::new(&dir), k).expect("model loads"))
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in [8usize, 16, 32] {
        let mut times = vec![Vec::new(); models.len()];
        let mut cpu = vec![0f64; models.len()];
        for round in 0..60 {
            let ids: Vec<i64> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if i == 0 {
                        101
                    } else if i == len - 1 {
                        102
                    } else {
                        1000 + (seed % 20000) as i64
                    }
                })
                .collect();
            let mut first: Option<Vec<f32>> = None;
            for ((m, t), c) in models.iter().zip(times.iter_mut()).zip(cpu.iter_mut()) {
                let (start, cpu_start) = (Instant::now(), cpu_ms());
                let e = std::hint::black_box(m.embed(&ids));
                if round > 2 {
                    t.push(start.elapsed().as_secs_f64() * 1e3);
                    *c += cpu_ms() - cpu_start;
                }
                match &first {
                    None => first = Some(e),
                    Some(f) => assert_eq!(f, &e, "{} differs", m.kernel()),
                }
            }
        }
        let mut line = format!("{len:>3} pieces:");
        let (mut base, mut cpu_base) = (0.0, 0.0);
        for ((m, t), c) in models.iter().zip(times.iter_mut()).zip(&cpu) {
            t.sort_by(f64::total_cmp);
            let p50 = t[t.len() / 2];
            let c = c / t.len() as f64;
            if base == 0.0 {
                (base, cpu_base) = (p50, c);
            }
            line += &format!(
                "  {} p50 {p50:.3} ms ({:.2}x), cpu {c:.3} ms ({:.2}x)",
                m.kernel(),
                p50 / base,
                c / cpu_base
            );
        }
        println!("{line}");
    }
}

/// This thread's CPU time so far, in ms (Linux; the scheduler's count,
/// exact to its last update: sum it over many calls).
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6)
}

//! Startup time for BENCHMARKS.md (issue 16): how long after `frontdesk
//! serve` starts does `/healthz` first answer `200`, on a store of
//! 1,000,000 messages, after a clean stop and after a kill -9 (no seal: the
//! integrity walk runs). Also times, in this process, the parts of an
//! open: sled's own open, the open with the seal holding, the open with
//! the walk, and the one-time build of the time index on an older store.
//!
//! Run: `cargo build --release && cargo bench --bench startup`.
//! `STARTUP_MESSAGES` (1,000,000), `STARTUP_RUNS` (5), `STARTUP_BIN`
//! (target/release/frontdesk; several, comma-separated, to compare builds:
//! each gets its own copy of the same store).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use frontdesk::conversation::HandoffReason;
use frontdesk::conversation::{Event, Visitor};
use frontdesk::handoff::{Presence, Waiting};
use frontdesk::store::{AgentRecord, Batch, IndexOp, SledStore, Store};

const AGENTS: usize = 10;
/// One conversation in this many waits for an agent, one more is held.
const OPEN_EVERY: u64 = 1_000;
/// Conversations start over 30 days before now.
const SPAN_MS: i64 = 30 * 24 * 3_600_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A conversation's visitor and bot messages (1 to 3 exchanges, so 2 to
/// 6 messages, 4 on average) and, for a few, a handoff.
fn conversation(n: u64, start_ms: i64) -> (Vec<Event>, Vec<IndexOp>, u64) {
    let exchanges = 1 + n % 3;
    let mut events = Vec::new();
    for i in 0..exchanges {
        events.push(Event::VisitorMessage {
            text: format!(
                "Hi, where is my order {n:08}? It was supposed to arrive on Tuesday ({i})."
            ),
            client_id: format!("{n:x}-{i}"),
        });
        events.push(Event::BotReply {
            text: "Orders ship within two working days; here is how to track yours.".into(),
            intent: Some("order_status".into()),
            confidence: 0.82,
            trace: String::new(),
            quick_replies: vec!["Talk to a person".into()],
            slots: Vec::new(),
            decision: None,
        });
    }
    let messages = events.len() as u64;
    let mut index = Vec::new();
    let reason = HandoffReason::Asked;
    match n % OPEN_EVERY {
        0 => {
            events.push(Event::Handoff {
                reason,
                decision: None,
            });
            index.push(IndexOp::Wait(Waiting {
                conversation: id_of(n),
                reason,
                priority: false,
                since_ms: start_ms,
                ticket: n + 1,
            }));
        }
        500 => {
            let agent = format!("agent{}", n as usize % AGENTS);
            events.push(Event::Handoff {
                reason,
                decision: None,
            });
            events.push(Event::AgentJoined {
                agent: agent.clone(),
            });
            index.push(IndexOp::Hold { agent });
        }
        _ => {}
    }
    (events, index, messages)
}

fn id_of(n: u64) -> String {
    format!("c{n:010}")
}

/// Writes conversations until `total` messages, 16 writers; returns
/// (conversations, messages).
fn fill(dir: &Path, total: u64) -> (u64, u64) {
    let store = SledStore::open(dir).expect("open");
    for a in 0..AGENTS {
        let record = AgentRecord {
            presence: Presence::Online,
            capacity: 100,
            admin: a == 0,
            token_sha256: format!("{a:064x}"),
            display_name: String::new(),
            disabled: false,
        };
        store
            .put_agent(&format!("agent{a}"), &record)
            .expect("agent");
    }
    let now = frontdesk::app::now_ms();
    let (next, messages) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| loop {
                if messages.load(Ordering::Relaxed) >= total {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                let start = now - SPAN_MS + (n as i64 * 7_919) % SPAN_MS;
                let (events, index, count) = conversation(n, start);
                let id = id_of(n);
                store
                    .create(&id, start, Visitor::default())
                    .expect("create");
                let batch = Batch {
                    at_ms: start + 30_000,
                    events,
                    after_seq: Some(1),
                    index,
                    ..Batch::default()
                };
                store.append_batch(&id, batch).expect("append");
                messages.fetch_add(count, Ordering::Relaxed);
            });
        }
    });
    (
        next.load(Ordering::Relaxed),
        messages.load(Ordering::Relaxed),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// Removes the seal of a clean close, as a crash leaves the marker.
fn unseal(dir: &Path) {
    let marker = dir.join("frontdesk-store.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&marker).expect("marker")).expect("marker JSON");
    m["seal"] = serde_json::Value::Null;
    std::fs::write(&marker, m.to_string()).expect("write marker");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// What `/healthz` answers now: None if not 200, else whether the store
/// has finished its start's check (a build that answers
/// `"store":"checking"` serves before its store is checked; without the
/// field, the first 200 is both).
fn health(port: u16) -> Option<bool> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    if !buf.starts_with(b"HTTP/1.1 200") {
        return None;
    }
    let body = String::from_utf8_lossy(&buf);
    Some(!body.contains("\"store\":\"checking\""))
}

struct Running {
    child: Child,
    /// From spawn to the first 200.
    ready: Duration,
    /// From spawn to the first 200 that says the store is checked.
    checked: Duration,
}

fn start(bin: &Path, config: &Path, port: u16, log: &Path) -> Running {
    let t = Instant::now();
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("FRONTDESK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("log file"),
        )
        .spawn()
        .expect("spawn the server");
    let mut running = Running {
        child,
        ready: Duration::ZERO,
        checked: Duration::ZERO,
    };
    loop {
        match health(port) {
            Some(checked) => {
                if running.ready.is_zero() {
                    running.ready = t.elapsed();
                }
                if checked {
                    running.checked = t.elapsed();
                    return running;
                }
            }
            None => {
                if let Ok(Some(status)) = running.child.try_wait() {
                    panic!(
                        "{} exited with {status} before answering; see {}",
                        bin.display(),
                        log.display()
                    );
                }
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "no answer in 10 min"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn stop(mut r: Running) {
    let _ = Command::new("kill")
        .args(["-TERM", &r.child.id().to_string()])
        .status();
    let _ = r.child.wait();
}

fn kill(mut r: Running) {
    let _ = r.child.kill();
    let _ = r.child.wait();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// "median (min–max) of [..]".
fn spread(v: &[Duration]) -> String {
    let min = v.iter().min().copied().unwrap_or_default();
    let max = v.iter().max().copied().unwrap_or_default();
    format!(
        "median {} ({}–{}) of {:?}",
        ms(median(v.to_vec())),
        min.as_millis(),
        max.as_millis(),
        v.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Times the parts of an open in this process, on copies of `base`.
fn parts(base: &Path, work: &Path) {
    let dir = work.join("parts");
    copy_dir(base, &dir);
    let t = Instant::now();
    {
        let db = sled::Config::new()
            .path(&dir)
            .flush_every_ms(None)
            .open()
            .expect("sled");
        for tree in ["conversations", "events", "queue", "held"] {
            db.open_tree(tree).expect("tree");
        }
    }
    let sled_only = t.elapsed();
    // sled rewrote a little of its files: the seal no longer holds. Open
    // and close once to seal it again.
    drop(SledStore::open(&dir).expect("open"));
    let t = Instant::now();
    let s = SledStore::open(&dir).expect("open");
    let sealed = t.elapsed();
    assert!(!s.walked_on_open(), "the seal held");
    drop(s);
    // A clean stop after a session that wrote (2,000 messages): the seal
    // holds, and the open costs what it does after a start without writes.
    let mut after_writes = Vec::new();
    for round in 0..3 {
        let s = SledStore::open(&dir).expect("open");
        for n in 0..2_000u64 {
            let id = id_of(n * 97 % 250_000);
            let _ = s.append(
                &id,
                frontdesk::app::now_ms(),
                vec![Event::VisitorMessage {
                    text: "one more".into(),
                    client_id: format!("late-{round}-{n}"),
                }],
            );
        }
        drop(s);
        let t = Instant::now();
        let s = SledStore::open(&dir).expect("open");
        after_writes.push(format!(
            "open {} ({})",
            ms(t.elapsed()),
            if s.walked_on_open() {
                "seal broken: walked"
            } else {
                "seal held"
            }
        ));
        drop(s);
    }
    println!(
        "startup: in-process, each after a clean stop of a session that wrote 2,000 messages: {}",
        after_writes.join("; ")
    );
    unseal(&dir);
    let t = Instant::now();
    drop(SledStore::open(&dir).expect("open"));
    let walked = t.elapsed();
    // An older store: no time index yet.
    {
        let db = sled::open(&dir).expect("sled");
        db.drop_tree("activity").expect("drop");
        db.open_tree("settings")
            .expect("settings")
            .remove("_activity_index")
            .expect("remove");
        db.flush().expect("flush");
    }
    let t = Instant::now();
    drop(SledStore::open(&dir).expect("open"));
    let indexed = t.elapsed();
    println!(
        "startup: in-process: sled's own open {}; SledStore::open sealed {}; after a crash (walk) {}; first open of an older store (walk + time index build) {}",
        ms(sled_only),
        ms(sealed),
        ms(walked),
        ms(indexed)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let total: u64 = env_or("STARTUP_MESSAGES", 1_000_000);
    let runs: usize = env_or("STARTUP_RUNS", 5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bins: Vec<PathBuf> = std::env::var("STARTUP_BIN")
        .unwrap_or_else(|_| root.join("target/release/frontdesk").display().to_string())
        .split(',')
        .map(PathBuf::from)
        .collect();
    for b in &bins {
        assert!(
            b.exists(),
            "{} is missing: cargo build --release",
            b.display()
        );
    }
    let work = tempfile::tempdir_in(root.join("target")).expect("temp dir");
    let base = work.path().join("base");
    let t = Instant::now();
    let (conversations, messages) = fill(&base, total);
    println!(
        "startup: filled {messages} messages in {conversations} conversations in {:.0} s; {:.0} MB on disk",
        t.elapsed().as_secs_f64(),
        frontdesk::store::disk_usage(&base) as f64 / 1e6
    );
    parts(&base, work.path());
    struct Bin {
        path: PathBuf,
        config: PathBuf,
        port: u16,
        log: PathBuf,
        clean: Vec<Duration>,
        clean_checked: Vec<Duration>,
        crashed: Vec<Duration>,
    }
    let mut set: Vec<Bin> = Vec::new();
    for (i, bin) in bins.iter().enumerate() {
        let dir = work.path().join(format!("data{i}"));
        copy_dir(&base, &dir);
        let port = free_port();
        let config = work.path().join(format!("frontdesk{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nbind = \"127.0.0.1:{port}\"\nintents_dir = {:?}\ndata_dir = {:?}\n",
                root.join("intents"),
                dir
            ),
        )
        .expect("config");
        let log = work.path().join(format!("server{i}.log"));
        // The first start may do one-time work (an older store's indexes;
        // a copied store's seal is checked in full).
        let first = start(bin, &config, port, &log);
        println!(
            "startup: {}: first start {}",
            bin.display(),
            ms(first.ready)
        );
        stop(first);
        set.push(Bin {
            path: bin.clone(),
            config,
            port,
            log,
            clean: Vec::new(),
            clean_checked: Vec::new(),
            crashed: Vec::new(),
        });
    }
    // Binaries alternate within each round, so a busy moment of the
    // machine falls on all of them.
    println!("startup: load average before the runs: {}", load_average());
    for _ in 0..runs {
        for b in set.iter_mut() {
            let r = start(&b.path, &b.config, b.port, &b.log);
            b.clean.push(r.ready);
            b.clean_checked.push(r.checked);
            stop(r);
        }
    }
    println!(
        "startup: load average after the clean runs: {}",
        load_average()
    );
    for _ in 0..runs {
        for b in set.iter_mut() {
            // Killed while serving: the next start finds no seal.
            let r = start(&b.path, &b.config, b.port, &b.log);
            kill(r);
            let r = start(&b.path, &b.config, b.port, &b.log);
            b.crashed.push(r.ready);
            kill(r);
        }
    }
    println!("startup: load average after the runs: {}", load_average());
    for b in &set {
        println!(
            "startup: {}: /healthz 200 after a clean stop: {}; its store checked: {}; after kill -9: {}",
            b.path.display(),
            spread(&b.clean),
            spread(&b.clean_checked),
            spread(&b.crashed),
        );
        let log = std::fs::read_to_string(&b.log).unwrap_or_default();
        for what in [
            "store opened",
            "store checked",
            "queue and holdings restored",
            "intents loaded",
        ] {
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(what)).collect();
            // The clean runs' lines: after the first start, before the crashes.
            for l in lines.iter().skip(1).take(runs) {
                println!("startup:   {}", l.trim());
            }
        }
    }
}

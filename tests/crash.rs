//! Crash test of the store: a child process appends and acknowledges
//! messages as fast as it can (several writer threads, so group commit is
//! exercised), the parent kills it with SIGKILL at a random moment, reopens
//! the store and checks that every acknowledged message is there and that
//! each conversation's survivors are an in-order prefix of what was written.
//! The same directory is used for every cycle, so each recovery starts from
//! the previous crash. `CRASH_CYCLES` sets the number of cycles (100).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use frontdesk::conversation::{Event, Visitor};
use frontdesk::store::{SledStore, Store};

const WRITERS: usize = 4;

fn main() {
    if let Ok(spec) = std::env::var("FRONTDESK_CRASH_CHILD") {
        child(&spec);
        return;
    }
    let cycles: u32 = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("temp dir");
    // Every acknowledgement ever received: conversation → highest acked index.
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let (mut passed, mut failed) = (0, 0);
    let started = Instant::now();
    for cycle in 0..cycles {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = Duration::from_millis(5 + rng % 200);
        let got = run_child(dir.path(), cycle, kill_after);
        for (conv, n) in got {
            let e = acked.entry(conv).or_insert(0);
            *e = (*e).max(n);
        }
        match verify(dir.path(), &acked) {
            Ok(()) => passed += 1,
            Err(e) => {
                failed += 1;
                eprintln!("cycle {cycle} (killed after {kill_after:?}): {e}");
            }
        }
    }
    let total: u64 = acked.values().sum();
    println!(
        "crash: {cycles} SIGKILL cycles, {total} acknowledged messages in {} conversations, {:.1} s",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
    println!("crash: {passed} passed, {failed} failed");
    if failed > 0 || total == 0 {
        std::process::exit(1);
    }
}

/// Runs one child until `kill_after`, then SIGKILLs it; returns what it
/// acknowledged: conversation → highest message index.
fn run_child(dir: &Path, cycle: u32, kill_after: Duration) -> BTreeMap<String, u64> {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env(
            "FRONTDESK_CRASH_CHILD",
            format!("{}|{cycle}", dir.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the first acknowledgement (the store is open and writing),
    // then let it run for the chosen time before the kill.
    let first = rx.recv_timeout(Duration::from_secs(30));
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let _ = reader.join();
    let mut acked = BTreeMap::new();
    for line in first.into_iter().chain(rx.try_iter()) {
        // "ACK conv n": only lines printed whole count.
        let mut parts = line.split(' ');
        if let (Some("ACK"), Some(conv), Some(n)) = (parts.next(), parts.next(), parts.next()) {
            if let Ok(n) = n.parse::<u64>() {
                let e = acked.entry(conv.to_string()).or_insert(0);
                *e = (*e).max(n);
            }
        }
    }
    acked
}

/// Every acknowledged message is stored, and every conversation holds
/// `Started` then messages 1, 2, 3, … with no gap and nothing else.
fn verify(dir: &Path, acked: &BTreeMap<String, u64>) -> Result<(), String> {
    let store = SledStore::open(dir).map_err(|e| format!("reopen: {e}"))?;
    for conv in store.conversations().map_err(|e| e.to_string())? {
        let log = store.read(&conv, 0).map_err(|e| e.to_string())?;
        for (i, r) in log.iter().enumerate() {
            if r.seq != i as u64 + 1 {
                return Err(format!("{conv}: seq {} at position {i}", r.seq));
            }
            let ok = match (&r.event, i) {
                (Event::Started { .. }, 0) => true,
                (Event::VisitorMessage { text, client_id }, i) => {
                    *text == format!("m{i}") && *client_id == i.to_string()
                }
                _ => false,
            };
            if !ok {
                return Err(format!("{conv}: unexpected {:?} at {i}", r.event));
            }
        }
        let stored = log.len().saturating_sub(1) as u64;
        if let Some(&n) = acked.get(&conv) {
            if stored < n {
                return Err(format!(
                    "{conv}: acknowledged {n} messages, {stored} survived"
                ));
            }
        }
    }
    for (conv, n) in acked {
        if *n > 0 && store.read(conv, 0).is_err() {
            return Err(format!(
                "{conv}: acknowledged {n} messages, conversation lost"
            ));
        }
    }
    Ok(())
}

/// The child: `WRITERS` threads, each with its own conversation per cycle,
/// append messages m1, m2, … and print `ACK conv n` after each durable
/// append. Runs until killed.
fn child(spec: &str) {
    let (dir, cycle) = spec.split_once('|').expect("dir|cycle");
    let store = SledStore::open(Path::new(dir)).expect("open store in child");
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let store = &store;
            scope.spawn(move || {
                let conv = format!("c{cycle}-{w}");
                store.create(&conv, 0, Visitor::default()).expect("create");
                let mut out = std::io::stdout();
                for n in 1u64.. {
                    let event = Event::VisitorMessage {
                        text: format!("m{n}"),
                        client_id: n.to_string(),
                    };
                    store.append(&conv, n as i64, vec![event]).expect("append");
                    // One write per line so a kill never leaves half a line
                    // that parses as a different number.
                    let line = format!("ACK {conv} {n}\n");
                    if out.write_all(line.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

//! Crash test of the server (issue 15): the real `frontdesk serve` runs
//! under HTTP load and is killed with SIGKILL at a random moment, again and
//! again, on one data directory. While it runs:
//! - visitors send messages with client ids and retry each one, after a
//!   restart if need be, until it is acknowledged; some ask for a person
//!   (`POST …/handoff`, retried the same way);
//! - an agent claims waiting conversations, writes internal notes and
//!   closes conversations, so notes, handoffs, queue updates and closes are
//!   interleaved with the visitors' retries;
//! - a webhook receiver in this process records every delivery.
//!
//! At the end the server is started once more and left to run, every
//! visitor finishes its last retry, and the test audits through the public
//! API: every acknowledged message is in its conversation exactly once and
//! in the order it was sent, every acknowledgement (a retry's included)
//! returned that very message, and every stored handoff and close was
//! delivered to the webhook at least once, with a valid signature, under a
//! delivery id whose body never changes.
//!
//! `SERVER_CRASH_CYCLES` sets the number of kills (300);
//! `FRONTDESK_BIN` runs another build of the server (to show that the test
//! fails on an older one). Plain `cargo test` skips this test; `.ci/run`
//! runs it with `cargo test --test crash_server`.
//!
//! `cargo test --test crash_server -- --cluster` is the cluster variant
//! (issue 20): three nodes on one fresh PostgreSQL database
//! (tests/it/pg.rs), the visitors spread over them. Each cycle SIGKILLs
//! one node (in turn) in the middle of the load; its visitors, and the
//! agent if it was there, go on with the next live node and retry their
//! unacknowledged messages there under the same client ids; the killed
//! node is restarted after a moment and rejoins, and its visitors go back
//! to it. The audit is the same, through the API of a node that was
//! not killed last. `CLUSTER_CRASH_CYCLES` sets the kills (10). Without
//! PostgreSQL it prints that it skipped, unless `FRONTDESK_REQUIRE_PG=1`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[allow(dead_code)]
#[path = "it/pg.rs"]
mod pg;

/// Nodes of the cluster variant.
const NODES: usize = 3;

const VISITORS: usize = 6;
const SECRET: &str = "crash-webhook-secret-0123456789";
const TEXTS: [&str; 6] = [
    "how much is shipping to canada",
    "where is my order 12345",
    "what are your opening hours",
    "can I return a jacket",
    "hello",
    "I want to talk to a person",
];

/// What the threads share.
struct Shared {
    /// Each node's address, `None` while it is down (one node unless
    /// `--cluster`).
    nodes: RwLock<Vec<Option<String>>>,
    cluster: bool,
    /// Visitors stop once their last message is acknowledged.
    finishing: AtomicBool,
    /// The agent stops.
    stop: AtomicBool,
    admin: String,
    /// Failures seen by any thread (an acknowledgement without its message).
    failures: Mutex<Vec<String>>,
    acked: AtomicU64,
    retries: AtomicU64,
    server_errors: AtomicU64,
    /// `409 busy` answers: on a cluster another node wrote the
    /// conversation at the same moment; not an acknowledgement, retried.
    busy: AtomicU64,
}

impl Shared {
    /// The address of node `home`, or when it is down of the next live
    /// node after it; `None` while every node is down.
    fn addr(&self, home: usize) -> Option<String> {
        let nodes = self.nodes.read().unwrap();
        (0..nodes.len()).find_map(|i| nodes[(home + i) % nodes.len()].clone())
    }
    fn set(&self, node: usize, addr: Option<String>) {
        self.nodes.write().unwrap()[node] = addr;
    }
    fn fail(&self, what: String) {
        eprintln!("crash_server: {what}");
        self.failures.lock().unwrap().push(what);
    }
}

/// A conversation as its visitor knows it.
#[derive(Debug, Clone, Default)]
struct Conv {
    id: String,
    token: String,
    /// Client ids in the order they were sent (each acknowledged before the
    /// next is sent).
    sent: Vec<String>,
    /// The last one in `sent` is not acknowledged yet.
    pending: bool,
    /// A handoff request not yet acknowledged.
    handoff_pending: bool,
}

/// A delivery the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    body: Vec<u8>,
    signed: bool,
}

fn main() {
    let cluster = std::env::args().any(|a| a == "--cluster");
    let (cycles_var, default_cycles) = if cluster {
        ("CLUSTER_CRASH_CYCLES", 10)
    } else {
        ("SERVER_CRASH_CYCLES", 300)
    };
    let cycles: u32 = std::env::var(cycles_var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cycles);
    // The cluster's database, before anything else starts.
    let store = if cluster {
        let Some(url) = pg::database() else {
            println!("crash_server --cluster: skipped (no PostgreSQL)");
            return;
        };
        format!("[store]\nbackend = \"postgres\"\nurl = {url:?}\n")
    } else {
        String::new()
    };
    let name = if cluster {
        "crash_server --cluster"
    } else {
        "crash_server"
    };
    let bin = std::env::var("FRONTDESK_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_frontdesk").to_string());
    let tmp = tempfile::tempdir().expect("temp dir");
    let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let hook = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let hook_port = hook.local_addr().unwrap().port();
    {
        let deliveries = Arc::clone(&deliveries);
        std::thread::spawn(move || receive(hook, deliveries));
    }
    let intents = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    // One config per node: a data dir of its own (a PostgreSQL node keeps
    // no store there), the same store and webhook.
    let configs: Vec<_> = (0..if cluster { NODES } else { 1 })
        .map(|i| {
            let config = tmp.path().join(format!("frontdesk{i}.toml"));
            let data = tmp.path().join(if i == 0 {
                "data".to_string()
            } else {
                format!("data{i}")
            });
            std::fs::write(
                &config,
                format!(
                    "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {intents:?}\ndata_dir = {data:?}\n\
                     [limits]\nmessages_per_minute = 1000000\nconversations_per_ip_per_minute = 1000000\n\
                     requests_per_ip_per_minute = 100000000\n\
                     [[webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nsecret = \"{SECRET}\"\n\
                     {store}"
                ),
            )
            .expect("write config");
            config
        })
        .collect();

    let started = Instant::now();
    // The first node makes the admin; the others are given its token.
    let (child, addr, admin) = start(&bin, &configs[0], None);
    // Killed on drop too, so a failing assertion leaves no server behind.
    let mut children = vec![Running(child)];
    let mut addrs = vec![Some(addr.clone())];
    for config in &configs[1..] {
        let (c, a, _) = start(&bin, config, Some(&admin));
        children.push(Running(c));
        addrs.push(Some(a));
    }
    let shared = Arc::new(Shared {
        nodes: RwLock::new(addrs),
        cluster,
        finishing: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        admin: admin.clone(),
        failures: Mutex::default(),
        acked: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        server_errors: AtomicU64::new(0),
        busy: AtomicU64::new(0),
    });
    let (status, body) = request(
        &addr,
        "PUT",
        "/api/v1/agent/presence",
        Some(&admin),
        Some(&json!({"presence": "online", "capacity": 100})),
    )
    .expect("presence");
    assert_eq!(status, 200, "{body}");

    let visitors: Vec<_> = (0..VISITORS)
        .map(|i| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || visitor(i as u64, &shared))
        })
        .collect();
    let agent = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || agent(&shared))
    };

    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut killed = 0;
    // Time spent starting nodes again.
    let mut restarts = Duration::ZERO;
    for cycle in 0..cycles as usize {
        let run_for = Duration::from_millis(100 + next(&mut rng) % 500);
        std::thread::sleep(run_for);
        // The nodes in turn. On a cluster the node dies first and its
        // clients learn it from their cut requests; the others carry on
        // while it is down.
        killed = cycle % children.len();
        if cluster {
            kill(&mut children[killed]);
            shared.set(killed, None);
            std::thread::sleep(Duration::from_millis(50 + next(&mut rng) % 300));
        } else {
            shared.set(killed, None);
            kill(&mut children[killed]);
        }
        let t = Instant::now();
        let (c, a, _) = start(&bin, &configs[killed], Some(&admin));
        restarts += t.elapsed();
        children[killed] = Running(c);
        shared.set(killed, Some(a));
    }
    let load = started.elapsed();
    // The last start: left running while the visitors finish.
    shared.finishing.store(true, Ordering::SeqCst);
    let convs: Vec<Conv> = visitors
        .into_iter()
        .flat_map(|v| v.join().expect("visitor thread"))
        .collect();
    shared.stop.store(true, Ordering::SeqCst);
    agent.join().expect("agent thread");
    // On a cluster, a node that was not the last one killed.
    let addr = shared.addr(killed + 1).expect("running");

    // The audit, through the public API.
    let mut lost = 0;
    let mut duplicated = 0;
    let mut out_of_order = 0;
    let mut expected_hooks: Vec<(String, String, u64)> = Vec::new();
    for c in &convs {
        let (status, body) = request(
            &addr,
            "GET",
            &format!("/api/v1/agent/conversations/{}", c.id),
            Some(&admin),
            None,
        )
        .expect("transcript");
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().cloned().unwrap_or_default();
        let stored: Vec<String> = events
            .iter()
            .filter(|r| r["event"]["type"] == "visitor_message")
            .filter_map(|r| r["event"]["client_id"].as_str().map(String::from))
            .collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for s in &stored {
            *counts.entry(s.as_str()).or_default() += 1;
        }
        for cid in &c.sent {
            match counts.get(cid.as_str()) {
                None => {
                    lost += 1;
                    shared.fail(format!("{}: acknowledged message {cid} is missing", c.id));
                }
                Some(n) if *n > 1 => {
                    duplicated += 1;
                    shared.fail(format!("{}: message {cid} is stored {n} times", c.id));
                }
                _ => {}
            }
        }
        if stored != c.sent {
            out_of_order += 1;
            shared.fail(format!("{}: stored {stored:?}, sent {:?}", c.id, c.sent));
        }
        for r in &events {
            let kind = r["event"]["type"].as_str().unwrap_or_default();
            if kind == "handoff" || kind == "closed" {
                let seq = r["seq"].as_u64().unwrap_or_default();
                expected_hooks.push((c.id.clone(), kind.to_string(), seq));
            }
        }
    }

    // Every stored handoff and close reaches the receiver (the outbox is
    // retried at each start; give the last one time to drain).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing;
    loop {
        missing = undelivered(&deliveries.lock().unwrap(), &expected_hooks);
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for m in &missing {
        shared.fail(format!("webhook never delivered: {m:?}"));
    }
    // A retry keeps its delivery id: two ids for one stored record would
    // be a duplicate the receiver cannot drop.
    for (record, ids) in announcing(&deliveries.lock().unwrap()) {
        if ids.len() > 1 {
            shared.fail(format!(
                "{record:?} was announced under {} delivery ids",
                ids.len()
            ));
        }
    }
    let got = deliveries.lock().unwrap().clone();
    let mut bodies: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for d in &got {
        if !d.signed {
            shared.fail(format!("delivery {} has a bad signature", d.id));
        }
        if let Some(b) = bodies.insert(&d.id, &d.body) {
            if b != d.body.as_slice() {
                shared.fail(format!(
                    "delivery {} came twice with different bodies",
                    d.id
                ));
            }
        }
    }
    drop(children);

    let failures = shared.failures.lock().unwrap().len();
    let messages: usize = convs.iter().map(|c| c.sent.len()).sum();
    println!(
        "{name}: {cycles} SIGKILL cycles in {:.0} s (load {:.0} s, restarts {:.0} s); {} conversations, {messages} acknowledged \
         messages ({} retries, {} 5xx answers, {} 409 busy); {} acknowledgements; lost {lost}, duplicated {duplicated}, \
         out of order {out_of_order}; {} handoffs and closes stored, {} deliveries ({} distinct), \
         {} never delivered",
        started.elapsed().as_secs_f64(),
        load.as_secs_f64(),
        restarts.as_secs_f64(),
        convs.len(),
        shared.retries.load(Ordering::SeqCst),
        shared.server_errors.load(Ordering::SeqCst),
        shared.busy.load(Ordering::SeqCst),
        shared.acked.load(Ordering::SeqCst),
        expected_hooks.len(),
        got.len(),
        bodies.len(),
        missing.len(),
    );
    let acked = shared.acked.load(Ordering::SeqCst);
    assert!(
        acked > 0 && !expected_hooks.is_empty(),
        "the load did nothing"
    );
    if failures > 0 {
        println!("{name}: 0 passed, 1 failed");
        std::process::exit(1);
    }
    println!("{name}: 1 passed, 0 failed");
}

/// The stored (conversation, kind, seq) that no delivery carries.
fn undelivered(got: &[Delivery], expected: &[(String, String, u64)]) -> Vec<(String, String, u64)> {
    let announced = announcing(got);
    expected
        .iter()
        .filter(|e| !announced.contains_key(*e))
        .cloned()
        .collect()
}

/// The delivery ids that announce each (conversation, kind, seq). A packet
/// is sent for its conversation's newest record of its kind (its transcript
/// ends with the records stored with it), so that record is what it
/// announces.
fn announcing(
    got: &[Delivery],
) -> BTreeMap<(String, String, u64), std::collections::BTreeSet<String>> {
    let mut out: BTreeMap<_, std::collections::BTreeSet<String>> = BTreeMap::new();
    for d in got {
        let Ok(p) = serde_json::from_slice::<Value>(&d.body) else {
            continue;
        };
        let conv = p["conversation"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = p["event"].as_str().unwrap_or_default().to_string();
        let newest = p["transcript"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["event"]["type"] == kind.as_str())
            .filter_map(|r| r["seq"].as_u64())
            .max();
        if let Some(seq) = newest {
            out.entry((conv, kind, seq))
                .or_default()
                .insert(d.id.clone());
        }
    }
    out
}

/// A server that is killed (SIGKILL) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGKILL, and the process reaped.
fn kill(r: &mut Running) {
    let _ = r.0.kill();
    let _ = r.0.wait();
}

/// Starts the server; returns it, its address and the admin token.
fn start(bin: &str, config: &Path, admin: Option<&str>) -> (Child, String, String) {
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("FRONTDESK_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn frontdesk serve");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut admin = admin.map(String::from);
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).expect("read stdout") == 0 {
            let _ = child.wait();
            panic!("the server exited before listening");
        }
        let l = line.trim();
        if l.starts_with("fd_") && admin.is_none() {
            admin = Some(l.to_string());
        }
        if let Some(a) = l.strip_prefix("frontdesk listening on http://") {
            let a = a.to_string();
            std::thread::spawn(move || for _ in out.lines() {});
            return (child, a, admin.expect("an admin token on the first start"));
        }
    }
}

/// One request on a fresh connection: (status, JSON body). An error means
/// no answer (the server died or is down): the caller retries.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no complete answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let value = serde_json::from_str(body).unwrap_or(Value::Null);
    Ok((status, value))
}

fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

/// One visitor thread: its conversations, each message retried until
/// acknowledged.
fn visitor(n: u64, shared: &Shared) -> Vec<Conv> {
    // Its node, while that one is up.
    let home = n as usize % shared.nodes.read().unwrap().len();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (n + 1).wrapping_mul(0x1000_0000_01b3);
    let mut convs: Vec<Conv> = Vec::new();
    let mut current: Option<usize> = None;
    let mut counter = 0u64;
    loop {
        let finishing = shared.finishing.load(Ordering::SeqCst);
        if finishing && convs.iter().all(|c| !c.pending && !c.handoff_pending) {
            return convs;
        }
        let Some(addr) = shared.addr(home) else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        // Retries first: a visitor sends nothing new before its last
        // message is acknowledged.
        if let Some(i) = convs.iter().position(|c| c.pending || c.handoff_pending) {
            let c = convs[i].clone();
            shared.retries.fetch_add(1, Ordering::SeqCst);
            if c.pending {
                let cid = c.sent.last().cloned().unwrap_or_default();
                if send(shared, &addr, &c, &cid) {
                    convs[i].pending = false;
                }
            } else if handoff(shared, &addr, &c) {
                convs[i].handoff_pending = false;
            }
            continue;
        }
        if finishing {
            continue;
        }
        let roll = next(&mut rng) % 100;
        if current.is_none() || roll < 4 {
            match request(
                &addr,
                "POST",
                "/api/v1/conversations",
                None,
                Some(&json!({"name": format!("v{n}")})),
            ) {
                Ok((201, b)) | Ok((200, b)) => {
                    convs.push(Conv {
                        id: b["id"].as_str().unwrap_or_default().to_string(),
                        token: b["token"].as_str().unwrap_or_default().to_string(),
                        ..Conv::default()
                    });
                    current = Some(convs.len() - 1);
                }
                Ok((s, b)) if s >= 500 => {
                    shared.server_errors.fetch_add(1, Ordering::SeqCst);
                    eprintln!("crash_server: create answered {s}: {b}");
                }
                Ok((s, b)) => shared.fail(format!("create answered {s}: {b}")),
                Err(_) => {}
            }
            continue;
        }
        let i = current.unwrap_or_default();
        if roll < 10 {
            convs[i].handoff_pending = true;
            continue;
        }
        counter += 1;
        let cid = format!("v{n}-{counter}");
        convs[i].sent.push(cid.clone());
        convs[i].pending = true;
        let c = convs[i].clone();
        if send(shared, &addr, &c, &cid) {
            convs[i].pending = false;
        }
    }
}

/// Sends (or resends) message `cid`; true once it is acknowledged.
fn send(shared: &Shared, addr: &str, c: &Conv, cid: &str) -> bool {
    // The text is a function of the client id, so a retry resends the
    // same message.
    let k: u64 = cid.bytes().map(u64::from).sum();
    let text = TEXTS[(k % TEXTS.len() as u64) as usize];
    let path = format!("/api/v1/conversations/{}/messages", c.id);
    match request(
        addr,
        "POST",
        &path,
        Some(&c.token),
        Some(&json!({"text": text, "client_id": cid})),
    ) {
        Ok((200, b)) | Ok((201, b)) => {
            // An acknowledgement must carry that very message first.
            let first = &b["records"][0]["event"];
            if first["type"] != "visitor_message" || first["client_id"] != cid {
                shared.fail(format!("{}: message {cid} acknowledged with {b}", c.id));
            }
            shared.acked.fetch_add(1, Ordering::SeqCst);
            true
        }
        Ok((s, _)) if s >= 500 => {
            shared.server_errors.fetch_add(1, Ordering::SeqCst);
            false
        }
        Ok((409, b)) if b["error"]["code"] == "busy" => {
            shared.busy.fetch_add(1, Ordering::SeqCst);
            false
        }
        Ok((s, b)) => {
            shared.fail(format!("{}: message {cid} answered {s}: {b}", c.id));
            true
        }
        Err(_) => false,
    }
}

/// Asks for a person; true once acknowledged.
fn handoff(shared: &Shared, addr: &str, c: &Conv) -> bool {
    let path = format!("/api/v1/conversations/{}/handoff", c.id);
    match request(addr, "POST", &path, Some(&c.token), None) {
        Ok((s, _)) if s < 300 => true,
        Ok((s, _)) if s >= 500 => {
            shared.server_errors.fetch_add(1, Ordering::SeqCst);
            false
        }
        Ok((409, b)) if b["error"]["code"] == "busy" => {
            shared.busy.fetch_add(1, Ordering::SeqCst);
            false
        }
        Ok((s, b)) => {
            shared.fail(format!("{}: handoff answered {s}: {b}", c.id));
            true
        }
        Err(_) => false,
    }
}

/// The agent: claims from the queue, notes, closes.
fn agent(shared: &Shared) {
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut held: Vec<String> = Vec::new();
    let token = shared.admin.as_str();
    let mut on = String::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(addr) = shared.addr(0) else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        // On a cluster the agent's presence lives with its node: moved to
        // another one, it says it is online there.
        if shared.cluster && addr != on {
            let presence = json!({"presence": "online", "capacity": 100});
            match request(
                &addr,
                "PUT",
                "/api/v1/agent/presence",
                Some(token),
                Some(&presence),
            ) {
                Ok((200, _)) => on = addr.clone(),
                _ => continue,
            }
        }
        let roll = next(&mut rng) % 10;
        if roll < 4 || held.is_empty() {
            if let Ok((200, q)) = request(&addr, "GET", "/api/v1/agent/queue", Some(token), None) {
                let first = q["waiting"][0]["conversation"].as_str().map(String::from);
                if let Some(id) = first {
                    let path = format!("/api/v1/agent/conversations/{id}/claim");
                    if let Ok((200, _)) = request(&addr, "POST", &path, Some(token), None) {
                        held.push(id);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(3));
        } else if roll < 8 {
            let id = &held[(next(&mut rng) % held.len() as u64) as usize];
            let path = format!("/api/v1/agent/conversations/{id}/notes");
            let _ = request(
                &addr,
                "POST",
                &path,
                Some(token),
                Some(&json!({"text": "checking the order"})),
            );
        } else {
            let id = held.swap_remove((next(&mut rng) % held.len() as u64) as usize);
            let path = format!("/api/v1/agent/conversations/{id}/close");
            let _ = request(&addr, "POST", &path, Some(token), None);
        }
    }
}

/// The webhook receiver: answers 200 to everything and keeps what came.
fn receive(listener: TcpListener, got: Arc<Mutex<Vec<Delivery>>>) {
    for conn in listener.incoming() {
        let Ok(mut c) = conn else { continue };
        let got = Arc::clone(&got);
        std::thread::spawn(move || {
            let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16384];
            loop {
                let Ok(n) = c.read(&mut chunk) else { return };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        l.strip_prefix(&format!("{name}: "))
                            .map(|v| v.trim().to_string())
                    })
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if buf.len() < end + 4 + len {
                    continue;
                }
                let body = buf[end + 4..end + 4 + len].to_vec();
                let signature = header("x-frontdesk-signature").unwrap_or_default();
                let signed = signature
                    == format!(
                        "sha256={}",
                        frontdesk::app::auth::sign(SECRET.as_bytes(), &body)
                    );
                let id = header("x-frontdesk-delivery").unwrap_or_default();
                got.lock().unwrap().push(Delivery { id, body, signed });
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                buf.drain(..end + 4 + len);
                return;
            }
        });
    }
}

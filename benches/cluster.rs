//! Issue 20: the real `frontdesk serve` (the bench-profile binary, in
//! processes of its own) on loopback, in three configurations in one run:
//! one node on sled, one node on PostgreSQL, three nodes on one PostgreSQL
//! database. PostgreSQL is the tests' throwaway cluster (`tests/it/pg.rs`)
//! with fsync on.
//!
//!   cargo bench --bench cluster
//!
//! 1. Throughput: visitors send messages one after another over HTTP (each
//!    classified, answered and stored before its response) for
//!    `CLUSTER_SECS` seconds (4) per cell, at a few concurrencies, the
//!    configurations alternating cell by cell for `CLUSTER_ROUNDS` rounds
//!    (2): messages/s, p50, p99, and the ratios to sled. On three nodes
//!    visitor i talks to node i % 3. Each visitor starts a new conversation
//!    every 50 messages (in the wall time, not in the latencies). For the
//!    PostgreSQL cells the write transactions and WAL bytes per message (the
//!    whole cluster's, idle nodes' heartbeats included), and over the run
//!    the transactions per WAL flush (group commit). CPU per message (ms) of
//!    the `serve` processes and of the database's PostgreSQL backends.
//! 2. Delivery to an agent: an agent's console socket (`/agent/ws`) on the
//!    last node, `CLUSTER_LATENCY` messages (300) from 4 visitors on the
//!    first node, in conversations the agent claimed; each visitor waits
//!    for its message to reach the socket before sending the next. Times
//!    from the send to the socket receiving the record, and the send's own
//!    response time. On one node first and last are the same node.
//!
//! `CLUSTER_BIN=path` runs another build's `frontdesk` instead (an
//! earlier commit's): runs alternated with and without it compare their
//! ratios to sled.
//!
//! A configuration whose nodes cannot start (three nodes on a build where
//! a second node is refused) is reported as such and left out.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The tests' throwaway PostgreSQL (only `Cluster` is used here).
#[allow(dead_code)]
#[path = "../tests/it/pg.rs"]
mod pg;

type Http = Client<HttpConnector, Full<Bytes>>;

const TEXTS: &[&str] = &[
    "How much is shipping to Canada?",
    "where is my order 12345678",
    "can I return a jacket I bought last week",
    "what are your opening hours on saturday",
    "do you take paypal",
    "I want to change my delivery address",
    "is the blue trail shell in stock in size M",
    "hello",
];

/// Messages per conversation before a visitor starts a new one.
const PER_CONVERSATION: usize = 50;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One `frontdesk serve`; killed when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
    /// The admin token it printed, when it made the first admin.
    admin: Option<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a node with `store` (TOML lines of `[store]`, empty for sled)
/// and its own data dir under `dir`; `Err` with its last output when it
/// exits before listening.
fn start(dir: &Path, name: &str, store: &str) -> Result<Node, String> {
    let intents = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let config = dir.join(format!("{name}.toml"));
    let body = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {intents:?}\ndata_dir = {:?}\n\
         [limits]\nmessages_per_minute = 1000000\nconversations_per_ip_per_minute = 1000000\n\
         requests_per_ip_per_minute = 100000000\nconnections_per_ip = 1000\n{store}",
        dir.join(format!("{name}-data"))
    );
    std::fs::write(&config, body).expect("write config");
    // `CLUSTER_BIN`: another build's binary (an earlier commit's, for a
    // before/after: the ratios to sled within each run compare).
    let bin =
        std::env::var_os("CLUSTER_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_frontdesk").into());
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config)
        .env("FRONTDESK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn frontdesk serve");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let err = child.stderr.take().expect("stderr");
    let errors = Arc::new(Mutex::new(String::new()));
    let e = Arc::clone(&errors);
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("[{}] {l}", std::process::id());
            e.lock().unwrap().push_str(&l);
        }
    });
    let (mut line, mut admin, mut next_is_token) = (String::new(), None, false);
    let addr = loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(200));
            return Err(errors.lock().unwrap().clone());
        }
        if next_is_token {
            admin = Some(line.trim().to_string());
            next_is_token = false;
        }
        if line.starts_with("No admin existed") {
            next_is_token = true;
        }
        if let Some(a) = line.trim().strip_prefix("frontdesk listening on http://") {
            break a.parse().expect("address");
        }
    };
    std::thread::spawn(move || for _ in out.lines() {});
    Ok(Node { child, addr, admin })
}

/// A configuration: its nodes, and the database they share (None: sled).
struct Setup {
    name: &'static str,
    nodes: Vec<Node>,
    database: Option<String>,
}

/// The cluster's write transactions so far (the next transaction id: a
/// transaction that writes takes one, and reading it takes none) and its
/// WAL position in bytes. Both are exact at once, unlike the statistics
/// views, which backends report up to 10 s late.
fn pg_counters(url: &str) -> (i64, i64) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let row = c
        .query_one(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, \
             (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint",
            &[],
        )
        .expect("counters");
    (row.get(0), row.get(1))
}

/// The cluster's WAL flushes (`pg_stat_wal.wal_sync`), as reported so far.
fn wal_syncs(url: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.query_one("SELECT wal_sync FROM pg_stat_wal", &[])
        .expect("pg_stat_wal")
        .get(0)
}

/// CPU time (user + system) of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: fields 3..; utime and stime
    // are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    t(14) + t(15)
}

/// CPU ticks so far of each PostgreSQL backend connected to database
/// `url`'s (their title is `postgres: USER DB ...`), by pid.
fn backend_ticks(url: &str) -> HashMap<u32, u64> {
    let db = url.rsplit_once("dbname=").map(|(_, d)| d).unwrap_or("");
    let mine = format!(" {db} ");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.starts_with("postgres: ") && c.contains(&mine)
            })
        })
        .map(|pid| (pid, cpu_ticks(pid)))
        .collect()
}

/// The backends' CPU ticks between two snapshots: a backend that ended in
/// between is not counted (the pool keeps its sessions, so that is rare).
fn ticks_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> u64 {
    after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

#[derive(Default)]
struct Cell {
    /// CPU ticks of the setup's `serve` processes.
    node_cpu: u64,
    /// CPU ticks of its database's PostgreSQL backends.
    pg_cpu: u64,
    lat: Vec<Duration>,
    wall: Duration,
    commits: i64,
    wal: i64,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0
}

fn main() {
    let secs = env_or("CLUSTER_SECS", 4);
    let rounds = env_or("CLUSTER_ROUNDS", 2);
    let latency_n = env_or("CLUSTER_LATENCY", 300) as usize;
    let concurrencies: Vec<usize> = std::env::var("CLUSTER_CONCURRENCY")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 64]);
    let Some(cluster) = pg::Cluster::start(true) else {
        eprintln!("cluster bench: no PostgreSQL, nothing to compare");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut setups = Vec::new();
    setups.push(Setup {
        name: "sled, 1 node",
        nodes: vec![start(dir.path(), "sled", "").expect("sled node starts")],
        database: None,
    });
    for (name, n) in [("postgres, 1 node", 1), ("postgres, 3 nodes", 3)] {
        let db = cluster.database();
        let store = format!("[store]\nbackend = \"postgres\"\nurl = {db:?}\n");
        let mut nodes = Vec::new();
        let mut failed = None;
        for i in 0..n {
            match start(dir.path(), &format!("pg{n}-{i}"), &store) {
                Ok(node) => nodes.push(node),
                Err(e) => {
                    failed = Some(format!("node {} of {n} did not start: {e}", i + 1));
                    break;
                }
            }
        }
        if let Some(why) = failed {
            println!("{name}: NOT MEASURED, {why}");
            continue;
        }
        setups.push(Setup {
            name,
            nodes,
            database: Some(db),
        });
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "cluster bench: {secs} s per cell, {rounds} round(s), concurrency {concurrencies:?}; load average at start: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let http: Http = Client::builder(TokioExecutor::new()).build_http();

    // (setup, concurrency) -> the cell, summed over rounds.
    let mut cells: HashMap<(usize, usize), Cell> = HashMap::new();
    let any_db = setups
        .iter()
        .find_map(|s| s.database.clone())
        .expect("a PostgreSQL setup");
    let syncs_before = wal_syncs(&any_db);
    let (mut pg_xacts, mut pg_wall) = (0, Duration::ZERO);
    for round in 0..rounds {
        for &c in &concurrencies {
            for (s, setup) in setups.iter().enumerate() {
                let before = setup.database.as_deref().map(pg_counters);
                let node_ticks = || {
                    setup
                        .nodes
                        .iter()
                        .map(|n| cpu_ticks(n.child.id()))
                        .sum::<u64>()
                };
                let pg_ticks = || {
                    setup
                        .database
                        .as_deref()
                        .map(backend_ticks)
                        .unwrap_or_default()
                };
                let (n0, p0) = (node_ticks(), pg_ticks());
                let addrs: Vec<SocketAddr> = setup.nodes.iter().map(|n| n.addr).collect();
                let (lat, wall) = rt.block_on(throughput(
                    &http,
                    &addrs,
                    c,
                    Duration::from_secs(secs),
                    &format!("r{round}"),
                ));
                let cell = cells.entry((s, c)).or_default();
                cell.node_cpu += node_ticks().saturating_sub(n0);
                cell.pg_cpu += ticks_between(&p0, &pg_ticks());
                if let (Some(db), Some((c0, w0))) = (setup.database.as_deref(), before) {
                    let (c1, w1) = pg_counters(db);
                    cell.commits += c1 - c0;
                    pg_xacts += c1 - c0;
                    pg_wall += wall;
                    cell.wal += w1 - w0;
                }
                cell.lat.extend(lat);
                cell.wall += wall;
            }
        }
    }
    // Backends report their statistics when idle for 10 s at the latest.
    std::thread::sleep(Duration::from_secs(11));
    let syncs = wal_syncs(&any_db) - syncs_before;
    println!(
        "{:<18} {:>5} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>11} {:>9} {:>8}",
        "configuration",
        "conc",
        "messages",
        "msg/s",
        "x sled",
        "p50 ms",
        "p99 ms",
        "xacts/msg",
        "WAL B/msg",
        "node CPU",
        "pg CPU"
    );
    let tick_ms = 1000.0 / ticks_per_sec();
    for &c in &concurrencies {
        let sled_rate = cells
            .get(&(0, c))
            .map(|cell| cell.lat.len() as f64 / cell.wall.as_secs_f64())
            .unwrap_or(f64::NAN);
        for (s, setup) in setups.iter().enumerate() {
            let cell = cells.get_mut(&(s, c)).expect("cell");
            cell.lat.sort();
            let n = cell.lat.len();
            let rate = n as f64 / cell.wall.as_secs_f64();
            let (commits, wal) = if setup.database.is_some() {
                (
                    format!("{:.2}", cell.commits as f64 / n as f64),
                    format!("{:.0}", cell.wal as f64 / n as f64),
                )
            } else {
                ("-".into(), "-".into())
            };
            let per_msg = |ticks: u64| ticks as f64 * tick_ms / n as f64;
            let pg_cpu = if setup.database.is_some() {
                format!("{:.3}", per_msg(cell.pg_cpu))
            } else {
                "-".into()
            };
            println!(
                "{:<18} {c:>5} {n:>9} {rate:>8.0} {:>8.2} {:>8.2} {:>8.2} {commits:>10} {wal:>11} {:>9.3} {pg_cpu:>8}",
                setup.name,
                rate / sled_rate,
                pct(&cell.lat, 0.5),
                pct(&cell.lat, 0.99),
                per_msg(cell.node_cpu),
            );
        }
    }

    println!(
        "PostgreSQL over all its cells ({:.0} s): {pg_xacts} write transactions, {syncs} WAL flushes ({:.0}/s, {:.1} transactions per flush)",
        pg_wall.as_secs_f64(),
        syncs as f64 / pg_wall.as_secs_f64(),
        pg_xacts as f64 / syncs.max(1) as f64
    );
    for (s, setup) in setups.iter().enumerate() {
        let Some(db) = setup.database.as_deref() else {
            continue;
        };
        let messages: usize = concurrencies
            .iter()
            .map(|&c| cells.get(&(s, c)).map_or(0, |cell| cell.lat.len()))
            .sum();
        let mut client = postgres::Client::connect(db, postgres::NoTls).expect("connect");
        let bytes: i64 = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .expect("size")
            .get(0);
        println!(
            "{}: database {:.1} MB after {messages} messages ({:.1} KB per message, the empty schema included)",
            setup.name,
            bytes as f64 / 1e6,
            bytes as f64 / 1e3 / messages as f64
        );
    }
    println!(
        "\ndelivery to an agent's socket: {latency_n} visitor messages, 4 visitors on the first node, the agent's console on the last"
    );
    println!(
        "{:<18} {:>9} {:>13} {:>13} {:>13} {:>11} {:>11} {:>6}",
        "configuration",
        "delivered",
        "send p50 ms",
        "send p99 ms",
        "socket p50",
        "socket p99",
        "socket max",
        "lost"
    );
    for setup in &setups {
        let a = setup.nodes.first().expect("a node").addr;
        let c = setup.nodes.last().expect("a node").addr;
        let admin = setup
            .nodes
            .iter()
            .find_map(|n| n.admin.clone())
            .expect("a node printed the first admin's token");
        let d = rt.block_on(delivery(&http, a, c, &admin, latency_n));
        let (mut send, mut sock) = (d.send, d.socket);
        send.sort();
        sock.sort();
        println!(
            "{:<18} {:>9} {:>13.2} {:>13.2} {:>13.2} {:>11.2} {:>11.2} {:>6}",
            setup.name,
            sock.len(),
            pct(&send, 0.5),
            pct(&send, 0.99),
            pct(&sock, 0.5),
            pct(&sock, 0.99),
            pct(&sock, 1.0),
            d.lost
        );
    }
    notify_ab(&cluster.database(), secs);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at the end: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    drop(setups);
    drop(cluster);
}

/// PostgreSQL alone, without frontdesk: 32 sessions committing one-row
/// inserts as fast as they can, with and without a `pg_notify` inside each
/// transaction (as the store's writes do since the multi-node work),
/// alternating, two rounds of `secs` each: commits/s. A notifying commit
/// holds a cluster-wide lock until its WAL flush, so those commits cannot
/// share flushes.
fn notify_ab(url: &str, secs: u64) {
    const SESSIONS: usize = 32;
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.batch_execute("CREATE TABLE ab (id bigserial PRIMARY KEY, v text)")
        .expect("create");
    let run = |notify: bool| -> f64 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let n: usize = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..SESSIONS)
                .map(|_| {
                    scope.spawn(move || {
                        let mut c =
                            postgres::Client::connect(url, postgres::NoTls).expect("connect");
                        let mut n = 0;
                        while Instant::now() < deadline {
                            let mut tx = c.transaction().expect("begin");
                            tx.execute("INSERT INTO ab (v) VALUES ('a visitor message')", &[])
                                .expect("insert");
                            if notify {
                                tx.execute("SELECT pg_notify('ab', 'x')", &[])
                                    .expect("notify");
                            }
                            tx.commit().expect("commit");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("session")).sum()
        });
        n as f64 / started.elapsed().as_secs_f64()
    };
    let (mut plain, mut notifying) = (0.0, 0.0);
    for _ in 0..2 {
        plain += run(false) / 2.0;
        notifying += run(true) / 2.0;
    }
    println!(
        "\nPostgreSQL alone, {SESSIONS} sessions of one-row commits: {plain:.0}/s without NOTIFY, {notifying:.0}/s with a NOTIFY in each ({:.2}x)",
        notifying / plain
    );
}

async fn call(http: &Http, method: &str, url: &str, token: Option<&str>, body: Value) -> Value {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = http
        .request(
            req.body(Full::new(Bytes::from(body.to_string())))
                .expect("request"),
        )
        .await
        .expect("response");
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    assert!(
        (200..300).contains(&status),
        "{method} {url}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// A new conversation on `addr`: (id, token).
async fn conversation(http: &Http, addr: SocketAddr) -> (String, String) {
    let v = call(
        http,
        "POST",
        &format!("http://{addr}/api/v1/conversations"),
        None,
        json!({}),
    )
    .await;
    (
        v["id"].as_str().expect("id").to_string(),
        v["token"].as_str().expect("token").to_string(),
    )
}

/// `visitors` visitors (visitor i on node i % nodes) sending for `time`:
/// each message's latency, and the wall time.
async fn throughput(
    http: &Http,
    addrs: &[SocketAddr],
    visitors: usize,
    time: Duration,
    tag: &str,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let deadline = started + time;
    let tasks: Vec<_> = (0..visitors)
        .map(|v| {
            let (http, addr, tag) = (http.clone(), addrs[v % addrs.len()], tag.to_string());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0;
                let (mut id, mut token) = (String::new(), String::new());
                while Instant::now() < deadline {
                    if i % PER_CONVERSATION == 0 {
                        (id, token) = conversation(&http, addr).await;
                    }
                    let url = format!("http://{addr}/api/v1/conversations/{id}/messages");
                    let body = json!({"text": TEXTS[(v + i) % TEXTS.len()], "client_id": format!("{tag}-{i}")});
                    let t = Instant::now();
                    call(&http, "POST", &url, Some(&token), body).await;
                    lat.push(t.elapsed());
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("visitor"));
    }
    (all, started.elapsed())
}

struct Delivery {
    /// Send to the POST's response (stored).
    send: Vec<Duration>,
    /// Send to the agent's socket receiving the record.
    socket: Vec<Duration>,
    /// Messages the socket did not get within 10 s.
    lost: usize,
}

/// An agent online on node `c` with its console socket there; 4 visitors
/// on node `a` hand off and are claimed by the agent (through `a`), then
/// send `n` messages in all, each waiting for the last to reach the socket.
async fn delivery(http: &Http, a: SocketAddr, c: SocketAddr, admin: &str, n: usize) -> Delivery {
    const VISITORS: usize = 4;
    let api = |addr: SocketAddr, path: &str| format!("http://{addr}/api/v1{path}");
    // Each configuration has a store of its own: one name serves all.
    let name = "latency";
    let agent = call(
        http,
        "POST",
        &api(a, "/admin/agents"),
        Some(admin),
        json!({"name": name}),
    )
    .await["token"]
        .as_str()
        .expect("agent token")
        .to_string();
    let presence = json!({"presence": "online", "capacity": VISITORS});
    for node in [a, c] {
        call(
            http,
            "PUT",
            &api(node, "/agent/presence"),
            Some(&agent),
            presence.clone(),
        )
        .await;
    }
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{c}/api/v1/agent/ws?token={agent}"))
            .await
            .expect("agent socket");
    // Markers (a message's text) waited for, and whom to tell.
    let waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>> = Arc::default();
    let w = Arc::clone(&waiting);
    let reader = tokio::spawn(async move {
        let mut ws = ws;
        while let Some(Ok(m)) = ws.next().await {
            let now = Instant::now();
            let Ok(text) = m.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if v["kind"] != "record" {
                continue;
            }
            if let Some(t) = v["record"]["event"]["text"].as_str() {
                if let Some(tx) = w.lock().unwrap().remove(t) {
                    let _ = tx.send(now);
                }
            }
        }
    });
    // The presence set through `c` reaches `a` with the next heartbeat.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut convs = Vec::new();
    for _ in 0..VISITORS {
        let (id, token) = conversation(http, a).await;
        call(
            http,
            "POST",
            &api(a, &format!("/conversations/{id}/handoff")),
            Some(&token),
            json!({}),
        )
        .await;
        call(
            http,
            "POST",
            &api(a, &format!("/agent/conversations/{id}/claim")),
            Some(&agent),
            json!({}),
        )
        .await;
        convs.push((id, token));
    }
    let each = n.div_ceil(VISITORS);
    let tasks: Vec<_> = convs
        .into_iter()
        .enumerate()
        .map(|(v, (id, token))| {
            let (http, waiting) = (http.clone(), Arc::clone(&waiting));
            let url = api(a, &format!("/conversations/{id}/messages"));
            tokio::spawn(async move {
                let mut d = Delivery {
                    send: Vec::new(),
                    socket: Vec::new(),
                    lost: 0,
                };
                for i in 0..each {
                    let text = format!("where is my order, visitor {v} message {i}");
                    let (tx, rx) = oneshot::channel();
                    waiting.lock().unwrap().insert(text.clone(), tx);
                    let t = Instant::now();
                    call(
                        &http,
                        "POST",
                        &url,
                        Some(&token),
                        json!({"text": text, "client_id": format!("d{i}")}),
                    )
                    .await;
                    d.send.push(t.elapsed());
                    match tokio::time::timeout(Duration::from_secs(10), rx).await {
                        Ok(Ok(at)) => d.socket.push(at - t),
                        _ => {
                            waiting.lock().unwrap().remove(&text);
                            d.lost += 1;
                        }
                    }
                }
                d
            })
        })
        .collect();
    let mut all = Delivery {
        send: Vec::new(),
        socket: Vec::new(),
        lost: 0,
    };
    for t in tasks {
        let d = t.await.expect("visitor");
        all.send.extend(d.send);
        all.socket.extend(d.socket);
        all.lost += d.lost;
    }
    reader.abort();
    all
}

//! The real server: `frontdesk serve` spawned as a process on port 0 with a
//! temp data directory, driven over real HTTP and WebSocket. With
//! `FRONTDESK_TEST_STORE=postgres` every server here keeps its shop in a
//! fresh PostgreSQL database instead (`setup` adds the `[store]`), and
//! the few tests that look into sled's own files say they are skipped
//! (`sled_only`).

mod actions;
mod agents;
mod attachments;
mod backup;
mod canned;
mod cluster;
mod email;
mod feedback;
mod fixture;
mod flow;
mod hostile;
mod identity;
mod improve;
mod inbox;
mod ops;
mod people;
mod postgres;
mod privacy;
mod proxy;
mod reload;
mod replay;
mod report_api;
mod retention;
mod scripted_week;
mod security;
mod sockets;
mod texts;
mod webhook;
mod write_path;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// How long any wait on the server may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One HTTP/1.1 request read from a test's own receiver (a webhook target,
/// a shop backend): its head (request line and headers, as sent) and its
/// body (`content-length` bytes). `None` when the peer closes first.
pub async fn read_request(c: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = c.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("content-length").then_some(v)
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            return Some((head, buf[end + 4..end + 4 + len].to_vec()));
        }
    }
}

/// Answers a request read by `read_request` with an empty `200`.
pub async fn answer_ok(c: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = c
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await;
}

/// A running server and what a test needs to reach it.
pub struct Server {
    child: Child,
    pub addr: String,
    /// The first admin's token (kept across restarts by the test).
    pub admin: String,
    /// What the server printed before it listened.
    pub told: String,
    stderr: std::thread::JoinHandle<String>,
}

/// A temp dir with `frontdesk.toml` (`extra` appended) and a data dir; the
/// intents are the repository's unless `intents` is given.
pub struct Setup {
    /// Kept so the directory lives as long as the setup.
    _tmp: tempfile::TempDir,
    pub config: PathBuf,
}

/// Whether this run's servers keep their shops in PostgreSQL
/// (`FRONTDESK_TEST_STORE=postgres`) rather than sled.
pub fn on_postgres() -> bool {
    std::env::var("FRONTDESK_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// For a test that looks into sled's own files (its directory, backups,
/// damage, compaction): `true` on a PostgreSQL run, after saying on the
/// test output (past the harness's capture, so it is seen) which test is
/// skipped and why; the test then returns.
pub fn sled_only(why: &str) -> bool {
    if !on_postgres() {
        return false;
    }
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(
        std::io::stderr(),
        "skipped on PostgreSQL (sled only): {test}: {why}"
    );
    true
}

/// Runs `f` on a thread of its own: the sync PostgreSQL client (the test
/// cluster, `PgStore`) must not block a thread that drives the tests'
/// async runtime (it runs one of its own), so calls from async tests go
/// through here. A panic in `f` is the caller's.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

pub fn setup(extra: &str, intents: Option<&Path>) -> Setup {
    setup_on(extra, intents, on_postgres())
}

/// `setup`, on a fresh PostgreSQL database when `postgres` (else sled).
pub fn setup_on(extra: &str, intents: Option<&Path>, postgres: bool) -> Setup {
    let tmp = tempfile::tempdir().expect("temp dir");
    let intents = intents.unwrap_or(super::default_intents());
    let config = tmp.path().join("frontdesk.toml");
    let store = if postgres {
        let url = off_runtime(super::pg::database)
            .expect("FRONTDESK_TEST_STORE=postgres, but PostgreSQL is not installed");
        format!("\n[store]\nbackend = \"postgres\"\nurl = {url:?}\n")
    } else {
        String::new()
    };
    let body = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {:?}\ndata_dir = {:?}\nreload_poll_ms = 100\n{extra}{store}",
        intents,
        tmp.path().join("data")
    );
    std::fs::write(&config, body).expect("write config");
    Setup { _tmp: tmp, config }
}

impl Server {
    pub fn start(s: &Setup) -> Server {
        Server::start_with(s, None)
    }

    /// Starts (or restarts, with the admin token of the first start).
    pub fn start_with(s: &Setup, admin: Option<String>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
        cmd.args(["serve", "--config"]).arg(&s.config);
        Server::spawn(cmd, admin)
    }

    /// Starts with the soft limit of open files at `soft`, the stock 1024 of
    /// many systems (the hard limit is left as it is), through the shell's
    /// `ulimit`.
    pub fn start_with_open_files(s: &Setup, soft: u64) -> Server {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -Sn {soft} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_frontdesk"))
            .args(["serve", "--config"])
            .arg(&s.config);
        Server::spawn(cmd, None)
    }

    /// Starts with `FRONTDESK_LOG` set to `filter` (the log is what `stop`
    /// returns).
    pub fn start_with_log(s: &Setup, filter: &str) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
        cmd.args(["serve", "--config"])
            .arg(&s.config)
            .env("FRONTDESK_LOG", filter);
        Server::spawn(cmd, None)
    }

    fn spawn(mut cmd: Command, admin: Option<String>) -> Server {
        if !cmd.get_envs().any(|(k, _)| k == "FRONTDESK_LOG") {
            cmd.env("FRONTDESK_LOG", "warn");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn frontdesk serve");
        let err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if std::env::var("TEST_LOG").is_ok() {
                    eprintln!("server: {line}");
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut admin = admin;
        let mut addr = None;
        let mut line = String::new();
        let mut told = String::new();
        while addr.is_none() {
            line.clear();
            if out.read_line(&mut line).expect("read stdout") == 0 {
                let _ = child.wait();
                panic!(
                    "server exited before listening: {}",
                    stderr.join().unwrap_or_default()
                );
            }
            told.push_str(&line);
            let l = line.trim();
            if l.starts_with("fd_") {
                admin = Some(l.to_string());
            }
            if let Some(a) = l.strip_prefix("frontdesk listening on http://") {
                addr = Some(a.to_string());
            }
        }
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in out.lines() {});
        Server {
            child,
            addr: addr.unwrap_or_default(),
            admin: admin.expect("an admin token on the first start"),
            told,
            stderr,
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// SIGTERM, then wait: a graceful stop. Returns the server's log.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::mem::replace(&mut self.stderr, std::thread::spawn(String::new))
            .join()
            .unwrap_or_default()
    }

    /// SIGKILL: a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers, JSON body (Null when not JSON).
pub struct Res {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Value,
    pub text: String,
}

pub async fn raw(
    method: &str,
    url: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> Res {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let res = tokio::time::timeout(PATIENCE, client.request(req))
        .await
        .expect("server answers in time")
        .expect("request succeeds");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Res {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    }
}

pub async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> Res {
    match body {
        Some(b) => {
            raw(
                method,
                url,
                token,
                Some("application/json"),
                b.to_string().into_bytes(),
                &[],
            )
            .await
        }
        None => raw(method, url, token, None, Vec::new(), &[]).await,
    }
}

/// A visitor's conversation.
pub struct Visitor {
    pub id: String,
    pub token: String,
}

/// What a test reaches a server by (a spawned process or an in-process
/// app), with the visitor's steps every test takes.
pub trait Reach {
    fn url(&self, path: &str) -> String;

    async fn new_visitor(&self, name: &str) -> Visitor {
        let r = call(
            "POST",
            &self.url("/api/v1/conversations"),
            None,
            Some(json!({"name": name, "page_url": "https://shop.example/cart"})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        Visitor {
            id: r.body["id"].as_str().unwrap().to_string(),
            token: r.body["token"].as_str().unwrap().to_string(),
        }
    }

    async fn say(&self, v: &Visitor, text: &str, client_id: &str) -> Res {
        call(
            "POST",
            &self.url(&format!("/api/v1/conversations/{}/messages", v.id)),
            Some(&v.token),
            Some(json!({"text": text, "client_id": client_id})),
        )
        .await
    }
}

impl Reach for Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Server {
    /// Makes an agent through the admin API; returns its token.
    pub async fn new_agent(&self, name: &str) -> String {
        let r = call(
            "POST",
            &self.url("/api/v1/admin/agents"),
            Some(&self.admin),
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["token"].as_str().unwrap().to_string()
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws(url: &str) -> Ws {
    tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .expect("socket opens in time")
        .expect("socket opens")
        .0
}

/// The next JSON message on a socket (pings are skipped).
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("no socket error");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).expect("JSON message");
        }
    }
}

/// Reads records until one whose event type is `kind`; returns it and
/// everything read on the way.
pub async fn until_event(ws: &mut Ws, kind: &str) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    loop {
        let m = next_json(ws).await;
        if m["kind"] == "record" && m["record"]["event"]["type"] == kind {
            return (m, seen);
        }
        seen.push(m);
    }
}

pub async fn send_text(ws: &mut Ws, text: String) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// The code of the close frame that ends a socket (None: no close frame).
pub async fn close_code(
    sock: &mut Ws,
) -> Option<tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode> {
    loop {
        match tokio::time::timeout(PATIENCE, sock.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return Some(f.code),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

/// A server in this process on port 0 with a fresh store (sled in a temp
/// dir, or a PostgreSQL database: `setup`) (`frontdesk.toml` gets `extra`); `wrap` may put a wrapper around the
/// store (see `spy.rs`). The server stops when the value is dropped.
pub struct TestApp {
    pub addr: String,
    pub admin: String,
    /// The app itself, for what a test drives directly (the retention
    /// sweep on a manual clock).
    pub app: frontdesk::app::App,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The store, let go last and off the runtime (`Drop`).
    store: Option<std::sync::Arc<dyn frontdesk::store::Store>>,
    _setup: Setup,
}

pub async fn spawn_app(
    extra: &str,
    wrap: impl FnOnce(
        std::sync::Arc<dyn frontdesk::store::Store>,
    ) -> std::sync::Arc<dyn frontdesk::store::Store>,
) -> TestApp {
    spawn_app_clocked(extra, wrap, frontdesk::util::clock::Clock::system()).await
}

/// `spawn_app` on a clock the test sets (`Clock::manual`): scripted days
/// of traffic through the real HTTP server with exact times.
pub async fn spawn_app_clocked(
    extra: &str,
    wrap: impl FnOnce(
        std::sync::Arc<dyn frontdesk::store::Store>,
    ) -> std::sync::Arc<dyn frontdesk::store::Store>,
    clock: frontdesk::util::clock::Clock,
) -> TestApp {
    let s = setup(extra, None);
    let config =
        frontdesk::config::Config::load(Some(&s.config), std::iter::empty()).expect("config loads");
    // Opened, and the app started (it reads the store), off the runtime:
    // see `off_runtime`.
    let store: std::sync::Arc<dyn frontdesk::store::Store> = match &config.store {
        frontdesk::config::StoreConfig::Sled => std::sync::Arc::new(
            frontdesk::store::SledStore::open(&config.server.data_dir).expect("store opens"),
        ),
        frontdesk::config::StoreConfig::Postgres(pg) => std::sync::Arc::new(
            off_runtime(|| frontdesk::store::PgStore::open(&pg.url.0, pg.pool_size))
                .expect("store opens"),
        ),
    };
    let store = wrap(store);
    let kept = store.clone();
    let (app, started) = off_runtime(move || {
        frontdesk::app::App::with_clock(config, store, clock).expect("the app starts")
    });
    let listener = frontdesk::http::listen("127.0.0.1:0")
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("address").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(frontdesk::http::run(listener, app.clone(), async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        admin: started.first_admin_token.expect("a first admin"),
        app: app.clone(),
        stop: Some(stop),
        store: Some(kept),
        _setup: s,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The sync PostgreSQL client closes its sessions by blocking on a
        // runtime of its own, which panics on a thread of the tests'
        // runtime, where the server's tasks let go of the app: so this
        // reference waits on a thread of its own to be the last one.
        if let Some(store) = self.store.take() {
            std::thread::spawn(move || {
                let until = std::time::Instant::now() + Duration::from_secs(60);
                while std::sync::Arc::strong_count(&store) > 1 {
                    if std::time::Instant::now() > until {
                        std::mem::forget(store);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
    }
}

impl Reach for TestApp {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl TestApp {
    /// `f` on the app, off the runtime: what a test reads or sweeps
    /// directly must not call the sync PostgreSQL client on a thread of
    /// the tests' runtime (`off_runtime`).
    pub fn off<T: Send>(&self, f: impl FnOnce(&frontdesk::app::App) -> T + Send) -> T {
        off_runtime(|| f(&self.app))
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// An agent made through the admin API and set online; its token.
    pub async fn online_agent(&self, name: &str) -> String {
        let r = call(
            "POST",
            &self.url("/api/v1/admin/agents"),
            Some(&self.admin),
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let token = r.body["token"].as_str().unwrap().to_string();
        let p = call(
            "PUT",
            &self.url("/api/v1/agent/presence"),
            Some(&token),
            Some(json!({"presence": "online"})),
        )
        .await;
        assert_eq!(p.status, 200, "{}", p.text);
        token
    }
}

//! Memory of idle visitor WebSockets (issue 15, defect 6): the real server,
//! `frontdesk serve` in its own process so its resident memory is its own,
//! with one conversation per visitor and one idle socket per conversation.
//! Prints the server's VmRSS (from /proc/PID/status) with no socket open,
//! at 1k, 5k and 10k open, after closing all, and after a second cycle of
//! 10k open and closed.
//!
//!   cargo bench --bench sockets
//!
//! `SOCKETS=N` changes the largest count (10,000 by default, the default
//! `websockets_total`). The bench raises its own open-file limit to N +
//! 1024 with `prlimit` (the hard limit must allow it); the server inherits
//! it. Clients connect from 127.0.0.10–13 so that two
//! cycles of 10k never run short of ephemeral ports.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<tokio::net::TcpStream>;
type Http = Client<HttpConnector, Full<Bytes>>;

/// How long any one step may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(120);

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, most: usize) -> Server {
    let intents = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let config = dir.join("frontdesk.toml");
    // Idle sockets are pinged every websocket_idle_secs / 3; an hour keeps
    // the bench's silent clients from being closed as dead.
    let body = format!(
        "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {:?}\ndata_dir = {:?}\n\
         [limits]\nconversations_per_ip_per_minute = 1000000\n\
         requests_per_ip_per_minute = 100000000\n\
         websockets_per_ip = {most}\nwebsockets_total = {most}\nwebsocket_idle_secs = 3600\n\
         connections_per_ip = {most}\n",
        intents,
        dir.join("data")
    );
    std::fs::write(&config, body).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("FRONTDESK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn frontdesk serve");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if out.read_line(&mut line).expect("read stdout") == 0 {
            panic!("server exited before listening");
        }
        if let Some(a) = line.trim().strip_prefix("frontdesk listening on http://") {
            break a.parse().expect("address");
        }
    };
    std::thread::spawn(move || for _ in out.lines() {});
    Server { child, addr }
}

/// Raises this process's open-file limit (the server inherits it): the
/// hard limit too when allowed, else the soft one up to the hard one.
fn raise_nofile(n: u64) {
    let me = std::process::id().to_string();
    let ok = [format!("--nofile={n}:{n}"), format!("--nofile={n}:")]
        .iter()
        .any(|limit| {
            Command::new("prlimit")
                .args(["--pid", &me, limit])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if !ok {
        eprintln!("could not raise the open-file limit to {n}; large counts may fail");
    }
}

fn main() {
    let most: usize = std::env::var("SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // Each process holds one end of every socket, plus its own files.
    raise_nofile(most as u64 + 1024);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), most);
    let pid = server.child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async move {
        let http: Http = Client::builder(TokioExecutor::new()).build_http();
        let fresh = rss_mb(pid);
        let t = Instant::now();
        let convs = conversations(&http, server.addr, most).await;
        println!(
            "server {pid}: {fresh:.0} MB fresh; {} conversations made in {:.1} s",
            convs.len(),
            t.elapsed().as_secs_f64()
        );
        println!("{:>6} {:>14} {:>8}", "cycle", "open sockets", "RSS MB");
        let base = rss_mb(pid);
        println!("{:>6} {:>14} {:>8.0}", 1, 0, base);
        let marks: Vec<usize> = [1_000, 5_000, 10_000]
            .into_iter()
            .filter(|&m| m < most)
            .chain([most])
            .collect();
        for cycle in 1..=2 {
            let mut open: Vec<Ws> = Vec::with_capacity(most);
            let t = Instant::now();
            for &mark in &marks {
                if cycle == 2 && mark != most {
                    continue;
                }
                let more = connect(server.addr, &convs[open.len()..mark]).await;
                open.extend(more);
                wait_open(&http, server.addr, mark).await;
                println!("{cycle:>6} {mark:>14} {:>8.0}", rss_mb(pid));
            }
            let opened = t.elapsed();
            let per = (rss_mb(pid) - base) * 1024.0 / most as f64;
            let t = Instant::now();
            close(open).await;
            wait_open(&http, server.addr, 0).await;
            println!(
                "{cycle:>6} {:>14} {:>8.0}   ({per:.1} KB per open socket over the 0 mark; opened in {:.1} s, closed in {:.1} s)",
                "0 (all closed)",
                rss_mb(pid),
                opened.as_secs_f64(),
                t.elapsed().as_secs_f64()
            );
        }
    });
}

async fn post(http: &Http, url: &str) -> serde_json::Value {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("request");
    let res = http.request(req).await.expect("response");
    assert_eq!(res.status(), 201, "creating a conversation");
    let body = res.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&body).expect("json")
}

/// `n` conversations: (id, token).
async fn conversations(http: &Http, addr: SocketAddr, n: usize) -> Vec<(String, String)> {
    let url = format!("http://{addr}/api/v1/conversations");
    futures_util::stream::iter(0..n)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let v = post(&http, &url).await;
                (
                    v["id"].as_str().expect("id").to_string(),
                    v["token"].as_str().expect("token").to_string(),
                )
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// One visitor socket per conversation. Each waits for its first message
/// (the conversation's records), so the server's socket task has settled
/// into its idle loop when this returns.
async fn connect(addr: SocketAddr, convs: &[(String, String)]) -> Vec<Ws> {
    // The client's own buffers are kept small: it holds 10k sockets too.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    futures_util::stream::iter(convs.iter().enumerate())
        .map(|(i, (id, token))| async move {
            let source = Ipv4Addr::new(127, 0, 0, 10 + (i % 4) as u8);
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.bind(SocketAddrV4::new(source, 0).into())
                .expect("bind source");
            let stream = sock.connect(addr).await.expect("connect");
            let url = format!("ws://{addr}/api/v1/conversations/{id}/ws?token={token}");
            let (mut ws, _) =
                tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                    .await
                    .expect("upgrade");
            tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("first message in time")
                .expect("socket open")
                .expect("first message");
            ws
        })
        .buffer_unordered(64)
        .collect()
        .await
}

/// Closes every socket with the handshake and waits for the server's end.
async fn close(open: Vec<Ws>) {
    futures_util::stream::iter(open)
        .map(|mut ws| async move {
            let _ = ws
                .send(tokio_tungstenite::tungstenite::Message::Close(None))
                .await;
            let _ = tokio::time::timeout(PATIENCE, async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        })
        .buffer_unordered(256)
        .collect::<Vec<()>>()
        .await;
}

/// Polls the server's `frontdesk_websockets_open` gauge until it reads `n`:
/// the server counts a socket until its task has dropped it.
async fn wait_open(http: &Http, addr: SocketAddr, n: usize) {
    let url: hyper::Uri = format!("http://{addr}/metrics").parse().expect("uri");
    let deadline = Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let res = http.get(url.clone()).await.expect("metrics");
        let body = res.into_body().collect().await.expect("body").to_bytes();
        let open = String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix("frontdesk_websockets_open "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if open == Some(n as f64) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server still counts {open:?} open sockets, expected {n}"
        );
    }
}

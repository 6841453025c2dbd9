//! Load on the real server over loopback HTTP: visitors sending messages
//! (each one classified, answered and stored durably before the response),
//! at several concurrencies. Prints throughput, latency percentiles and the
//! process's resident memory.
//!
//!   cargo bench --bench load
//!
//! Client and server share the process (two runtimes, one each), so the
//! memory figure includes the client's few connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk::app::App;
use frontdesk::config::Config;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

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

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .map(|v| v.parse::<f64>().unwrap_or(0.0))
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let intents = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let env = [
        (
            "FRONTDESK_SERVER__DATA_DIR".to_string(),
            dir.path().join("data").display().to_string(),
        ),
        (
            "FRONTDESK_SERVER__INTENTS_DIR".to_string(),
            intents.display().to_string(),
        ),
        (
            "FRONTDESK_LIMITS__MESSAGES_PER_MINUTE".to_string(),
            "1000000".to_string(),
        ),
        (
            "FRONTDESK_LIMITS__CONVERSATIONS_PER_IP_PER_MINUTE".to_string(),
            "1000000".to_string(),
        ),
        (
            "FRONTDESK_LIMITS__REQUESTS_PER_IP_PER_MINUTE".to_string(),
            "100000000".to_string(),
        ),
        // All 128 visitors come from 127.0.0.1 (issue 15's per-IP
        // connection cap is 64 by default).
        (
            "FRONTDESK_LIMITS__CONNECTIONS_PER_IP".to_string(),
            "1000".to_string(),
        ),
    ];
    let config = Config::load(None, env).expect("config");
    let rss_before = rss_mb();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let store = frontdesk::store::SledStore::open(&config.server.data_dir).expect("store");
    let (app, _) = App::with_store(config, std::sync::Arc::new(store)).expect("app");
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = server.spawn(frontdesk::http::run(listener, app, async {
        let _ = stopped.await;
    }));
    let rss_idle = rss_mb();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    println!("server idle: {rss_idle:.0} MB resident (process started at {rss_before:.0} MB)");
    println!(
        "{:>11} {:>9} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "concurrency", "messages", "msg/s", "p50 ms", "p99 ms", "max ms", "RSS MB"
    );
    for concurrency in [1usize, 8, 32, 128] {
        let per_visitor = (2000 / concurrency).clamp(10, 400);
        let (lat, wall) = client_rt.block_on(run(addr, concurrency, per_visitor));
        let mut lat = lat;
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
        println!(
            "{concurrency:>11} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8.0}",
            lat.len(),
            lat.len() as f64 / wall.as_secs_f64(),
            pct(0.5),
            pct(0.99),
            pct(1.0),
            rss_mb()
        );
    }
    let _ = stop.send(());
    let _ = server.block_on(handle);
}

async fn run(
    addr: std::net::SocketAddr,
    visitors: usize,
    each: usize,
) -> (Vec<Duration>, Duration) {
    let client: Arc<Client<_, Full<Bytes>>> =
        Arc::new(Client::builder(TokioExecutor::new()).build_http());
    let base = format!("http://{addr}/api/v1");
    let mut convs = Vec::new();
    for _ in 0..visitors {
        let (_, body) = post(&client, &format!("{base}/conversations"), None, "{}".into()).await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        convs.push((
            v["id"].as_str().unwrap().to_string(),
            v["token"].as_str().unwrap().to_string(),
        ));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, (id, token)) in convs.into_iter().enumerate() {
        let client = Arc::clone(&client);
        let url = format!("{base}/conversations/{id}/messages");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(each);
            for i in 0..each {
                let body = serde_json::json!({"text": TEXTS[(n + i) % TEXTS.len()], "client_id": format!("m{i}")});
                let t = Instant::now();
                let (status, _) = post(&client, &url, Some(&token), body.to_string()).await;
                lat.push(t.elapsed());
                assert_eq!(status, 200);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    (all, started.elapsed())
}

async fn post(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    token: Option<&str>,
    body: String,
) -> (u16, Bytes) {
    let mut req = hyper::Request::post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = client
        .request(req.body(Full::new(Bytes::from(body))).expect("request"))
        .await
        .expect("response");
    let status = res.status().as_u16();
    (
        status,
        res.into_body().collect().await.expect("body").to_bytes(),
    )
}

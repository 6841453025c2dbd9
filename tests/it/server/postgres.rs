//! The server and the commands on PostgreSQL (issue 20): a shop copied
//! from sled into a database and back with everything counted, a copy
//! into a store that holds a shop refused, `store migrate` run twice, the
//! url's password kept out of the log, and a node whose database stops
//! answering 503 `store_unavailable` at once and serving again when it is
//! back. Each test skips (and says so) without PostgreSQL, unless
//! `FRONTDESK_REQUIRE_PG=1`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{call, off_runtime, raw, setup_on, Reach, Server, PATIENCE};
use crate::pg;

fn frontdesk(args: &[&str], config: Option<&Path>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.args(args);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.output().expect("run frontdesk");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `[store]` section of a database.
fn on(url: &str) -> String {
    format!("[store]\nbackend = \"postgres\"\nurl = {url:?}\n")
}

/// The count a `store copy` printed for `what` (source, target).
fn counted(out: &str, what: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(what))
        .unwrap_or_else(|| panic!("no `{what}` line in:\n{out}"));
    let n: Vec<u64> = line[line.find(what).unwrap() + what.len()..]
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_moves_to_postgres_and_back_whole() {
    let Some(url) = off_runtime(pg::database) else {
        return;
    };
    // A sled shop with conversations, an agent, a queue, a rating and an
    // attachment, made through the real server.
    let s = setup_on("", None, false);
    let srv = Server::start(&s);
    let alex = srv.new_agent("alex").await;
    let queued = srv.new_visitor("Dana").await;
    let r = srv.say(&queued, "can I talk to a human please", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let up = raw(
        "POST",
        &srv.url(&format!(
            "/api/v1/conversations/{}/attachments?name=photo.png",
            queued.id
        )),
        Some(&queued.token),
        Some("image/png"),
        super::attachments::PNG.to_vec(),
        &[],
    )
    .await;
    assert_eq!(up.status, 200, "{}", up.text);
    let att = up.body["records"][0]["event"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an attachment id in {}", up.text))
        .to_string();
    for i in 0..3 {
        let v = srv.new_visitor(&format!("v{i}")).await;
        let r = srv.say(&v, "how much is shipping", "m1").await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let admin = srv.admin.clone();
    srv.stop();
    let data = s.config.parent().unwrap().join("data");
    let d = data.to_str().unwrap();

    let to_pg = format!("postgres:{url}");
    let (ok, out, err) = frontdesk(
        &[
            "store",
            "copy",
            "--from",
            &format!("sled:{d}"),
            "--to",
            &to_pg,
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("counts agree"), "{out}");
    assert_eq!(counted(&out, "conversations"), (4, 4), "{out}");
    assert_eq!(counted(&out, "agents"), (2, 2), "admin and alex: {out}");
    assert_eq!(counted(&out, "queue"), (1, 1), "{out}");
    let (events, _) = counted(&out, "events");
    assert!(events >= 4 * 3, "{out}");
    assert_eq!(
        counted(&out, "attachment bytes"),
        (
            super::attachments::PNG.len() as u64,
            super::attachments::PNG.len() as u64
        ),
        "{out}"
    );

    // A second copy into the same database is refused, and changes nothing.
    let (ok, out2, err) = frontdesk(
        &[
            "store",
            "copy",
            "--from",
            &format!("sled:{d}"),
            "--to",
            &to_pg,
        ],
        None,
    );
    assert!(!ok, "{out2}");
    assert!(err.contains("holds a shop already"), "{err}");

    // The shop serves from PostgreSQL: the admin's token, the queue, the
    // attachment's bytes.
    let pg_setup = setup_on(&on(&url), None, false);
    let srv = Server::start_with(&pg_setup, Some(admin.clone()));
    let q = call("GET", &srv.url("/api/v1/agent/queue"), Some(&alex), None).await;
    assert_eq!(q.status, 200, "{}", q.text);
    assert!(q.text.contains(&queued.id), "{}", q.text);
    let f = raw(
        "GET",
        &srv.url(&format!(
            "/api/v1/conversations/{}/attachments/{att}",
            queued.id
        )),
        Some(&queued.token),
        None,
        Vec::new(),
        &[],
    )
    .await;
    assert_eq!(f.status, 200, "{}", f.text);
    let r = srv.say(&queued, "are you there?", "m2").await;
    assert_eq!(
        r.status, 200,
        "a visitor token made on sled works: {}",
        r.text
    );
    srv.stop();

    // And back into sled, counted again (one message more now).
    let back = s.config.parent().unwrap().join("back");
    let b = back.to_str().unwrap();
    let (ok, out, err) = frontdesk(
        &[
            "store",
            "copy",
            "--from",
            &to_pg,
            "--to",
            &format!("sled:{b}"),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("counts agree"), "{out}");
    assert_eq!(counted(&out, "conversations"), (4, 4), "{out}");
    assert!(counted(&out, "events").0 > events, "{out}");
    let (ok, out, err) = frontdesk(&["store", "verify", "--data", b], None);
    assert!(ok, "the copy is a whole sled store: {out}{err}");
    // Into a sled directory that is not empty: refused, and left alone.
    let (ok, _, err) = frontdesk(
        &[
            "store",
            "copy",
            "--from",
            &to_pg,
            "--to",
            &format!("sled:{d}"),
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("exists and is not empty"), "{err}");
    assert!(data.join("db").exists() || std::fs::read_dir(&data).unwrap().next().is_some());
}

#[test]
fn store_migrate_runs_twice_and_prints_the_version() {
    let Some(url) = pg::database() else { return };
    let s = setup_on(&on(&url), None, false);
    let version = format!("schema version {}", frontdesk::store::SCHEMA_VERSION);
    for _ in 0..2 {
        let (ok, out, err) = frontdesk(&["store", "migrate"], Some(&s.config));
        assert!(ok, "{out}{err}");
        assert!(out.contains(&version), "{out}");
    }
}

/// `GET /healthz`'s status.
async fn health(srv: &Server) -> u16 {
    call("GET", &srv.url("/healthz"), None, None).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_answers_503_at_once_and_the_node_recovers() {
    let Some(cluster) = off_runtime(|| pg::Cluster::start(false)) else {
        return;
    };
    // A password in the url (the test cluster trusts local users, so it is
    // sent nowhere): the log names the database without it.
    let url = format!("{} password=s3cret-pw", off_runtime(|| cluster.database()));
    let s = setup_on(&on(&url), None, false);
    let srv = Server::start_with_log(&s, "info");
    let v = srv.new_visitor("Dana").await;
    assert_eq!(health(&srv).await, 200);

    cluster.stop();
    let t = Instant::now();
    let r = srv.say(&v, "how much is shipping", "m1").await;
    let took = t.elapsed();
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "store_unavailable", "{}", r.text);
    assert_eq!(
        r.headers.get("retry-after").and_then(|h| h.to_str().ok()),
        Some("5")
    );
    assert!(took < Duration::from_secs(8), "answered in {took:?}");
    let r = call(
        "POST",
        &srv.url("/api/v1/conversations"),
        None,
        Some(json!({"name": "Eve"})),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "store_unavailable");
    let h = call("GET", &srv.url("/healthz"), None, None).await;
    assert_eq!(h.status, 503, "{}", h.text);
    assert_eq!(h.body["status"], "store_unavailable");

    cluster.start_again();
    let back = Instant::now();
    while health(&srv).await != 200 {
        assert!(back.elapsed() < PATIENCE * 3, "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = srv.say(&v, "how much is shipping", "m1").await;
    assert_eq!(r.status, 200, "serves again: {}", r.text);
    let log = srv.stop();
    assert!(log.contains("store opened"), "{log}");
    assert!(log.contains("password=***"), "{log}");
    assert!(!log.contains("s3cret-pw"), "{log}");
}

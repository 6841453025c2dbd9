//! Email through a real SMTP server on loopback (issue 18, item 5):
//! `tests/smtp/server.py` runs aiosmtpd and writes each message it accepts
//! to a directory; these tests read what arrived.
//!
//! aiosmtpd comes from PyPI (`pip install aiosmtpd`; `.ci/run` does). Like
//! `proxy.rs` with nginx, a machine without it skips these tests with a
//! SKIPPED line, and fails them when `CI` or `FRONTDESK_REQUIRE_SMTP` is
//! set, so CI cannot pass without them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

/// A running `tests/smtp/server.py`.
struct Smtp {
    child: Child,
    port: u16,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Whether the tests can run here; panics when they must (CI) but cannot.
fn smtp_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let required = ["CI", "FRONTDESK_REQUIRE_SMTP"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "false"));
        assert!(
            !required,
            "python3 with aiosmtpd is needed for the SMTP tests (pip install aiosmtpd)"
        );
        eprintln!("SKIPPED {test}: python3 with aiosmtpd is not installed (pip install aiosmtpd; CI requires it)");
    }
    ok
}

impl Smtp {
    /// On `port`, writing into `dir` (a fresh temp dir when `None`).
    fn start(port: u16, dir: Option<&Path>) -> Smtp {
        let tmp = dir.is_none().then(|| tempfile::tempdir().unwrap());
        let dir = dir.map_or_else(
            || tmp.as_ref().unwrap().path().to_path_buf(),
            Path::to_path_buf,
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server starts");
        Smtp {
            child,
            port,
            dir,
            _tmp: tmp,
        }
    }

    /// Every message received so far, oldest first.
    fn received(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits for `n` messages, then a while longer to see no more come.
    async fn exactly(&self, n: usize, settle: Duration) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.received().len() < n {
            assert!(Instant::now() < deadline, "{n} email(s) did not arrive");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(settle).await;
        let got = self.received();
        assert_eq!(got.len(), n, "exactly {n} email(s): {got:#?}");
        got
    }
}

fn email_config(port: u16, batch_secs: u64, notify: &str) -> String {
    format!(
        "[email]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"Shop <help@shop.example>\"\npublic_url = \"https://shop.example/help\"\nbatch_secs = {batch_secs}\nnotify = [{notify}]\n"
    )
}

/// A conversation of a visitor who gave `email` at the start.
async fn visitor_with_email(s: &impl Reach, email: &str) -> Visitor {
    let r = call(
        "POST",
        &s.url("/api/v1/conversations"),
        None,
        Some(json!({"name": "Ada", "email": email})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Visitor {
        id: r.body["id"].as_str().unwrap().to_string(),
        token: r.body["token"].as_str().unwrap().to_string(),
    }
}

/// The visitor asks for a person and `agent` claims the conversation.
async fn with_agent(s: &impl Reach, v: &Visitor, agent: &str) {
    let r = call(
        "POST",
        &s.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = agent_do(s, v, agent, "claim", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn agent_do(s: &impl Reach, v: &Visitor, agent: &str, what: &str, text: Option<&str>) -> Res {
    call(
        "POST",
        &s.url(&format!("/api/v1/agent/conversations/{}/{what}", v.id)),
        Some(agent),
        text.map(|t| json!({ "text": t })),
    )
    .await
}

/// The id and key of the link in an email body.
fn link_in(body: &str) -> (String, String) {
    let at = body
        .find("https://shop.example/help#frontdesk=")
        .expect("a link to the shop's page");
    let link: String = body[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let rest = link.split_once("#frontdesk=").unwrap().1;
    let (id, key) = rest.split_once('.').unwrap();
    (id.to_string(), key.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_disconnected_visitor_arrives_once_with_a_working_link() {
    if !smtp_available("a_reply_to_a_disconnected_visitor_arrives_once_with_a_working_link") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let app = spawn_app(&email_config(smtp.port, 1, ""), |s| s).await;
    let sam = app.online_agent("sam").await;
    let v = visitor_with_email(&app, "ada@example.com").await;
    with_agent(&app, &v, &sam).await;
    // Two replies in the batch window: one email.
    for text in ["Let me check your order.", "It ships today."] {
        let r = agent_do(&app, &v, &sam, "messages", Some(text)).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let got = smtp.exactly(1, Duration::from_secs(3)).await;
    let m = &got[0];
    assert_eq!(m["rcpt_tos"], json!(["ada@example.com"]));
    assert_eq!(m["to"], "ada@example.com");
    assert_eq!(m["mail_from"], "help@shop.example");
    assert_eq!(m["subject"], "sam replied to your question");
    let body = m["body"].as_str().unwrap();
    assert!(
        body.contains("Let me check your order.") && body.contains("It ships today."),
        "{body}"
    );

    // The link opens the conversation: its key buys the visitor's token.
    let (id, key) = link_in(body);
    assert_eq!(id, v.id);
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{id}/resume")),
        None,
        Some(json!({ "key": key })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["token"].as_str().unwrap();
    let r = call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{id}/events")),
        Some(token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("It ships today."));
    // It opens that conversation only, and only as it was signed.
    let other = visitor_with_email(&app, "eve@example.com").await;
    for (id, key) in [
        (other.id.as_str(), key.clone()),
        (v.id.as_str(), key.replace('.', ".0")),
        (v.id.as_str(), format!("{}.{}", i64::MAX / 1000, "00")),
    ] {
        let r = call(
            "POST",
            &app.url(&format!("/api/v1/conversations/{id}/resume")),
            None,
            Some(json!({ "key": key })),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.body["error"]["code"], "bad_resume_key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_email_while_the_visitor_is_connected() {
    if !smtp_available("no_email_while_the_visitor_is_connected") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let app = spawn_app(&email_config(smtp.port, 0, ""), |s| s).await;
    let sam = app.online_agent("sam").await;
    let v = visitor_with_email(&app, "ada@example.com").await;
    with_agent(&app, &v, &sam).await;
    let mut sock = ws(&app.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    )))
    .await;
    // The socket is registered once it has caught up.
    let _ = next_json(&mut sock).await;
    agent_do(&app, &v, &sam, "messages", Some("Seen live.")).await;
    let (m, _) = until_event(&mut sock, "agent_message").await;
    assert_eq!(m["record"]["event"]["text"], "Seen live.");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(smtp.received().is_empty(), "{:?}", smtp.received());
    // Gone: the next reply goes by email, alone.
    drop(sock);
    let deadline = Instant::now() + PATIENCE;
    while app.app.hub().watched(&v.id) {
        assert!(Instant::now() < deadline, "the socket is let go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent_do(&app, &v, &sam, "messages", Some("Sent by email.")).await;
    let got = smtp.exactly(1, Duration::from_secs(1)).await;
    let body = got[0]["body"].as_str().unwrap();
    assert!(
        body.contains("Sent by email.") && !body.contains("Seen live."),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcript_holds_every_visible_message_and_no_note() {
    if !smtp_available("the_transcript_holds_every_visible_message_and_no_note") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let app = spawn_app(&email_config(smtp.port, 60, ""), |s| s).await;
    let sam = app.online_agent("sam").await;
    let v = visitor_with_email(&app, "ada@example.com").await;
    let mut sock = ws(&app.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    )))
    .await;
    let _ = next_json(&mut sock).await;
    app.say(&v, "How much is shipping to Canada?", "c1").await;
    with_agent(&app, &v, &sam).await;
    agent_do(&app, &v, &sam, "notes", Some("INTERNAL: refund risk")).await;
    agent_do(
        &app,
        &v,
        &sam,
        "messages",
        Some("Shipping is free this week."),
    )
    .await;
    let path = format!("/api/v1/conversations/{}/transcript", v.id);
    // Not before the close.
    let r = call("POST", &app.url(&path), Some(&v.token), Some(json!({}))).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "not_closed");
    agent_do(&app, &v, &sam, "close", None).await;
    let r = call("POST", &app.url(&path), Some(&v.token), Some(json!({}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["email"], "ada@example.com");
    let got = smtp.exactly(1, Duration::from_millis(500)).await;
    assert_eq!(got[0]["rcpt_tos"], json!(["ada@example.com"]));
    let body = got[0]["body"].as_str().unwrap();
    assert!(!body.contains("INTERNAL"), "{body}");
    // Every message of the visitor's own view, each line of it.
    let seen = call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    let mut messages = 0;
    for r in seen.body["events"].as_array().unwrap() {
        let e = &r["event"];
        let kind = e["type"].as_str().unwrap();
        if let (true, Some(text)) = (
            matches!(
                kind,
                "visitor_message"
                    | "bot_reply"
                    | "clarification"
                    | "slot_prompt"
                    | "fallback"
                    | "handoff_offered"
                    | "agent_message"
            ),
            e["text"].as_str(),
        ) {
            messages += 1;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                assert!(body.contains(line), "{kind} {line:?} in {body}");
            }
        }
    }
    assert!(messages >= 3, "{}", seen.text);
    // Without an address of its own: one must be given, and be one.
    let w = app.new_visitor("Bo").await;
    with_agent(&app, &w, &sam).await;
    agent_do(&app, &w, &sam, "close", None).await;
    let path = format!("/api/v1/conversations/{}/transcript", w.id);
    let r = call("POST", &app.url(&path), Some(&w.token), Some(json!({}))).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (422, &json!("no_email"))
    );
    // Nor does a given address stand in for one left in the conversation.
    let r = call(
        "POST",
        &app.url(&path),
        Some(&w.token),
        Some(json!({"email": "bo@example.com"})),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (422, &json!("no_email"))
    );
}

/// A visitor whose conversation, with `text` in it, `agent` closed.
async fn closed_with(s: &impl Reach, email: &str, text: &str, agent: &str) -> Visitor {
    let v = visitor_with_email(s, email).await;
    let r = s.say(&v, text, "c1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    with_agent(s, &v, agent).await;
    let r = agent_do(s, &v, agent, "close", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcript_goes_only_to_the_visitors_own_address_once() {
    if !smtp_available("the_transcript_goes_only_to_the_visitors_own_address_once") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let config = format!(
        "{}transcripts_per_hour = 2\n",
        email_config(smtp.port, 60, "")
    );
    let app = spawn_app(&config, |s| s).await;
    let sam = app.online_agent("sam").await;
    let v = closed_with(
        &app,
        "ada@example.com",
        "claim your refund at http://evil.example/refund",
        &sam,
    )
    .await;
    let path = format!("/api/v1/conversations/{}/transcript", v.id);
    // Not to strangers: the shop's sender is no relay for visitor text.
    for n in 1..=3 {
        let r = call(
            "POST",
            &app.url(&path),
            Some(&v.token),
            Some(json!({ "email": format!("victim{n}@example.net") })),
        )
        .await;
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (422, &json!("email_mismatch")),
            "{}",
            r.text
        );
    }
    // To the address left, once.
    let r = call(
        "POST",
        &app.url(&path),
        Some(&v.token),
        Some(json!({"email": "ada@example.com"})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = call("POST", &app.url(&path), Some(&v.token), Some(json!({}))).await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (409, &json!("transcript_sent")),
        "{}",
        r.text
    );
    let got = smtp.exactly(1, Duration::from_millis(500)).await;
    assert_eq!(got[0]["rcpt_tos"], json!(["ada@example.com"]));
    // The hourly cap over all conversations: 2 here.
    let w = closed_with(&app, "bo@example.com", "hi", &sam).await;
    let x = closed_with(&app, "cy@example.com", "hi", &sam).await;
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/transcript", w.id)),
        Some(&w.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/transcript", x.id)),
        Some(&x.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (429, &json!("rate_limited")),
        "{}",
        r.text
    );
    let got = smtp.exactly(2, Duration::from_millis(500)).await;
    assert_eq!(got[1]["rcpt_tos"], json!(["bo@example.com"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_name_agents_by_display_name_and_visitor_names_are_one_line() {
    if !smtp_available("emails_name_agents_by_display_name_and_visitor_names_are_one_line") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    // A sender name with a comma, quoted: accepted and sent as written.
    let config = email_config(smtp.port, 1, "").replace(
        "from = \"Shop <help@shop.example>\"",
        "from = '\"Shop, Inc.\" <help@shop.example>'",
    );
    assert!(config.contains("Shop, Inc."));
    let app = spawn_app(&config, |s| s).await;
    let sam = app.online_agent("sam").await;
    let r = call(
        "PATCH",
        &app.url("/api/v1/admin/agents/sam"),
        Some(&app.admin),
        Some(json!({"display_name": "Sam Lee"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(
        "POST",
        &app.url("/api/v1/conversations"),
        None,
        Some(json!({
            "name": "Eve\r\n\r\nURGENT: verify at http://evil.example\u{202E}",
            "email": "eve@example.com\n",
        })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let v = Visitor {
        id: r.body["id"].as_str().unwrap().to_string(),
        token: r.body["token"].as_str().unwrap().to_string(),
    };
    let visitor = &r.body["events"][0]["event"]["visitor"];
    assert_eq!(
        visitor["name"], "Eve URGENT: verify at http://evil.example",
        "{}",
        r.text
    );
    assert_eq!(visitor["email"], "eve@example.com", "{}", r.text);
    with_agent(&app, &v, &sam).await;
    let r = agent_do(&app, &v, &sam, "messages", Some("Your order ships today.")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = smtp.exactly(1, Duration::from_secs(2)).await;
    let m = &got[0];
    assert_eq!(m["subject"], "Sam Lee replied to your question");
    assert!(m["from"].as_str().unwrap().contains("Shop, Inc."), "{m}");
    let body = m["body"].as_str().unwrap();
    assert!(body.contains("Sam Lee:"), "{body}");
    assert!(!body.contains("sam:"), "{body}");
    assert!(
        !body.lines().any(|l| l.trim_start().starts_with("URGENT")),
        "{body}"
    );
    // The transcript names the agent the same way.
    let r = agent_do(&app, &v, &sam, "close", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/transcript", v.id)),
        Some(&v.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let got = smtp.exactly(2, Duration::from_millis(500)).await;
    let body = got[1]["body"].as_str().unwrap();
    assert!(body.contains("Sam Lee:"), "{body}");
    assert!(!body.contains(" sam:"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_email_survives_a_restart_and_is_sent_once() {
    if !smtp_available("a_queued_email_survives_a_restart_and_is_sent_once") {
        return;
    }
    // The SMTP server is down at first.
    let port = free_port();
    let s = setup(&email_config(port, 0, ""), None);
    let srv = Server::start(&s);
    let admin = srv.admin.clone();
    let sam = srv.new_agent("sam").await;
    call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&sam),
        Some(json!({"presence": "online"})),
    )
    .await;
    let v = visitor_with_email(&srv, "ada@example.com").await;
    with_agent(&srv, &v, &sam).await;
    agent_do(
        &srv,
        &v,
        &sam,
        "messages",
        Some("Your refund is on its way."),
    )
    .await;
    // It was tried and failed.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let m = call("GET", &srv.url("/metrics"), None, None).await;
        if m.text.contains("frontdesk_emails_total{result=\"failed\"}") {
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt: {}", m.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.stop();

    let smtp = Smtp::start(port, None);
    let srv = Server::start_with(&s, Some(admin.clone()));
    let got = smtp.exactly(1, Duration::from_secs(3)).await;
    assert_eq!(got[0]["rcpt_tos"], json!(["ada@example.com"]));
    assert!(got[0]["body"]
        .as_str()
        .unwrap()
        .contains("Your refund is on its way."));
    let m = call("GET", &srv.url("/metrics"), None, None).await;
    assert!(
        m.text.contains("frontdesk_emails_total{result=\"sent\"} 1"),
        "{}",
        m.text
    );
    // And not again after another restart.
    srv.stop();
    let srv = Server::start_with(&s, Some(admin));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.received().len(), 1);
    drop(srv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_is_told_when_a_visitor_waits_and_nobody_is_online() {
    if !smtp_available("the_team_is_told_when_a_visitor_waits_and_nobody_is_online") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let app = spawn_app(
        &email_config(
            smtp.port,
            60,
            "\"team@shop.example\", \"lead@shop.example\"",
        ),
        |s| s,
    )
    .await;
    let v = app.new_visitor("Ada").await;
    app.say(&v, "My parcel arrived broken", "c1").await;
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // With email on, the visitor is invited to leave an address.
    assert!(r.text.contains("Leave my email"), "{}", r.text);
    let got = smtp.exactly(2, Duration::from_secs(1)).await;
    let mut to: Vec<&str> = got.iter().map(|m| m["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["lead@shop.example", "team@shop.example"]);
    assert!(got[0]["body"]
        .as_str()
        .unwrap()
        .contains("My parcel arrived broken"));
    // With an agent online, nobody is emailed.
    app.online_agent("sam").await;
    let w = app.new_visitor("Bo").await;
    call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", w.id)),
        Some(&w.token),
        None,
    )
    .await;
    smtp.exactly(2, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_smtp_server_nothing_is_sent_or_promised() {
    let app = spawn_app("", |s| s).await;
    let r = call("GET", &app.url("/api/v1/widget"), None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"email": false, "prechat": false}));
    let js = call("GET", &app.url("/widget.js"), None, None).await;
    assert!(
        js.text.contains("\"config\":{\"email\":false"),
        "the widget is told"
    );
    // Nobody online: the notice promises no email and offers no form.
    let v = visitor_with_email(&app, "ada@example.com").await;
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("Nobody from the team"), "{}", r.text);
    assert!(!r.text.to_lowercase().contains("email"), "{}", r.text);
    // An agent's reply to the disconnected visitor queues nothing.
    let sam = app.online_agent("sam").await;
    agent_do(&app, &v, &sam, "claim", None).await;
    let r = agent_do(&app, &v, &sam, "messages", Some("Hello?")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let outbox = app.off(|a| a.store().outbox()).unwrap();
    assert!(outbox.is_empty(), "{outbox:?}");
    agent_do(&app, &v, &sam, "close", None).await;
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/transcript", v.id)),
        Some(&v.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["error"]["code"]),
        (409, &json!("email_off"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_settings_are_checked_at_start() {
    for (extra, says) in [
        ("[email]\nhost = \"smtp.x\"\npublic_url = \"https://s.example\"\n", "from"),
        ("[email]\nhost = \"smtp.x\"\nfrom = \"a@b.example\"\n", "public_url"),
        (
            "[email]\nhost = \"smtp.x\"\nfrom = \"a@b.example\"\npublic_url = \"https://s.example\"\ntls = \"ssl\"\n",
            "tls",
        ),
        (
            "[email]\nhost = \"smtp.x\"\nfrom = \"a@b.example\"\npublic_url = \"https://s.example\"\nnotify = [\"nobody\"]\n",
            "notify",
        ),
        // A comma in an unquoted name: the sender would refuse it.
        (
            "[email]\nhost = \"smtp.x\"\nfrom = \"Shop, Inc. <help@shop.example>\"\npublic_url = \"https://s.example\"\n",
            "from",
        ),
    ] {
        let s = setup(extra, None);
        let e = frontdesk::config::Config::load(Some(&s.config), std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("[email] {says}")), "{e}");
    }
    // The password from the environment, never printed.
    let s = setup(
        "[email]\nhost = \"smtp.x\"\nusername = \"u\"\nfrom = \"a@b.example\"\npublic_url = \"https://s.example\"\n",
        None,
    );
    let c = frontdesk::config::Config::load(
        Some(&s.config),
        [(
            "FRONTDESK_EMAIL__PASSWORD".to_string(),
            "hunter22".to_string(),
        )],
    )
    .unwrap();
    let email = c.email.unwrap();
    assert_eq!(email.password.as_ref().unwrap().0, "hunter22");
    assert_eq!(email.port, 587);
    assert!(!format!("{email:?}").contains("hunter22"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_queued_reply_still_waits_its_batch_time() {
    if !smtp_available("after_a_restart_a_queued_reply_still_waits_its_batch_time") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let s = setup(&email_config(smtp.port, 8, ""), None);
    let srv = Server::start(&s);
    let admin = srv.admin.clone();
    let sam = srv.new_agent("sam").await;
    call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&sam),
        Some(json!({"presence": "online"})),
    )
    .await;
    let v = visitor_with_email(&srv, "ada@example.com").await;
    with_agent(&srv, &v, &sam).await;
    let queued = Instant::now();
    let r = agent_do(
        &srv,
        &v,
        &sam,
        "messages",
        Some("Your refund is on its way."),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    srv.stop();
    let srv = Server::start_with(&s, Some(admin));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        queued.elapsed() < Duration::from_secs(7),
        "the restart took too long to tell"
    );
    assert_eq!(smtp.received().len(), 0, "sent before its batch time");
    let got = smtp.exactly(1, Duration::from_millis(500)).await;
    assert!(queued.elapsed() >= Duration::from_secs(8));
    assert!(got[0]["body"]
        .as_str()
        .unwrap()
        .contains("Your refund is on its way."));
    drop(srv);
}

/// An agent's file sent as `name` into `v`'s conversation.
async fn agent_file(s: &impl Reach, v: &Visitor, agent: &str, name: &str) -> Res {
    let r = raw(
        "POST",
        &s.url(&format!(
            "/api/v1/agent/conversations/{}/attachments?name={}",
            v.id,
            name.replace(' ', "%20")
        )),
        Some(agent),
        Some("image/png"),
        super::attachments::PNG.to_vec(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

/// Review E5: an agent's file to a visitor who is gone is announced by
/// email like a text reply (who, the file's name and size, the link), in
/// the same batch, without the bytes or a link that opens the file alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_file_to_a_disconnected_visitor_is_announced_by_email() {
    if !smtp_available("an_agents_file_to_a_disconnected_visitor_is_announced_by_email") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let app = spawn_app(&email_config(smtp.port, 1, ""), |s| s).await;
    let sam = app.online_agent("sam").await;
    let r = call(
        "PATCH",
        &app.url("/api/v1/admin/agents/sam"),
        Some(&app.admin),
        Some(json!({"display_name": "Sam Lee"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A file alone: one email.
    let v = visitor_with_email(&app, "ada@example.com").await;
    with_agent(&app, &v, &sam).await;
    agent_file(&app, &v, &sam, "label.png").await;
    let got = smtp.exactly(1, Duration::from_secs(2)).await;
    assert_eq!(got[0]["rcpt_tos"], json!(["ada@example.com"]));
    assert_eq!(got[0]["subject"], "Sam Lee replied to your question");
    let body = got[0]["body"].as_str().unwrap();
    assert!(body.contains("Sam Lee:"), "{body}");
    assert!(body.contains("label.png (70 bytes)"), "{body}");
    let (id, _) = link_in(body);
    assert_eq!(id, v.id);
    assert!(!body.contains("/attachments/"), "no file link: {body}");
    assert!(!body.contains("IHDR"), "no bytes: {body}");
    // A text and a file in one burst: one email, in order.
    let w = visitor_with_email(&app, "bo@example.com").await;
    with_agent(&app, &w, &sam).await;
    agent_do(&app, &w, &sam, "messages", Some("Here is your label.")).await;
    agent_file(&app, &w, &sam, "return label.png").await;
    let got = smtp.exactly(2, Duration::from_secs(2)).await;
    let body = got[1]["body"].as_str().unwrap();
    assert_eq!(got[1]["rcpt_tos"], json!(["bo@example.com"]));
    let text = body.find("Here is your label.").expect(body);
    let file = body.find("return label.png (70 bytes)").expect(body);
    assert!(text < file, "{body}");
}

/// Review E5: the transcript lists each file where it was sent: who, its
/// name and its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcript_lists_each_file_in_its_place() {
    if !smtp_available("the_transcript_lists_each_file_in_its_place") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let app = spawn_app(&email_config(smtp.port, 60, ""), |s| s).await;
    let sam = app.online_agent("sam").await;
    let v = visitor_with_email(&app, "ada@example.com").await;
    let mut sock = ws(&app.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    )))
    .await;
    let _ = next_json(&mut sock).await;
    app.say(&v, "My vase arrived broken.", "c1").await;
    let r = raw(
        "POST",
        &app.url(&format!(
            "/api/v1/conversations/{}/attachments?name=vase.png",
            v.id
        )),
        Some(&v.token),
        Some("image/png"),
        super::attachments::PNG.to_vec(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    with_agent(&app, &v, &sam).await;
    agent_do(&app, &v, &sam, "messages", Some("Sorry! Print this label.")).await;
    agent_file(&app, &v, &sam, "label.png").await;
    agent_do(&app, &v, &sam, "messages", Some("Then drop it off.")).await;
    agent_do(&app, &v, &sam, "close", None).await;
    let path = format!("/api/v1/conversations/{}/transcript", v.id);
    let r = call("POST", &app.url(&path), Some(&v.token), Some(json!({}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let got = smtp.exactly(1, Duration::from_millis(500)).await;
    // SMTP ends lines with CRLF.
    let body = got[0]["body"].as_str().unwrap().replace("\r\n", "\n");
    let at = |s: &str| body.find(s).unwrap_or_else(|| panic!("{s:?} in {body}"));
    let broken = at("My vase arrived broken.");
    let vase = at("You:\n  Sent a file: vase.png (70 bytes)");
    let sorry = at("Sorry! Print this label.");
    let label = at("sam:\n  Sent a file: label.png (70 bytes)");
    let then = at("Then drop it off.");
    assert!(
        broken < vase && vase < sorry && sorry < label && label < then,
        "{body}"
    );
    assert!(!body.contains("/attachments/"), "{body}");
}

/// POST `/resume` with `key` for conversation `id`.
async fn resume(s: &impl Reach, id: &str, key: &str) -> Res {
    call(
        "POST",
        &s.url(&format!("/api/v1/conversations/{id}/resume")),
        None,
        Some(json!({ "key": key })),
    )
    .await
}

async fn events_with(s: &impl Reach, id: &str, token: &str) -> Res {
    call(
        "GET",
        &s.url(&format!("/api/v1/conversations/{id}/events")),
        Some(token),
        None,
    )
    .await
}

/// Review E6: an email's link is no permanent key. It works once
/// (`resume_link_used` after), for `[email] link_hours` (72 by default;
/// `resume_link_expired` after); what it yields opens that conversation
/// only, and the visitor can revoke it while their own token keeps
/// working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_link_works_once_for_a_while_and_its_session_can_be_revoked() {
    if !smtp_available("an_email_link_works_once_for_a_while_and_its_session_can_be_revoked") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let clock = frontdesk::util::clock::Clock::manual(1_780_000_000_000);
    let app = spawn_app_clocked(&email_config(smtp.port, 0, ""), |s| s, clock.clone()).await;
    let sam = app.online_agent("sam").await;
    let v = visitor_with_email(&app, "ada@example.com").await;
    // The same visitor's other conversation.
    let other = visitor_with_email(&app, "ada@example.com").await;
    with_agent(&app, &v, &sam).await;
    agent_do(&app, &v, &sam, "messages", Some("First reply.")).await;
    let got = smtp.exactly(1, Duration::from_millis(300)).await;
    let (id, key) = link_in(got[0]["body"].as_str().unwrap());
    assert_eq!(id, v.id);

    let r = resume(&app, &id, &key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let session = r.body["token"].as_str().unwrap().to_string();
    assert_ne!(
        session, v.token,
        "a session of its own, not the visitor's token"
    );
    // Used: the same link fails, with a stable code.
    let r = resume(&app, &id, &key).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "resume_link_used");
    // The session opens this conversation and no other.
    let r = events_with(&app, &v.id, &session).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("First reply."));
    let r = events_with(&app, &other.id, &session).await;
    assert_eq!(r.status, 404, "{}", r.text);
    // Revoked by the visitor: the session stops, their own token works.
    let path = app.url(&format!("/api/v1/conversations/{}/resume", v.id));
    let r = call("DELETE", &path, Some(&v.token), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["revoked"], 1, "{}", r.text);
    assert_eq!(events_with(&app, &v.id, &session).await.status, 404);
    assert_eq!(events_with(&app, &v.id, &v.token).await.status, 200);

    // A later email's link, opened after 72 hours: expired.
    agent_do(&app, &v, &sam, "messages", Some("Second reply.")).await;
    let got = smtp.exactly(2, Duration::from_millis(300)).await;
    let (_, key2) = link_in(got[1]["body"].as_str().unwrap());
    assert_ne!(key2, key);
    clock.advance(72 * 3600 * 1000 + 1000);
    let r = resume(&app, &v.id, &key2).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "resume_link_expired");
}

/// `[email] link_hours` sets how long a link works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_hours_sets_how_long_an_email_link_works() {
    if !smtp_available("link_hours_sets_how_long_an_email_link_works") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let clock = frontdesk::util::clock::Clock::manual(1_780_000_000_000);
    let config = format!("{}link_hours = 2\n", email_config(smtp.port, 0, ""));
    let app = spawn_app_clocked(&config, |s| s, clock.clone()).await;
    let sam = app.online_agent("sam").await;
    let v = visitor_with_email(&app, "ada@example.com").await;
    with_agent(&app, &v, &sam).await;
    for text in ["One.", "Two."] {
        agent_do(&app, &v, &sam, "messages", Some(text)).await;
        let n = if text == "One." { 1 } else { 2 };
        smtp.exactly(n, Duration::from_millis(300)).await;
    }
    let got = smtp.received();
    let (_, one) = link_in(got[0]["body"].as_str().unwrap());
    let (_, two) = link_in(got[1]["body"].as_str().unwrap());
    clock.advance(3600 * 1000);
    assert_eq!(resume(&app, &v.id, &one).await.status, 200);
    clock.advance(3600 * 1000 + 1000);
    let r = resume(&app, &v.id, &two).await;
    assert_eq!(r.body["error"]["code"], "resume_link_expired", "{}", r.text);
}

/// The review of E6's fix: a session bought with an email's link may read
/// and write the conversation but not move its email elsewhere (a leaked
/// link must not become a standing key through the next emails' links); a
/// revoke ends its open socket at once, and an ended session is told so
/// with its own code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_session_cannot_move_the_email_and_a_revoke_ends_its_socket() {
    if !smtp_available("a_links_session_cannot_move_the_email_and_a_revoke_ends_its_socket") {
        return;
    }
    let smtp = Smtp::start(free_port(), None);
    let app = spawn_app(&email_config(smtp.port, 0, ""), |s| s).await;
    let sam = app.online_agent("sam").await;
    let v = visitor_with_email(&app, "ada@example.com").await;
    with_agent(&app, &v, &sam).await;
    agent_do(&app, &v, &sam, "messages", Some("First reply.")).await;
    let got = smtp.exactly(1, Duration::from_millis(300)).await;
    let (id, key) = link_in(got[0]["body"].as_str().unwrap());
    let r = resume(&app, &id, &key).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let session = r.body["token"].as_str().unwrap().to_string();

    let path = app.url(&format!("/api/v1/conversations/{id}/email"));
    let r = call(
        "POST",
        &path,
        Some(&session),
        Some(json!({"email": "mallory@evil.example"})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "session_may_not_change_email");
    // The visitor's own token still may.
    let r = call(
        "POST",
        &path,
        Some(&v.token),
        Some(json!({"email": "ada@example.org"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let mut sock = ws(&app.ws_url(&format!("/api/v1/conversations/{id}/ws?token={session}"))).await;
    let revoke = app.url(&format!("/api/v1/conversations/{id}/resume"));
    let r = call("DELETE", &revoke, Some(&v.token), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        close_code(&mut sock).await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Policy)
    );
    let r = events_with(&app, &id, &session).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "session_ended", "{}", r.text);
}

//! Attachments through the real server: a visitor's photo of a damaged
//! item, fetched by the visitor and by an agent; other tokens refused;
//! HTML and SVG refused whatever their name; a PNG named `.html` served as
//! a PNG; the size limit (announced and streamed); the headers that stop a
//! browser from running a file; the bytes kept across a restart and
//! deleted with their conversation.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A real 1×1 PNG.
pub const PNG: [u8; 70] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50,
    0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34, 0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// Uploads `bytes` as the visitor, with a claimed content type.
async fn upload(r: &impl Reach, v: &Visitor, name: &str, ct: &str, bytes: &[u8]) -> Res {
    raw(
        "POST",
        &r.url(&format!(
            "/api/v1/conversations/{}/attachments?name={}",
            v.id,
            urlencode(name)
        )),
        Some(&v.token),
        Some(ct),
        bytes.to_vec(),
        &[],
    )
    .await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `attachment` event of an upload's answer.
fn attachment_of(r: &Res) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    let recs = r.body["records"].as_array().expect("records");
    assert_eq!(recs.len(), 1, "{}", r.text);
    let e = recs[0]["event"].clone();
    assert_eq!(e["type"], "attachment", "{}", r.text);
    e
}

fn file_url(r: &impl Reach, v: &Visitor, att: &str) -> String {
    r.url(&format!("/api/v1/conversations/{}/attachments/{att}", v.id))
}

fn header<'a>(r: &'a Res, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_item_photo_reaches_the_agent_and_no_one_else() {
    let app = spawn_app("", |s| s).await;
    let agent = app.online_agent("sam").await;
    let v = app.new_visitor("Dana").await;
    let r = app
        .say(&v, "My vase arrived broken, the box was crushed", "m1")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The client claims a JPEG; the content says PNG, and PNG it is.
    let e = attachment_of(&upload(&app, &v, "vase photo.jpg", "image/jpeg", &PNG).await);
    assert_eq!(e["kind"], "png");
    assert_eq!(e["size"], PNG.len());
    assert_eq!(e["name"], "vase photo.png");
    assert!(e.get("agent").is_none(), "sent by the visitor: {e}");
    let att = e["id"].as_str().unwrap().to_string();

    // The visitor sees it in the log and fetches it, by bearer and by a
    // signed link (what an <img src> carries).
    let log = call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert!(log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["event"]["type"] == "attachment" && r["event"]["id"] == att.as_str()));
    for res in [
        raw(
            "GET",
            &file_url(&app, &v, &att),
            Some(&v.token),
            None,
            vec![],
            &[],
        )
        .await,
        raw("GET", &link(&app, &v, &att).await, None, None, vec![], &[]).await,
    ] {
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(header(&res, "content-type"), "image/png");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_eq!(
            header(&res, "content-security-policy"),
            "default-src 'none'; sandbox"
        );
        assert!(
            header(&res, "content-disposition").starts_with("inline; filename=\"vase photo.png\"")
        );
        // Not kept by the browser: an erased file is gone from it too.
        assert_eq!(header(&res, "cache-control"), "private, no-store");
    }
    let got = reqwest_bytes(&file_url(&app, &v, &att), &v.token).await;
    assert_eq!(got, PNG, "the bytes come back as sent");

    // Handed to a person: the agent sees the photo in the transcript and
    // fetches it with its own token.
    let h = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{}", h.text);
    let c = call(
        "POST",
        &app.url(&format!("/api/v1/agent/conversations/{}/claim", v.id)),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    let t = call(
        "GET",
        &app.url(&format!("/api/v1/agent/conversations/{}", v.id)),
        Some(&agent),
        None,
    )
    .await;
    assert!(t.text.contains(&att), "the transcript names it: {}", t.text);
    let res = raw(
        "GET",
        &file_url(&app, &v, &att),
        Some(&agent),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(reqwest_bytes(&file_url(&app, &v, &att), &agent).await, PNG);

    // The agent answers with a PDF (a return label): a download, sent by them.
    let r = raw(
        "POST",
        &app.url(&format!(
            "/api/v1/agent/conversations/{}/attachments?name=label.pdf",
            v.id
        )),
        Some(&agent),
        Some("application/pdf"),
        PDF.to_vec(),
        &[],
    )
    .await;
    let e = attachment_of(&r);
    assert_eq!(
        (e["kind"].as_str(), e["agent"].as_str()),
        (Some("pdf"), Some("sam"))
    );
    let pdf = e["id"].as_str().unwrap().to_string();
    let res = raw(
        "GET",
        &file_url(&app, &v, &pdf),
        Some(&v.token),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(header(&res, "content-type"), "application/pdf");
    assert!(header(&res, "content-disposition").starts_with("attachment; filename=\"label.pdf\""));

    // Another visitor's token, or their link to this file, gets nothing;
    // nor does no token, or a made-up attachment id.
    let other = app.new_visitor("Eve").await;
    let theirs = call(
        "GET",
        &app.url(&format!(
            "/api/v1/conversations/{}/attachments/{att}/link",
            v.id
        )),
        Some(&other.token),
        None,
    )
    .await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
    let res = raw(
        "GET",
        &file_url(&app, &v, &att),
        Some(&other.token),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(res.status, 404, "{}", res.text);
    assert_eq!(res.body["error"]["code"], "not_found");
    assert!(!res.text.contains("PNG"));
    // Another conversation's id with the other visitor's own token: the
    // file is not in that conversation.
    let res = raw(
        "GET",
        &file_url(&app, &other, &att),
        Some(&other.token),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(res.status, 404, "{}", res.text);
    let res = raw("GET", &file_url(&app, &v, &att), None, None, vec![], &[]).await;
    assert_eq!(res.status, 401, "{}", res.text);
    let res = raw(
        "GET",
        &file_url(&app, &v, "a0000"),
        Some(&v.token),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(res.status, 404, "{}", res.text);
    // Nor may the other visitor upload into this conversation.
    let r = upload(
        &app,
        &Visitor {
            id: v.id.clone(),
            token: other.token.clone(),
        },
        "x.png",
        "image/png",
        &PNG,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

/// The visitor's signed link to a file (`.../link`), as a full URL.
async fn link(app: &TestApp, v: &Visitor, att: &str) -> String {
    let r = call(
        "GET",
        &app.url(&format!(
            "/api/v1/conversations/{}/attachments/{att}/link",
            v.id
        )),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let url = r.body["url"].as_str().unwrap().to_string();
    assert!(!url.contains(&v.token), "no token in a link: {url}");
    app.url(&url)
}

/// The body of a GET as bytes (the `Res` helper keeps text).
async fn reqwest_bytes(url: &str, token: &str) -> Vec<u8> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::builder()
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = client.request(req).await.unwrap();
    res.into_body().collect().await.unwrap().to_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_svg_and_scripts_are_refused_whatever_their_name() {
    let app = spawn_app("", |s| s).await;
    let v = app.new_visitor("Mallory").await;
    for (name, ct, bytes) in [
        ("page.html", "text/html", &b"<!doctype html><script>alert(1)</script>"[..]),
        ("photo.png", "image/png", b"<html><body onload=alert(1)>"),
        ("logo.svg", "image/svg+xml", b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>"),
        ("pic.jpg", "image/jpeg", b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"),
        ("run.sh", "application/octet-stream", b"#!/bin/sh\nrm -rf /\n"),
        ("x.pdf", "application/pdf", b"PK\x03\x04zip pretending"),
    ] {
        let r = upload(&app, &v, name, ct, bytes).await;
        assert_eq!(r.status, 415, "{name}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "unsupported_attachment_type", "{name}");
    }
    let r = upload(&app, &v, "empty.png", "image/png", b"").await;
    assert_eq!(r.status, 422, "{}", r.text);
    // Nothing of them reached the log.
    let log = call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert!(!log.text.contains("\"attachment\""), "{}", log.text);

    // A PNG named .html is a PNG, served as one.
    let e = attachment_of(&upload(&app, &v, "evil.html", "text/html", &PNG).await);
    assert_eq!(
        (e["kind"].as_str(), e["name"].as_str()),
        (Some("png"), Some("evil.png"))
    );
    let res = raw(
        "GET",
        &file_url(&app, &v, e["id"].as_str().unwrap()),
        Some(&v.token),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(header(&res, "content-type"), "image/png");
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    assert!(header(&res, "content-security-policy").contains("sandbox"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_limit_answers_413_and_cuts_a_stream_off() {
    let app = spawn_app("[attachments]\nmax_bytes = 100000\n", |s| s).await;
    let v = app.new_visitor("Big").await;
    // Exactly the limit is taken; one byte more is not.
    let mut ok = PNG.to_vec();
    ok.resize(100_000, 0);
    assert_eq!(
        upload(&app, &v, "big.png", "image/png", &ok).await.status,
        200
    );
    ok.push(0);
    let r = upload(&app, &v, "big.png", "image/png", &ok).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "attachment_too_large");
    // Other bodies keep their own small limit.
    let r = raw(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/messages", v.id)),
        Some(&v.token),
        Some("application/json"),
        vec![b' '; 100_000],
        &[],
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "payload_too_large");

    // A chunked upload of 64 MB with no announced length: answered 413 as
    // soon as it passes the limit, long before the client is done.
    let mut sock = tokio::net::TcpStream::connect(&app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/conversations/{}/attachments?name=huge.png HTTP/1.1\r\nhost: x\r\n\
         authorization: Bearer {}\r\ncontent-type: image/png\r\ntransfer-encoding: chunked\r\n\r\n",
        v.id, v.token
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = sock.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![0u8; 64 * 1024];
        let mut sent = 0usize;
        while sent < 64 * 1024 * 1024 {
            let frame = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk.clone(),
                b"\r\n".to_vec(),
            ]
            .concat();
            if wr.write_all(&frame).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, rd.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("attachment_too_large"), "{answer}");
    let sent = tokio::time::timeout(PATIENCE, writer)
        .await
        .unwrap()
        .unwrap();
    assert!(
        sent < 64 * 1024 * 1024,
        "the server stopped reading early (the client got {sent} bytes out)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_survive_a_restart() {
    let s = setup("", None);
    let server = Server::start(&s);
    let v = server.new_visitor("Rita").await;
    let e = attachment_of(&upload(&server, &v, "crack.png", "image/png", &PNG).await);
    let att = e["id"].as_str().unwrap().to_string();
    let admin = server.admin.clone();
    server.stop();
    let server = Server::start_with(&s, Some(admin));
    let res = raw(
        "GET",
        &file_url(&server, &v, &att),
        Some(&v.token),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        reqwest_bytes(&file_url(&server, &v, &att), &v.token).await,
        PNG
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_conversation_deletes_its_attachments() {
    let app = spawn_app("", |s| s).await;
    let agent = app.online_agent("sam").await;
    let v = app.new_visitor("Gone").await;
    let keep = app.new_visitor("Stays").await;
    let att = attachment_of(&upload(&app, &v, "a.png", "image/png", &PNG).await)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let kept = attachment_of(&upload(&app, &keep, "b.png", "image/png", &PNG).await)["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(app
        .off(|a| a.store().attachment(&v.id, &att))
        .unwrap()
        .is_some());
    // A closed conversation can be erased (privacy); its file goes too.
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/agent/conversations/{}/close", v.id)),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The visitor may not send files into a closed conversation.
    let r = upload(&app, &v, "late.png", "image/png", &PNG).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "conversation_closed");
    let r = call(
        "DELETE",
        &app.url(&format!("/api/v1/admin/conversations/{}", v.id)),
        Some(&app.admin),
        None,
    )
    .await;
    assert!(
        r.status == 200 || r.status == 204,
        "{} {}",
        r.status,
        r.text
    );
    assert_eq!(
        app.off(|a| a.store().attachment(&v.id, &att)).unwrap(),
        None
    );
    let res = raw(
        "GET",
        &file_url(&app, &v, &att),
        Some(&agent),
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(res.status, 404, "{}", res.text);
    // The other conversation's file is untouched.
    assert_eq!(
        app.off(|a| a.store().attachment(&keep.id, &kept).unwrap()),
        Some(PNG.to_vec())
    );
    // And an agent who does not hold a conversation cannot send into it.
    let r = raw(
        "POST",
        &app.url(&format!(
            "/api/v1/agent/conversations/{}/attachments",
            keep.id
        )),
        Some(&agent),
        Some("image/png"),
        PNG.to_vec(),
        &[],
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "not_your_conversation");
    assert_eq!(
        json!(app.off(|a| a.store().read(&keep.id, 0)).unwrap().len()),
        json!(2),
        "started and the visitor's attachment only"
    );
}

/// Every attachment entry the store holds, as (key, value), from its export.
fn stored_files(app: &TestApp) -> Vec<Vec<u8>> {
    app.off(|a| {
        let mut out = Vec::new();
        a.store()
            .export(&mut |tree, _k, v| {
                if tree == "attachments" {
                    out.push(v.to_vec());
                }
                Ok(())
            })
            .unwrap();
        out
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_event_is_refused_leaves_no_bytes_behind() {
    let mut spy = None;
    let app = spawn_app("", |s| {
        let w = crate::spy::Spy::new(s);
        spy = Some(std::sync::Arc::clone(&w));
        w
    })
    .await;
    let spy = spy.unwrap();
    let v = app.new_visitor("Crash").await;
    spy.refuse(true);
    let r = upload(&app, &v, "a.png", "image/png", &PNG).await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "internal_error");
    assert!(
        stored_files(&app).is_empty(),
        "the bytes were deleted again"
    );
    spy.refuse(false);
    attachment_of(&upload(&app, &v, "a.png", "image/png", &PNG).await);
    assert_eq!(stored_files(&app), vec![PNG.to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_sweep_deletes_the_files_of_what_it_deletes() {
    use frontdesk::util::clock::Clock;
    const T0: i64 = 1_780_000_000_000;
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked(
        "[retention]\nclosed_after_days = 30\n",
        |s| s,
        clock.clone(),
    )
    .await;
    let agent = app.online_agent("sam").await;
    let old = app.new_visitor("Old").await;
    let att = attachment_of(&upload(&app, &old, "a.png", "image/png", &PNG).await)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/agent/conversations/{}/close", old.id)),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    clock.set(T0 + 35 * DAY);
    let recent = app.new_visitor("Recent").await;
    attachment_of(&upload(&app, &recent, "b.png", "image/png", &PNG).await);
    clock.set(T0 + 40 * DAY);
    assert_eq!(
        app.off(|a| a.sweep_retention()).unwrap(),
        vec![old.id.clone()]
    );
    assert_eq!(
        app.off(|a| a.store().attachment(&old.id, &att)).unwrap(),
        None
    );
    assert_eq!(stored_files(&app).len(), 1, "the recent one's file stays");
}

/// Sends only a request's head (announcing a body of `length` bytes that
/// never comes) and returns the answer the server gives within a second.
async fn answer_to_head(addr: &str, head_line: &str, auth: Option<&str>, length: usize) -> String {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{head_line} HTTP/1.1\r\nhost: x\r\n{auth}content-type: image/png\r\n\
         content-length: {length}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
            Err(_) => panic!(
                "no full answer within a second to {head_line}: {:?}",
                String::from_utf8_lossy(&answer)
            ),
        };
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&answer).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_body_is_read_before_the_token_is_checked_or_for_a_route_that_does_not_exist() {
    let app = spawn_app("", |s| s).await;
    let v = app.new_visitor("Mallory").await;
    // 900 kB announced, none sent: each is answered at once, so the
    // server read none of it.
    for (line, auth, status) in [
        (
            format!("POST /api/v1/conversations/{}/attachments?name=x.png", v.id),
            None,
            "401",
        ),
        (
            format!("POST /api/v1/conversations/{}/attachments?name=x.png", v.id),
            Some("not-a-token"),
            "404",
        ),
        (
            format!(
                "POST /api/v1/agent/conversations/{}/attachments?name=x.png",
                v.id
            ),
            None,
            "401",
        ),
        (
            format!(
                "POST /api/v1/agent/conversations/{}/attachments?name=x.png",
                v.id
            ),
            Some(v.token.as_str()),
            "401",
        ),
        ("POST /api/v1/nothing/attachments".to_string(), None, "404"),
        (
            format!("POST /api/v1/conversations/{}/x/attachments", v.id),
            Some(v.token.as_str()),
            "404",
        ),
    ] {
        let answer = answer_to_head(&app.addr, &line, auth, 900_000).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{line}: {answer}"
        );
        assert!(answer.contains("\"error\""), "{line}: {answer}");
    }
    // The real upload with its token still takes the body it announced.
    let r = upload(&app, &v, "x.png", "image/png", &PNG).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_address_is_refused_before_its_upload_is_read() {
    let app = spawn_app("[limits]\nrequests_per_ip_per_minute = 3\n", |s| s).await;
    let v = app.new_visitor("Flood").await;
    let mut last = 0;
    for _ in 0..5 {
        last = upload(&app, &v, "x.png", "image/png", &PNG).await.status;
    }
    assert_eq!(last, 429, "the address is over its limit");
    let answer = answer_to_head(
        &app.addr,
        &format!("POST /api/v1/conversations/{}/attachments?name=x.png", v.id),
        Some(&v.token),
        900_000,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_sees_the_display_name_of_the_agent_who_sent_a_file() {
    let app = spawn_app("", |s| s).await;
    let agent = app.online_agent("sam").await;
    let r = call(
        "PATCH",
        &app.url("/api/v1/admin/agents/sam"),
        Some(&app.admin),
        Some(json!({"display_name": "Sam Lee"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = app.new_visitor("Dana").await;
    assert_eq!(app.say(&v, "my parcel is damaged", "m1").await.status, 200);
    let h = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{}", h.text);
    let c = call(
        "POST",
        &app.url(&format!("/api/v1/agent/conversations/{}/claim", v.id)),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    let r = raw(
        "POST",
        &app.url(&format!(
            "/api/v1/agent/conversations/{}/attachments?name=label.pdf",
            v.id
        )),
        Some(&agent),
        Some("application/pdf"),
        PDF.to_vec(),
        &[],
    )
    .await;
    let e = attachment_of(&r);
    assert_eq!(e["agent"], "sam", "agents see the login name");
    let log = call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(log.status, 200, "{}", log.text);
    let seen: Vec<&Value> = log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"]["type"] == "attachment")
        .collect();
    assert_eq!(seen.len(), 1, "{}", log.text);
    assert_eq!(seen[0]["event"]["agent"], "Sam Lee", "{}", log.text);
    assert!(!log.text.contains("\"sam\""), "{}", log.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_caps_per_conversation_and_in_total() {
    let app = spawn_app(
        "[attachments]\nmax_bytes = 100000\nmax_files_per_conversation = 3\n\
         max_bytes_per_conversation = 250000\nmax_total_bytes = 400000\n",
        |s| s,
    )
    .await;
    let agent = app.online_agent("sam").await;
    let mut big = PNG.to_vec();
    big.resize(100_000, 0);
    // Files per conversation: the fourth is refused.
    let few = app.new_visitor("Few").await;
    for _ in 0..3 {
        attachment_of(&upload(&app, &few, "x.png", "image/png", &PNG).await);
    }
    let r = upload(&app, &few, "x.png", "image/png", &PNG).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "attachment_quota_exceeded");
    // Bytes per conversation: a third 100 kB file would pass 250 kB.
    let heavy = app.new_visitor("Heavy").await;
    for _ in 0..2 {
        attachment_of(&upload(&app, &heavy, "b.png", "image/png", &big).await);
    }
    let r = upload(&app, &heavy, "b.png", "image/png", &big).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "attachment_quota_exceeded");
    // An agent's file counts too.
    let r = raw(
        "POST",
        &app.url(&format!(
            "/api/v1/agent/conversations/{}/attachments?name=l.pdf",
            few.id
        )),
        Some(&agent),
        Some("application/pdf"),
        PDF.to_vec(),
        &[],
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "attachment_quota_exceeded");
    // In total: 210 + 200000 stored; one more 100 kB file fits, a second
    // would pass 400 kB.
    let third = app.new_visitor("Third").await;
    attachment_of(&upload(&app, &third, "c.png", "image/png", &big).await);
    let r = upload(&app, &third, "c.png", "image/png", &big).await;
    assert_eq!(r.status, 507, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "attachment_storage_full");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("full"));
    // Erasing a conversation frees its share.
    let c = call(
        "POST",
        &app.url(&format!("/api/v1/agent/conversations/{}/close", heavy.id)),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    let d = call(
        "DELETE",
        &app.url(&format!("/api/v1/admin/conversations/{}", heavy.id)),
        Some(&app.admin),
        None,
    )
    .await;
    assert!(d.status == 200 || d.status == 204, "{}", d.text);
    attachment_of(&upload(&app, &third, "c.png", "image/png", &big).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_link_opens_that_file_only_and_the_visitor_token_is_no_url_credential() {
    let app = spawn_app("", |s| s).await;
    let v = app.new_visitor("Dana").await;
    let one = attachment_of(&upload(&app, &v, "one.png", "image/png", &PNG).await)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let two = attachment_of(&upload(&app, &v, "two.pdf", "application/pdf", PDF).await)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The full visitor token in the URL no longer opens a file.
    let r = raw(
        "GET",
        &format!("{}?token={}", file_url(&app, &v, &one), v.token),
        None,
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // The link to one file opens it, and not the other one.
    let url = link(&app, &v, &one).await;
    let r = raw("GET", &url, None, None, vec![], &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(header(&r, "content-type"), "image/png");
    let query = url.split_once('?').unwrap().1;
    let r = raw(
        "GET",
        &format!("{}?{query}", file_url(&app, &v, &two)),
        None,
        None,
        vec![],
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(!r.text.contains("PDF"));
    // Nor does it open with a later expiry or a changed signature.
    let (exp, sig) = query.split_once("&sig=").unwrap();
    let exp: i64 = exp.trim_start_matches("exp=").parse().unwrap();
    for q in [
        format!("exp={}&sig={sig}", exp + 1),
        format!(
            "exp={exp}&sig={}",
            sig.replace(&sig[..1], if &sig[..1] == "0" { "1" } else { "0" })
        ),
    ] {
        let r = raw(
            "GET",
            &format!("{}?{q}", file_url(&app, &v, &one)),
            None,
            None,
            vec![],
            &[],
        )
        .await;
        assert_eq!(r.status, 404, "{q}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_link_stops_working_after_24_hours() {
    let clock = frontdesk::util::clock::Clock::manual(1_780_000_000_000);
    let app = spawn_app_clocked("", |s| s, clock.clone()).await;
    let v = app.new_visitor("Dana").await;
    let one = attachment_of(&upload(&app, &v, "one.png", "image/png", &PNG).await)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = link(&app, &v, &one).await;
    clock.advance(23 * 3600 * 1000);
    assert_eq!(raw("GET", &url, None, None, vec![], &[]).await.status, 200);
    clock.advance(2 * 3600 * 1000);
    let r = raw("GET", &url, None, None, vec![], &[]).await;
    assert_eq!(r.status, 404, "{}", r.text);
}

/// Review A5 (a): uploads racing into one conversation at the edge of its
/// caps never pass them (the check and the insert are one step): many at
/// once into conversations with room for two or three more files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_uploads_never_pass_a_conversations_caps() {
    let app = spawn_app(
        "[limits]\nmessages_per_minute = 10000\nrequests_per_ip_per_minute = 100000\n\
         [attachments]\nmax_bytes = 100000\nmax_files_per_conversation = 3\n\
         max_bytes_per_conversation = 250000\n",
        |s| s,
    )
    .await;
    let mut big = PNG.to_vec();
    big.resize(100_000, 0);
    // Small files: the file cap (3); 100 kB files: the byte cap (2).
    for (bytes, most_files) in [(PNG.to_vec(), 3u64), (big, 2)] {
        for round in 0..4 {
            let v = app.new_visitor(&format!("Racer {round}")).await;
            let sends = (0..12).map(|n| {
                let url = app.url(&format!(
                    "/api/v1/conversations/{}/attachments?name=r{n}.png",
                    v.id
                ));
                let (token, bytes) = (v.token.clone(), bytes.clone());
                tokio::spawn(async move {
                    raw("POST", &url, Some(&token), Some("image/png"), bytes, &[]).await
                })
            });
            let mut ok = 0u64;
            for s in sends.collect::<Vec<_>>() {
                let r = s.await.unwrap();
                match r.status {
                    200 => ok += 1,
                    413 => assert_eq!(r.body["error"]["code"], "attachment_quota_exceeded"),
                    other => panic!("{other}: {}", r.text),
                }
            }
            let log = call(
                "GET",
                &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
                Some(&v.token),
                None,
            )
            .await;
            let (files, total): (u64, u64) = log.body["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["event"]["type"] == "attachment")
                .fold((0, 0), |(n, b), r| {
                    (n + 1, b + r["event"]["size"].as_u64().unwrap())
                });
            assert_eq!(files, ok, "every accepted file is in the log");
            assert_eq!(files, most_files, "round {round}: the caps, exactly");
            assert!(total <= 250_000, "{total} bytes");
        }
    }
}

/// Review A5 (b): a file of many parts (the store keeps 256 KiB parts, a
/// download streams them) comes back byte for byte, with its length, to
/// the visitor and to an agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_many_parts_comes_back_whole() {
    let app = spawn_app("[attachments]\nmax_bytes = 2000000\n", |s| s).await;
    let agent = app.online_agent("sam").await;
    let v = app.new_visitor("Dana").await;
    // 1 MiB and 123 bytes: four whole parts and a short one; the bytes
    // run through a cycle so a part out of order shows.
    let mut bytes = PNG.to_vec();
    bytes.extend((0..(1 << 20) + 123 - PNG.len()).map(|i| (i * 7 % 251) as u8));
    let r = upload(&app, &v, "big.png", "image/png", &bytes).await;
    let id = attachment_of(&r)["id"].as_str().unwrap().to_string();
    let url = file_url(&app, &v, &id);
    let head = raw("GET", &url, Some(&v.token), None, vec![], &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(header(&head, "content-length"), bytes.len().to_string());
    assert_eq!(header(&head, "content-type"), "image/png");
    assert!(
        reqwest_bytes(&url, &v.token).await == bytes,
        "the visitor's copy"
    );
    assert!(
        reqwest_bytes(&url, &agent).await == bytes,
        "the agent's copy"
    );
}

/// Files stored whole, as the version before parts kept them, still
/// download whole after an upgrade (`attachment_key` without a part).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_stored_whole_by_the_version_before_still_downloads() {
    if sled_only("rewrites sled's attachments tree in the format before") {
        return;
    }
    let s = setup("[attachments]\nmax_bytes = 1000000\n", None);
    let server = Server::start(&s);
    let v = server.new_visitor("Rita").await;
    let mut bytes = PNG.to_vec();
    bytes.extend((0..300_000).map(|i| (i % 253) as u8));
    let e = attachment_of(&upload(&server, &v, "crack.png", "image/png", &bytes).await);
    let att = e["id"].as_str().unwrap().to_string();
    let admin = server.admin.clone();
    server.stop();
    // Rewrite its parts as one whole value under the old key.
    {
        let db = sled::open(s.config.parent().unwrap().join("data")).unwrap();
        let tree = db.open_tree("attachments").unwrap();
        let parts: Vec<_> = tree
            .iter()
            .keys()
            .map(|k| k.unwrap())
            .filter(|k| k.windows(att.len()).any(|w| w == att.as_bytes()))
            .collect();
        assert_eq!(parts.len(), 2, "300 kB in 256 KiB parts");
        let whole = parts[0][..parts[0].len() - 5].to_vec();
        for k in &parts {
            tree.remove(k).unwrap();
        }
        tree.insert(whole, bytes.clone()).unwrap();
        db.flush().unwrap();
    }
    let server = Server::start_with(&s, Some(admin));
    let url = file_url(&server, &v, &att);
    let head = raw("GET", &url, Some(&v.token), None, vec![], &[]).await;
    assert_eq!(head.status, 200, "{}", head.text);
    assert_eq!(header(&head, "content-length"), bytes.len().to_string());
    assert!(reqwest_bytes(&url, &v.token).await == bytes);
}

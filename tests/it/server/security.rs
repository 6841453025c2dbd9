//! Who may do what, and what bad input gets.

use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_their_reach() {
    let s = setup("", None);
    let srv = Server::start(&s);
    let a = srv.new_visitor("A").await;
    let b = srv.new_visitor("B").await;
    let events = |id: &str| srv.url(&format!("/api/v1/conversations/{id}/events"));

    // No token, a wrong one.
    let r = call("GET", &events(&a.id), None, None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let r = call("GET", &srv.url("/api/v1/agent/queue"), None, None).await;
    assert_eq!(r.status, 401);
    let r = call(
        "GET",
        &srv.url("/api/v1/agent/queue"),
        Some("fd_nope"),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = call(
        "GET",
        &srv.url("/api/v1/admin/intents"),
        Some("wrong"),
        None,
    )
    .await;
    assert_eq!(r.status, 401);

    // A visitor token on another conversation: 404, like one that does
    // not exist, over HTTP and WebSocket.
    let r = call("GET", &events(&b.id), Some(&a.token), None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = call(
        "GET",
        &events("c000000000000000000000000"),
        Some(&a.token),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = srv
        .say(
            &Visitor {
                id: b.id.clone(),
                token: a.token.clone(),
            },
            "hi",
            "1",
        )
        .await;
    assert_eq!(r.status, 404);
    let url = srv.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        b.id, a.token
    ));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 404),
        other => panic!("expected 404, got {:?}", other.map(|_| ())),
    }

    // Visitor tokens open no agent or admin route.
    for (m, path) in [
        ("GET", "/api/v1/agent/queue"),
        ("GET", "/api/v1/admin/intents"),
    ] {
        let r = call(m, &srv.url(path), Some(&a.token), None).await;
        assert_eq!(r.status, 401, "{path}");
    }
    // An agent's token opens no admin route.
    let alex = srv.new_agent("alex").await;
    let r = call("GET", &srv.url("/api/v1/admin/intents"), Some(&alex), None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let r = call(
        "GET",
        &srv.url("/api/v1/admin/intents"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_json_errors() {
    let s = setup("[limits]\nbody_bytes = 4096\nmessage_chars = 100\n", None);
    let srv = Server::start(&s);
    let v = srv.new_visitor("A").await;
    let url = srv.url(&format!("/api/v1/conversations/{}/messages", v.id));

    let big = format!(
        "{{\"text\": \"{}\", \"client_id\": \"1\"}}",
        "a".repeat(5000)
    );
    let r = raw(
        "POST",
        &url,
        Some(&v.token),
        Some("application/json"),
        big.into_bytes(),
        &[],
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{}",
        r.text
    );

    let r = raw(
        "POST",
        &url,
        Some(&v.token),
        Some("application/json"),
        b"{\"text\": ".to_vec(),
        &[],
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("EOF while parsing"),
        "{}",
        r.text
    );

    let r = call("POST", &url, Some(&v.token), Some(json!({"text": "hi"}))).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("client_id"), "{}", r.text);
    let r = call(
        "POST",
        &url,
        Some(&v.token),
        Some(json!({"text": "a".repeat(101), "client_id": "1"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (422, Some("message_too_long"))
    );
    let r = raw(
        "POST",
        &url,
        Some(&v.token),
        Some("text/plain"),
        b"hi".to_vec(),
        &[],
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(r.body["error"]["code"].is_string());
    let r = call("GET", &srv.url("/api/v1/nothing/here"), None, None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = call("DELETE", &srv.url("/api/v1/conversations"), None, None).await;
    assert_eq!(r.status, 405);
    assert!(r.body["error"]["code"].is_string(), "{}", r.text);
    let r = call(
        "GET",
        &srv.url(&format!("/api/v1/conversations/{}/events?after=-1", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["code"].is_string(), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_429_with_retry_after() {
    let s = setup(
        "[limits]\nmessages_per_minute = 3\nconversations_per_ip_per_minute = 2\nwebsockets_per_ip = 1\n",
        None,
    );
    let srv = Server::start(&s);
    let v = srv.new_visitor("A").await;
    srv.new_visitor("B").await;
    let r = call(
        "POST",
        &srv.url("/api/v1/conversations"),
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    for i in 0..3 {
        assert_eq!(srv.say(&v, "hello", &format!("m{i}")).await.status, 200);
    }
    let r = srv.say(&v, "hello", "m9").await;
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
    // A retry of a stored message is not a new message: still answered.
    assert_eq!(srv.say(&v, "hello", "m0").await.status, 200);

    // One socket per IP here: the second is refused with 429.
    let url = srv.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    ));
    let _first = ws(&url).await;
    match tokio_tungstenite::connect_async(url.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 429);
            assert!(res.headers().contains_key("retry-after"));
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_close_on_big_messages_and_refuse_strange_origins() {
    // Lines before the first table header belong to `[server]`.
    let s = setup(
        "allowed_origins = [\"https://shop.example\"]\n[limits]\nwebsocket_message_bytes = 1024\n",
        None,
    );
    let srv = Server::start(&s);
    let v = srv.new_visitor("A").await;
    let url = srv.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    ));

    // Over the limit: closed with 1009.
    let mut sock = ws(&url).await;
    next_json(&mut sock).await;
    send_text(
        &mut sock,
        format!("{{\"kind\":\"typing\",\"x\":\"{}\"}}", "a".repeat(1100)),
    )
    .await;
    assert_eq!(close_code(&mut sock).await, Some(CloseCode::Size));
    // Far over it (cut by the protocol layer): 1009 as well.
    let mut sock = ws(&url).await;
    next_json(&mut sock).await;
    send_text(&mut sock, "b".repeat(10_000)).await;
    assert_eq!(close_code(&mut sock).await, Some(CloseCode::Size));

    // Origins: a configured one may, another may not.
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://shop.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // CORS answers the configured origin only.
    let r = raw(
        "OPTIONS",
        &srv.url("/api/v1/conversations"),
        None,
        None,
        vec![],
        &[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "POST"),
        ],
    )
    .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    let r = raw(
        "OPTIONS",
        &srv.url("/api/v1/conversations"),
        None,
        None,
        vec![],
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
    )
    .await;
    assert!(!r.headers.contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup("[limits]\nheader_read_timeout_secs = 1\n", None);
    let srv = Server::start(&s);
    let mut c = tokio::net::TcpStream::connect(&srv.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finish the headers: the server hangs up by itself.
    let mut buf = Vec::new();
    let n = tokio::time::timeout(PATIENCE, c.read_to_end(&mut buf))
        .await
        .expect("the server closes a slow client");
    assert!(n.is_ok());
    // Nor does one that connects and says nothing at all.
    let mut c = tokio::net::TcpStream::connect(&srv.addr).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(PATIENCE, c.read_to_end(&mut buf))
        .await
        .expect("the server closes a silent client")
        .unwrap();
}

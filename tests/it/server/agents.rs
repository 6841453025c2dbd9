//! Agents' other moves, concurrent delivery, and sockets that misbehave.

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::*;

async fn online(srv: &Server, name: &str) -> String {
    let t = srv.new_agent(name).await;
    let r = call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&t),
        Some(json!({"presence": "online", "capacity": 1})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_over_transfer_and_capacity() {
    let s = setup("", None);
    let srv = Server::start(&s);
    let alex = online(&srv, "alex").await;
    let bea = online(&srv, "bea").await;
    let v = srv.new_visitor("Fay").await;
    srv.say(&v, "do you have gift cards", "1").await;

    // A live bot conversation is offered for take-over, and taken.
    let live = call("GET", &srv.url("/api/v1/agent/live"), Some(&alex), None).await;
    assert!(
        live.body
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["conversation"] == v.id.as_str()),
        "{}",
        live.text
    );
    let path = |what: &str| srv.url(&format!("/api/v1/agent/conversations/{}/{what}", v.id));
    let mut alex_ws = ws(&srv.ws_url(&format!("/api/v1/agent/ws?token={alex}"))).await;
    assert_eq!(next_json(&mut alex_ws).await["kind"], "queue");
    let r = call("POST", &path("claim"), Some(&alex), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Alex's console gets the hand-off too, stored with the joining
    // before Alex held the conversation.
    let (_, before) = until_event(&mut alex_ws, "agent_joined").await;
    assert!(
        before.iter().any(|m| m["kind"] == "record"
            && m["conversation"] == v.id.as_str()
            && m["record"]["event"]["reason"] == "agent_took_over"),
        "{before:?}"
    );
    let kinds: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["handoff", "agent_joined"]);
    assert_eq!(r.body["records"][0]["event"]["reason"], "agent_took_over");
    // The bot is silent now.
    let r = srv.say(&v, "hello?", "2").await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 1);

    // Another agent cannot reply; a full agent cannot take more.
    let r = call(
        "POST",
        &path("messages"),
        Some(&bea),
        Some(json!({"text": "hi"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("not_your_conversation"))
    );
    let w = srv.new_visitor("Gus").await;
    srv.say(&w, "I want to speak to a person", "1").await;
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{}/claim", w.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("at_capacity"))
    );

    // Transfer to bea, who then closes it.
    let r = call(
        "POST",
        &path("transfer"),
        Some(&alex),
        Some(json!({"to": "bea"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(
        "POST",
        &path("messages"),
        Some(&bea),
        Some(json!({"text": "bea here"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = call("GET", &srv.url("/api/v1/agent/me"), Some(&alex), None).await;
    assert_eq!(me.body["active"], json!([]));
    // alex has room again and takes the waiting one.
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{}/claim", w.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // bea gives hers back to the bot, which answers again.
    let r = call("POST", &path("return"), Some(&bea), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = srv.say(&v, "how much is shipping", "3").await;
    assert_eq!(
        r.body["records"][1]["event"]["type"], "bot_reply",
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_store_each_message_once_in_dense_order() {
    let s = setup("[limits]\nmessages_per_minute = 1000\n", None);
    let srv = Server::start(&s);
    let v = srv.new_visitor("H").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        for _copy in 0..2 {
            let url = srv.url(&format!("/api/v1/conversations/{}/messages", v.id));
            let token = v.token.clone();
            tasks.push(tokio::spawn(async move {
                let r = call("POST", &url, Some(&token), Some(json!({"text": format!("question {i} about shipping"), "client_id": format!("c{i}")}))).await;
                assert_eq!(r.status, 200, "{}", r.text);
                r.body["records"][0]["seq"].as_u64().unwrap()
            }));
        }
    }
    let mut firsts = Vec::new();
    for t in tasks {
        firsts.push(t.await.unwrap());
    }
    // Both copies of a message got the same stored record.
    for pair in firsts.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    let e = call(
        "GET",
        &srv.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    let events = e.body["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let messages = events
        .iter()
        .filter(|r| r["event"]["type"] == "visitor_message")
        .count();
    assert_eq!(messages, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatty_and_silent_sockets_are_closed() {
    let s = setup(
        "[limits]\nwebsocket_messages_per_minute = 5\nwebsocket_idle_secs = 1\n",
        None,
    );
    let srv = Server::start(&s);
    let v = srv.new_visitor("I").await;
    let url = srv.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    ));

    let mut sock = ws(&url).await;
    for _ in 0..6 {
        send_text(&mut sock, r#"{"kind":"typing"}"#.into()).await;
    }
    assert_eq!(close_code(&mut sock).await, Some(CloseCode::Policy));

    // A dead peer (a raw connection that upgrades, then never answers a
    // ping) is closed after the idle time, with 1001.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(&srv.addr).await.unwrap();
        let req = format!(
            "GET /api/v1/conversations/{}/ws?token={} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            v.id, v.token, srv.addr
        );
        c.write_all(req.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(PATIENCE, c.read_to_end(&mut all))
            .await
            .expect("the server hangs up on a dead peer")
            .unwrap();
        // The last frame is a close (0x88) with code 1001 (0x03e9).
        let close = all
            .windows(4)
            .rposition(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xe9);
        assert!(
            close.is_some(),
            "no close 1001 in {:?}",
            &all[all.len().saturating_sub(40)..]
        );
    }

    // Typing reaches the agent who holds the conversation.
    let alex = online(&srv, "alex").await;
    call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{}/claim", v.id)),
        Some(&alex),
        None,
    )
    .await;
    let mut aws = ws(&srv.ws_url(&format!("/api/v1/agent/ws?token={alex}"))).await;
    next_json(&mut aws).await;
    let mut sock = ws(&url).await;
    send_text(&mut sock, r#"{"kind":"typing"}"#.into()).await;
    loop {
        let m = next_json(&mut aws).await;
        if m["kind"] == "typing" {
            assert_eq!(m["conversation"], v.id.as_str());
            break;
        }
    }
}

/// Issue 15, defect 5: a socket opened with an agent's token kept
/// streaming visitor messages and notes after the token was rotated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_token_closes_the_agents_open_socket() {
    let s = setup("", None);
    let srv = Server::start(&s);
    let old = srv.new_agent("alex").await;
    let mut aws = ws(&srv.ws_url(&format!("/api/v1/agent/ws?token={old}"))).await;
    next_json(&mut aws).await; // the queue
    let r = call(
        "POST",
        &srv.url("/api/v1/admin/agents/alex/token"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let new = r.body["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let rotated = std::time::Instant::now();
    let code = tokio::time::timeout(std::time::Duration::from_secs(1), close_code(&mut aws))
        .await
        .expect("the socket is closed within a second of the rotation");
    assert_eq!(
        code,
        Some(CloseCode::Policy),
        "after {:?}",
        rotated.elapsed()
    );
    // The new token still opens a socket.
    let mut fresh = ws(&srv.ws_url(&format!("/api/v1/agent/ws?token={new}"))).await;
    next_json(&mut fresh).await;
}

/// The bot signs its closes as `bot`: an agent of that name would be taken
/// for the bot by reports and replay, and shown to visitors as the bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_agent_may_be_called_bot() {
    let s = setup("", None);
    let srv = Server::start(&s);
    for name in ["bot", "Bot", " BOT "] {
        let r = call(
            "POST",
            &srv.url("/api/v1/admin/agents"),
            Some(&srv.admin),
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(r.status, 422, "{name:?}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "reserved_name", "{}", r.text);
    }
    // Names that only contain it are fine.
    srv.new_agent("bot-support").await;
}

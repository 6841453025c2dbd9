//! The conversations of the issue, end to end over HTTP and WebSocket.

use serde_json::{json, Value};

use super::*;

fn seqs(events: &Value) -> Vec<u64> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_to_agent_and_back() {
    let s = setup("", None);
    let srv = Server::start(&s);
    let v = srv.new_visitor("Ada").await;

    // The bot answers what it knows.
    let r = srv.say(&v, "How much is shipping to Canada?", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reply = &r.body["records"][1]["event"];
    assert_eq!(reply["type"], "bot_reply", "{}", r.text);
    assert_eq!(reply["intent"], "shipping_cost");
    assert!(reply.get("trace").is_none(), "visitors do not get traces");
    assert!(
        reply.get("decision").is_none(),
        "visitors do not get decisions"
    );

    // A retried send returns the original, and stores nothing new.
    let again = srv.say(&v, "How much is shipping to Canada?", "m1").await;
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["records"], r.body["records"]);

    // The visitor watches live from here.
    let mut vws = ws(&srv.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}&after=3",
        v.id, v.token
    )))
    .await;

    // An agent is online and watching.
    let alex = srv.new_agent("alex").await;
    let p = call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&alex),
        Some(json!({"presence": "online", "capacity": 2})),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let mut aws = ws(&srv.ws_url(&format!("/api/v1/agent/ws?token={alex}"))).await;
    let first = next_json(&mut aws).await;
    assert_eq!(first["kind"], "queue");

    // Asking for a person queues the visitor, with a position.
    let r = srv.say(&v, "can I talk to a human please", "m2").await;
    let types: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"handoff"), "{types:?}");
    let (queued, _) = until_event(&mut vws, "queued").await;
    assert_eq!(queued["record"]["event"]["position"], 1);

    // The agent's socket hears of the queue change; the queue has the
    // reason, the wait and the summary.
    loop {
        let m = next_json(&mut aws).await;
        if m["kind"] == "queue" && !m["queue"]["waiting"].as_array().unwrap().is_empty() {
            break;
        }
    }
    let q = call("GET", &srv.url("/api/v1/agent/queue"), Some(&alex), None).await;
    let item = &q.body["waiting"][0];
    assert_eq!(item["conversation"], v.id.as_str());
    assert_eq!(item["reason"], "asked");
    assert_eq!(item["summary"]["visitor"]["name"], "Ada");
    assert_eq!(
        item["summary"]["visitor"]["page_url"],
        "https://shop.example/cart"
    );
    assert!(item["summary"]["intents"]
        .as_array()
        .unwrap()
        .contains(&json!("shipping_cost")));

    // The transcript has each bot turn's trace and suggested replies.
    let t = call(
        "GET",
        &srv.url(&format!("/api/v1/agent/conversations/{}", v.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    let bot = t.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"]["type"] == "bot_reply")
        .unwrap();
    assert!(bot["event"]["trace"]
        .as_str()
        .unwrap()
        .contains("decision: answer shipping_cost"));
    // And its decision as data, for the console's bot line.
    let d = &bot["event"]["decision"];
    assert_eq!(d["kind"], "answer", "{d}");
    assert_eq!(d["intent"], "shipping_cost", "{d}");
    assert!(d["confidence"].as_f64().is_some_and(f64::is_finite), "{d}");
    assert_eq!(d["candidates"][0]["intent"], "shipping_cost", "{d}");
    let sug = t.body["suggestions"].as_array().unwrap();
    assert!(
        sug.iter()
            .any(|s| s["intent"] == "shipping_cost" && s["seq"] == 2),
        "{sug:?}"
    );

    // Claim; the visitor sees the agent join, live.
    let c = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{}/claim", v.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    let (joined, _) = until_event(&mut vws, "agent_joined").await;
    assert_eq!(joined["record"]["event"]["agent"], "alex");

    // The visitor writes; the agent's socket gets it with suggestions.
    srv.say(&v, "when will my refund arrive?", "m3").await;
    let (m, _) = until_event(&mut aws, "visitor_message").await;
    assert_eq!(m["conversation"], v.id.as_str());
    assert!(!m["suggestions"].as_array().unwrap().is_empty(), "{m}");

    // A note stays with the agents; a reply reaches the visitor live.
    let path = |what: &str| srv.url(&format!("/api/v1/agent/conversations/{}/{what}", v.id));
    let n = call(
        "POST",
        &path("notes"),
        Some(&alex),
        Some(json!({"text": "VIP"})),
    )
    .await;
    assert_eq!(n.status, 200, "{}", n.text);
    let r = call(
        "POST",
        &path("messages"),
        Some(&alex),
        Some(json!({"text": "Hi Ada, it's on its way."})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (msg, skipped) = until_event(&mut vws, "agent_message").await;
    assert_eq!(msg["record"]["event"]["text"], "Hi Ada, it's on its way.");
    assert!(
        skipped
            .iter()
            .all(|m| m["record"]["event"]["type"] != "internal_note"),
        "{skipped:?}"
    );

    // Close; the visitor sees it and rates.
    let r = call("POST", &path("close"), Some(&alex), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    until_event(&mut vws, "closed").await;
    let rate = call(
        "POST",
        &srv.url(&format!("/api/v1/conversations/{}/rating", v.id)),
        Some(&v.token),
        Some(json!({"score": 5, "comment": "quick"})),
    )
    .await;
    assert_eq!(rate.status, 200, "{}", rate.text);
    assert_eq!(rate.body["records"][0]["event"]["type"], "rating");
    // The agent who closed it sees the rating live (issue 18: it never
    // reached the console).
    let (m, _) = until_event(&mut aws, "rating").await;
    assert_eq!(m["conversation"], v.id.as_str());
    assert_eq!(m["record"]["event"]["comment"], "quick");
    let twice = call(
        "POST",
        &srv.url(&format!("/api/v1/conversations/{}/rating", v.id)),
        Some(&v.token),
        Some(json!({"score": 4})),
    )
    .await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.body["error"]["code"], "already_rated");

    // The whole log: dense sequence numbers, one copy of m1.
    let t = call(
        "GET",
        &srv.url(&format!("/api/v1/agent/conversations/{}", v.id)),
        Some(&alex),
        None,
    )
    .await;
    let all = seqs(&t.body["events"]);
    assert_eq!(all, (1..=all.len() as u64).collect::<Vec<_>>());
    let m1 = t.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"]["client_id"] == "m1")
        .count();
    assert_eq!(m1, 1);
    let metrics = raw("GET", &srv.url("/metrics"), None, None, vec![], &[]).await;
    assert!(
        metrics
            .text
            .contains("frontdesk_handoffs_total{reason=\"asked\"} 1"),
        "{}",
        metrics.text
    );
    assert!(metrics
        .text
        .contains("frontdesk_decisions_total{kind=\"answer\"}"));
    assert!(metrics.text.contains("frontdesk_wait_seconds_count 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_socket_misses_nothing() {
    let s = setup("", None);
    let srv = Server::start(&s);
    let v = srv.new_visitor("Bo").await;
    let url = |after: u64| {
        srv.ws_url(&format!(
            "/api/v1/conversations/{}/ws?token={}&after={after}",
            v.id, v.token
        ))
    };
    let mut sock = ws(&url(0)).await;
    let first = next_json(&mut sock).await;
    assert_eq!(first["record"]["seq"], 1);
    srv.say(&v, "what are your opening hours", "a").await;
    let mut last = 1;
    while last < 3 {
        last = next_json(&mut sock).await["record"]["seq"]
            .as_u64()
            .unwrap();
    }
    drop(sock);

    // While away: bot turns, a handoff, an agent's note and reply.
    srv.say(&v, "do you take paypal", "b").await;
    srv.say(&v, "I want a person", "c").await;
    let alex = srv.new_agent("alex").await;
    call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&alex),
        Some(json!({"presence": "online"})),
    )
    .await;
    let path = |what: &str| srv.url(&format!("/api/v1/agent/conversations/{}/{what}", v.id));
    call("POST", &path("claim"), Some(&alex), None).await;
    call(
        "POST",
        &path("notes"),
        Some(&alex),
        Some(json!({"text": "secret"})),
    )
    .await;
    call(
        "POST",
        &path("messages"),
        Some(&alex),
        Some(json!({"text": "hello Bo"})),
    )
    .await;

    // Back with the last seq seen: exactly the missed records, in order,
    // without the note.
    let mut sock = ws(&url(last)).await;
    let want = call(
        "GET",
        &srv.url(&format!(
            "/api/v1/conversations/{}/events?after={last}",
            v.id
        )),
        Some(&v.token),
        None,
    )
    .await;
    let want: Vec<Value> = want.body["events"].as_array().unwrap().clone();
    assert!(want.iter().all(|r| r["event"]["type"] != "internal_note"));
    let mut got = Vec::new();
    while got.len() < want.len() {
        got.push(next_json(&mut sock).await["record"].clone());
    }
    assert_eq!(got, want);
    assert_eq!(got.last().unwrap()["event"]["text"], "hello Bo");
    // Live again after the catch-up.
    call(
        "POST",
        &path("messages"),
        Some(&alex),
        Some(json!({"text": "still there?"})),
    )
    .await;
    let (m, _) = until_event(&mut sock, "agent_message").await;
    assert_eq!(m["record"]["event"]["text"], "still there?");

    // Asking for more than the server has: told to resync, never skipped.
    let r = call(
        "GET",
        &srv.url(&format!("/api/v1/conversations/{}/events?after=999", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["code"], "resync");
    let mut sock = ws(&url(999)).await;
    let m = next_json(&mut sock).await;
    assert_eq!(m["kind"], "resync");
    assert!(m["last_seq"].as_u64().unwrap() > 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_queue_and_transcript() {
    let s = setup("", None);
    let srv = Server::start(&s);
    let admin = srv.admin.clone();
    let v1 = srv.new_visitor("Cy").await;
    let v2 = srv.new_visitor("Di").await;
    srv.say(&v1, "where is my order 12345678", "x").await;
    srv.say(&v1, "talk to a human", "y").await;
    srv.say(&v2, "this is ridiculous, I want a person NOW!!", "z")
        .await;
    let alex = srv.new_agent("alex").await;
    let before_q = call("GET", &srv.url("/api/v1/agent/queue"), Some(&alex), None).await;
    let before_t = call(
        "GET",
        &srv.url(&format!("/api/v1/agent/conversations/{}", v1.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(before_q.body["waiting"].as_array().unwrap().len(), 2);
    // A crash, not a clean stop.
    srv.kill();

    let srv = Server::start_with(&s, Some(admin));
    let after_q = call("GET", &srv.url("/api/v1/agent/queue"), Some(&alex), None).await;
    assert_eq!(after_q.status, 200, "{}", after_q.text);
    let order = |q: &Value| -> Vec<String> {
        q["waiting"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["conversation"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(order(&after_q.body), order(&before_q.body));
    assert_eq!(
        order(&after_q.body)[0],
        v2.id,
        "the upset visitor goes first"
    );
    let after_t = call(
        "GET",
        &srv.url(&format!("/api/v1/agent/conversations/{}", v1.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(after_t.body["events"], before_t.body["events"]);
    assert_eq!(
        after_t.body["summary"]["slots"],
        json!([["order_status", "order_id", "12345678"]])
    );
    // The visitor's token still works, and the conversation goes on.
    call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&alex),
        Some(json!({"presence": "online"})),
    )
    .await;
    let c = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{}/claim", v1.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    let e = call(
        "GET",
        &srv.url(&format!("/api/v1/conversations/{}/events", v1.id)),
        Some(&v1.token),
        None,
    )
    .await;
    assert_eq!(e.body["phase"], "with_agent");
}

/// The agent who closed a conversation gets its rating; once the visitor
/// came back and another agent closed it, the next rating is that
/// agent's, not the first one's (second reader's finding: the first
/// agent's socket kept every later rating of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rating_goes_to_the_agent_who_closed_the_last_time() {
    let srv = spawn_app("", |s| s).await;
    let v = srv.new_visitor("Ada").await;
    let ann = srv.online_agent("ann").await;
    let bo = srv.online_agent("bo").await;
    let mut ann_ws = ws(&srv.ws_url(&format!("/api/v1/agent/ws?token={ann}"))).await;
    // The queue comes first, once the socket listens: what follows is
    // heard (the socket may be opened on the server after the close).
    assert_eq!(next_json(&mut ann_ws).await["kind"], "queue");
    let agent = |what: &str| srv.url(&format!("/api/v1/agent/conversations/{}/{what}", v.id));
    let handoff = srv.url(&format!("/api/v1/conversations/{}/handoff", v.id));
    let rate = srv.url(&format!("/api/v1/conversations/{}/rating", v.id));

    // Ann takes it, closes it; the visitor rates: Ann sees it.
    assert_eq!(
        call("POST", &handoff, Some(&v.token), None).await.status,
        200
    );
    assert_eq!(
        call("POST", &agent("claim"), Some(&ann), None).await.status,
        200
    );
    assert_eq!(
        call("POST", &agent("close"), Some(&ann), None).await.status,
        200
    );
    let r = call("POST", &rate, Some(&v.token), Some(json!({"score": 2}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    until_event(&mut ann_ws, "rating").await;

    // The visitor comes back; Bo takes it and closes it; a new rating.
    let r = srv.say(&v, "one more thing", "again").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        call("POST", &handoff, Some(&v.token), None).await.status,
        200
    );
    assert_eq!(
        call("POST", &agent("claim"), Some(&bo), None).await.status,
        200
    );
    assert_eq!(
        call("POST", &agent("close"), Some(&bo), None).await.status,
        200
    );
    let r = call("POST", &rate, Some(&v.token), Some(json!({"score": 5}))).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Then another visitor waits: Ann's socket hears of that queue change,
    // and nothing of the second rating before it.
    let other = srv.new_visitor("Cy").await;
    let h = srv.url(&format!("/api/v1/conversations/{}/handoff", other.id));
    assert_eq!(call("POST", &h, Some(&other.token), None).await.status, 200);
    loop {
        let m = next_json(&mut ann_ws).await;
        assert!(
            !(m["kind"] == "record" && m["record"]["event"]["type"] == "rating"),
            "Ann got Bo's rating: {m}"
        );
        // The queue with Cy in it comes after Bo's close and rating (a
        // queue with Ada still waiting came before Bo's claim).
        if m["kind"] == "queue"
            && m["queue"]["waiting"]
                .as_array()
                .is_some_and(|w| w.iter().any(|x| x["conversation"] == other.id.as_str()))
        {
            break;
        }
    }
}

/// An agent's console that has fallen behind (its socket's buffers full:
/// a slow link) still gets the records of a conversation its agent
/// claimed and closed meanwhile, and then its rating. The socket decided
/// by who held the conversation when it read each push, which after the
/// close was nobody, so it dropped the claim, the close and the rating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_behind_gets_what_its_agent_held_meanwhile() {
    let srv = spawn_app("[limits]\nmessage_chars = 60000\n", |s| s).await;
    let ann = srv.online_agent("ann").await;
    let agent = |id: &str, what: &str| srv.url(&format!("/api/v1/agent/conversations/{id}/{what}"));
    let handoff = |id: &str| srv.url(&format!("/api/v1/conversations/{id}/handoff"));
    let busy = srv.new_visitor("Busy").await;
    assert_eq!(
        call("POST", &handoff(&busy.id), Some(&busy.token), None)
            .await
            .status,
        200
    );
    assert_eq!(
        call("POST", &agent(&busy.id, "claim"), Some(&ann), None)
            .await
            .status,
        200
    );

    // A console on a slow link: a small receive window, and nothing read
    // while Ann writes 6 MB into a conversation she holds (far more than
    // the kernel buffers on both ends), so her socket waits on its sends.
    let url = srv.ws_url(&format!("/api/v1/agent/ws?token={ann}"));
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let tcp = tcp.connect(addr).await.unwrap();
    let (mut ann_ws, _) = tokio_tungstenite::client_async(
        url.as_str(),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .expect("socket opens");
    assert_eq!(next_json(&mut ann_ws).await["kind"], "queue");
    let long = "x".repeat(60_000);
    for _ in 0..100 {
        let r = call(
            "POST",
            &agent(&busy.id, "messages"),
            Some(&ann),
            Some(json!({"text": long})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    // Meanwhile Ada is handed to Ann, who closes her conversation; Ada
    // rates it.
    let v = srv.new_visitor("Ada").await;
    assert_eq!(
        call("POST", &handoff(&v.id), Some(&v.token), None)
            .await
            .status,
        200
    );
    assert_eq!(
        call("POST", &agent(&v.id, "claim"), Some(&ann), None)
            .await
            .status,
        200
    );
    assert_eq!(
        call("POST", &agent(&v.id, "close"), Some(&ann), None)
            .await
            .status,
        200
    );
    let rate = srv.url(&format!("/api/v1/conversations/{}/rating", v.id));
    let r = call("POST", &rate, Some(&v.token), Some(json!({"score": 4}))).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The console catches up: all of Ada's records Ann held, in order.
    let mut ada = Vec::new();
    while ada.last().map(String::as_str) != Some("rating") {
        let m = next_json(&mut ann_ws).await;
        assert_ne!(
            m["kind"], "resync",
            "the socket fell behind its channel: {m}"
        );
        if m["kind"] == "record" && m["conversation"] == v.id.as_str() {
            ada.push(m["record"]["event"]["type"].as_str().unwrap().to_string());
        }
    }
    assert!(ada.starts_with(&["agent_joined".to_string()]), "{ada:?}");
    assert!(ada.contains(&"closed".to_string()), "{ada:?}");
}

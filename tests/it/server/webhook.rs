//! Webhooks: signed, versioned packets on handoff and close, delivered
//! from a durable outbox across a restart.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::*;

const SECRET: &str = "webhook-secret-0123456789";

/// A tiny HTTP receiver that answers 200 and keeps (headers, body).
/// What the receiver got: (lowercased head, body bytes) per request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn receiver(listener: tokio::net::TcpListener, got: Received) {
    loop {
        let Ok((mut c, _)) = listener.accept().await else {
            return;
        };
        let got = Arc::clone(&got);
        tokio::spawn(async move {
            if let Some((head, body)) = read_request(&mut c).await {
                got.lock().unwrap().push((head.to_lowercase(), body));
                answer_ok(&mut c).await;
            }
        });
    }
}

fn sign(body: &[u8]) -> String {
    frontdesk::app::auth::sign(SECRET.as_bytes(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_are_signed_and_survive_a_restart() {
    // Reserve a port for the receiver, but do not listen yet: the first
    // deliveries fail and wait in the outbox.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let s = setup(
        &format!("[[webhooks]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{SECRET}\"\n"),
        None,
    );
    let srv = Server::start(&s);
    let admin = srv.admin.clone();
    let v = srv.new_visitor("Eve").await;
    srv.say(&v, "I need a human", "1").await;
    // The handoff is queued for delivery; stop before anyone receives it.
    srv.stop();

    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(receiver(listener, Arc::clone(&got)));
    let srv = Server::start_with(&s, Some(admin));
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
    call("POST", &path("close"), Some(&alex), None).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if got.lock().unwrap().len() >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "webhooks not delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got: Vec<(String, Vec<u8>, Value)> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(h, b)| (h.clone(), b.clone(), serde_json::from_slice(b).unwrap()))
        .collect();
    let events: Vec<&str> = got
        .iter()
        .map(|(_, _, b)| b["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["handoff", "closed"],
        "the handoff survived the restart"
    );
    for (head, bytes, body) in &got {
        assert_eq!(body["version"], 1);
        assert_eq!(body["conversation"]["id"], v.id.as_str());
        assert_eq!(body["conversation"]["visitor"]["name"], "Eve");
        assert!(body["transcript"].as_array().unwrap().len() >= 3);
        let sig = head
            .lines()
            .find_map(|l| l.strip_prefix("x-frontdesk-signature: sha256="))
            .expect("signed");
        assert_eq!(sig, sign(bytes), "HMAC-SHA256 of the body");
        assert_ne!(sig, sign(b"something else"));
    }
    assert_eq!(got[0].2["summary"]["reason"], "asked");
    assert_eq!(got[1].2["conversation"]["phase"], "closed");
}

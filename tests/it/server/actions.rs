//! Actions (README, "Actions"): the order intent calls a real HTTP backend
//! this test runs on loopback; the backend checks every request's
//! signature. The outcomes a visitor can meet (the status, no such order,
//! a wrong second fact, a timeout, a 500, a malformed reply) each give
//! what the intent configures, and the secrets stay out of every log,
//! event view and webhook.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::*;

const SIGNING: &str = "signing-secret-5f0c9a7e21";
const API_KEY: &str = "apikey-9d3b7c1e0a44f6";
const HOOK_SECRET: &str = "webhook-secret-0123456789";
const IDENTITY: &str = "identity-secret-4b1e9a0c77";

/// What the backend saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    api_key: Option<String>,
    /// The signature verified against SIGNING, with a fresh timestamp.
    verified: bool,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A shop backend: `/orders/123456` is shipped, `/orders/222222` answers
/// too late, `/orders/500500` fails, `/orders/777777` is not JSON; other
/// orders are unknown (404). A request whose signature does not verify is
/// answered 401.
async fn backend(listener: tokio::net::TcpListener, log: Log) {
    loop {
        let Ok((mut c, _)) = listener.accept().await else {
            return;
        };
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let Some((head, body)) = read_request(&mut c).await else {
                return;
            };
            let mut lines = head.lines();
            let request = lines.next().unwrap_or("").to_string();
            let mut parts = request.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            let header = |name: &str| {
                head.lines().skip(1).find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
                })
            };
            let verified = match (
                header("x-frontdesk-timestamp"),
                header("x-frontdesk-signature"),
            ) {
                (Some(ts), Some(sig)) => {
                    let fresh = ts.parse::<i64>().is_ok_and(|t| {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs() as i64;
                        (now - t).abs() < 300
                    });
                    let mut payload = format!("{ts}\n{method}\n{target}\n").into_bytes();
                    payload.extend_from_slice(&body);
                    let want = format!(
                        "sha256={}",
                        frontdesk::app::auth::sign(SIGNING.as_bytes(), &payload)
                    );
                    fresh && sig == want
                }
                _ => false,
            };
            log.lock().unwrap().push(Seen {
                target: target.clone(),
                api_key: header("x-api-key"),
                verified,
            });
            let (status, reply) = if !verified {
                ("401 Unauthorized", "{}".to_string())
            } else {
                match target.as_str() {
                    "/orders/123456" => (
                        "200 OK",
                        json!({
                            "id": "123456", "customer_id": "cust-42", "status": "shipped", "email": "ann@example.com",
                            "items": [{"name": "Rain jacket", "quantity": 1}, {"name": "Wool socks", "quantity": 2}],
                        })
                        .to_string(),
                    ),
                    "/orders/222222" => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        ("200 OK", "{}".to_string())
                    }
                    "/orders/500500" => ("500 Internal Server Error", "oops".to_string()),
                    "/orders/777777" => ("200 OK", "{\"status\": \"shipp".to_string()),
                    _ => ("404 Not Found", "{}".to_string()),
                }
            };
            let out = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
            let _ = c.write_all(out.as_bytes()).await;
        });
    }
}

/// A webhook receiver keeping every body.
async fn hooks(listener: tokio::net::TcpListener, got: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((mut c, _)) = listener.accept().await else {
            return;
        };
        let got = Arc::clone(&got);
        tokio::spawn(async move {
            if let Some((head, body)) = read_request(&mut c).await {
                let text = format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body));
                got.lock().unwrap().push(text);
                answer_ok(&mut c).await;
            }
        });
    }
}

/// The repository's intents with `order_status.toml`'s `[call]` pointed
/// at the test's needs (`on_error` and a short deadline).
fn intents(on_error: &str) -> tempfile::TempDir {
    let dir = crate::intents_copy();
    let path = dir.path().join("order_status.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("timeout_ms = 3000", "timeout_ms = 800")
        .replace(
            "on_error = \"handoff\"",
            &format!("on_error = \"{on_error}\""),
        );
    assert!(text.contains("timeout_ms = 800") && text.contains(on_error));
    std::fs::write(&path, text).unwrap();
    dir
}

struct Shop {
    srv: Server,
    seen: Log,
    hooks: Arc<Mutex<Vec<String>>>,
    _intents: tempfile::TempDir,
    _setup: Setup,
}

async fn shop(on_error: &str) -> Shop {
    shop_with(intents(on_error)).await
}

async fn shop_with(dir: tempfile::TempDir) -> Shop {
    let seen: Log = Arc::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(backend(l, Arc::clone(&seen)));
    let got = Arc::new(Mutex::new(Vec::new()));
    let h = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_port = h.local_addr().unwrap().port();
    tokio::spawn(hooks(h, Arc::clone(&got)));
    let s = setup(
        &format!(
            "[actions]\nbase_url = \"http://127.0.0.1:{port}\"\nsigning_secret = \"{SIGNING}\"\n[actions.secrets]\nshop_api_key = \"{API_KEY}\"\n\n[[webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nsecret = \"{HOOK_SECRET}\"\n\n[identity]\nsecret = \"{IDENTITY}\"\n"
        ),
        Some(dir.path()),
    );
    // Everything the server logs, at every level, to look for secrets in.
    let srv = Server::start_with_log(&s, "trace");
    Shop {
        srv,
        seen,
        hooks: got,
        _intents: dir,
        _setup: s,
    }
}

/// The events of a reply, by type.
fn events(r: &Res) -> Vec<Value> {
    r.body["records"]
        .as_array()
        .unwrap_or_else(|| panic!("records: {}", r.text))
        .iter()
        .map(|r| r["event"].clone())
        .collect()
}

fn of_type<'a>(evs: &'a [Value], t: &str) -> Option<&'a Value> {
    evs.iter().find(|e| e["type"] == t)
}

/// The decision of the last event of type `t` as the agent console shows
/// it (visitors get no decisions).
async fn decision(srv: &Server, agent: &str, v: &Visitor, t: &str) -> Value {
    let r = call(
        "GET",
        &srv.url(&format!("/api/v1/agent/conversations/{}", v.id)),
        Some(agent),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["event"]["type"] == t)
        .map(|e| e["event"]["decision"].clone())
        .unwrap_or_else(|| panic!("no {t}: {}", r.text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_action_asks_for_the_second_fact_then_answers_with_the_backends_status() {
    let shop = shop("handoff").await;
    let srv = &shop.srv;
    let agent = srv.new_agent("alex").await;
    let v = srv.new_visitor("Ann").await;

    // No verified identity: the email is asked for before any call.
    let r = srv.say(&v, "where is my order 123456", "1").await;
    let evs = events(&r);
    let prompt = of_type(&evs, "slot_prompt").unwrap_or_else(|| panic!("{}", r.text));
    assert_eq!(prompt["slot"], "order_email", "{}", r.text);
    assert!(
        shop.seen.lock().unwrap().is_empty(),
        "nothing called before the fact"
    );

    // A wrong fact: the order is fetched to compare, and not revealed.
    let r = srv.say(&v, "bob@example.com", "2").await;
    let evs = events(&r);
    let reply = of_type(&evs, "bot_reply").unwrap_or_else(|| panic!("{}", r.text));
    let text = reply["text"].as_str().unwrap();
    assert!(text.contains("couldn't find an order"), "{text}");
    assert!(
        !text.contains("shipped") && !text.contains("Rain jacket"),
        "{text}"
    );
    let d = decision(srv, &agent, &v, "bot_reply").await;
    assert_eq!(d["action"]["outcome"], "fact_mismatch", "{d}");
    // The fact is not kept on the record.
    assert!(!reply["slots"].to_string().contains("bob@"), "{}", r.text);

    // The right fact: the backend's status, the order lines.
    let r = srv.say(&v, "where is my order 123456", "3").await;
    assert_eq!(
        of_type(&events(&r), "slot_prompt").map(|p| p["slot"].clone()),
        Some(json!("order_email")),
        "the wrong fact was not remembered: {}",
        r.text
    );
    let r = srv.say(&v, "it's ann@example.com", "4").await;
    let evs = events(&r);
    let reply = of_type(&evs, "bot_reply").unwrap_or_else(|| panic!("{}", r.text));
    let text = reply["text"].as_str().unwrap();
    assert!(text.starts_with("Order 123456 is shipped."), "{text}");
    assert!(text.contains("1× Rain jacket; 2× Wool socks;"), "{text}");
    let d = decision(srv, &agent, &v, "bot_reply").await;
    let action = &d["action"];
    assert_eq!(action["name"], "order_lookup");
    assert_eq!(action["outcome"], "ok");
    assert!(action["latency_ms"].as_u64().is_some(), "{action}");

    // An unknown order reads exactly as a wrong fact does.
    srv.say(&v, "where is my order 999999", "5").await;
    let r = srv.say(&v, "ann@example.com", "6").await;
    let evs = events(&r);
    let reply = of_type(&evs, "bot_reply").unwrap();
    assert!(reply["text"]
        .as_str()
        .unwrap()
        .contains("couldn't find an order"));
    let d = decision(srv, &agent, &v, "bot_reply").await;
    assert_eq!(d["action"]["outcome"], "not_found", "{d}");

    let seen = shop.seen.lock().unwrap().clone();
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        ["/orders/123456", "/orders/123456", "/orders/999999"]
    );
    for s in &seen {
        assert!(s.verified, "the backend verified the signature: {s:?}");
        assert_eq!(
            s.api_key.as_deref(),
            Some(API_KEY),
            "the secret header is sent"
        );
    }
}

/// Guessing the second fact: after three lookups that found nothing to
/// show (a wrong fact or an unknown order) the conversation looks up no
/// more orders, even with the right fact: the bot says so and offers a
/// person, and the backend is not called again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failed_lookups_stop_the_lookups_and_offer_a_person() {
    let shop = shop("handoff").await;
    let srv = &shop.srv;
    let agent = srv.new_agent("alex").await;
    let v = srv.new_visitor("Mallory").await;
    for (n, guess) in ["bob@example.com", "eve@example.com", "carl@example.com"]
        .iter()
        .enumerate()
    {
        let r = srv
            .say(&v, "where is my order 123456", &format!("q{n}"))
            .await;
        assert!(
            of_type(&events(&r), "slot_prompt").is_some(),
            "try {n}: {}",
            r.text
        );
        let r = srv.say(&v, guess, &format!("a{n}")).await;
        let reply = of_type(&events(&r), "bot_reply")
            .cloned()
            .unwrap_or_else(|| panic!("{}", r.text));
        assert!(
            reply["text"]
                .as_str()
                .unwrap()
                .contains("couldn't find an order"),
            "{}",
            r.text
        );
    }
    assert_eq!(shop.seen.lock().unwrap().len(), 3);

    // The fourth try, with the right email: no call, no order, an offer.
    let r = srv.say(&v, "where is my order 123456", "q3").await;
    let evs = events(&r);
    assert!(
        of_type(&evs, "slot_prompt").is_none(),
        "no fact is asked for: {}",
        r.text
    );
    let offer = of_type(&evs, "handoff_offered").unwrap_or_else(|| panic!("{}", r.text));
    let text = offer["text"].as_str().unwrap();
    assert!(text.contains("can't look up"), "{text}");
    let r = srv.say(&v, "ann@example.com", "a3").await;
    assert!(!r.text.contains("shipped"), "{}", r.text);
    assert_eq!(
        shop.seen.lock().unwrap().len(),
        3,
        "nothing called after the third miss"
    );
    let d = decision(srv, &agent, &v, "handoff_offered").await;
    assert_eq!(d["action"]["outcome"], "locked", "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_failures_hand_off_with_the_reason_and_secrets_stay_out_of_everything() {
    let shop = shop("handoff").await;
    let srv = &shop.srv;
    let agent = srv.new_agent("alex").await;
    let mut ids = Vec::new();
    for (order, outcome, status, words) in [
        ("500500", "status", Some(500), "status 500"),
        ("222222", "timeout", None, "no answer within 800 ms"),
        ("777777", "bad_json", None, "not JSON"),
    ] {
        let v = srv.new_visitor("Ann").await;
        srv.say(&v, &format!("where is my order {order}"), "1")
            .await;
        let started = std::time::Instant::now();
        let r = srv.say(&v, "ann@example.com", "2").await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the deadline holds"
        );
        let evs = events(&r);
        let said = of_type(&evs, "bot_reply").unwrap_or_else(|| panic!("{}", r.text));
        assert!(said["text"]
            .as_str()
            .unwrap()
            .contains("can't reach our order system"));
        let h = of_type(&evs, "handoff").unwrap_or_else(|| panic!("{order}: {}", r.text));
        assert_eq!(h["reason"], "backend_error", "{order}");
        let d = &decision(srv, &agent, &v, "handoff").await;
        assert_eq!(d["reason"], "backend_error");
        assert_eq!(d["action"]["outcome"], outcome, "{order}");
        assert_eq!(d["action"]["status"], json!(status));
        // What the agent reads: the failure.
        let shown = call(
            "GET",
            &srv.url(&format!("/api/v1/agent/conversations/{}", v.id)),
            Some(&agent),
            None,
        )
        .await;
        assert_eq!(shown.status, 200, "{}", shown.text);
        assert!(shown.text.contains("backend_error"), "{}", shown.text);
        assert!(shown.text.contains(words), "{order}: {}", shown.text);
        ids.push(v);
    }

    // Every view an agent or visitor has, every webhook, the log.
    let mut seen_text = String::new();
    for path in [
        "/api/v1/agent/queue",
        "/api/v1/agent/inbox",
        "/api/v1/agent/live",
    ] {
        let r = call("GET", &srv.url(path), Some(&agent), None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        seen_text.push_str(&r.text);
    }
    for v in &ids {
        let r = call(
            "GET",
            &srv.url(&format!("/api/v1/conversations/{}/events", v.id)),
            Some(&v.token),
            None,
        )
        .await;
        seen_text.push_str(&r.text);
        let r = call(
            "GET",
            &srv.url(&format!("/api/v1/agent/conversations/{}", v.id)),
            Some(&agent),
            None,
        )
        .await;
        seen_text.push_str(&r.text);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while shop.hooks.lock().unwrap().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "webhooks delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hooks = shop.hooks.lock().unwrap().join("\n");
    assert!(hooks.contains("backend_error"), "the handoffs were posted");
    let Shop { srv, .. } = shop;
    let log = srv.stop();
    assert!(
        log.contains("action failed"),
        "the log tells of the failures"
    );
    for (what, text) in [("views", &seen_text), ("webhooks", &hooks), ("log", &log)] {
        for secret in [API_KEY, SIGNING] {
            assert!(!text.contains(secret), "{what} holds a secret");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_gives_the_configured_answer_when_the_action_says_answer() {
    let shop = shop("answer").await;
    let srv = &shop.srv;
    let agent = srv.new_agent("alex").await;
    let v = srv.new_visitor("Ann").await;
    srv.say(&v, "where is my order 500500", "1").await;
    let r = srv.say(&v, "ann@example.com", "2").await;
    let evs = events(&r);
    assert!(of_type(&evs, "handoff").is_none(), "{}", r.text);
    let reply = of_type(&evs, "bot_reply").unwrap();
    assert_eq!(
        reply["text"],
        "I can't reach our order system right now, so I'm passing you to a colleague who can look it up."
    );
    let d = decision(srv, &agent, &v, "bot_reply").await;
    assert_eq!(d["action"]["status"], 500, "{d}");
    assert!(d["detail"].as_str().unwrap().contains("status 500"));
    // The conversation stays with the bot.
    let r = srv.say(&v, "where is my order 123456", "3").await;
    let r = if of_type(&events(&r), "slot_prompt").is_some() {
        srv.say(&v, "ann@example.com", "4").await
    } else {
        r
    };
    assert!(r.text.contains("is shipped"), "{}", r.text);
}

/// A visitor whose id the shop vouched for (`identify()`'s hash).
async fn verified_visitor(srv: &Server, id: &str) -> Visitor {
    let hash = frontdesk::app::auth::sign(IDENTITY.as_bytes(), id.as_bytes());
    let r = call(
        "POST",
        &srv.url("/api/v1/conversations"),
        None,
        Some(json!({"visitor_id": id, "identity_hash": hash})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Visitor {
        id: r.body["id"].as_str().unwrap().to_string(),
        token: r.body["token"].as_str().unwrap().to_string(),
    }
}

/// A verified visitor needs no second fact for their own order, and gets
/// "not found" for another customer's; an id that is only claimed (a
/// forged hash) is asked for the fact like anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_visitor_is_answered_about_their_own_orders_only() {
    let shop = shop("handoff").await;
    let srv = &shop.srv;
    let agent = srv.new_agent("alex").await;

    let owner = verified_visitor(srv, "cust-42").await;
    let r = srv.say(&owner, "where is my order 123456", "1").await;
    let evs = events(&r);
    assert!(of_type(&evs, "slot_prompt").is_none(), "{}", r.text);
    let text = of_type(&evs, "bot_reply").unwrap_or_else(|| panic!("{}", r.text))["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("Order 123456 is shipped."), "{text}");
    let d = decision(srv, &agent, &owner, "bot_reply").await;
    assert_eq!(d["action"]["outcome"], "ok", "{d}");

    let other = verified_visitor(srv, "cust-7").await;
    let r = srv.say(&other, "where is my order 123456", "1").await;
    let evs = events(&r);
    assert!(of_type(&evs, "slot_prompt").is_none(), "{}", r.text);
    let text = of_type(&evs, "bot_reply").unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("couldn't find an order"), "{text}");
    assert!(
        !text.contains("shipped") && !text.contains("Rain jacket"),
        "{text}"
    );
    let d = decision(srv, &agent, &other, "bot_reply").await;
    assert_eq!(d["action"]["outcome"], "not_owner", "{d}");

    // A claimed id (the hash of another id) proves nothing.
    let r = call(
        "POST",
        &srv.url("/api/v1/conversations"),
        None,
        Some(json!({
            "visitor_id": "cust-42",
            "identity_hash": frontdesk::app::auth::sign(IDENTITY.as_bytes(), b"cust-7"),
        })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let claimed = Visitor {
        id: r.body["id"].as_str().unwrap().to_string(),
        token: r.body["token"].as_str().unwrap().to_string(),
    };
    let r = srv.say(&claimed, "where is my order 123456", "1").await;
    let prompt = of_type(&events(&r), "slot_prompt").cloned();
    assert_eq!(
        prompt.map(|p| p["slot"].clone()),
        Some(json!("order_email")),
        "{}",
        r.text
    );
    assert_eq!(
        shop.seen.lock().unwrap().len(),
        2,
        "two calls, none for the claimed id"
    );
}

/// An action with `verified_field` and no second fact answers verified
/// visitors only: anyone else hears `unverified_answer` and nothing is
/// called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_for_verified_visitors_only_calls_nothing_for_the_rest() {
    let dir = intents("handoff");
    let path = dir.path().join("order_status.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // No second fact, and no slot for it.
    let text = text
        .replace(
            "[[slots]]\nname = \"order_email\"\npattern = '[^\\s@]+@[^\\s@]+\\.[^\\s@]+'\nprompt = \"To keep your order private: what email address did you order with?\"\n",
            "",
        )
        .lines()
        .filter(|l| !l.starts_with("second_fact"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "verified_field = \"customer_id\"",
            "verified_field = \"customer_id\"\nunverified_answer = \"Please sign in first.\"",
        );
    assert!(!text.contains("order_email"), "{text}");
    std::fs::write(&path, text).unwrap();
    let shop = shop_with(dir).await;
    let srv = &shop.srv;
    let agent = srv.new_agent("alex").await;

    let v = srv.new_visitor("Ann").await;
    let r = srv.say(&v, "where is my order 123456", "1").await;
    let evs = events(&r);
    assert!(of_type(&evs, "slot_prompt").is_none(), "{}", r.text);
    assert_eq!(
        of_type(&evs, "bot_reply").unwrap()["text"],
        "Please sign in first.",
        "{}",
        r.text
    );
    let d = decision(srv, &agent, &v, "bot_reply").await;
    assert_eq!(d["action"]["outcome"], "unverified", "{d}");
    assert!(shop.seen.lock().unwrap().is_empty(), "nothing was called");

    let owner = verified_visitor(srv, "cust-42").await;
    let r = srv.say(&owner, "where is my order 123456", "1").await;
    let text = of_type(&events(&r), "bot_reply").unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("Order 123456 is shipped."), "{text}");
}

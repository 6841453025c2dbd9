//! The failures inbox and intent files edited over the admin API, on a
//! spawned server whose intents directory is a temp copy of `intents/`.

use std::path::Path;

use serde_json::{json, Value};

use super::*;

/// `call` with room for a write: it loads the whole intent set twice
/// (validation, then the reload), seconds each in a debug build on a
/// busy machine.
async fn write_call(method: &str, url: &str, token: &str, body: Value) -> Res {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let res = tokio::time::timeout(std::time::Duration::from_secs(120), client.request(req))
        .await
        .expect("server answers in time")
        .expect("request succeeds");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Res {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// `frontdesk check DIR`: (success, output).
fn check(dir: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["check", "--intents"])
        .arg(dir)
        .output()
        .expect("run frontdesk check");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const WRAP: [&str; 3] = [
    "do you do gift wrapping",
    "is gift wrapping possible",
    "Do you do gift wrapping?? for my order",
];

async fn failures(srv: &Server) -> Value {
    let r = call(
        "GET",
        &srv.url("/api/v1/admin/failures"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The cluster holding `text`, if any.
fn cluster_of<'a>(inbox: &'a Value, text: &str) -> Option<&'a Value> {
    inbox["clusters"].as_array().unwrap().iter().find(|c| {
        c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == text)
    })
}

fn texts(cluster: &Value) -> Vec<String> {
    let mut t: Vec<String> = cluster["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_messages_are_clustered_and_dismissed_for_good() {
    let intents = crate::intents_copy();
    let s = setup("", Some(intents.path()));
    let srv = Server::start(&s);
    let agent = srv.new_agent("alex").await;
    let p = call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&agent),
        Some(json!({"presence": "online", "capacity": 3})),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);

    let mut wrap_ids = Vec::new();
    for (i, text) in WRAP.iter().enumerate() {
        let v = srv.new_visitor("V").await;
        let r = srv.say(&v, text, "1").await;
        assert_eq!(
            r.body["records"][1]["event"]["type"], "fallback",
            "{}",
            r.text
        );
        if i == 0 {
            // An agent takes over and answers: the proposed answer.
            let path = |w: &str| srv.url(&format!("/api/v1/agent/conversations/{}/{w}", v.id));
            let c = call("POST", &path("claim"), Some(&agent), None).await;
            assert_eq!(c.status, 200, "{}", c.text);
            let m = call(
                "POST",
                &path("messages"),
                Some(&agent),
                Some(json!({"text": "Yes: gift wrapping is 3 EUR, choose it at checkout."})),
            )
            .await;
            assert!(m.status < 300, "{}", m.text);
        }
        wrap_ids.push(v.id);
    }
    let other = srv.new_visitor("W").await;
    let r = srv.say(&other, "where is the nearest shop", "1").await;
    assert_eq!(
        r.body["records"][1]["event"]["type"], "fallback",
        "{}",
        r.text
    );
    // Answered: not a failure.
    let fine = srv.new_visitor("X").await;
    srv.say(&fine, "How much is shipping?", "1").await;

    let inbox = failures(&srv).await;
    assert_eq!(inbox["total"], 4, "{inbox}");
    let wrap = cluster_of(&inbox, WRAP[0]).expect("the gift wrap cluster");
    let mut want: Vec<String> = WRAP.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(texts(wrap), want, "{inbox}");
    assert_eq!(wrap["count"], 3);
    assert_eq!(inbox["clusters"][0], *wrap, "the largest first");
    assert_eq!(wrap["nearest_intent"], "gift_card", "{wrap}");
    assert!(wrap["nearest_score"].as_f64().unwrap() > 0.0);
    assert_eq!(
        wrap["proposed_answers"][0],
        "Yes: gift wrapping is 3 EUR, choose it at checkout."
    );
    for m in wrap["messages"].as_array().unwrap() {
        assert_eq!(m["why"], json!(["fallback"]), "{m}");
        assert!(wrap_ids.contains(&m["conversation"].as_str().unwrap().to_string()));
        assert_eq!(m["seq"], 2);
    }
    let shop = cluster_of(&inbox, "where is the nearest shop").unwrap();
    assert_eq!(shop["count"], 1, "dissimilar apart: {inbox}");

    // A window before the traffic is empty.
    let r = call(
        "GET",
        &srv.url("/api/v1/admin/failures?from=0&to=1000"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
    let r = call(
        "GET",
        &srv.url("/api/v1/admin/failures?from=10&to=1"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    // A window over 90 days (all of time: every log read) is refused.
    let r = call(
        "GET",
        &srv.url("/api/v1/admin/failures?from=0"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "invalid_window", "{}", r.text);
    // Admins only.
    let r = call(
        "GET",
        &srv.url("/api/v1/admin/failures"),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(r.status, 403);

    // Dismiss the shop message; it stays dismissed across a restart.
    let m = &shop["messages"][0];
    let r = call(
        "POST",
        &srv.url("/api/v1/admin/failures/dismiss"),
        Some(&srv.admin),
        Some(json!({"messages": [{"conversation": m["conversation"], "seq": m["seq"]}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["dismissed"], 1);
    let admin = srv.admin.clone();
    srv.stop();
    let srv = Server::start_with(&s, Some(admin));
    let inbox = failures(&srv).await;
    assert_eq!(inbox["total"], 3, "{inbox}");
    assert!(cluster_of(&inbox, "where is the nearest shop").is_none());
    assert!(cluster_of(&inbox, WRAP[1]).is_some());

    // Falling back again and again: the bot hands off, and says why.
    let v = srv.new_visitor("Z").await;
    for (i, t) in ["zzkx qvvj", "qqxz wwpk", "vvjq kkzx", "wwpk zzqx"]
        .iter()
        .enumerate()
    {
        srv.say(&v, t, &format!("z{i}")).await;
    }
    let inbox = failures(&srv).await;
    let handed: Vec<&Value> = inbox["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["messages"].as_array().unwrap())
        .filter(|m| {
            m["conversation"] == v.id.as_str()
                && m["why"].as_array().unwrap().contains(&json!("handoff"))
        })
        .collect();
    assert_eq!(handed.len(), 1, "{inbox}");
    assert_eq!(handed[0]["handoff_reason"], "repeated_fallback", "{inbox}");
    assert_eq!(handed[0]["why"], json!(["fallback", "handoff"]), "{inbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_added_validate_and_answer() {
    let intents = crate::intents_copy();
    let s = setup("", Some(intents.path()));
    let srv = Server::start(&s);
    let v = srv.new_visitor("V").await;
    let r = srv.say(&v, WRAP[0], "1").await;
    assert_eq!(r.body["records"][1]["event"]["type"], "fallback");
    let before = std::fs::read_to_string(intents.path().join("gift_card.toml")).unwrap();

    let r = write_call(
        "POST",
        &srv.url("/api/v1/admin/intents/gift_card/examples"),
        &srv.admin,
        json!({"examples": WRAP}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["added"], 3);
    assert_eq!(r.body["reload"]["ok"], true, "{}", r.text);
    let after = std::fs::read_to_string(intents.path().join("gift_card.toml")).unwrap();
    assert_ne!(before, after);
    for w in WRAP {
        assert!(after.contains(&format!("  {w:?},\n")), "{after}");
    }
    // Only lines were added: the rest of the file is as it was.
    let removed: Vec<&str> = before.lines().filter(|l| !after.contains(l)).collect();
    assert!(removed.is_empty(), "{removed:?}");
    let (ok, out) = check(intents.path());
    assert!(ok, "{out}");
    let r = srv.say(&v, WRAP[1], "2").await;
    assert_eq!(
        r.body["records"][1]["event"]["type"], "bot_reply",
        "{}",
        r.text
    );
    assert_eq!(r.body["records"][1]["event"]["intent"], "gift_card");
    // No temp file left behind.
    let stray: Vec<_> = std::fs::read_dir(intents.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".toml"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // A new intent from a cluster: created, validated, answering.
    let r = write_call("POST", &srv.url("/api/v1/admin/intent-files"), &srv.admin, json!({
            "id": "crypto_payment",
            "examples": ["can I pay with bitcoin", "do you accept crypto", "bitcoin payment", "pay in ethereum"],
            "answers": ["We don't take cryptocurrencies, sorry."],
            "keywords": ["bitcoin"],
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(intents.path().join("crypto_payment.toml").is_file());
    let (ok, out) = check(intents.path());
    assert!(ok, "{out}");
    let r = srv.say(&v, "I want to pay with bitcoin", "3").await;
    assert_eq!(
        r.body["records"][1]["event"]["intent"], "crypto_payment",
        "{}",
        r.text
    );
    let again = write_call(
        "POST",
        &srv.url("/api/v1/admin/intent-files"),
        &srv.admin,
        json!({"id": "crypto_payment", "examples": ["x"], "answers": ["y"]}),
    )
    .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["code"], "intent_exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_writes_change_nothing() {
    let intents = crate::intents_copy();
    let s = setup("", Some(intents.path()));
    let srv = Server::start(&s);
    let file = |n: &str| srv.url(&format!("/api/v1/admin/intent-files/{n}"));
    let path = intents.path().join("shipping_cost.toml");
    let bytes = std::fs::read(&path).unwrap();

    let list = call(
        "GET",
        &srv.url("/api/v1/admin/intent-files"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert_eq!(list.status, 200);
    assert!(list.body["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "shipping_cost.toml"));
    let read = call("GET", &file("shipping_cost.toml"), Some(&srv.admin), None).await;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.body["toml"].as_str().unwrap().as_bytes(),
        bytes.as_slice()
    );
    let version = read.body["version"].as_str().unwrap().to_string();

    // Invalid TOML: 422 with path:line:col, the file byte for byte unchanged.
    let broken = String::from_utf8(bytes.clone())
        .unwrap()
        .replacen("answer = ", "answer = = ", 1);
    let line = broken
        .lines()
        .position(|l| l.starts_with("answer = ="))
        .unwrap()
        + 1;
    let r = write_call(
        "PUT",
        &file("shipping_cost.toml"),
        &srv.admin,
        json!({"toml": broken, "base_version": version}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "invalid_intents");
    let e = &r.body["errors"][0];
    assert_eq!(e["line"], line, "{}", r.text);
    assert_eq!(
        e["path"].as_str().unwrap(),
        intents
            .path()
            .join("shipping_cost.toml")
            .display()
            .to_string()
    );
    let located = format!("{}:{line}:", path.display());
    assert!(
        e["text"].as_str().unwrap().starts_with(&located),
        "{}",
        r.text
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // Valid TOML that breaks the set (an intent test now fails): refused too.
    let r = write_call("PUT", &file("shipping_cost.toml"), &srv.admin, json!({"toml": "examples = [\"hello\"]\nanswer = \"x\"\ntests = [\"how much is shipping\"]\n", "base_version": version}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(!r.body["errors"].as_array().unwrap().is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // Traversal and odd names are refused before any file is touched.
    for name in [
        "..%2Fetc%2Fpasswd",
        "..%2Ffrontdesk.toml",
        "..",
        "x.txt",
        "A.toml",
        ".hidden.toml",
    ] {
        let r = write_call(
            "PUT",
            &file(name),
            &srv.admin,
            json!({"toml": "answer = \"x\"\nexamples = [\"x\"]\n"}),
        )
        .await;
        assert!(
            r.status == 422 || r.status == 404,
            "{name}: {} {}",
            r.status,
            r.text
        );
        let g = call("GET", &file(name), Some(&srv.admin), None).await;
        assert!(g.status == 422 || g.status == 404, "{name}: {}", g.text);
    }
    let r = call("GET", &file("..%2Ffrontdesk.toml"), Some(&srv.admin), None).await;
    assert_eq!(r.body["error"]["code"], "invalid_file_name", "{}", r.text);

    // A valid save with the right base works; a second with the old base is stale.
    let edited = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("[$4.95]", "[$3.95]");
    let r = write_call(
        "PUT",
        &file("shipping_cost.toml"),
        &srv.admin,
        json!({"toml": edited, "base_version": version}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    let r = write_call(
        "PUT",
        &file("shipping_cost.toml"),
        &srv.admin,
        json!({"toml": String::from_utf8(bytes.clone()).unwrap(), "base_version": version}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "stale_base");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);

    // The form's fields: the rest of the file stays as written.
    let current = call("GET", &file("shipping_cost.toml"), Some(&srv.admin), None).await;
    let r = write_call(
        "PUT",
        &file("shipping_cost.toml/fields"),
        &srv.admin,
        json!({
            "base_version": current.body["version"],
            "quick_replies": ["Delivery times"],
            "threshold": 0.45,
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let now = std::fs::read_to_string(&path).unwrap();
    assert!(
        now.contains("quick_replies = [\"Delivery times\"]"),
        "{now}"
    );
    assert!(now.contains("threshold = 0.45"), "{now}");
    assert!(now.contains("patterns = [\n  '\\bhow much"), "{now}");
    let (ok, out) = check(intents.path());
    assert!(ok, "{out}");
}

/// A counter of `/metrics` (0 when absent).
async fn metric(srv: &Server, sample: &str) -> u64 {
    let m = raw("GET", &srv.url("/metrics"), None, None, vec![], &[]).await;
    m.text
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

const BUILDS: &str = "frontdesk_intent_builds_total";
const RELOADS: &str = "frontdesk_reloads_total{result=\"ok\"}";

/// One save builds the intent set once: the set it validated is the one
/// served (no second load), and the directory watcher, seeing files that
/// hold exactly that set, does not build it a third time. An edit made
/// on disk afterwards is still reloaded (the watcher is alive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_save_is_one_build() {
    let intents = crate::intents_copy();
    let s = setup("", Some(intents.path()));
    let srv = Server::start(&s);
    let builds = metric(&srv, BUILDS).await;
    assert!(builds >= 1, "the start built the set");
    let reloads = metric(&srv, RELOADS).await;

    let r = call(
        "GET",
        &srv.url("/api/v1/admin/intent-files/shipping_cost.toml"),
        Some(&srv.admin),
        None,
    )
    .await;
    let version = r.body["version"].as_str().unwrap().to_string();
    let r = write_call(
        "PUT",
        &srv.url("/api/v1/admin/intent-files/shipping_cost.toml/fields"),
        &srv.admin,
        json!({"base_version": version, "quick_replies": ["Delivery times"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["reload"]["ok"], true, "{}", r.text);
    assert_eq!(metric(&srv, BUILDS).await, builds + 1, "validation only");
    assert_eq!(metric(&srv, RELOADS).await, reloads + 1, "swapped in once");
    // The saved set serves at once.
    let r = call(
        "GET",
        &srv.url("/api/v1/admin/intents"),
        Some(&srv.admin),
        None,
    )
    .await;
    assert!(r.text.contains("shipping_cost"), "{}", r.text);

    // Ten polls of the watcher (every 100 ms here) see the written file:
    // a negative can only be waited out.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    assert_eq!(
        metric(&srv, BUILDS).await,
        builds + 1,
        "the watcher built it again"
    );
    assert_eq!(metric(&srv, RELOADS).await, reloads + 1);

    // An edit on disk is another set: reloaded, built once.
    let path = intents.path().join("gift_card.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n# edited by hand\n");
    std::fs::write(&path, text).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while metric(&srv, RELOADS).await < reloads + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher reloads a hand edit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&srv, BUILDS).await, builds + 2);
}

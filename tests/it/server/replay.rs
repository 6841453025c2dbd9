//! Replay before deploy over real HTTP: `POST /api/v1/admin/replay` and
//! `GET /api/v1/admin/replay/thresholds` on an in-process server with a
//! real sled store, traffic seeded through the visitor API.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{call, spawn_app, Reach, TestApp};
use crate::default_intents;

/// A message the shipped intents fall back on.
const UNKNOWN: &str = "do you offer engraving on jewellery";

/// Every intent file's bytes: what "nothing written" is checked against.
fn snapshot() -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(default_intents())
        .expect("intents/")
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// gift_card.toml with `UNKNOWN` as one more example.
fn edited_gift_card() -> String {
    let text = std::fs::read_to_string(default_intents().join("gift_card.toml")).expect("read");
    text.replacen("examples = [", &format!("examples = [\n  {UNKNOWN:?},"), 1)
}

async fn seeded() -> TestApp {
    let app = spawn_app("", |s| s).await;
    let v = app.new_visitor("Ada").await;
    let r = app.say(&v, "How much is shipping to Canada?", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.say(&v, UNKNOWN, "m2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let kinds: Vec<&str> = r.body["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["event"]["type"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        kinds.contains(&"fallback"),
        "the bot falls back now: {}",
        r.text
    );
    app
}

/// POSTs a replay, with more patience than `call`: an edit trains a
/// classifier and runs the set's inline tests, seconds in a debug build on
/// a busy machine.
async fn replay(app: &TestApp, token: Option<&str>, body: Value) -> super::Res {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let mut req = hyper::Request::post(app.url("/api/v1/admin/replay"))
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let res = tokio::time::timeout(std::time::Duration::from_secs(120), client.request(req))
        .await
        .expect("server answers in time")
        .expect("request succeeds");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    super::Res {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn an_added_example_shows_as_a_fallback_now_answered_and_nothing_is_written() {
    let app = seeded().await;
    let before = snapshot();
    let files = json!({ "gift_card.toml": edited_gift_card() });
    let r = replay(
        &app,
        Some(&app.admin),
        json!({"since_days": 7, "files": files}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["conversations"], 1, "{}", r.text);
    assert_eq!(b["messages"], 2);
    assert_eq!(b["changed"], 1, "{}", r.text);
    let d = &b["differences"][0];
    assert_eq!(d["text"], UNKNOWN);
    assert_eq!(d["before"]["kind"], "fallback");
    assert_eq!(d["after"]["kind"], "answer");
    assert_eq!(d["after"]["intent"], "gift_card");
    assert_eq!(d["change"], "fallback_to_answer");
    assert_eq!(
        b["changes"],
        json!([{"change": "fallback_to_answer", "count": 1}])
    );
    assert_eq!(
        b["after"]["answered"].as_u64().unwrap(),
        b["before"]["answered"].as_u64().unwrap() + 1
    );
    assert_eq!(snapshot(), before, "the intents directory is unchanged");
    // The server still serves the old set: the message still falls back.
    let c = call(
        "POST",
        &app.url("/api/v1/admin/classify"),
        Some(&app.admin),
        Some(json!({"text": UNKNOWN})),
    )
    .await;
    assert_eq!(c.body["decision"], "fallback", "{}", c.text);

    // No edit: nothing changes.
    let r = replay(&app, Some(&app.admin), json!({"since_days": 7})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["changed"], 0, "{}", r.text);
}

#[tokio::test]
async fn a_bad_edit_is_422_with_its_place_and_writes_nothing() {
    let app = seeded().await;
    let before = snapshot();
    let bad = "description = \"Where a placed order is\"\nexamples = [\"where is it\", 42]\n";
    let r = replay(
        &app,
        Some(&app.admin),
        json!({"since_days": 7, "files": {"order_status.toml": bad}}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "invalid_intents");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("order_status.toml:2:"), "path:line:col: {msg}");
    let r = replay(
        &app,
        Some(&app.admin),
        json!({"since_days": 7, "files": {"../x.toml": "description = \"x\""}}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "invalid_intents");
    let r = replay(&app, Some(&app.admin), json!({"since_days": 0})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "invalid_since_days");
    assert_eq!(snapshot(), before);
}

#[tokio::test]
async fn replay_needs_an_admin() {
    let app = seeded().await;
    let agent = app.online_agent("ann").await;
    let body = json!({"since_days": 7});
    assert_eq!(replay(&app, None, body.clone()).await.status, 401);
    assert_eq!(replay(&app, Some(&agent), body.clone()).await.status, 403);
    assert_eq!(replay(&app, Some("nonsense-token"), body).await.status, 401);
    let url = app.url("/api/v1/admin/replay/thresholds?since_days=7");
    assert_eq!(call("GET", &url, None, None).await.status, 401);
    assert_eq!(call("GET", &url, Some(&agent), None).await.status, 403);
}

#[tokio::test]
async fn the_threshold_curve_covers_the_window() {
    let app = seeded().await;
    let url = app.url("/api/v1/admin/replay/thresholds?since_days=7");
    let r = call("GET", &url, Some(&app.admin), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["conversations"], 1);
    assert_eq!(r.body["messages"], 2);
    let points = r.body["points"].as_array().expect("points");
    assert_eq!(points.len(), 19);
    assert!((points[0]["threshold"].as_f64().unwrap() - 0.05).abs() < 1e-6);
    // At the lowest bar the shipping question is answered and the
    // conversation contained; at 0.95 fewer answers or as many.
    assert!(points[0]["answers"].as_u64().unwrap() >= 1, "{}", r.text);
    assert_eq!(points[0]["contained"], 1);
    assert!(points[18]["answers"].as_u64() <= points[0]["answers"].as_u64());
    let r = call(
        "GET",
        &app.url("/api/v1/admin/replay/thresholds?since_days=500"),
        Some(&app.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = call(
        "GET",
        &app.url("/api/v1/admin/replay/thresholds"),
        Some(&app.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["error"]["code"].is_string(), "{}", r.text);
}

/// `frontdesk replay` on a store seeded through the `Store` API with the
/// bot's real replies: the edit's difference is printed; an invalid edited
/// directory is refused at its place with exit 1.
#[test]
fn the_cli_prints_the_difference_and_refuses_a_bad_edit() {
    use frontdesk::classify::Classifier;
    use frontdesk::conversation::{
        step, Conversation, Decide, EscalationPolicy, Input, Rules, Texts, Visitor,
    };
    use frontdesk::store::{SledStore, Store};
    use std::process::Command;

    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    {
        let store = SledStore::open(&data).expect("store");
        let bot = Classifier::load(default_intents()).expect("intents");
        let escalation = EscalationPolicy::default();
        let texts = Texts::default();
        let rules = Rules {
            escalation: &escalation,
            texts: &texts,
        };
        let at = frontdesk::util::clock::system_ms() - 3_600_000;
        store.create("c1", at, Visitor::default()).expect("create");
        for (n, text) in ["How much is shipping to Canada?", UNKNOWN]
            .iter()
            .enumerate()
        {
            let conv = Conversation::from_log(&store.read("c1", 0).expect("read"));
            let input = Input::Visitor {
                text: text.to_string(),
                client_id: format!("m{n}"),
            };
            let events = step(&conv, input, &bot, &rules).expect("step");
            store.append("c1", at + n as i64, events).expect("append");
        }
    }
    let edited = tmp.path().join("edited");
    std::fs::create_dir(&edited).expect("mkdir");
    for (name, bytes) in snapshot() {
        std::fs::write(edited.join(&name), bytes).expect("copy");
    }
    std::fs::write(edited.join("gift_card.toml"), edited_gift_card()).expect("edit");
    let run = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .args(["replay", "--since", "1d", "--intents"])
            .arg(dir)
            .arg("--data")
            .arg(&data)
            .arg("--thresholds")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("runs")
    };
    let out = run(&edited);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 message(s) would be decided differently"),
        "{stdout}"
    );
    assert!(stdout.contains("fallback_to_answer"), "{stdout}");
    assert!(stdout.contains(UNKNOWN), "{stdout}");
    assert!(stdout.contains("answer gift_card"), "{stdout}");
    assert!(stdout.contains("threshold what-if"), "{stdout}");

    std::fs::write(
        edited.join("gift_card.toml"),
        "description = \"x\"\nexamples = [1]\n",
    )
    .expect("break");
    let out = run(&edited);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gift_card.toml:2:"), "{stderr}");
}

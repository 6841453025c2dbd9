//! Helpful / not helpful on the bot's answers, over real HTTP: stored,
//! replaced by a later choice, refused for anything but a bot answer of
//! this conversation, and "not helpful" offers a person.

use serde_json::{json, Value};

use super::*;

fn types(records: &Value) -> Vec<String> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap().to_string())
        .collect()
}

async fn feedback(app: &TestApp, v: &Visitor, token: &str, body: Value) -> Res {
    call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/feedback", v.id)),
        Some(token),
        Some(body),
    )
    .await
}

/// The seq of the bot's answer in a send's records.
fn answer_seq(r: &Res) -> u64 {
    r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"]["type"] == "bot_reply")
        .unwrap_or_else(|| panic!("a bot answer: {}", r.text))["seq"]
        .as_u64()
        .unwrap()
}

async fn log(app: &TestApp, v: &Visitor) -> Vec<Value> {
    let r = call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["events"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_is_stored_replaced_and_checked() {
    let app = spawn_app("", |s| s).await;
    let v = app.new_visitor("Ada").await;
    let r = app.say(&v, "How much is shipping to Canada?", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let about = answer_seq(&r);

    // Helpful: stored, nothing offered.
    let yes = feedback(&app, &v, &v.token, json!({"about": about, "helpful": true})).await;
    assert_eq!(yes.status, 200, "{}", yes.text);
    assert_eq!(types(&yes.body["records"]), ["feedback"]);
    let e = &yes.body["records"][0]["event"];
    assert_eq!(
        (e["about"].as_u64(), e["helpful"].as_bool()),
        (Some(about), Some(true))
    );

    // The same choice again stores nothing (a double click).
    let again = feedback(&app, &v, &v.token, json!({"about": about, "helpful": true})).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(types(&again.body["records"]), Vec::<String>::new());

    // A change of mind is stored too, and the bot offers a person.
    let no = feedback(
        &app,
        &v,
        &v.token,
        json!({"about": about, "helpful": false}),
    )
    .await;
    assert_eq!(no.status, 200, "{}", no.text);
    assert_eq!(types(&no.body["records"]), ["feedback", "handoff_offered"]);
    let offer = &no.body["records"][1]["event"];
    assert_eq!(offer["reason"], "asked");
    assert!(
        offer["text"].as_str().unwrap().contains("person"),
        "{offer}"
    );
    assert!(offer.get("decision").is_none(), "visitors get no decisions");

    // Both choices are in the log, in order: the last one counts.
    let stored: Vec<(u64, bool)> = log(&app, &v)
        .await
        .iter()
        .filter(|r| r["event"]["type"] == "feedback")
        .map(|r| {
            (
                r["event"]["about"].as_u64().unwrap(),
                r["event"]["helpful"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(stored, [(about, true), (about, false)]);

    // Accepting the offer gets a person, for the reason the visitor asked.
    let take = app.say(&v, "Yes please", "m2").await;
    assert_eq!(take.status, 200, "{}", take.text);
    let t = types(&take.body["records"]);
    assert!(t.contains(&"handoff".to_string()), "{t:?}");
    let handoff = take.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"]["type"] == "handoff")
        .unwrap();
    assert_eq!(handoff["event"]["reason"], "asked");

    // Queued: a person is coming, so "not helpful" offers nothing more.
    let now = feedback(&app, &v, &v.token, json!({"about": about, "helpful": true})).await;
    let later = feedback(
        &app,
        &v,
        &v.token,
        json!({"about": about, "helpful": false}),
    )
    .await;
    assert_eq!(types(&now.body["records"]), ["feedback"]);
    assert_eq!(types(&later.body["records"]), ["feedback"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_about_anything_but_a_bot_answer_is_refused() {
    let app = spawn_app("", |s| s).await;
    let v = app.new_visitor("Ada").await;
    let r = app.say(&v, "How much is shipping to Canada?", "m1").await;
    let about = answer_seq(&r);
    let len = log(&app, &v).await.len();

    // The visitor's own message (seq 2), the start (1), and one past the
    // end: each refused with the stable code, and nothing stored.
    for bad in [1, 2, about + 1, 999_999] {
        let res = feedback(&app, &v, &v.token, json!({"about": bad, "helpful": false})).await;
        assert_eq!(res.status, 422, "{bad}: {}", res.text);
        assert_eq!(res.body["error"]["code"], "not_a_bot_reply", "{}", res.text);
    }
    // A bot answer of another conversation is not one of this one.
    let w = app.new_visitor("Bob").await;
    app.say(&w, "How much is shipping?", "w1").await;
    app.say(&w, "How much is shipping to Canada?", "w2").await;
    let other = log(&app, &w).await;
    let theirs: Vec<u64> = other
        .iter()
        .filter(|r| r["event"]["type"] == "bot_reply")
        .map(|r| r["seq"].as_u64().unwrap())
        .filter(|s| *s != about)
        .collect();
    assert!(!theirs.is_empty());
    for s in theirs {
        let res = feedback(&app, &v, &v.token, json!({"about": s, "helpful": true})).await;
        assert_eq!(res.status, 422, "{s}: {}", res.text);
    }

    // Bad bodies get the API's JSON errors.
    let res = feedback(&app, &v, &v.token, json!({"about": about})).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert!(res.body["error"]["code"].is_string(), "{}", res.text);
    let res = feedback(&app, &v, &v.token, json!({"about": -1, "helpful": true})).await;
    assert_eq!(res.status, 422, "{}", res.text);

    // Another conversation's token, or none: refused, nothing stored.
    let res = feedback(&app, &v, &w.token, json!({"about": about, "helpful": true})).await;
    assert_eq!(res.status, 404, "{}", res.text);
    let res = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/feedback", v.id)),
        None,
        Some(json!({"about": about, "helpful": true})),
    )
    .await;
    assert_eq!(res.status, 401, "{}", res.text);
    assert_eq!(log(&app, &v).await.len(), len, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_helpful_after_the_close_still_offers_a_person() {
    let app = spawn_app("", |s| s).await;
    let alex = app.online_agent("alex").await;
    let v = app.new_visitor("Ada").await;
    let about = answer_seq(&app.say(&v, "How much is shipping to Canada?", "m1").await);
    // An agent takes the conversation and closes it.
    let url = |p: &str| app.url(&format!("/api/v1/agent/conversations/{}/{p}", v.id));
    let c = call("POST", &url("claim"), Some(&alex), None).await;
    assert_eq!(c.status, 200, "{}", c.text);
    let c = call("POST", &url("close"), Some(&alex), None).await;
    assert_eq!(c.status, 200, "{}", c.text);

    let no = feedback(
        &app,
        &v,
        &v.token,
        json!({"about": about, "helpful": false}),
    )
    .await;
    assert_eq!(no.status, 200, "{}", no.text);
    assert_eq!(types(&no.body["records"]), ["feedback", "handoff_offered"]);
    // Accepting it reopens the conversation straight into the queue.
    let take = app.say(&v, "Yes please", "m2").await;
    let t = types(&take.body["records"]);
    assert!(t.contains(&"handoff".to_string()), "{t:?}");
}

/// Feedback counts against the conversation's message limit: flipping
/// yes / no cannot grow a log (each "no" stores a record and an offer)
/// without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_feedback_is_rate_limited() {
    let app = spawn_app("[limits]\nmessages_per_minute = 5\n", |s| s).await;
    let v = app.new_visitor("Ada").await;
    let r = app.say(&v, "How much is shipping to Canada?", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let about = answer_seq(&r);
    let mut statuses = Vec::new();
    for i in 0..12 {
        let f = feedback(
            &app,
            &v,
            &v.token,
            json!({"about": about, "helpful": i % 2 == 0}),
        )
        .await;
        statuses.push(f.status);
        if f.status == 429 {
            assert_eq!(f.body["error"]["code"], "rate_limited", "{}", f.text);
            break;
        }
        assert_eq!(f.status, 200, "{}", f.text);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses.len() <= 5, "{statuses:?}");
}

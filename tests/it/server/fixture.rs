//! A store written by an earlier version (`tests/fixtures/store-v1`, made by
//! its `make_fixture.rs` at the commit named in `fixture.json`) opens,
//! shows every conversation as it was stored, and carries on: stored data
//! keeps working across changes of the code.

use serde_json::{json, Value};

use super::*;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

fn types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("events")
        .iter()
        .map(|r| r["event"]["type"].as_str().expect("type").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_the_first_format_loads_shows_and_continues() {
    if sled_only("the fixture is a sled directory of the first format") {
        return;
    }
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir().join("fixture.json")).expect("fixture.json"),
    )
    .expect("fixture JSON");
    let s = setup("", None);
    // Never opened in place: opening writes to a store.
    copy_dir(
        &fixture_dir().join("data"),
        &s.config.parent().expect("dir").join("data"),
    );
    let admin = fixture["admin_token"].as_str().expect("admin").to_string();
    let srv = Server::start_with(&s, Some(admin.clone()));
    let ana = fixture["agents"]["ana"].as_str().unwrap();
    let bo = fixture["agents"]["bo"].as_str().unwrap();
    let conv = |role: &str| -> (String, String, Vec<String>) {
        let c = fixture["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["role"] == role)
            .unwrap_or_else(|| panic!("no {role} in the fixture"));
        let events = c["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect();
        (
            c["id"].as_str().unwrap().to_string(),
            c["token"].as_str().unwrap().to_string(),
            events,
        )
    };

    // Every conversation reads back whole, through the agent's view and
    // the visitor's, with every kind of event there is.
    let mut kinds = std::collections::BTreeSet::new();
    for c in fixture["conversations"].as_array().unwrap() {
        let (id, token, stored) = conv(c["role"].as_str().unwrap());
        let t = call(
            "GET",
            &srv.url(&format!("/api/v1/agent/conversations/{id}")),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(t.status, 200, "{}", t.text);
        assert_eq!(types(&t.body["events"]), stored, "{id}");
        kinds.extend(stored.iter().cloned());
        let v = call(
            "GET",
            &srv.url(&format!("/api/v1/conversations/{id}/events?after=0")),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(v.status, 200, "{}", v.text);
        assert_eq!(v.body["last_seq"].as_u64(), Some(stored.len() as u64));
    }
    assert_eq!(
        kinds.len(),
        17,
        "the fixture has every event kind of store v1 (`feedback` came after it): {kinds:?}"
    );

    // The queue and who holds what come back as they were.
    let q = call("GET", &srv.url("/api/v1/agent/queue"), Some(ana), None).await;
    assert_eq!(q.status, 200, "{}", q.text);
    let (upset, upset_token, _) = conv("queued_upset");
    let waiting: Vec<&str> = q.body["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["conversation"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, vec![upset.as_str()], "{}", q.text);
    let me = call("GET", &srv.url("/api/v1/agent/me"), Some(ana), None).await;
    let (held, held_token, _) = conv("held_by_ana");
    assert_eq!(me.body["active"], json!([held]), "{}", me.text);

    // And everything carries on from there.
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{held}/messages")),
        Some(ana),
        Some(json!({"text": "Still here, Grace."})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/conversations/{held}/messages")),
        Some(&held_token),
        Some(json!({"text": "thank you!", "client_id": "after-upgrade-1"})),
    )
    .await;
    assert_eq!(
        types(&r.body["records"]),
        vec!["visitor_message"],
        "{}",
        r.text
    );
    // After a restart everyone is away until they say otherwise.
    let p = call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(bo),
        Some(json!({"presence": "online"})),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{upset}/claim")),
        Some(bo),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(types(&r.body["records"]), vec!["agent_joined"]);
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{upset}/close")),
        Some(bo),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/conversations/{upset}/rating")),
        Some(&upset_token),
        Some(json!({"score": 4})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A bot conversation stopped at a slot prompt takes the slot's value.
    let (slot, slot_token, stored) = conv("clarified_then_slot");
    assert_eq!(stored.last().map(String::as_str), Some("slot_prompt"));
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/conversations/{slot}/messages")),
        Some(&slot_token),
        Some(json!({"text": "it's 654321", "client_id": "after-upgrade-2"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reply = &r.body["records"][1]["event"];
    assert_eq!(reply["intent"], "order_status", "{}", r.text);
    assert!(
        reply["text"].as_str().unwrap().contains("654321"),
        "{}",
        r.text
    );
    // A retry of a message stored by the old version is still a retry.
    let (every, every_token, _) = conv("every_kind");
    let r = call(
        "POST",
        &srv.url(&format!("/api/v1/conversations/{every}/messages")),
        Some(&every_token),
        Some(json!({"text": "refund", "client_id": "m4"})),
    )
    .await;
    assert_eq!(r.body["duplicate"], true, "{}", r.text);
    assert_eq!(
        types(&r.body["records"]),
        vec!["visitor_message", "bot_reply"]
    );
}

//! Identity verification (README, "Identity verification"): the shop's
//! HMAC of a visitor id, checked by the real server over real HTTP; what
//! `[identity] enforce` refuses; what agents, exports and webhooks see;
//! and that the secret shows up nowhere.

use serde_json::{json, Value};

use super::*;

const SECRET: &str = "shop-identity-secret-0123456789";

/// What the shop's server computes: hex HMAC-SHA256 of the id.
fn hash(id: &str) -> String {
    frontdesk::app::auth::sign(SECRET.as_bytes(), id.as_bytes())
}

fn config(enforce: bool) -> String {
    format!("[identity]\nsecret = \"{SECRET}\"\nenforce = {enforce}\n")
}

async fn start(app: &impl Reach, body: Value) -> Res {
    call("POST", &app.url("/api/v1/conversations"), None, Some(body)).await
}

async fn identify(app: &impl Reach, v: &Visitor, body: Value) -> Res {
    call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/identity", v.id)),
        Some(&v.token),
        Some(body),
    )
    .await
}

fn visitor_of(created: &Res) -> Visitor {
    Visitor {
        id: created.body["id"].as_str().unwrap().to_string(),
        token: created.body["token"].as_str().unwrap().to_string(),
    }
}

/// The visitor as the agent's summary shows it.
async fn agent_view(app: &impl Reach, agent: &str, v: &Visitor) -> Value {
    let t = call(
        "GET",
        &app.url(&format!("/api/v1/agent/conversations/{}", v.id)),
        Some(agent),
        None,
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    t.body
}

async fn log_len(app: &impl Reach, v: &Visitor) -> usize {
    let r = call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["events"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_hash_is_verified_and_agents_see_it() {
    let app = spawn_app(&config(false), |s| s).await;
    let agent = app.online_agent("alex").await;
    let r = start(
        &app,
        json!({"visitor_id": "cust-42", "name": "Ada", "email": "ada@example.com",
               "identity_hash": hash("cust-42")}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let started = &r.body["events"][0]["event"];
    assert_eq!(started["type"], "started");
    assert_eq!(started["visitor"]["id"], "cust-42");
    assert_eq!(started["visitor"]["verified"], true, "{}", r.text);
    // The hash is not stored, so it is in no view.
    assert!(!r.text.contains(&hash("cust-42")), "{}", r.text);
    let v = visitor_of(&r);
    let t = agent_view(&app, &agent, &v).await;
    assert_eq!(t["summary"]["visitor"]["verified"], true, "{t}");
    assert_eq!(t["summary"]["visitor"]["id"], "cust-42");
    // Upper-case hex is the same hash.
    let r = start(
        &app,
        json!({"visitor_id": "cust-43", "identity_hash": hash("cust-43").to_uppercase()}),
    )
    .await;
    assert_eq!(
        r.body["events"][0]["event"]["visitor"]["verified"], true,
        "{}",
        r.text
    );
    // The pre-chat form's name and email alone: nothing to prove, so
    // nothing verified (and never refused).
    let r = start(&app, json!({"name": "Bo", "email": "bo@example.com"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body["events"][0]["event"]["visitor"]["verified"].as_bool(),
        None,
        "false is left out"
    );
    // A hash without an id proves nothing: said so.
    let r = start(&app, json!({"identity_hash": hash("cust-42")})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "identity_without_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_enforce_a_missing_forged_or_borrowed_hash_is_refused_and_nothing_stored() {
    let app = spawn_app(&config(true), |s| s).await;
    let agent = app.online_agent("alex").await;
    // What is stored under the id the refused starts claimed.
    let stored_for = |id: &'static str| {
        let url = app.url(&format!("/api/v1/admin/visitors/export?visitor_id={id}"));
        let admin = app.admin.clone();
        async move {
            let r = call("GET", &url, Some(&admin), None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["conversations"].as_array().unwrap().len()
        }
    };
    let forged = "0".repeat(64);
    for (body, status) in [
        (json!({"visitor_id": "cust-42", "name": "Mallory"}), 401),
        (
            json!({"visitor_id": "cust-42", "identity_hash": forged}),
            403,
        ),
        // A real hash, of another id (the attacker's own account).
        (
            json!({"visitor_id": "cust-42", "identity_hash": hash("cust-666")}),
            403,
        ),
        (
            json!({"visitor_id": "cust-42", "identity_hash": "not hex"}),
            403,
        ),
    ] {
        let r = start(&app, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "identity_unverified", "{}", r.text);
    }
    assert_eq!(
        stored_for("cust-42").await,
        0,
        "a refused start stores nothing"
    );
    // Anonymous visitors still chat; a proven id is verified.
    let anon = start(&app, json!({"name": "Bo"})).await;
    assert_eq!(anon.status, 201, "{}", anon.text);
    let anon = visitor_of(&anon);
    let ok = start(
        &app,
        json!({"visitor_id": "cust-42", "identity_hash": hash("cust-42")}),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.body["events"][0]["event"]["visitor"]["verified"], true);
    assert_eq!(stored_for("cust-42").await, 1);
    // Identified later: the same refusals, and the log keeps its length.
    let before = log_len(&app, &anon).await;
    let r = identify(&app, &anon, json!({"visitor_id": "cust-42"})).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (401, json!("identity_unverified")),
        "{}",
        r.text
    );
    let r = identify(
        &app,
        &anon,
        json!({"visitor_id": "cust-42", "identity_hash": hash("cust-666")}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (403, json!("identity_unverified")),
        "{}",
        r.text
    );
    assert_eq!(log_len(&app, &anon).await, before);
    let t = agent_view(&app, &agent, &anon).await;
    assert_eq!(t["summary"]["visitor"]["id"], Value::Null, "{t}");
    // With the right hash it is stored, verified.
    let r = identify(
        &app,
        &anon,
        json!({"visitor_id": "cust-42", "name": "Ada", "identity_hash": hash("cust-42")}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["records"][0]["event"]["type"], "identified");
    assert_eq!(r.body["records"][0]["event"]["verified"], true);
    let t = agent_view(&app, &agent, &anon).await;
    assert_eq!(t["summary"]["visitor"]["verified"], true, "{t}");
    assert_eq!(t["summary"]["visitor"]["name"], "Ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_enforce_a_forged_hash_is_kept_as_claimed_and_never_replaces_a_verified_one() {
    let app = spawn_app(&config(false), |s| s).await;
    let agent = app.online_agent("alex").await;
    for body in [
        json!({"visitor_id": "cust-42", "identity_hash": "f".repeat(64)}),
        json!({"visitor_id": "cust-42", "identity_hash": hash("cust-666")}),
        json!({"visitor_id": "cust-42"}),
    ] {
        let r = start(&app, body.clone()).await;
        assert_eq!(r.status, 201, "{body}: {}", r.text);
        let visitor = &r.body["events"][0]["event"]["visitor"];
        assert_eq!(visitor["id"], "cust-42", "{body}");
        // A claimed id: `verified` is left out (false), as stored.
        assert_eq!(
            visitor["verified"].as_bool(),
            None,
            "{body}: claimed, never verified"
        );
        let t = agent_view(&app, &agent, &visitor_of(&r)).await;
        assert_eq!(t["summary"]["visitor"]["verified"].as_bool(), None, "{t}");
    }
    // A claim, later proven: verified from then on.
    let r = start(&app, json!({"visitor_id": "cust-7"})).await;
    let v = visitor_of(&r);
    let r = identify(
        &app,
        &v,
        json!({"visitor_id": "cust-7", "identity_hash": "ab"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["records"].as_array().unwrap().len(),
        0,
        "the same claim again stores nothing"
    );
    let r = identify(
        &app,
        &v,
        json!({"visitor_id": "cust-42", "identity_hash": hash("cust-42")}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["records"][0]["event"]["verified"], true,
        "{}",
        r.text
    );
    let len = log_len(&app, &v).await;
    // Neither a claim nor another proven id replaces it; the same proof
    // again (the next page) stores nothing.
    let r = identify(&app, &v, json!({"visitor_id": "cust-666"})).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (409, json!("identity_already_verified")),
        "{}",
        r.text
    );
    let r = identify(
        &app,
        &v,
        json!({"visitor_id": "cust-42", "identity_hash": "0".repeat(64)}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (409, json!("identity_already_verified")),
        "{}",
        r.text
    );
    let r = identify(
        &app,
        &v,
        json!({"visitor_id": "cust-666", "identity_hash": hash("cust-666")}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (409, json!("identity_conflict")),
        "{}",
        r.text
    );
    let r = identify(
        &app,
        &v,
        json!({"visitor_id": "cust-42", "identity_hash": hash("cust-42")}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["records"].as_array().unwrap().len()),
        (200, 0),
        "{}",
        r.text
    );
    assert_eq!(log_len(&app, &v).await, len);
    let t = agent_view(&app, &agent, &v).await;
    assert_eq!(t["summary"]["visitor"]["id"], "cust-42");
    assert_eq!(t["summary"]["visitor"]["verified"], true);
    // Another conversation's token cannot identify this one.
    let other = app.new_visitor("Eve").await;
    let stolen = Visitor {
        id: v.id.clone(),
        token: other.token,
    };
    let r = identify(
        &app,
        &stolen,
        json!({"visitor_id": "cust-42", "identity_hash": hash("cust-42")}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    // The admin's export finds the conversation by the id given later.
    let r = call(
        "GET",
        &app.url("/api/v1/admin/visitors/export?visitor_id=cust-42"),
        Some(&app.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&v.id.as_str()), "{ids:?}");
}

#[test]
fn the_secret_is_checked_and_may_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frontdesk.toml");
    let load = |toml: &str, env: Vec<(String, String)>| {
        std::fs::write(&path, toml).unwrap();
        frontdesk::config::Config::load(Some(&path), env)
    };
    let e = load("[identity]\nsecret = \"short\"\n", vec![])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[identity] secret must be at least 16 characters"),
        "{e}"
    );
    assert!(
        !e.contains("short\""),
        "the error does not repeat the secret: {e}"
    );
    let e = load("[identity]\nenforce = true\n", vec![])
        .unwrap_err()
        .to_string();
    assert!(e.contains("enforce = true needs a secret"), "{e}");
    let c = load(
        "[identity]\nenforce = true\n",
        vec![("FRONTDESK_IDENTITY__SECRET".into(), SECRET.into())],
    )
    .unwrap();
    assert!(c.identity.enforce);
    assert_eq!(
        c.identity.secret.as_ref().map(|s| s.0.as_str()),
        Some(SECRET)
    );
    assert!(!format!("{c:?}").contains(SECRET), "Debug hides the secret");
}

/// A loopback webhook receiver: keeps each request's body, answers 200.
async fn receiver(
    listener: tokio::net::TcpListener,
    got: tokio::sync::mpsc::UnboundedSender<String>,
) {
    while let Ok((mut c, _)) = listener.accept().await {
        let got = got.clone();
        tokio::spawn(async move {
            if let Some((_, body)) = read_request(&mut c).await {
                let _ = got.send(String::from_utf8_lossy(&body).to_string());
                answer_ok(&mut c).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_and_hashes_appear_in_no_log_view_or_webhook() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut got) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(receiver(listener, tx));
    let s = setup(
        &format!(
            "{}[[webhooks]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"webhook-secret-0123456789\"\n",
            config(false)
        ),
        None,
    );
    // Everything the server logs, down to debug.
    let srv = Server::start_with_log(&s, "debug");
    let agent = srv.new_agent("alex").await;
    let p = call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&agent),
        Some(json!({"presence": "online"})),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let mut seen = Vec::new();
    let r = start(
        &srv,
        json!({"visitor_id": "cust-42", "name": "Ada", "identity_hash": hash("cust-42")}),
    )
    .await;
    seen.push(r.text.clone());
    let v = visitor_of(&r);
    let forged = start(
        &srv,
        json!({"visitor_id": "cust-9", "identity_hash": hash("cust-666")}),
    )
    .await;
    seen.push(forged.text.clone());
    let late = identify(
        &srv,
        &visitor_of(&forged),
        json!({"visitor_id": "cust-9", "identity_hash": hash("cust-9")}),
    )
    .await;
    seen.push(late.text.clone());
    seen.push(srv.say(&v, "I need a human", "1").await.text);
    let claim = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{}/claim", v.id)),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(claim.status, 200, "{}", claim.text);
    let close = call(
        "POST",
        &srv.url(&format!("/api/v1/agent/conversations/{}/close", v.id)),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(close.status, 200, "{}", close.text);
    for path in [
        format!("/api/v1/agent/conversations/{}", v.id),
        "/api/v1/agent/inbox".to_string(),
        "/api/v1/agent/queue".to_string(),
    ] {
        seen.push(call("GET", &srv.url(&path), Some(&agent), None).await.text);
    }
    for path in [
        "/api/v1/admin/visitors/export?visitor_id=cust-42",
        "/api/v1/admin/visitors/export?visitor_id=cust-9",
        "/api/v1/openapi.json",
        "/metrics",
    ] {
        seen.push(
            call("GET", &srv.url(path), Some(&srv.admin), None)
                .await
                .text,
        );
    }
    seen.push(
        call(
            "GET",
            &srv.url(&format!("/api/v1/conversations/{}/events", v.id)),
            Some(&v.token),
            None,
        )
        .await
        .text,
    );
    // Both webhooks (handoff, closed) arrive.
    let mut hooks = Vec::new();
    for _ in 0..2 {
        let body = tokio::time::timeout(PATIENCE, got.recv()).await;
        hooks.push(body.expect("a webhook in time").expect("the receiver runs"));
    }
    let packet: Value = serde_json::from_str(&hooks[0]).unwrap();
    assert_eq!(
        packet["conversation"]["visitor"]["verified"], true,
        "{packet}"
    );
    assert_eq!(packet["summary"]["visitor"]["id"], "cust-42", "{packet}");
    seen.extend(hooks);
    let log = srv.stop();
    assert!(
        log.contains("did not verify"),
        "the forged hash is logged as such: {log}"
    );
    seen.push(log);
    for text in &seen {
        for secret in [
            SECRET.to_string(),
            hash("cust-42"),
            hash("cust-666"),
            hash("cust-9"),
        ] {
            assert!(!text.contains(&secret), "{secret} leaked in: {text}");
        }
    }
}

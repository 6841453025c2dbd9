//! A visitor's data through the admin API: exported whole and nobody
//! else's, one conversation deleted, all of a visitor's deleted, open ones
//! refused, admins only; `/metrics` names no visitor.

use serde_json::{json, Value};

use super::*;

async fn start(app: &TestApp, body: Value) -> Visitor {
    let r = call("POST", &app.url("/api/v1/conversations"), None, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    Visitor {
        id: r.body["id"].as_str().unwrap().to_string(),
        token: r.body["token"].as_str().unwrap().to_string(),
    }
}

async fn admin(app: &TestApp, method: &str, path: &str) -> Res {
    call(method, &app.url(path), Some(&app.admin), None).await
}

async fn log(app: &TestApp, v: &Visitor) -> Res {
    call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await
}

/// Every visitor message text in an export, by conversation id.
fn texts(export: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in export["conversations"].as_array().unwrap() {
        for r in c["events"].as_array().unwrap() {
            if r["event"]["type"] == "visitor_message" {
                out.push((
                    c["id"].as_str().unwrap().to_string(),
                    r["event"]["text"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn ids(export: &Value) -> Vec<String> {
    let mut v: Vec<String> = export["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitors_data_is_exported_and_deleted_and_nobody_elses() {
    let app = spawn_app("", |s| s).await;
    let alex = app.online_agent("alex").await;

    // Ada: logged in on one visit; anonymous on another, where she leaves
    // her email (in other capitals).
    let ada1 = start(
        &app,
        json!({"name": "Ada", "visitor_id": "u-1", "email": "ada@example.com"}),
    )
    .await;
    let ada2 = start(&app, json!({"name": "A."})).await;
    // Bob: another visitor, who mentions Ada's address in a message.
    let bob = start(
        &app,
        json!({"name": "Bob", "visitor_id": "u-2", "email": "bob@example.com"}),
    )
    .await;
    for (v, text, cid) in [
        (&ada1, "How much is shipping?", "a1"),
        (&ada1, "And returns?", "a2"),
        (&ada2, "Where is my order?", "a3"),
        (&bob, "My wife ada@example.com asked about shipping", "b1"),
        (&bob, "u-1 is her account", "b2"),
    ] {
        let r = app.say(v, text, cid).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/email", ada2.id)),
        Some(&ada2.token),
        Some(json!({"email": "Ada@Example.COM"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // An agent note about Ada is stored about her too.
    let url = |v: &Visitor, p: &str| app.url(&format!("/api/v1/agent/conversations/{}/{p}", v.id));
    assert_eq!(
        call("POST", &url(&ada1, "claim"), Some(&alex), None)
            .await
            .status,
        200
    );
    let n = call(
        "POST",
        &url(&ada1, "notes"),
        Some(&alex),
        Some(json!({"text": "VIP"})),
    )
    .await;
    assert_eq!(n.status, 200, "{}", n.text);
    assert_eq!(
        call("POST", &url(&ada1, "close"), Some(&alex), None)
            .await
            .status,
        200
    );

    // By email: both of Ada's conversations, every message, with the note;
    // none of Bob's, though his messages name her.
    let e = admin(
        &app,
        "GET",
        "/api/v1/admin/visitors/export?email=ADA%40example.com",
    )
    .await;
    assert_eq!(e.status, 200, "{}", e.text);
    let mut want = vec![ada1.id.clone(), ada2.id.clone()];
    want.sort();
    assert_eq!(ids(&e.body), want);
    let mut msgs = vec![
        (ada1.id.clone(), "How much is shipping?".to_string()),
        (ada1.id.clone(), "And returns?".to_string()),
        (ada2.id.clone(), "Where is my order?".to_string()),
    ];
    msgs.sort();
    assert_eq!(texts(&e.body), msgs);
    assert!(e.text.contains("\"VIP\""), "the whole log: {}", e.text);
    assert!(
        !e.text.contains("My wife") && !e.text.contains(&bob.id),
        "{}",
        e.text
    );
    // Each conversation's export is its full log, as an agent reads it.
    for c in e.body["conversations"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let t = call(
            "GET",
            &app.url(&format!("/api/v1/agent/conversations/{id}")),
            Some(&alex),
            None,
        )
        .await;
        assert_eq!(c["events"], t.body["events"], "{id}");
    }
    // By visitor id: only the visit where she was logged in.
    let e = admin(&app, "GET", "/api/v1/admin/visitors/export?visitor_id=u-1").await;
    assert_eq!(ids(&e.body), vec![ada1.id.clone()]);
    assert_eq!(e.body["conversations"][0]["phase"], "closed");
    // Nobody by that id: an empty export.
    let e = admin(&app, "GET", "/api/v1/admin/visitors/export?visitor_id=u-9").await;
    assert_eq!((e.status, ids(&e.body).len()), (200, 0), "{}", e.text);

    // Exactly one of the two keys.
    for q in ["", "?visitor_id=u-1&email=ada%40example.com", "?email=%20"] {
        let r = admin(&app, "GET", &format!("/api/v1/admin/visitors/export{q}")).await;
        assert_eq!(r.status, 422, "{q}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "bad_visitor", "{}", r.text);
        let r = admin(&app, "DELETE", &format!("/api/v1/admin/visitors{q}")).await;
        assert_eq!(r.status, 422, "{q}: {}", r.text);
    }

    // Admins only: no token, a visitor's, an agent's.
    let paths = [
        (
            "GET",
            "/api/v1/admin/visitors/export?visitor_id=u-1".to_string(),
        ),
        ("DELETE", format!("/api/v1/admin/conversations/{}", ada1.id)),
        (
            "DELETE",
            "/api/v1/admin/visitors?visitor_id=u-1".to_string(),
        ),
    ];
    for (method, path) in &paths {
        let r = call(method, &app.url(path), None, None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        let r = call(method, &app.url(path), Some(&ada1.token), None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        let r = call(method, &app.url(path), Some(&alex), None).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
    }
    assert_eq!(log(&app, &ada1).await.status, 200, "nothing was deleted");

    let bob_before = log(&app, &bob).await.body["events"].clone();

    // Delete one conversation: it is gone, the other of hers is not.
    let d = admin(
        &app,
        "DELETE",
        &format!("/api/v1/admin/conversations/{}", ada1.id),
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.body["conversations"], json!([ada1.id]));
    assert_eq!(log(&app, &ada1).await.status, 404);
    let d = admin(
        &app,
        "DELETE",
        &format!("/api/v1/admin/conversations/{}", ada1.id),
    )
    .await;
    assert_eq!(d.status, 404, "{}", d.text);
    let e = admin(
        &app,
        "GET",
        "/api/v1/admin/visitors/export?email=ada%40example.com",
    )
    .await;
    assert_eq!(ids(&e.body), vec![ada2.id.clone()]);

    // An open conversation is refused, and stays as it was.
    let cy = start(&app, json!({"name": "Cy", "email": "ada@example.com"})).await;
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", cy.id)),
        Some(&cy.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = admin(
        &app,
        "DELETE",
        &format!("/api/v1/admin/conversations/{}", cy.id),
    )
    .await;
    assert_eq!(d.status, 409, "{}", d.text);
    assert_eq!(d.body["error"]["code"], "conversation_open");
    // So is the visitor's deletion while one of theirs is open: nothing goes.
    let d = admin(
        &app,
        "DELETE",
        "/api/v1/admin/visitors?email=ada%40example.com",
    )
    .await;
    assert_eq!(d.status, 409, "{}", d.text);
    assert_eq!(log(&app, &ada2).await.status, 200);
    let q = call("GET", &app.url("/api/v1/agent/queue"), Some(&alex), None).await;
    assert!(q.text.contains(&cy.id), "still queued: {}", q.text);
    // Closed by an agent, it can go; the whole visitor does.
    assert_eq!(
        call("POST", &url(&cy, "close"), Some(&alex), None)
            .await
            .status,
        200
    );
    let d = admin(
        &app,
        "DELETE",
        "/api/v1/admin/visitors?email=ada%40example.com",
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let mut got: Vec<String> = serde_json::from_value(d.body["conversations"].clone()).unwrap();
    got.sort();
    let mut want = vec![ada2.id.clone(), cy.id.clone()];
    want.sort();
    assert_eq!(got, want);
    for v in [&ada2, &cy] {
        assert_eq!(log(&app, v).await.status, 404);
    }
    let e = admin(
        &app,
        "GET",
        "/api/v1/admin/visitors/export?email=ada%40example.com",
    )
    .await;
    assert_eq!(ids(&e.body).len(), 0, "{}", e.text);

    // Bob is untouched.
    let b = log(&app, &bob).await;
    assert_eq!(b.status, 200);
    assert_eq!(b.body["events"], bob_before);
    let e = admin(&app, "GET", "/api/v1/admin/visitors/export?visitor_id=u-2").await;
    assert_eq!(ids(&e.body), vec![bob.id.clone()]);

    // /metrics is aggregate: no visitor, email or conversation in it.
    let m = call("GET", &app.url("/metrics"), Some(&app.admin), None).await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert!(m.text.contains("frontdesk_"), "{}", m.text);
    for private in ["u-1", "u-2", "example.com", &bob.id, &ada2.id, "Ada", "Bob"] {
        assert!(!m.text.contains(private), "{private} in /metrics");
    }
}

/// The cost of finding a visitor without an index: 10,000 conversations of
/// 12 records each, one of them the visitor's; an export scans them all.
/// `cargo test --test it server::privacy::scan_cost -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, about a minute"]
async fn scan_cost_at_10k_conversations() {
    use frontdesk::conversation::{Event, Visitor as Who};
    let app = spawn_app("", |s| s).await;
    let store = app.app.store().clone();
    let t = std::time::Instant::now();
    std::thread::scope(|s| {
        for part in 0..8 {
            let store = store.clone();
            s.spawn(move || {
                for n in (part..10_000).step_by(8) {
                    let id = format!("scan{n:05}");
                    let who = Who {
                        id: Some(format!("v{n}")),
                        ..Who::default()
                    };
                    store.create(&id, 1, who).unwrap();
                    let events = (0..11)
                        .map(|i| Event::VisitorMessage {
                            text: format!(
                                "message {i} of a conversation about shipping and returns"
                            ),
                            client_id: format!("c{i}"),
                        })
                        .collect();
                    store.append(&id, 2, events).unwrap();
                }
            });
        }
    });
    println!("seeded 10,000 conversations in {:?}", t.elapsed());
    for round in 0..3 {
        let t = std::time::Instant::now();
        let e = admin(
            &app,
            "GET",
            "/api/v1/admin/visitors/export?visitor_id=v4242",
        )
        .await;
        let took = t.elapsed();
        assert_eq!(ids(&e.body), vec!["scan04242".to_string()]);
        println!("export by visitor id over 10,000 conversations, run {round}: {took:?}");
    }
}

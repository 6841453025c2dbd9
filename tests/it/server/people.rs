//! Issue 18, items 2 and 3: assignment and presence that follow reality,
//! and agents as people (display names, transfers that say where a chat
//! went, the admins' management of agents). Real server, real sockets;
//! the away timer runs on a manual clock.

use serde_json::json;

use super::*;
use frontdesk::util::clock::Clock;

const AUTO: &str = "[assignment]\nauto_assign = true\n";

/// The visitor's view of their conversation (as the widget reads it).
async fn seen(app: &TestApp, v: &Visitor) -> Value {
    let r = call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Who joined the visitor's conversation last (as the visitor sees it).
async fn joined(app: &TestApp, v: &Visitor) -> Option<String> {
    seen(app, v).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["event"]["type"] == "agent_joined")
        .map(|r| r["event"]["agent"].as_str().unwrap().to_string())
}

async fn ask_for_person(app: &TestApp, v: &Visitor) {
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn presence(app: &TestApp, token: &str, presence: &str, capacity: u32) {
    let r = call(
        "PUT",
        &app.url("/api/v1/agent/presence"),
        Some(token),
        Some(json!({"presence": presence, "capacity": capacity})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn agent_act(app: &TestApp, token: &str, id: &str, what: &str, body: Option<Value>) -> Res {
    call(
        "POST",
        &app.url(&format!("/api/v1/agent/conversations/{id}/{what}")),
        Some(token),
        body,
    )
    .await
}

async fn new_agent(app: &TestApp, name: &str, admin: bool) -> String {
    let r = call(
        "POST",
        &app.url("/api/v1/admin/agents"),
        Some(&app.admin),
        Some(json!({"name": name, "admin": admin})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_assignment_gives_a_waiting_visitor_to_the_only_online_agent() {
    let app = spawn_app(AUTO, |s| s).await;
    let alex = app.online_agent("alex").await;
    let v = app.new_visitor("Ada").await;
    ask_for_person(&app, &v).await;
    assert_eq!(joined(&app, &v).await.as_deref(), Some("alex"));
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&alex), None).await;
    assert_eq!(me.body["active"], json!([v.id]));
    // Nobody waits now.
    let q = call("GET", &app.url("/api/v1/agent/queue"), Some(&alex), None).await;
    assert_eq!(q.body["waiting"], json!([]), "{}", q.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_assignment_puts_upset_visitors_first_respects_capacity_and_prefers_the_least_busy() {
    let app = spawn_app(AUTO, |s| s).await;
    let alex = new_agent(&app, "alex", false).await;
    let sam = new_agent(&app, "sam", false).await;
    let calm = app.new_visitor("Calm").await;
    ask_for_person(&app, &calm).await;
    let upset = app.new_visitor("Upset").await;
    let r = app
        .say(
            &upset,
            "absolutely unacceptable, I am furious about this order",
            "u1",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(seen(&app, &upset).await["phase"], "queued");
    assert_eq!(
        joined(&app, &calm).await,
        None,
        "nobody online: nobody assigned"
    );

    // Room for one: the upset visitor goes first; the other keeps waiting.
    presence(&app, &alex, "online", 1).await;
    assert_eq!(joined(&app, &upset).await.as_deref(), Some("alex"));
    assert_eq!(joined(&app, &calm).await, None, "capacity is respected");
    assert_eq!(seen(&app, &calm).await["position"], 1);

    // A close frees the slot: the waiting visitor is given at once.
    let r = agent_act(&app, &alex, &upset.id, "close", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(joined(&app, &calm).await.as_deref(), Some("alex"));

    // Least busy first: sam (holding none) before alex (holding one),
    // though alex has more free slots.
    presence(&app, &alex, "online", 5).await;
    presence(&app, &sam, "online", 2).await;
    let c = app.new_visitor("C").await;
    ask_for_person(&app, &c).await;
    assert_eq!(joined(&app, &c).await.as_deref(), Some("sam"));
    // Both hold one: the one with more room.
    let d = app.new_visitor("D").await;
    ask_for_person(&app, &d).await;
    assert_eq!(joined(&app, &d).await.as_deref(), Some("alex"));
    // Alex holds two, sam one: sam, though alex has three free slots.
    let e = app.new_visitor("E").await;
    ask_for_person(&app, &e).await;
    assert_eq!(joined(&app, &e).await.as_deref(), Some("sam"));
    // Sam is full (2 of 2): alex.
    let f = app.new_visitor("F").await;
    ask_for_person(&app, &f).await;
    assert_eq!(joined(&app, &f).await.as_deref(), Some("alex"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_visitors_wait_for_a_claim() {
    let app = spawn_app("", |s| s).await;
    let alex = app.online_agent("alex").await;
    let v = app.new_visitor("Ada").await;
    ask_for_person(&app, &v).await;
    let view = seen(&app, &v).await;
    assert_eq!(view["phase"], "queued");
    assert_eq!(view["position"], 1);
    assert_eq!(joined(&app, &v).await, None);
    let r = agent_act(&app, &alex, &v.id, "claim", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Issue 18: an agent whose tab closed stayed "online", and visitors were
/// promised a wait of about a minute while nobody was there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_console_makes_the_agent_away_after_the_configured_time() {
    const T0: i64 = 1_795_428_000_000;
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked("[assignment]\naway_after_secs = 60\n", |s| s, clock.clone()).await;
    let alex = new_agent(&app, "alex", false).await;
    let console_url = app.ws_url(&format!("/api/v1/agent/ws?token={alex}"));
    let mut console = ws(&console_url).await;
    assert_eq!(next_json(&mut console).await["kind"], "queue");
    presence(&app, &alex, "online", 1).await;
    // Alex is busy with one visitor; the next one waits with an estimate.
    let busy = app.new_visitor("Busy").await;
    ask_for_person(&app, &busy).await;
    assert_eq!(
        agent_act(&app, &alex, &busy.id, "claim", None).await.status,
        200
    );
    let v = app.new_visitor("Ada").await;
    ask_for_person(&app, &v).await;
    let mut widget = ws(&app.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    )))
    .await;
    let (q, _) = until_event(&mut widget, "queued").await;
    assert_eq!(q["record"]["event"]["wait_secs"], 300, "{q}");

    // The console tab closes; within the timer alex is still online.
    console.close(None).await.expect("close");
    drop(console);
    let t = tokio::time::Instant::now();
    while app.app.consoles_open("alex") > 0 {
        assert!(t.elapsed() < PATIENCE, "the server saw the socket close");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    clock.advance(59_000);
    app.off(|a| a.sweep_presence());
    let list = call("GET", &app.url("/api/v1/agent/agents"), Some(&alex), None).await;
    assert_eq!(list.body[1]["name"], "alex", "{}", list.text);
    assert_eq!(list.body[1]["presence"], "online");

    // Past it: away (the server's own sweep), and the waiting visitor is
    // told that nobody is there instead of a wait.
    clock.advance(2_000);
    let (notice, before) = until_event(&mut widget, "bot_reply").await;
    let text = notice["record"]["event"]["text"].as_str().unwrap();
    assert!(text.contains("Nobody from the team"), "{text}");
    let queued: Vec<&Value> = before
        .iter()
        .filter(|m| m["record"]["event"]["type"] == "queued")
        .collect();
    assert_eq!(queued.len(), 1, "{before:?}");
    assert_eq!(queued[0]["record"]["event"]["wait_secs"], Value::Null);
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&alex), None).await;
    assert_eq!(me.body["presence"], "away", "{}", me.text);
    assert_eq!(me.body["active"], json!([busy.id]), "what alex holds stays");

    // A console connects again: online again (alex had chosen online),
    // and the visitor hears a wait again.
    let mut console = ws(&console_url).await;
    let (q, _) = until_event(&mut widget, "queued").await;
    assert_eq!(q["record"]["event"]["wait_secs"], 300, "{q}");
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&alex), None).await;
    assert_eq!(me.body["presence"], "online");
    assert_eq!(next_json(&mut console).await["kind"], "queue");

    // An agent who chose away stays away when a console connects.
    presence(&app, &alex, "away", 1).await;
    drop(console);
    let _again = ws(&console_url).await;
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&alex), None).await;
    assert_eq!(me.body["presence"], "away");
}

/// Two tabs: closing one leaves the agent there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_another_console_open_stays_online() {
    let clock = Clock::manual(1_795_428_000_000);
    let app = spawn_app_clocked("[assignment]\naway_after_secs = 60\n", |s| s, clock.clone()).await;
    let alex = new_agent(&app, "alex", false).await;
    let url = app.ws_url(&format!("/api/v1/agent/ws?token={alex}"));
    let mut one = ws(&url).await;
    let mut two = ws(&url).await;
    for c in [&mut one, &mut two] {
        assert_eq!(next_json(c).await["kind"], "queue");
    }
    presence(&app, &alex, "online", 1).await;
    assert_eq!(app.app.consoles_open("alex"), 2);
    one.close(None).await.expect("close");
    drop(one);
    let t = tokio::time::Instant::now();
    while app.app.consoles_open("alex") > 1 {
        assert!(t.elapsed() < PATIENCE, "the server saw the socket close");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    clock.advance(600_000);
    app.off(|a| a.sweep_presence());
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&alex), None).await;
    assert_eq!(me.body["presence"], "online", "{}", me.text);
    // The last one closes: away after the time.
    two.close(None).await.expect("close");
    drop(two);
    while app.app.consoles_open("alex") > 0 {
        assert!(t.elapsed() < PATIENCE, "the server saw the socket close");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    clock.advance(60_000);
    app.off(|a| a.sweep_presence());
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&alex), None).await;
    assert_eq!(me.body["presence"], "away", "{}", me.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_see_the_display_name_not_the_login_name() {
    let app = spawn_app("", |s| s).await;
    let admin = app.admin.clone();
    let r = call(
        "PATCH",
        &app.url("/api/v1/admin/agents/admin"),
        Some(&admin),
        Some(json!({"display_name": "  Zoë   Müller-Ünal 李  "})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["display_name"], "Zoë Müller-Ünal 李");
    presence(&app, &admin, "online", 3).await;
    let v = app.new_visitor("Ada").await;
    ask_for_person(&app, &v).await;
    let mut widget = ws(&app.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    )))
    .await;
    assert_eq!(
        agent_act(&app, &admin, &v.id, "claim", None).await.status,
        200
    );
    let (j, _) = until_event(&mut widget, "agent_joined").await;
    assert_eq!(j["record"]["event"]["agent"], "Zoë Müller-Ünal 李");
    let r = agent_act(
        &app,
        &admin,
        &v.id,
        "messages",
        Some(json!({"text": "Hello!"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (m, _) = until_event(&mut widget, "agent_message").await;
    assert_eq!(m["record"]["event"]["agent"], "Zoë Müller-Ünal 李");
    // The transcript the visitor reads says so too, never `admin`.
    let view = seen(&app, &v).await;
    assert!(!view.to_string().contains("\"admin\""), "{view}");
    // Agents still see the login name in the log.
    let t = call(
        "GET",
        &app.url(&format!("/api/v1/agent/conversations/{}", v.id)),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(t.body["agent"], "admin", "{}", t.text);
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&admin), None).await;
    assert_eq!(me.body["display_name"], "Zoë Müller-Ünal 李");

    // Too long, or with control characters: refused with a code.
    for bad in [
        "x".repeat(65),
        "tab\u{0007}bell".to_string(),
        "a\u{202e}b".to_string(),
    ] {
        let r = call(
            "PATCH",
            &app.url("/api/v1/admin/agents/admin"),
            Some(&admin),
            Some(json!({"display_name": bad})),
        )
        .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (422, Some("bad_display_name")),
            "{}",
            r.text
        );
    }
}

/// Issue 18: the agent who transferred a chat away was told `the
/// conversation is with_agent, not with agent admin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_who_transferred_a_chat_away_is_told_so_clearly() {
    let app = spawn_app("", |s| s).await;
    let alex = app.online_agent("alex").await;
    let sam = app.online_agent("sam").await;
    let r = call(
        "PATCH",
        &app.url("/api/v1/admin/agents/sam"),
        Some(&app.admin),
        Some(json!({"display_name": "Sam Lee"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = app.new_visitor("Ada").await;
    ask_for_person(&app, &v).await;
    assert_eq!(
        agent_act(&app, &alex, &v.id, "claim", None).await.status,
        200
    );
    // The list an agent picks from: every agent with presence.
    let list = call("GET", &app.url("/api/v1/agent/agents"), Some(&alex), None).await;
    let names: Vec<(&str, &str, &str)> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["display_name"].as_str().unwrap(),
                a["presence"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("admin", "admin", "offline"),
            ("alex", "alex", "online"),
            ("sam", "Sam Lee", "online")
        ]
    );
    let r = agent_act(&app, &alex, &v.id, "transfer", Some(json!({"to": "admin"}))).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("not_online"))
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("admin is not online"));
    let r = agent_act(&app, &alex, &v.id, "transfer", Some(json!({"to": "sam"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (what, body) in [
        ("messages", Some(json!({"text": "one more thing"}))),
        ("transfer", Some(json!({"to": "admin"}))),
        ("close", None),
    ] {
        let r = agent_act(&app, &alex, &v.id, what, body).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (409, Some("not_your_conversation")),
            "{what}: {}",
            r.text
        );
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert_eq!(
            msg,
            "you transferred this conversation to Sam Lee: it is theirs now, and only they can reply, transfer or close it"
        );
    }
    // Someone who never had it hears where it is.
    let r = agent_act(
        &app,
        &app.admin,
        &v.id,
        "messages",
        Some(json!({"text": "hi"})),
    )
    .await;
    assert_eq!(
        r.body["error"]["message"],
        "this conversation is with Sam Lee now: only they can reply, transfer or close it"
    );
    let r = agent_act(&app, &sam, &v.id, "close", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = agent_act(&app, &sam, &v.id, "messages", Some(json!({"text": "late"}))).await;
    assert_eq!(r.body["error"]["message"], "this conversation is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_agents_and_the_last_admin_stays() {
    let app = spawn_app("", |s| s).await;
    let admin = app.admin.clone();
    let url = |p: &str| app.url(&format!("/api/v1/admin/agents{p}"));
    let code = |r: &Res| (r.status, r.body["error"]["code"].as_str().map(String::from));

    // Add and list.
    let sam = new_agent(&app, "sam", false).await;
    let list = call("GET", &url(""), Some(&admin), None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let names: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "sam"]);
    // Agents may not manage agents.
    let r = call("GET", &url(""), Some(&sam), None).await;
    assert_eq!(code(&r), (403, Some("forbidden".into())));
    let r = call("DELETE", &url("/admin"), Some(&sam), None).await;
    assert_eq!(r.status, 403);

    // Rename, and an unknown agent.
    let r = call(
        "PATCH",
        &url("/sam"),
        Some(&admin),
        Some(json!({"display_name": "Sam Lee"})),
    )
    .await;
    assert_eq!(r.body["display_name"], "Sam Lee", "{}", r.text);
    let r = call(
        "PATCH",
        &url("/nobody"),
        Some(&admin),
        Some(json!({"admin": true})),
    )
    .await;
    assert_eq!(code(&r), (404, Some("not_found".into())));

    // The only admin can neither be demoted, nor disabled, nor removed.
    for (m, body) in [
        ("PATCH", Some(json!({"admin": false}))),
        ("PATCH", Some(json!({"disabled": true}))),
        ("DELETE", None),
    ] {
        let r = call(m, &url("/admin"), Some(&admin), body).await;
        assert_eq!(code(&r), (409, Some("last_admin".into())), "{}", r.text);
    }
    // Make sam an admin: now there are two, but nobody demotes, disables
    // or removes themselves.
    let r = call(
        "PATCH",
        &url("/sam"),
        Some(&admin),
        Some(json!({"admin": true})),
    )
    .await;
    assert_eq!(r.body["admin"], true, "{}", r.text);
    let r = call(
        "PATCH",
        &url("/admin"),
        Some(&admin),
        Some(json!({"admin": false})),
    )
    .await;
    assert_eq!(code(&r), (409, Some("own_account".into())));
    let r = call("DELETE", &url("/admin"), Some(&admin), None).await;
    assert_eq!(code(&r), (409, Some("own_account".into())));
    // Sam may demote admin; then sam is the last admin.
    let r = call(
        "PATCH",
        &url("/admin"),
        Some(&sam),
        Some(json!({"admin": false})),
    )
    .await;
    assert_eq!(r.body["admin"], false, "{}", r.text);
    let r = call("GET", &url(""), Some(&admin), None).await;
    assert_eq!(r.status, 403, "admin is an agent now");
    let r = call(
        "PATCH",
        &url("/admin"),
        Some(&sam),
        Some(json!({"admin": true})),
    )
    .await;
    assert_eq!(r.body["admin"], true);

    // Rotate: the new token works, the old one is refused at once, and
    // an open console with it is closed.
    let mut console = ws(&app.ws_url(&format!("/api/v1/agent/ws?token={sam}"))).await;
    let r = call("POST", &url("/sam/token"), Some(&admin), None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let new = r.body["token"].as_str().unwrap().to_string();
    assert_ne!(new, sam);
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&sam), None).await;
    assert_eq!(me.status, 401);
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&new), None).await;
    assert_eq!(me.body["name"], "sam");
    assert_eq!(
        close_code(&mut console).await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Policy)
    );

    // Disable: refused token, shown as disabled, left out of the transfer
    // list; enable: a new token, shown once in the answer; the old one
    // stays dead (review P4: it came back to life).
    let kim = new_agent(&app, "kim", false).await;
    let r = call(
        "PATCH",
        &url("/kim"),
        Some(&admin),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(
        (r.body["disabled"].as_bool(), r.body["presence"].as_str()),
        (Some(true), Some("offline"))
    );
    assert_eq!(
        call("GET", &app.url("/api/v1/agent/me"), Some(&kim), None)
            .await
            .status,
        401
    );
    let colleagues = call("GET", &app.url("/api/v1/agent/agents"), Some(&new), None).await;
    assert!(!colleagues.text.contains("\"kim\""), "{}", colleagues.text);
    // A disabled agent has no token to rotate: enabling gives one.
    let r = call("POST", &url("/kim/token"), Some(&admin), None).await;
    assert_eq!(code(&r), (409, Some("agent_disabled".into())), "{}", r.text);
    let r = call(
        "PATCH",
        &url("/kim"),
        Some(&admin),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(r.body["disabled"], false);
    assert_eq!(
        call("GET", &app.url("/api/v1/agent/me"), Some(&kim), None)
            .await
            .status,
        401,
        "the token from before the disable stays dead"
    );
    let kim = r.body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("enabling gives a new token: {}", r.text))
        .to_string();
    assert_eq!(
        call("GET", &app.url("/api/v1/agent/me"), Some(&kim), None)
            .await
            .status,
        200
    );
    // The list never shows a token.
    let list = call("GET", &url(""), Some(&admin), None).await;
    assert!(!list.text.contains(&kim), "{}", list.text);
    assert!(!list.text.contains("\"token\""), "{}", list.text);

    // An agent holding a conversation is neither disabled nor removed.
    presence(&app, &kim, "online", 1).await;
    let v = app.new_visitor("Ada").await;
    ask_for_person(&app, &v).await;
    assert_eq!(
        agent_act(&app, &kim, &v.id, "claim", None).await.status,
        200
    );
    let r = call("DELETE", &url("/kim"), Some(&admin), None).await;
    assert_eq!(code(&r), (409, Some("agent_busy".into())));
    let r = call(
        "PATCH",
        &url("/kim"),
        Some(&admin),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(code(&r), (409, Some("agent_busy".into())));
    assert_eq!(
        agent_act(&app, &kim, &v.id, "close", None).await.status,
        200
    );

    // Remove: gone from the list, token refused, name free again.
    let r = call("DELETE", &url("/kim"), Some(&admin), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        call("GET", &app.url("/api/v1/agent/me"), Some(&kim), None)
            .await
            .status,
        401
    );
    let list = call("GET", &url(""), Some(&admin), None).await;
    assert!(!list.text.contains("\"kim\""), "{}", list.text);
    let r = call("DELETE", &url("/kim"), Some(&admin), None).await;
    assert_eq!(r.status, 404);
    new_agent(&app, "kim", false).await;
}

/// What an admin changed survives a restart (the stored records gained
/// fields), and presence after a restart: an agent who chose online is
/// away until a console of theirs connects, then online again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_survive_a_restart() {
    let s = setup("", None);
    let srv = Server::start(&s);
    let admin = srv.admin.clone();
    let url = |srv: &Server, p: &str| srv.url(&format!("/api/v1/admin/agents{p}"));
    let sam = srv.new_agent("sam").await;
    let kim = srv.new_agent("kim").await;
    let gus = srv.new_agent("gus").await;
    let r = call(
        "PATCH",
        &url(&srv, "/sam"),
        Some(&admin),
        Some(json!({"display_name": "Sam Lee"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = call(
        "PATCH",
        &url(&srv, "/kim"),
        Some(&admin),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        call("DELETE", &url(&srv, "/gus"), Some(&admin), None)
            .await
            .status,
        204
    );
    let r = call(
        "PUT",
        &srv.url("/api/v1/agent/presence"),
        Some(&sam),
        Some(json!({"presence": "online"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    srv.stop();

    let srv = Server::start_with(&s, Some(admin.clone()));
    let list = call("GET", &url(&srv, ""), Some(&admin), None).await;
    let got: Vec<(String, String, bool, String)> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["display_name"].as_str().unwrap().to_string(),
                a["disabled"].as_bool().unwrap(),
                a["presence"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row =
        |n: &str, d: &str, off: bool, p: &str| (n.to_string(), d.to_string(), off, p.to_string());
    assert_eq!(
        got,
        [
            row("admin", "admin", false, "offline"),
            row("kim", "kim", true, "offline"),
            row("sam", "Sam Lee", false, "away"),
        ]
    );
    assert_eq!(
        call("GET", &srv.url("/api/v1/agent/me"), Some(&kim), None)
            .await
            .status,
        401
    );
    assert_eq!(
        call("GET", &srv.url("/api/v1/agent/me"), Some(&gus), None)
            .await
            .status,
        401
    );
    // Sam's console connects: online, as sam chose.
    let mut console = ws(&srv.ws_url(&format!("/api/v1/agent/ws?token={sam}"))).await;
    assert_eq!(next_json(&mut console).await["kind"], "queue");
    let me = call("GET", &srv.url("/api/v1/agent/me"), Some(&sam), None).await;
    assert_eq!(me.body["presence"], "online", "{}", me.text);
}

/// Review P1: a request that passed the token check before an admin
/// disabled the agent finishes after it. Neither a presence change nor a
/// console that opens may then make the disabled agent online, and
/// assignment gives them nothing. Deterministic: the `Agent` value the
/// token check made is kept and used after the disable, through the App
/// API the HTTP handlers call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_agent_is_never_made_online_nor_given_visitors() {
    use frontdesk::app::{Agent, SetPresence};
    use frontdesk::handoff::Presence;
    let app = spawn_app(AUTO, |s| s).await;
    let kim_token = new_agent(&app, "kim", false).await;
    let kim = app.app.agent_for(&kim_token).expect("kim's token works");
    // Kim chose online (nobody waits yet), then is disabled.
    presence(&app, &kim_token, "online", 3).await;
    let r = call(
        "PATCH",
        &app.url("/api/v1/admin/agents/kim"),
        Some(&app.admin),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for name in ["Ada", "Bo"] {
        let v = app.new_visitor(name).await;
        ask_for_person(&app, &v).await;
    }
    let holds = |app: &frontdesk::app::App| {
        let i = app.agent_info(&Agent {
            name: "kim".into(),
            admin: false,
        });
        (i.presence, i.active.len())
    };
    // The late presence request is refused and changes nothing.
    let a = app.app.clone();
    let late = kim.clone();
    let r = tokio::task::spawn_blocking(move || {
        a.set_presence(
            &late,
            SetPresence {
                presence: Presence::Online,
                capacity: Some(3),
            },
        )
    })
    .await
    .unwrap();
    assert_eq!(r.map(|_| ()).map_err(|e| e.code), Err("unauthorized"));
    assert_eq!(holds(&app.app), (Presence::Offline, 0));
    // A console of kim's that opens late (kim had chosen online) neither.
    let a = app.app.clone();
    let guard = tokio::task::spawn_blocking(move || a.console_opened("kim"))
        .await
        .unwrap();
    assert_eq!(holds(&app.app), (Presence::Offline, 0));
    drop(guard);
    // Both visitors still wait.
    let admin = app.app.agent_for(&app.admin).unwrap();
    assert_eq!(app.app.agent_info(&admin).active.len(), 0);
}

/// Review P3: `POST /api/v1/admin/agents` with an existing name made the
/// agent again (a new token, the role asked for): an admin could demote or
/// re-key themselves past the `own_account` rule, and a colleague's token
/// was silently replaced. Refused; changes go through PATCH and rotate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_agent_that_exists_is_refused_and_changes_nothing() {
    let app = spawn_app("", |s| s).await;
    let admin = app.admin.clone();
    let sam = new_agent(&app, "sam", false).await;
    for (name, body) in [
        ("sam", json!({"name": "sam", "admin": true})),
        ("sam", json!({"name": " sam "})),
        (
            "sam",
            json!({"name": "sam", "token": "a-token-of-my-own-choice"}),
        ),
        ("admin", json!({"name": "admin", "admin": false})),
        ("admin", json!({"name": "admin"})),
    ] {
        let r = call(
            "POST",
            &app.url("/api/v1/admin/agents"),
            Some(&admin),
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, 409, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "agent_exists", "{}", r.text);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(name),
            "{}",
            r.text
        );
    }
    // Nothing changed: both tokens work, the roles are what they were.
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&sam), None).await;
    assert_eq!((me.status, me.body["admin"].as_bool()), (200, Some(false)));
    let me = call("GET", &app.url("/api/v1/agent/me"), Some(&admin), None).await;
    assert_eq!((me.status, me.body["admin"].as_bool()), (200, Some(true)));
    let r = call(
        "GET",
        &app.url("/api/v1/agent/me"),
        Some("a-token-of-my-own-choice"),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
}

/// Review P5: the notices a presence change sends waiting visitors
/// (nobody is there now) were appended to the store directly, past the
/// write path's fan-out: the inbox did not see them (the conversation's
/// last activity stayed at the handoff), as no webhook or metric would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presence_notice_goes_through_the_write_path() {
    const T0: i64 = 1_795_428_000_000;
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked("", |s| s, clock.clone()).await;
    let alex = new_agent(&app, "alex", false).await;
    presence(&app, &alex, "online", 1).await;
    let v = app.new_visitor("Ada").await;
    ask_for_person(&app, &v).await;
    let mut widget = ws(&app.ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    )))
    .await;
    // The inbox is built from the store once after start: wait for it, so
    // that what it shows below came through the write path's fan-out.
    let admin = app.admin.clone();
    let inbox = || async {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let r = call(
                "GET",
                &app.url("/api/v1/agent/inbox?q=ada"),
                Some(&admin),
                None,
            )
            .await;
            if r.status != 503 {
                assert_eq!(r.status, 200, "{}", r.text);
                return r;
            }
            assert!(std::time::Instant::now() < deadline, "inbox never ready");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let r = inbox().await;
    assert_eq!(r.body["items"][0]["last_activity_ms"], T0, "{}", r.text);
    // Ten minutes later the only agent goes offline: the waiting visitor
    // is told that nobody is there.
    clock.advance(600_000);
    presence(&app, &alex, "offline", 1).await;
    let (notice, _) = until_event(&mut widget, "bot_reply").await;
    let text = notice["record"]["event"]["text"].as_str().unwrap();
    assert!(text.contains("Nobody from the team"), "{text}");
    assert_eq!(notice["record"]["at_ms"], T0 + 600_000, "{notice}");
    // The inbox saw it: the conversation's last activity is the notice.
    let r = inbox().await;
    let item = &r.body["items"][0];
    assert_eq!(item["id"], v.id.as_str(), "{}", r.text);
    assert_eq!(item["last_activity_ms"], T0 + 600_000, "{}", r.text);
    // And the conversation's log holds it once, after the handoff.
    let events = seen(&app, &v).await;
    let notices = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["event"]["type"] == "bot_reply"
                && r["event"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Nobody from the team"))
        })
        .count();
    assert_eq!(notices, 1, "{events}");
}

/// Display names are what visitors see: another agent's login or display
/// name (case and spaces aside, compatibility forms folded) would let one
/// agent pass for a colleague. Refused with 409 `display_name_taken`; an
/// agent's own names are theirs. A new agent's login name may not be a
/// colleague's display name either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_name_cannot_be_a_colleagues_name() {
    let app = spawn_app("", |s| s).await;
    let admin = app.admin.clone();
    new_agent(&app, "sam", false).await;
    new_agent(&app, "kim", false).await;
    let rename = |who: &str, to: &str| {
        let (url, admin, to) = (
            app.url(&format!("/api/v1/admin/agents/{who}")),
            admin.clone(),
            to.to_string(),
        );
        async move {
            let r = call(
                "PATCH",
                &url,
                Some(&admin),
                Some(json!({ "display_name": to })),
            )
            .await;
            (
                r.status,
                r.body["error"]["code"].as_str().map(String::from),
                r.text,
            )
        }
    };
    let (s, _, t) = rename("sam", "Sam Lee").await;
    assert_eq!(s, 200, "{t}");
    let taken = Some("display_name_taken".to_string());
    for (who, to, want) in [
        // Another's login name.
        ("kim", "sam", taken.clone()),
        ("kim", "SAM", taken.clone()),
        ("kim", " Sam ", taken.clone()),
        ("kim", "Admin", taken.clone()),
        // Fullwidth letters are the same name once folded (NFKC).
        ("kim", "\u{ff33}\u{ff41}\u{ff4d}", taken.clone()),
        // Another's display name.
        ("kim", "Sam Lee", taken.clone()),
        ("kim", "sam   lee", taken.clone()),
        ("kim", "SAM LEE", taken.clone()),
        ("admin", "sam lee", taken.clone()),
        // Names that only resemble one are fine.
        ("kim", "Sam Leed", None),
        ("kim", "Samantha", None),
        // One's own names are one's own.
        ("kim", "KIM", None),
        ("sam", "sam", None),
        ("sam", "Sam Lee", None),
        ("sam", "", None),
    ] {
        let (status, code, text) = rename(who, to).await;
        let want_status = if want.is_some() { 409 } else { 200 };
        assert_eq!(
            (status, code),
            (want_status, want),
            "{who} as {to:?}: {text}"
        );
    }
    // Kim is "KIM" now, sam is "sam" (no display name): a new agent
    // named after a colleague's display name is refused too.
    let (s, _, t) = rename("kim", "Ana Ruiz").await;
    assert_eq!(s, 200, "{t}");
    let r = call(
        "POST",
        &app.url("/api/v1/admin/agents"),
        Some(&admin),
        Some(json!({"name": "Ana"})),
    )
    .await;
    assert_eq!(r.status, 201, "not the same name: {}", r.text);
    let (s, c, t) = rename("kim", "ana").await;
    assert_eq!((s, c), (409, taken.clone()), "{t}");
    let (s, _, t) = rename("kim", "Ruiz").await;
    assert_eq!(s, 200, "{t}");
    let r = call(
        "POST",
        &app.url("/api/v1/admin/agents"),
        Some(&admin),
        Some(json!({"name": "RUIZ"})),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "display_name_taken");
}

/// Review of P5's fix: when every agent goes offline at once, each
/// waiting visitor is told once that nobody is there. The notice was
/// decided by the online count read after the queue's lock was let go, so
/// two agents leaving together could both see "nobody now" (5 of 100
/// trials wrote it twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_all_agents_leave_at_once_each_visitor_is_told_once() {
    let app = spawn_app(
        "[limits]\nconversations_per_ip_per_minute = 10000\nmessages_per_minute = 10000\nrequests_per_ip_per_minute = 100000\n",
        |s| s,
    )
    .await;
    let names = ["ana", "ben", "cy", "dee"];
    let mut tokens = Vec::new();
    for n in names {
        tokens.push(new_agent(&app, n, false).await);
    }
    let trials: usize = std::env::var("NOBODY_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let mut twice = 0;
    for _ in 0..trials {
        for t in &tokens {
            presence(&app, t, "online", 3).await;
        }
        let mut visitors = Vec::new();
        for _ in 0..2 {
            let v = app.new_visitor("Ada").await;
            ask_for_person(&app, &v).await;
            visitors.push(v);
        }
        let leaving: Vec<_> = tokens
            .iter()
            .map(|t| {
                let (app, t) = (&app, t.clone());
                async move { presence(app, &t, "offline", 3).await }
            })
            .collect();
        futures_util::future::join_all(leaving).await;
        for v in &visitors {
            let events = seen(&app, v).await;
            let notices = events["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| {
                    r["event"]["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("Nobody from the team"))
                })
                .count();
            if notices > 1 {
                twice += 1;
            }
        }
    }
    assert_eq!(
        twice,
        0,
        "told twice in {twice} of {} conversations",
        trials * 2
    );
}

//! The agents' inbox over the real server (README, "Inbox"): search by a
//! word of the text, the visitor's name or email and an intent; every
//! filter; cursor paging with no gap and no repeat while messages arrive;
//! a deleted conversation leaves it; bad parameters; the index built from
//! the store after a restart; an agent reopening a closed conversation.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::*;

async fn start(app: &impl Reach, body: Value) -> Visitor {
    let r = call("POST", &app.url("/api/v1/conversations"), None, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    Visitor {
        id: r.body["id"].as_str().unwrap().to_string(),
        token: r.body["token"].as_str().unwrap().to_string(),
    }
}

/// `GET /api/v1/agent/inbox?{query}`, waiting out the index's build after
/// start (a 503 `inbox_building` with `Retry-After` until then).
async fn inbox(app: &impl Reach, token: &str, query: &str) -> Res {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let r = call(
            "GET",
            &app.url(&format!("/api/v1/agent/inbox?{query}")),
            Some(token),
            None,
        )
        .await;
        if r.status != 503 {
            return r;
        }
        assert_eq!(r.body["error"]["code"], "inbox_building", "{}", r.text);
        assert!(
            r.headers.get("retry-after").is_some(),
            "503 without Retry-After"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the inbox never got ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The ids of a page, in order.
fn ids(r: &Res) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn item<'a>(r: &'a Res, id: &str) -> &'a Value {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {}", r.text))
}

async fn post(app: &impl Reach, path: &str, token: &str, body: Option<Value>) -> Res {
    call("POST", &app.url(path), Some(token), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_text_name_email_and_intent_with_readable_titles() {
    let app = spawn_app("", |s| s).await;
    let agent = app.online_agent("ann").await;
    let named = start(
        &app,
        json!({"name": "Ruth Miller", "email": "ruth@shop.example"}),
    )
    .await;
    let r = app.say(&named, "My parcel never arrived", "1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mailed = start(&app, json!({"email": "quentin@mail.example"})).await;
    app.say(&mailed, "How much is shipping to Canada?", "1")
        .await;
    let anonymous = start(&app, json!({})).await;
    app.say(&anonymous, "Zebra-striped umbrella, in stock?", "1")
        .await;

    // Newest activity first.
    let all = inbox(&app, &agent, "").await;
    assert_eq!(
        ids(&all),
        [anonymous.id.as_str(), mailed.id.as_str(), named.id.as_str()]
    );
    assert_eq!(all.body["total"], 3);
    assert!(all.body["next_cursor"].is_null());
    // Titles a person reads: the name, else the email, else the question.
    assert_eq!(item(&all, &named.id)["title"], "Ruth Miller");
    assert_eq!(item(&all, &named.id)["preview"], "My parcel never arrived");
    assert_eq!(item(&all, &mailed.id)["title"], "quentin@mail.example");
    assert_eq!(
        item(&all, &anonymous.id)["title"],
        "Zebra-striped umbrella, in stock?"
    );
    assert_eq!(item(&all, &anonymous.id)["state"], "bot");

    // A word of the text (any case, any part of a word), the name, the
    // email, an intent the bot recognised; every word must match.
    for (q, want) in [
        ("PARCEL", &named.id),
        ("umbrel", &anonymous.id),
        ("ruth%20miller", &named.id),
        ("ruth@shop", &named.id),
        ("quentin", &mailed.id),
        ("shipping_cost", &mailed.id),
    ] {
        assert_eq!(
            ids(&inbox(&app, &agent, &format!("q={q}")).await),
            [want.as_str()],
            "q={q}"
        );
    }
    assert!(ids(&inbox(&app, &agent, "q=parcel%20umbrella").await).is_empty());
    // The bot's own sentences are not searched (they are in every one).
    let r = inbox(&app, &agent, "q=zzznothing").await;
    assert_eq!(r.body["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_and_a_reopen() {
    let app = spawn_app("", |s| s).await;
    let ann = app.online_agent("ann").await;
    let bob = app.online_agent("bob").await;
    let bot = start(&app, json!({"name": "In Bot"})).await;
    app.say(&bot, "hello there", "1").await;
    let queued = start(&app, json!({"name": "Queued"})).await;
    let r = post(
        &app,
        &format!("/api/v1/conversations/{}/handoff", queued.id),
        &queued.token,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let held = start(&app, json!({"name": "Held"})).await;
    post(
        &app,
        &format!("/api/v1/conversations/{}/handoff", held.id),
        &held.token,
        None,
    )
    .await;
    let r = post(
        &app,
        &format!("/api/v1/agent/conversations/{}/claim", held.id),
        &bob,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let closed = start(&app, json!({"name": "Closed"})).await;
    app.say(&closed, "my order is broken", "1").await;
    post(
        &app,
        &format!("/api/v1/conversations/{}/handoff", closed.id),
        &closed.token,
        None,
    )
    .await;
    post(
        &app,
        &format!("/api/v1/agent/conversations/{}/claim", closed.id),
        &ann,
        None,
    )
    .await;
    let r = post(
        &app,
        &format!("/api/v1/agent/conversations/{}/close", closed.id),
        &ann,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post(
        &app,
        &format!("/api/v1/conversations/{}/rating", closed.id),
        &closed.token,
        Some(json!({"score": 4})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    assert_eq!(
        ids(&inbox(&app, &ann, "state=bot").await),
        [bot.id.as_str()]
    );
    assert_eq!(
        ids(&inbox(&app, &ann, "state=queued").await),
        [queued.id.as_str()]
    );
    assert_eq!(
        ids(&inbox(&app, &ann, "state=with_agent").await),
        [held.id.as_str()]
    );
    assert_eq!(
        ids(&inbox(&app, &ann, "state=closed").await),
        [closed.id.as_str()]
    );
    assert_eq!(
        ids(&inbox(&app, &ann, "agent=bob").await),
        [held.id.as_str()]
    );
    // The last agent of a closed conversation.
    assert_eq!(
        ids(&inbox(&app, &ann, "agent=ann").await),
        [closed.id.as_str()]
    );
    assert_eq!(
        ids(&inbox(&app, &ann, "reason=asked").await),
        [closed.id.as_str(), held.id.as_str(), queued.id.as_str()]
    );
    assert!(ids(&inbox(&app, &ann, "reason=negative_sentiment").await).is_empty());
    assert_eq!(
        ids(&inbox(&app, &ann, "rating=4").await),
        [closed.id.as_str()]
    );
    assert!(ids(&inbox(&app, &ann, "rating=5").await).is_empty());
    let all = inbox(&app, &ann, "").await;
    let at = |id: &str| item(&all, id)["last_activity_ms"].as_i64().unwrap();
    assert!(at(&closed.id) >= at(&bot.id));
    // Dates: last activity in [from, to).
    assert_eq!(
        ids(&inbox(&app, &ann, &format!("from={}", at(&closed.id))).await),
        [closed.id.as_str()]
    );
    assert_eq!(
        ids(&inbox(&app, &ann, &format!("to={}", at(&bot.id) + 1)).await),
        [bot.id.as_str()]
    );
    // Filters combine with a search.
    assert_eq!(
        ids(&inbox(&app, &ann, "q=broken&state=closed&agent=ann&rating=4").await),
        [closed.id.as_str()]
    );
    assert!(ids(&inbox(&app, &ann, "q=broken&state=bot").await).is_empty());
    let c = item(&all, &closed.id);
    assert_eq!(
        (c["agent"].clone(), c["reason"].clone(), c["rating"].clone()),
        (json!("ann"), json!("asked"), json!(4))
    );

    // Reopen: only a closed conversation; it goes to the agent who reopens
    // it, and the visitor's log shows the agent joining.
    let r = post(
        &app,
        &format!("/api/v1/agent/conversations/{}/reopen", held.id),
        &ann,
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (409, json!("not_reopenable")),
        "{}",
        r.text
    );
    let r = post(
        &app,
        &format!("/api/v1/agent/conversations/{}/reopen", closed.id),
        &bob,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let types: Vec<&str> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["handoff", "agent_joined"]);
    assert_eq!(r.body["records"][0]["event"]["reason"], "agent_took_over");
    let now = inbox(&app, &ann, "state=with_agent&agent=bob").await;
    assert_eq!(ids(&now), [closed.id.as_str(), held.id.as_str()]);
    let r = post(
        &app,
        &format!("/api/v1/agent/conversations/{}/messages", closed.id),
        &bob,
        Some(json!({"text": "Reopened: what else is broken?"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        ids(&inbox(&app, &ann, "q=else%20is%20broken").await),
        [closed.id.as_str()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_has_no_gap_and_no_repeat_while_messages_arrive() {
    let app = spawn_app("", |s| s).await;
    let agent = app.online_agent("ann").await;
    let mut visitors = Vec::new();
    for i in 0..8 {
        let v = start(&app, json!({"name": format!("Pager {i}")})).await;
        app.say(&v, &format!("question number {i}"), "1").await;
        visitors.push(v);
    }
    let first = inbox(&app, &agent, "limit=3").await;
    assert_eq!(first.body["total"], 8);
    let mut seen = ids(&first);
    let mut cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let mut n = 0;
    loop {
        // Between pages: the oldest not yet shown and one already shown
        // get a message (both move to the top), and a new one starts.
        n += 1;
        app.say(&visitors[n - 1], "any news?", &format!("again{n}"))
            .await;
        let shown = visitors.iter().find(|v| seen.contains(&v.id)).unwrap();
        app.say(shown, "still here", &format!("shown{n}")).await;
        let fresh = start(&app, json!({"name": "Late"})).await;
        app.say(&fresh, "late question", "1").await;
        let page = inbox(&app, &agent, &format!("limit=3&cursor={cursor}")).await;
        let got = ids(&page);
        assert!(!got.is_empty() && got.len() <= 3, "{}", page.text);
        seen.extend(got);
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let want: Vec<String> = visitors.iter().rev().map(|v| v.id.clone()).collect();
    assert_eq!(
        seen, want,
        "every conversation once, in the first page's order"
    );
    // A fresh first page shows the moved and the new ones on top.
    let now = inbox(&app, &agent, "limit=3").await;
    assert_eq!(now.body["total"], 8 + n as u64);
    assert_eq!(item(&now, &ids(&now)[0])["title"], "Late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_conversation_leaves_the_inbox() {
    let app = spawn_app("", |s| s).await;
    let agent = app.online_agent("ann").await;
    let gone = start(&app, json!({"name": "Erase Me"})).await;
    app.say(&gone, "please forget the word quokka", "1").await;
    let kept = start(&app, json!({"name": "Keep Me"})).await;
    app.say(&kept, "a quokka too", "1").await;
    assert_eq!(ids(&inbox(&app, &agent, "q=quokka").await).len(), 2);
    let r = call(
        "DELETE",
        &app.url(&format!("/api/v1/admin/conversations/{}", gone.id)),
        Some(&app.admin),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        ids(&inbox(&app, &agent, "q=quokka").await),
        [kept.id.as_str()]
    );
    assert!(ids(&inbox(&app, &agent, "q=erase").await).is_empty());
    assert_eq!(inbox(&app, &agent, "").await.body["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400_with_stable_codes() {
    let app = spawn_app("", |s| s).await;
    let agent = app.online_agent("ann").await;
    let long = "x".repeat(201);
    for (query, code) in [
        ("state=open", "bad_state"),
        ("reason=bored", "bad_reason"),
        ("rating=0", "bad_rating"),
        ("rating=five", "bad_rating"),
        ("from=yesterday", "bad_date"),
        ("from=10&to=5", "bad_date"),
        ("limit=0", "bad_limit"),
        ("limit=201", "bad_limit"),
        ("cursor=garbage", "bad_cursor"),
        ("cursor=1.2.bad%20id", "bad_cursor"),
        ("cursor=999999.1.c1", "cursor_expired"),
        (&format!("q={long}") as &str, "query_too_long"),
    ] {
        let r = inbox(&app, &agent, query).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        assert_eq!(r.body["error"]["code"], code, "{query}: {}", r.text);
    }
    let r = call("GET", &app.url("/api/v1/agent/inbox"), None, None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = post(
        &app,
        "/api/v1/agent/conversations/cnope/reopen",
        &agent,
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

/// The index is built from the store after a start: what was written
/// before a restart is found, with its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_built_from_the_store_after_a_restart() {
    let s = setup("", None);
    let server = Server::start(&s);
    let admin = server.admin.clone();
    let v = start(&server, json!({"email": "wombat@zoo.example"})).await;
    server.say(&v, "where is my wombat feeder", "1").await;
    let agent = server.new_agent("ann").await;
    server.stop();
    let server = Server::start_with(&s, Some(admin));
    let r = inbox(&server, &agent, "q=wombat%20feeder").await;
    assert_eq!(ids(&r), [v.id.as_str()]);
    assert_eq!(item(&r, &v.id)["title"], "wombat@zoo.example");
    let seen: HashSet<String> = ids(&inbox(&server, &agent, "").await).into_iter().collect();
    assert_eq!(seen.len(), 1);
    server.stop();
}

/// The retention sweep deletes through the same path: a swept
/// conversation leaves the inbox, a recent one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_swept_by_retention_leaves_the_inbox() {
    const T0: i64 = 1_780_000_000_000;
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let clock = frontdesk::util::clock::Clock::manual(T0);
    let app = spawn_app_clocked(
        "[retention]\nclosed_after_days = 30\n",
        |s| s,
        clock.clone(),
    )
    .await;
    let agent = app.online_agent("ann").await;
    let old = start(&app, json!({"name": "Old Numbat"})).await;
    app.say(&old, "numbat food question", "1").await;
    for step in ["claim", "close"] {
        let r = post(
            &app,
            &format!("/api/v1/agent/conversations/{}/{step}", old.id),
            &agent,
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{step}: {}", r.text);
    }
    clock.set(T0 + 20 * DAY);
    let recent = start(&app, json!({"name": "New Numbat"})).await;
    app.say(&recent, "numbat toy question", "1").await;
    assert_eq!(ids(&inbox(&app, &agent, "q=numbat").await).len(), 2);
    clock.set(T0 + 40 * DAY);
    assert_eq!(
        app.off(|a| a.sweep_retention()).unwrap(),
        vec![old.id.clone()]
    );
    assert_eq!(
        ids(&inbox(&app, &agent, "q=numbat").await),
        [recent.id.as_str()]
    );
}

//! `[retention] closed_after_days` on a manual clock through the real
//! server: the sweep deletes the conversations closed (and still closed)
//! whose last event is older than N days, with everything the store keeps
//! about them, and nothing else.

use frontdesk::util::clock::Clock;
use serde_json::{json, Value};

use super::*;

const T0: i64 = 1_780_000_000_000;
const DAY: i64 = 24 * 60 * 60 * 1000;

async fn close(app: &TestApp, agent: &str, v: &Visitor) {
    for step in ["claim", "close"] {
        let r = call(
            "POST",
            &app.url(&format!("/api/v1/agent/conversations/{}/{step}", v.id)),
            Some(agent),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{step}: {}", r.text);
    }
}

async fn events(app: &TestApp, v: &Visitor) -> Res {
    call(
        "GET",
        &app.url(&format!("/api/v1/conversations/{}/events", v.id)),
        Some(&v.token),
        None,
    )
    .await
}

fn log_of(r: &Res) -> Value {
    r.body["events"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_deletes_old_closed_conversations_and_nothing_else() {
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked(
        "[retention]\nclosed_after_days = 30\n",
        |s| s,
        clock.clone(),
    )
    .await;
    let alex = app.online_agent("alex").await;

    // Day 0: four conversations.
    let old_closed = app.new_visitor("Old").await;
    app.say(&old_closed, "How much is shipping?", "a1").await;
    close(&app, &alex, &old_closed).await;
    let rated = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/rating", old_closed.id)),
        Some(&old_closed.token),
        Some(json!({"score": 4})),
    )
    .await;
    assert_eq!(rated.status, 200, "{}", rated.text);
    let reopened = app.new_visitor("Back").await;
    app.say(&reopened, "How much is shipping?", "b1").await;
    close(&app, &alex, &reopened).await;
    let open_old = app.new_visitor("Open").await;
    app.say(&open_old, "How much is shipping?", "c1").await;
    // Day 5: the second one comes back (the bot has it again; still old).
    clock.set(T0 + 5 * DAY);
    let r = app.say(&reopened, "And to Canada?", "b2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Day 35: one closed recently.
    clock.set(T0 + 35 * DAY);
    let recent = app.new_visitor("Recent").await;
    app.say(&recent, "How much is shipping?", "d1").await;
    close(&app, &alex, &recent).await;

    let kept = [&reopened, &open_old, &recent];
    let mut before = Vec::new();
    for v in kept {
        before.push(log_of(&events(&app, v).await));
    }

    // Day 40: the cutoff is day 10.
    clock.set(T0 + 40 * DAY);
    let gone = app.app.sweep_retention().expect("the sweep runs");
    assert_eq!(gone, vec![old_closed.id.clone()]);
    let r = events(&app, &old_closed).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let t = call(
        "GET",
        &app.url(&format!("/api/v1/agent/conversations/{}", old_closed.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(t.status, 404, "{}", t.text);
    for (v, b) in kept.iter().zip(&before) {
        let r = events(&app, v).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(&log_of(&r), b, "{} intact", v.id);
    }
    // Nothing keyed by it is left in the store: not listed, no rating, no
    // time-index entry.
    let store = app.app.store();
    assert!(!store.conversations().unwrap().contains(&old_closed.id));
    assert!(store
        .ratings()
        .unwrap()
        .iter()
        .all(|r| r.conversation != old_closed.id));
    assert!(store
        .minutes(0, i64::MAX / 2)
        .unwrap()
        .iter()
        .all(|(_, id)| *id != old_closed.id));
    // A second sweep finds nothing more.
    assert_eq!(app.app.sweep_retention().unwrap(), Vec::<String>::new());

    // Day 66: the recently closed one is now 31 days old; the open ones stay.
    clock.set(T0 + 66 * DAY);
    assert_eq!(app.app.sweep_retention().unwrap(), vec![recent.id.clone()]);
    assert_eq!(events(&app, &recent).await.status, 404);
    assert_eq!(events(&app, &reopened).await.status, 200);
    assert_eq!(events(&app, &open_old).await.status, 200);
    // Closed at last, it goes 30 days later, not before.
    let closer = app.online_agent("bea").await;
    close(&app, &closer, &reopened).await;
    clock.set(T0 + 96 * DAY);
    assert_eq!(app.app.sweep_retention().unwrap(), Vec::<String>::new());
    clock.set(T0 + 96 * DAY + 1);
    assert_eq!(
        app.app.sweep_retention().unwrap(),
        vec![reopened.id.clone()]
    );
    assert_eq!(events(&app, &open_old).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retention_everything_is_kept() {
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked("", |s| s, clock.clone()).await;
    let alex = app.online_agent("alex").await;
    let v = app.new_visitor("Old").await;
    app.say(&v, "How much is shipping?", "a1").await;
    close(&app, &alex, &v).await;
    clock.set(T0 + 3650 * DAY);
    assert_eq!(app.app.sweep_retention().unwrap(), Vec::<String>::new());
    assert_eq!(events(&app, &v).await.status, 200);
}

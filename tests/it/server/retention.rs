//! `[retention] closed_after_days` on a manual clock through the real
//! server: the sweep deletes the conversations closed or idle with the bot
//! whose last event is older than N days, with everything the store keeps
//! about them, and nothing else (queued and with-agent ones stay).

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

/// The visitor's "Talk to a person" button: queued.
async fn ask_person(app: &TestApp, v: &Visitor) {
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
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
    ask_person(&app, &open_old).await;
    // Day 5: the second one comes back and asks for a person (queued:
    // kept however old).
    clock.set(T0 + 5 * DAY);
    let r = app.say(&reopened, "And to Canada?", "b2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    ask_person(&app, &reopened).await;
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
    let gone = app.off(|a| a.sweep_retention()).expect("the sweep runs");
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
    let (listed, ratings, minutes) = app.off(|a| {
        let store = a.store();
        (
            store.conversations().unwrap(),
            store.ratings().unwrap(),
            store.minutes(0, i64::MAX / 2).unwrap(),
        )
    });
    assert!(!listed.contains(&old_closed.id));
    assert!(ratings.iter().all(|r| r.conversation != old_closed.id));
    assert!(minutes.iter().all(|(_, id)| *id != old_closed.id));
    // A second sweep finds nothing more.
    assert_eq!(
        app.off(|a| a.sweep_retention()).unwrap(),
        Vec::<String>::new()
    );

    // Day 66: the recently closed one is now 31 days old; the queued ones
    // stay.
    clock.set(T0 + 66 * DAY);
    assert_eq!(
        app.off(|a| a.sweep_retention()).unwrap(),
        vec![recent.id.clone()]
    );
    assert_eq!(events(&app, &recent).await.status, 404);
    assert_eq!(events(&app, &reopened).await.status, 200);
    assert_eq!(events(&app, &open_old).await.status, 200);
    // Closed at last, it goes 30 days later, not before.
    let closer = app.online_agent("bea").await;
    close(&app, &closer, &reopened).await;
    clock.set(T0 + 96 * DAY);
    assert_eq!(
        app.off(|a| a.sweep_retention()).unwrap(),
        Vec::<String>::new()
    );
    clock.set(T0 + 96 * DAY + 1);
    assert_eq!(
        app.off(|a| a.sweep_retention()).unwrap(),
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
    assert_eq!(
        app.off(|a| a.sweep_retention()).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(events(&app, &v).await.status, 200);
}

/// A conversation nobody touched for N days has ended, whether or not
/// anyone closed it: idle bot conversations (the contained and abandoned
/// majority: nothing ever closes them) go too. One a visitor is waiting
/// in, or an agent holds, stays however old. The visitor of a deleted one
/// gets a 404 (the widget forgets it) and can start afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_bot_conversations_go_and_people_s_stay() {
    let clock = Clock::manual(T0);
    let app = spawn_app_clocked(
        "[retention]\nclosed_after_days = 30\n",
        |s| s,
        clock.clone(),
    )
    .await;
    let alex = app.online_agent("alex").await;

    // Day 0: answered by the bot and left; started and never used; asked
    // for a person and still waiting; with alex and never closed.
    let contained = app.new_visitor("Contained").await;
    let r = app.say(&contained, "How much is shipping?", "a1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let silent = app.new_visitor("Silent").await;
    let queued = app.new_visitor("Queued").await;
    app.say(&queued, "How much is shipping?", "q1").await;
    ask_person(&app, &queued).await;
    let held = app.new_visitor("Held").await;
    app.say(&held, "How much is shipping?", "h1").await;
    let r = call(
        "POST",
        &app.url(&format!("/api/v1/agent/conversations/{}/claim", held.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Day 20: a bot conversation still in use.
    clock.set(T0 + 20 * DAY);
    let young = app.new_visitor("Young").await;
    app.say(&young, "How much is shipping?", "y1").await;

    let kept = [&queued, &held, &young];
    let mut before = Vec::new();
    for v in kept {
        before.push(log_of(&events(&app, v).await));
    }

    // Day 30 exactly: nothing is older than 30 days yet.
    clock.set(T0 + 30 * DAY);
    assert_eq!(
        app.off(|a| a.sweep_retention()).unwrap(),
        Vec::<String>::new()
    );
    // Day 31: the two idle bot conversations go, nothing else.
    clock.set(T0 + 31 * DAY);
    let mut gone = app.off(|a| a.sweep_retention()).unwrap();
    gone.sort();
    let mut want = vec![contained.id.clone(), silent.id.clone()];
    want.sort();
    assert_eq!(gone, want);
    for (v, b) in kept.iter().zip(&before) {
        let r = events(&app, v).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(&log_of(&r), b, "{} intact", v.id);
    }
    let listed = app.off(|a| a.store().conversations()).unwrap();
    assert!(!listed.contains(&contained.id) && !listed.contains(&silent.id));
    // Still in the queue for the agents.
    let q = call("GET", &app.url("/api/v1/agent/queue"), Some(&alex), None).await;
    assert!(q.text.contains(&queued.id), "{}", q.text);

    // The visitor of a deleted one comes back: a 404 (the widget then
    // forgets it), and a fresh conversation works.
    let r = app.say(&contained, "And to Canada?", "a2").await;
    assert_eq!(r.status, 404, "{}", r.text);
    let fresh = app.new_visitor("Contained").await;
    let r = app.say(&fresh, "How much is shipping?", "f1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(fresh.id, contained.id);
}

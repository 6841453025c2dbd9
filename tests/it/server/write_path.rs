//! The write path seen from outside, on a server in this process: one
//! visitor message reads its conversation's log once, however many agent
//! sockets watch; suggestions reach every socket from that one
//! computation; and a write the store refuses leaves no trace in the queue.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::spy::Spy;

/// An in-process server whose sled store is seen through a `Spy`.
async fn spawn_spied() -> (TestApp, Arc<Spy>) {
    let mut spy = None;
    let t = spawn_app("", |s| {
        let w = Spy::new(s);
        spy = Some(Arc::clone(&w));
        w
    })
    .await;
    (t, spy.expect("the store was wrapped"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_message_reads_its_log_once_whatever_the_sockets() {
    let (t, spy) = spawn_spied().await;
    let ana = t.online_agent("ana").await;
    let bo = t.online_agent("bo").await;
    let v = t.new_visitor("Ada").await;
    let r = t.say(&v, "can I talk to a human please", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let claim = call(
        "POST",
        &t.url(&format!("/api/v1/agent/conversations/{}/claim", v.id)),
        Some(&ana),
        None,
    )
    .await;
    assert_eq!(claim.status, 200, "{}", claim.text);
    // Three sockets of the agent who holds it, one of an agent who does not.
    let mut sockets = Vec::new();
    for token in [&ana, &ana, &ana, &bo] {
        let mut ws = ws(&t.ws_url(&format!("/api/v1/agent/ws?token={token}"))).await;
        let first = next_json(&mut ws).await;
        assert_eq!(first["kind"], "queue");
        sockets.push(ws);
    }
    for (i, text) in [
        "how much is shipping to Canada?",
        "and when will my parcel arrive",
        "what is your return policy",
    ]
    .iter()
    .enumerate()
    {
        let before = spy.reads(&v.id);
        let r = t.say(&v, text, &format!("n{i}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let mut got = Vec::new();
        for ws in sockets.iter_mut().take(3) {
            let (m, _) = until_event(ws, "visitor_message").await;
            assert_eq!(m["record"]["event"]["text"], *text);
            got.push(m["suggestions"].clone());
        }
        assert!(
            got[0].as_array().is_some_and(|s| !s.is_empty()),
            "a shop question gets suggestions: {}",
            got[0]
        );
        assert!(got.iter().all(|g| *g == got[0]), "{got:?}");
        let reads = spy.reads(&v.id) - before;
        assert!(
            reads <= 1,
            "one message, at most one read of its log (three sockets watching): {reads}"
        );
    }
    // The agent who does not hold it saw none of it.
    let other = &mut sockets[3];
    let quiet = tokio::time::timeout(Duration::from_millis(300), next_json(other)).await;
    if let Ok(m) = quiet {
        assert_ne!(m["kind"], "record", "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_undoes_the_queue() {
    let (t, spy) = spawn_spied().await;
    let ana = t.online_agent("ana").await;
    let queue = || async {
        let q = call("GET", &t.url("/api/v1/agent/queue"), Some(&ana), None).await;
        q.body["waiting"].as_array().map_or(0, Vec::len)
    };
    let v = t.new_visitor("Ada").await;

    // A handoff the store refuses: not acknowledged, and not queued.
    spy.refuse(true);
    let r = t.say(&v, "can I talk to a human please", "m1").await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(queue().await, 0, "nothing stored, nothing queued");
    spy.refuse(false);
    let r = t.say(&v, "can I talk to a human please", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(queue().await, 1);

    // A claim the store refuses: still waiting, and nobody holds it.
    spy.refuse(true);
    let claim_url = t.url(&format!("/api/v1/agent/conversations/{}/claim", v.id));
    let claim = || call("POST", &claim_url, Some(&ana), None);
    let r = claim().await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(queue().await, 1, "still waiting");
    let me = call("GET", &t.url("/api/v1/agent/me"), Some(&ana), None).await;
    assert_eq!(me.body["active"], json!([]), "{}", me.text);
    spy.refuse(false);
    let r = claim().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(queue().await, 0);

    // A transfer the store refuses: ana still holds it, bo does not.
    let bo = t.online_agent("bo").await;
    let held = |token: String| {
        let url = t.url("/api/v1/agent/me");
        async move { call("GET", &url, Some(&token), None).await.body["active"].clone() }
    };
    let act = |what: &str| t.url(&format!("/api/v1/agent/conversations/{}/{what}", v.id));
    spy.refuse(true);
    let r = call(
        "POST",
        &act("transfer"),
        Some(&ana),
        Some(json!({"to": "bo"})),
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(held(ana.clone()).await, json!([v.id]));
    assert_eq!(held(bo.clone()).await, json!([]));

    // A close the store refuses: ana still holds it, and can close it.
    let r = call("POST", &act("close"), Some(&ana), None).await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(held(ana.clone()).await, json!([v.id]));
    spy.refuse(false);
    let r = call("POST", &act("close"), Some(&ana), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(held(ana.clone()).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_another_writer_reads_again_and_follows_on() {
    use frontdesk::conversation::Event;
    use frontdesk::store::Store;
    let (t, spy) = spawn_spied().await;
    let v = t.new_visitor("Ada").await;
    let r = t.say(&v, "how much is shipping?", "m1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let last = r.body["records"].as_array().unwrap().last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    // Another writer (another node, one day) appends behind the server's
    // back: the state the server folded is now one record short.
    let other = off_runtime(|| {
        spy.append(
            &v.id,
            1,
            vec![Event::EmailLeft {
                email: "ada@example.com".into(),
            }],
        )
    })
    .expect("the other writer appends");
    assert_eq!(other.records[0].seq, last + 1);
    let reads = spy.reads(&v.id);
    let r = t.say(&v, "and what is your return policy?", "m2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["records"][0]["seq"].as_u64(),
        Some(last + 2),
        "stored after the other writer's record: {}",
        r.text
    );
    assert_eq!(spy.reads(&v.id) - reads, 1, "read once, after the conflict");
    let log = off_runtime(|| spy.read(&v.id, 0)).unwrap();
    let seqs: Vec<u64> = log.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>());
}

//! Three `frontdesk serve` nodes on one PostgreSQL database (issue 20):
//! a visitor on one node and an agent on another talk in real time over
//! their WebSockets, and a waiting visitor claimed by agents on all three
//! nodes at the same moment is claimed exactly once, round after round.
//! Every handoff's webhook reaches a real receiver on loopback exactly
//! once whichever node the visitor was on (only the outbox lease's holder
//! sends), and when that holder is SIGKILLed another node sends the rest.
//! A stopped database gets 503s from every node, and all serve again and
//! hear each other when it is back.
//! Real processes, real sockets, one real database; runs in the
//! PostgreSQL server suite (`FRONTDESK_TEST_STORE=postgres`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::*;

/// Claim rounds by default; `FRONTDESK_CLUSTER_ROUNDS=N` runs N.
const ROUNDS: usize = 30;

/// Three configs on one fresh database, each node on a loopback port of
/// its own (and a data dir of its own, which a PostgreSQL node does not
/// use for the store).
struct Nodes {
    _tmp: tempfile::TempDir,
    configs: Vec<PathBuf>,
    url: String,
}

fn nodes(n: usize) -> Nodes {
    nodes_with(n, "")
}

/// `nodes`, with `extra` (TOML tables) in every node's config.
fn nodes_with(n: usize, extra: &str) -> Nodes {
    let url = off_runtime(crate::pg::database).expect("PostgreSQL for the cluster test");
    nodes_on(n, extra, url)
}

/// `nodes_with` on the database at `url`.
fn nodes_on(n: usize, extra: &str, url: String) -> Nodes {
    let tmp = tempfile::tempdir().expect("temp dir");
    let configs = (0..n)
        .map(|i| {
            let config = tmp.path().join(format!("node{i}.toml"));
            let body = format!(
                "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {:?}\ndata_dir = {:?}\n\
                 reload_poll_ms = 100\n\n[limits]\nconversations_per_ip_per_minute = 100000\n\
                 requests_per_ip_per_minute = 1000000\n\n{extra}\n\
                 [store]\nbackend = \"postgres\"\nurl = {url:?}\n",
                crate::default_intents(),
                tmp.path().join(format!("data{i}")),
            );
            std::fs::write(&config, body).expect("write config");
            config
        })
        .collect();
    Nodes {
        _tmp: tmp,
        configs,
        url,
    }
}

/// Starts the nodes one after the other: the first makes the admin.
fn start(n: &Nodes) -> Vec<Server> {
    let mut admin = None;
    n.configs
        .iter()
        .map(|config| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
            cmd.args(["serve", "--config"]).arg(config);
            let s = Server::spawn(cmd, admin.clone());
            admin = Some(s.admin.clone());
            s
        })
        .collect()
}

fn skipped() -> bool {
    if on_postgres() {
        return false;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped on sled (several nodes share a PostgreSQL database): run with \
         FRONTDESK_TEST_STORE=postgres"
    );
    true
}

/// An agent made on `maker` (any node), online on `on`; its token.
async fn agent_on(maker: &Server, on: &Server, name: &str) -> String {
    let token = maker.new_agent(name).await;
    // The token is known on every node once the change has reached it.
    let t = Instant::now();
    loop {
        let p = call(
            "PUT",
            &on.url("/api/v1/agent/presence"),
            Some(&token),
            Some(json!({"presence": "online", "capacity": 100})),
        )
        .await;
        if p.status == 200 {
            return token;
        }
        assert!(
            p.status == 401 && t.elapsed() < PATIENCE,
            "agent {name} made on one node is unknown on another: {} {}",
            p.status,
            p.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `srv`'s queue, seen by `token`'s agent, does (or does
/// not) list conversation `id`.
async fn until_queue(srv: &Server, token: &str, id: &str, listed: bool) {
    let t = Instant::now();
    loop {
        let q = call("GET", &srv.url("/api/v1/agent/queue"), Some(token), None).await;
        assert_eq!(q.status, 200, "{}", q.text);
        let has = q.body["waiting"]
            .as_array()
            .expect("waiting")
            .iter()
            .any(|w| w["conversation"] == id);
        if has == listed {
            return;
        }
        assert!(
            t.elapsed() < PATIENCE,
            "{id} {} in the queue of {} after {:?}: {}",
            if listed { "never appears" } else { "stays" },
            srv.addr,
            t.elapsed(),
            q.text
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The event types of conversation `id`'s log, read through `srv`.
async fn types_of(srv: &Server, token: &str, id: &str) -> Vec<String> {
    let t = call(
        "GET",
        &srv.url(&format!("/api/v1/agent/conversations/{id}")),
        Some(token),
        None,
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    t.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Reads `ws` until a record whose event is `kind` with `text`.
async fn until_text(ws: &mut Ws, kind: &str, text: &str) -> Value {
    loop {
        let (m, _) = until_event(ws, kind).await;
        if m["record"]["event"]["text"] == text {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_on_one_node_and_an_agent_on_another_talk_live() {
    if skipped() {
        return;
    }
    let n = nodes(3);
    let s = start(&n);
    let alex = agent_on(&s[0], &s[2], "alex").await;

    // The visitor is on node 1, watching live.
    let v = s[0].new_visitor("Ada").await;
    let mut vws = ws(&s[0].ws_url(&format!(
        "/api/v1/conversations/{}/ws?token={}",
        v.id, v.token
    )))
    .await;
    // The agent is on node 3.
    let mut aws = ws(&s[2].ws_url(&format!("/api/v1/agent/ws?token={alex}"))).await;
    assert_eq!(next_json(&mut aws).await["kind"], "queue");

    let h = call(
        "POST",
        &s[0].url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{}", h.text);
    // Node 3 learns that the visitor waits, and its agent claims there.
    until_queue(&s[2], &alex, &v.id, true).await;
    let c = call(
        "POST",
        &s[2].url(&format!("/api/v1/agent/conversations/{}/claim", v.id)),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    // The visitor's socket on node 1 sees the agent join.
    let (joined, _) = until_event(&mut vws, "agent_joined").await;
    assert_eq!(joined["record"]["event"]["agent"], "alex");

    let mut took = Vec::new();
    for i in 0..5 {
        // Visitor (node 1) → agent's socket (node 3).
        let text = format!("question {i} from the visitor");
        let t = Instant::now();
        // Behind a load balancer the visitor's requests land anywhere:
        // its token is good on every node.
        let r = s[i % 2].say(&v, &text, &format!("m{i}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let m = until_text(&mut aws, "visitor_message", &text).await;
        assert_eq!(m["conversation"], v.id.as_str(), "{m}");
        let there = t.elapsed();
        // Agent (node 3) → visitor's socket (node 1).
        let text = format!("answer {i} from the agent");
        let t = Instant::now();
        let r = call(
            "POST",
            &s[2].url(&format!("/api/v1/agent/conversations/{}/messages", v.id)),
            Some(&alex),
            Some(json!({"text": text})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        until_text(&mut vws, "agent_message", &text).await;
        let back = t.elapsed();
        took.push((there, back));
        // Real time: well under the patience, not a poll's worth.
        assert!(
            there < Duration::from_secs(2) && back < Duration::from_secs(2),
            "round {i}: {there:?} there, {back:?} back"
        );
    }

    // From the send to the other node's socket (HTTP round trip included).
    eprintln!("visitor → agent, agent → visitor: {took:?}");

    // The nodes' listening sessions cut (as a network cut or a database
    // restart does): each listens again, reads what it may have missed,
    // and the conversation carries on across nodes.
    let url = n.url.clone();
    let cut = off_runtime(move || {
        let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("connect");
        c.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'frontdesk-listen' AND datname = current_database()",
            &[],
        )
        .expect("terminate")
        .len()
    });
    assert_eq!(cut, 3, "one listening session per node");
    let text = "after the cut".to_string();
    let r = s[0].say(&v, &text, "m-cut").await;
    assert_eq!(r.status, 200, "{}", r.text);
    until_text(&mut aws, "visitor_message", &text).await;
    let other = s[1].new_visitor("Bo").await;
    let h = call(
        "POST",
        &s[1].url(&format!("/api/v1/conversations/{}/handoff", other.id)),
        Some(&other.token),
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{}", h.text);
    until_queue(&s[2], &alex, &other.id, true).await;

    // Every message once, in one log, whichever node reads it.
    for srv in &s {
        let types = types_of(srv, &alex, &v.id).await;
        assert_eq!(
            types.iter().filter(|t| *t == "visitor_message").count(),
            6,
            "{types:?}"
        );
        assert_eq!(
            types.iter().filter(|t| *t == "agent_message").count(),
            5,
            "{types:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_claimed_on_three_nodes_at_once_is_claimed_once() {
    if skipped() {
        return;
    }
    let rounds = std::env::var("FRONTDESK_CLUSTER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    let n = nodes(3);
    let s = start(&n);
    let mut agents = Vec::new();
    for (i, srv) in s.iter().enumerate() {
        agents.push(agent_on(&s[0], srv, &format!("agent{i}")).await);
    }
    let mut wins = [0usize; 3];
    for round in 0..rounds {
        let home = &s[round % 3];
        let v = home.new_visitor(&format!("V{round}")).await;
        let h = call(
            "POST",
            &home.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
            Some(&v.token),
            None,
        )
        .await;
        assert_eq!(h.status, 200, "{}", h.text);
        for (srv, token) in s.iter().zip(&agents) {
            until_queue(srv, token, &v.id, true).await;
        }
        // All three at the same moment.
        let claim = |i: usize| {
            let url = s[i].url(&format!("/api/v1/agent/conversations/{}/claim", v.id));
            let token = agents[i].clone();
            async move { call("POST", &url, Some(&token), None).await }
        };
        let (a, b, c) = tokio::join!(claim(0), claim(1), claim(2));
        let answers = [a, b, c];
        let won: Vec<usize> = (0..3).filter(|&i| answers[i].status == 200).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: {:?}",
            answers
                .iter()
                .map(|r| format!("{} {}", r.status, r.text))
                .collect::<Vec<_>>()
        );
        let w = won[0];
        wins[w] += 1;
        for (i, r) in answers.iter().enumerate() {
            if i != w {
                assert_eq!(r.status, 409, "round {round}: {}", r.text);
                assert!(
                    r.body["error"]["code"].is_string(),
                    "round {round}: a clear error: {}",
                    r.text
                );
            }
        }
        let types = types_of(&s[(round + 1) % 3], &agents[w], &v.id).await;
        assert_eq!(
            types.iter().filter(|t| *t == "agent_joined").count(),
            1,
            "round {round}: {types:?}"
        );
        // Nobody's queue offers it any more.
        for (srv, token) in s.iter().zip(&agents) {
            until_queue(srv, token, &v.id, false).await;
        }
        let c = call(
            "POST",
            &s[w].url(&format!("/api/v1/agent/conversations/{}/close", v.id)),
            Some(&agents[w]),
            None,
        )
        .await;
        assert_eq!(c.status, 200, "round {round}: {}", c.text);
    }
    eprintln!("{rounds} rounds, wins per node: {wins:?}");
}

/// Handoffs in the webhook test by default; `FRONTDESK_CLUSTER_HANDOFFS=N`
/// makes N (at most `MAX_HANDOFFS`, so the wait stays bounded).
const HANDOFFS: usize = 30;
const MAX_HANDOFFS: usize = 600;
const SECRET: &str = "cluster-webhook-secret-0123456789";

/// One POST the test's webhook receiver took.
#[derive(Debug)]
struct Took {
    /// `x-frontdesk-delivery`.
    id: String,
    /// The packet's own `delivery`, which must be the header's.
    body_id: String,
    conversation: String,
    event: String,
    /// `x-frontdesk-signature` is `sha256=` the HMAC of the body.
    signed: bool,
}

type Received = Arc<Mutex<Vec<Took>>>;

/// A header's value in a request head, its name in any case.
fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .skip(1)
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or("")
}

/// A webhook receiver on loopback: records every POST as it arrives and
/// answers 200 after `slow`, so that while the nodes run a backlog waits
/// in the outbox (a node sending besides the lease holder would send the
/// entries the holder has not removed yet).
async fn hook_receiver(slow: Duration) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = Received::default();
    let g = Arc::clone(&got);
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = listener.accept().await else {
                return;
            };
            let g = Arc::clone(&g);
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut c).await else {
                    return;
                };
                // Nothing here panics: what is odd is recorded and the
                // test asserts on it.
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let expected = format!(
                    "sha256={}",
                    frontdesk::app::auth::sign(SECRET.as_bytes(), &body)
                );
                let took = Took {
                    id: header(&head, "x-frontdesk-delivery").to_string(),
                    body_id: v["delivery"].as_str().unwrap_or("").to_string(),
                    conversation: v["conversation"]["id"].as_str().unwrap_or("").to_string(),
                    event: v["event"].as_str().unwrap_or("").to_string(),
                    signed: header(&head, "x-frontdesk-signature") == expected,
                };
                g.lock().unwrap().push(took);
                tokio::time::sleep(slow).await;
                answer_ok(&mut c).await;
            });
        }
    });
    (url, got)
}

/// A new visitor on `srv` asks for a person; the conversation's id.
async fn handed_off(srv: &Server, name: String) -> String {
    let v = srv.new_visitor(&name).await;
    let h = call(
        "POST",
        &srv.url(&format!("/api/v1/conversations/{}/handoff", v.id)),
        Some(&v.token),
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert!(
        !h.body["records"].as_array().expect("records").is_empty(),
        "queued now, not already waiting: {}",
        h.text
    );
    v.id
}

/// `count` handoffs, round after round one on each node of `on` at the
/// same moment; the conversation ids.
async fn handoffs(on: &[&Server], count: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let round: Vec<_> = on
            .iter()
            .take(count - ids.len())
            .enumerate()
            .map(|(i, srv)| handed_off(srv, format!("{tag}{}", ids.len() + i)))
            .collect();
        ids.extend(futures_util::future::join_all(round).await);
    }
    ids
}

/// Waits until every conversation of `ids` had a delivery, or panics
/// after `within`.
async fn until_delivered(got: &Received, ids: &[String], within: Duration) {
    let t = Instant::now();
    loop {
        let missing = {
            let got = got.lock().unwrap();
            ids.iter()
                .filter(|id| !got.iter().any(|d| &d.conversation == *id))
                .count()
        };
        if missing == 0 {
            return;
        }
        assert!(
            t.elapsed() < within,
            "{missing} of {} handoffs not delivered after {within:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Delivery id → (times received, its conversation), after checking every
/// POST was a signed `handoff` packet of a conversation of `ids` whose
/// header and body name the same delivery, and each conversation of `ids`
/// has exactly one delivery id (a retry or a second sender keeps it).
fn tally(got: &Received, ids: &[String]) -> HashMap<String, (usize, String)> {
    let got = got.lock().unwrap();
    let mut by_id: HashMap<String, (usize, String)> = HashMap::new();
    for d in got.iter() {
        assert!(
            d.event == "handoff" && d.signed && !d.id.is_empty() && d.id == d.body_id,
            "a signed handoff packet whose header names its delivery: {d:?}"
        );
        assert!(
            ids.contains(&d.conversation),
            "a delivery for no handoff of the test: {d:?}"
        );
        let e = by_id
            .entry(d.id.clone())
            .or_insert((0, d.conversation.clone()));
        assert_eq!(e.1, d.conversation, "one delivery id, two conversations");
        e.0 += 1;
    }
    for id in ids {
        let deliveries = by_id.values().filter(|(_, c)| c == id).count();
        assert_eq!(
            deliveries, 1,
            "conversation {id}: {deliveries} delivery ids"
        );
    }
    by_id
}

/// `frontdesk_webhook_deliveries_total{result="ok"}` of `srv`: the POSTs
/// it sent that a receiver took.
async fn sent_ok(srv: &Server) -> u64 {
    let m = raw("GET", &srv.url("/metrics"), None, None, vec![], &[]).await;
    assert_eq!(m.status, 200, "{}", m.text);
    m.text
        .lines()
        .find_map(|l| l.strip_prefix("frontdesk_webhook_deliveries_total{result=\"ok\"}"))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

/// The outbox entries in the database at `url` now.
fn outbox_len(url: &str) -> i64 {
    let url = url.to_string();
    off_runtime(move || {
        let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("connect");
        c.query_one("SELECT count(*) FROM outbox", &[])
            .expect("count the outbox")
            .get(0)
    })
}

/// The webhooks table every node of the webhook tests has.
fn hook_config(url: &str) -> String {
    format!("[[webhooks]]\nurl = {url:?}\nsecret = \"{SECRET}\"\nevents = [\"handoff\"]\n")
}

/// Long enough for a sender that is not the lease holder to have taken
/// the lease and sent a pass (`LEASE_RETRY` 2 s, `SHARED_POLL` 1 s): a
/// duplicate would have landed by then.
const SETTLE: Duration = Duration::from_millis(3000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_handoff_webhook_is_delivered_once_by_three_nodes() {
    if skipped() {
        return;
    }
    let count = std::env::var("FRONTDESK_CLUSTER_HANDOFFS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(HANDOFFS)
        .clamp(3, MAX_HANDOFFS);
    // Each POST takes 100 ms to answer, so the packets wait in the
    // outbox for seconds while all three nodes run.
    let slow = Duration::from_millis(100);
    let (hook, got) = hook_receiver(slow).await;
    let n = nodes_with(3, &hook_config(&hook));
    let s = start(&n);
    let started = Instant::now();
    let ids = handoffs(&[&s[0], &s[1], &s[2]], count, "V").await;
    let made = started.elapsed();
    // What makes a second sender show: entries waiting while all run.
    let backlog = outbox_len(&n.url);
    assert!(backlog > 0, "the outbox never held a backlog");
    until_delivered(&got, &ids, PATIENCE + slow * 2 * count as u32).await;
    let all_in = started.elapsed();
    // Whatever is still in flight lands now, or never.
    tokio::time::sleep(SETTLE).await;

    let by_id = tally(&got, &ids);
    assert_eq!(by_id.len(), count, "one delivery id per handoff");
    let twice: Vec<_> = by_id.iter().filter(|(_, (k, _))| *k != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(got.lock().unwrap().len(), count, "one POST per handoff");
    // What the nodes say they sent is what arrived: one node sent them.
    let mut sent = Vec::new();
    for srv in &s {
        sent.push(sent_ok(srv).await);
    }
    assert_eq!(sent.iter().sum::<u64>(), count as u64, "{sent:?}");
    assert_eq!(outbox_len(&n.url), 0, "the outbox is drained");
    eprintln!(
        "{count} handoffs on 3 nodes made in {made:?}, {backlog} in the outbox then; \
         all delivered once by {all_in:?}; sent per node {sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_keep_coming_when_the_lease_holder_is_killed() {
    if skipped() {
        return;
    }
    // Slower answers than above: a backlog is surely in the outbox when
    // its sender dies.
    let slow = Duration::from_millis(300);
    let (hook, got) = hook_receiver(slow).await;
    let n = nodes_with(3, &hook_config(&hook));
    let mut s = start(&n);
    let first = handoffs(&[&s[0], &s[1], &s[2]], 6, "A").await;
    until_delivered(&got, &first, PATIENCE + slow * 12).await;
    // The lease holder is the node that sent them.
    let mut sent = Vec::new();
    for srv in &s {
        sent.push(sent_ok(srv).await);
    }
    let holders: Vec<usize> = (0..3).filter(|&i| sent[i] > 0).collect();
    assert_eq!(holders.len(), 1, "one node sends: {sent:?}");
    let holder = holders[0];

    // Handoffs on every node, the holder's among them; it sends a few of
    // them, then dies (a SIGKILL) with a backlog to send; more handoffs
    // on the two others.
    let mut ids = first.clone();
    let second = handoffs(&[&s[0], &s[1], &s[2]], 12, "B").await;
    until_delivered(&got, &second[..3], PATIENCE + slow * 12).await;
    ids.extend(second);
    let backlog = outbox_len(&n.url);
    assert!(backlog > 0, "the holder dies with nothing to send");
    let killed = Instant::now();
    s.remove(holder).kill();
    ids.extend(handoffs(&[&s[0], &s[1]], 6, "C").await);
    until_delivered(&got, &ids, PATIENCE + slow * 2 * ids.len() as u32).await;
    let resumed = killed.elapsed();
    tokio::time::sleep(SETTLE).await;

    // At least once: every handoff arrived, under one delivery id. A node
    // sends one POST at a time and removes its entry after the 200, so
    // the killed holder can have left at most one packet received and not
    // removed, which the next holder sends again under the same id.
    let by_id = tally(&got, &ids);
    assert_eq!(by_id.len(), ids.len(), "one delivery id per handoff");
    let again: Vec<_> = by_id.iter().filter(|(_, (k, _))| *k != 1).collect();
    assert!(
        again.len() <= 1 && again.iter().all(|(_, (k, _))| *k == 2),
        "more than the one packet in flight at the kill came twice: {again:?}"
    );
    // One of the two others took the lease and sent the rest.
    let mut after = Vec::new();
    for srv in &s {
        after.push(sent_ok(srv).await);
    }
    assert_eq!(
        after.iter().filter(|&&k| k > 0).count(),
        1,
        "one new sender: {after:?}"
    );
    assert_eq!(outbox_len(&n.url), 0, "the outbox is drained");
    eprintln!(
        "{} handoffs; the holder (node {holder}) killed with {backlog} in the outbox; \
         all delivered {resumed:?} after the kill; sent twice: {}; sent before {sent:?}, \
         by the survivors after {after:?}",
        ids.len(),
        again.len()
    );
}

/// The database stopped under three nodes: each answers `503
/// store_unavailable` at once (no hang), its `/healthz` too; started again,
/// every node serves without a restart and they hear each other again (a
/// visitor handed off on node 0 shows in node 2's queue, node 2's claim
/// leaves node 1's). A cluster of its own, which this test stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_answers_503_on_every_node_and_all_recover() {
    if skipped() {
        return;
    }
    let Some(cluster) = off_runtime(|| crate::pg::Cluster::start(false)) else {
        return;
    };
    let n = nodes_on(3, "", off_runtime(|| cluster.database()));
    let s = start(&n);
    let alex = agent_on(&s[0], &s[2], "alex").await;
    let visitors = [
        s[0].new_visitor("Ada").await,
        s[1].new_visitor("Bo").await,
        s[2].new_visitor("Cy").await,
    ];

    cluster.stop();
    for (srv, v) in s.iter().zip(&visitors) {
        let t = Instant::now();
        let r = srv.say(v, "how much is shipping", "m1").await;
        assert_eq!(r.status, 503, "{}", r.text);
        assert_eq!(r.body["error"]["code"], "store_unavailable", "{}", r.text);
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
        let h = call("GET", &srv.url("/healthz"), None, None).await;
        assert_eq!(h.status, 503, "{}", h.text);
    }

    cluster.start_again();
    let back = Instant::now();
    for (srv, v) in s.iter().zip(&visitors) {
        while call("GET", &srv.url("/healthz"), None, None).await.status != 200 {
            assert!(
                back.elapsed() < PATIENCE * 3,
                "{} never recovered",
                srv.addr
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = srv.say(v, "how much is shipping", "m1").await;
        assert_eq!(r.status, 200, "serves again: {}", r.text);
    }
    // The nodes hear each other again (their listening sessions were cut
    // with the database and made anew).
    let id = handed_off(&s[0], "Di".into()).await;
    until_queue(&s[2], &alex, &id, true).await;
    until_queue(&s[1], &alex, &id, true).await;
    let c = call(
        "POST",
        &s[2].url(&format!("/api/v1/agent/conversations/{id}/claim")),
        Some(&alex),
        None,
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    until_queue(&s[1], &alex, &id, false).await;
    eprintln!(
        "three nodes served again {:?} after the database came back",
        back.elapsed()
    );
}

//! Three `frontdesk serve` nodes on one PostgreSQL database (issue 20):
//! a visitor on one node and an agent on another talk in real time over
//! their WebSockets, and a waiting visitor claimed by agents on all three
//! nodes at the same moment is claimed exactly once, round after round.
//! Real processes, real sockets, one real database; runs in the
//! PostgreSQL server suite (`FRONTDESK_TEST_STORE=postgres`).

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
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = off_runtime(crate::pg::database).expect("PostgreSQL for the cluster test");
    let configs = (0..n)
        .map(|i| {
            let config = tmp.path().join(format!("node{i}.toml"));
            let body = format!(
                "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {:?}\ndata_dir = {:?}\n\
                 reload_poll_ms = 100\n\n[limits]\nconversations_per_ip_per_minute = 100000\n\
                 requests_per_ip_per_minute = 1000000\n\n\
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

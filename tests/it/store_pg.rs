//! What PostgreSQL adds to the `Store` contract (which
//! `store_contract.rs` checks on it like on every backend): two nodes on
//! one database (two stores, two pools), the feed of one node's changes
//! to the others, a database that goes away, the migrations, the opt-in
//! one-node lock, and copies between sled and PostgreSQL.
//! All against a real PostgreSQL (`crate::pg`).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use frontdesk::conversation::{Event, HandoffReason, Visitor};
use frontdesk::handoff::Waiting;
use frontdesk::store::{
    AgentRecord, BackupWriter, Batch, Change, IndexOp, PgOptions, PgStore, Presence, SledStore,
    Store, StoreError, SCHEMA_VERSION,
};

use crate::pg;

fn note(text: &str) -> Event {
    Event::InternalNote {
        agent: "alex".into(),
        text: text.into(),
    }
}

fn msg(text: &str, client_id: &str) -> Event {
    Event::VisitorMessage {
        text: text.into(),
        client_id: client_id.into(),
    }
}

/// Runs `f` on two threads at once (after a barrier) and returns both
/// results.
fn at_once<T: Send + 'static>(f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let gate = Arc::new(Barrier::new(2));
    (0..2)
        .map(|i| {
            let (f, gate) = (Arc::clone(&f), Arc::clone(&gate));
            std::thread::spawn(move || {
                gate.wait();
                f(i)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect()
}

/// Two nodes that read the same last seq: exactly one append wins, the
/// other gets `Conflict`, every round, and the log stays dense.
#[test]
fn of_two_nodes_that_read_the_same_seq_one_gets_a_conflict() {
    let Some(url) = pg::database() else { return };
    let nodes: Arc<[PgStore; 2]> = Arc::new([
        PgStore::open_unlocked(&url, 2).unwrap(),
        PgStore::open_unlocked(&url, 2).unwrap(),
    ]);
    nodes[0].create("c1", 1, Visitor::default()).unwrap();
    for round in 0..30u64 {
        let seen = 1 + round;
        let n = Arc::clone(&nodes);
        let results = at_once(move |i| {
            n[i].append_batch(
                "c1",
                Batch {
                    at_ms: 2,
                    events: vec![note(&format!("{round}.{i}"))],
                    after_seq: Some(seen),
                    ..Batch::default()
                },
            )
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        let lost = results
            .iter()
            .filter(|r| {
                matches!(r, Err(StoreError::Conflict { expected, found, .. })
                    if *expected == seen && *found == seen + 1)
            })
            .count();
        assert_eq!((won, lost), (1, 1), "round {round}: {results:?}");
    }
    let log = nodes[1].read("c1", 0).unwrap();
    assert_eq!(log.len(), 31);
    assert!(log.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1));
    assert_eq!(nodes[0].read("c1", 0).unwrap(), log);
}

/// A message retried through another node (its first acknowledgement
/// lost) is stored once: one node stores it, the other answers the
/// original.
#[test]
fn the_same_client_id_through_two_nodes_is_stored_once() {
    let Some(url) = pg::database() else { return };
    let nodes: Arc<[PgStore; 2]> = Arc::new([
        PgStore::open_unlocked(&url, 2).unwrap(),
        PgStore::open_unlocked(&url, 2).unwrap(),
    ]);
    nodes[0].create("c1", 1, Visitor::default()).unwrap();
    for round in 0..20 {
        let n = Arc::clone(&nodes);
        let results = at_once(move |i| {
            n[i].append(
                "c1",
                2,
                vec![msg("hi", &format!("k{round}")), note("reply")],
            )
            .unwrap()
        });
        let stored: Vec<_> = results.iter().filter(|a| !a.duplicate).collect();
        let dups: Vec<_> = results.iter().filter(|a| a.duplicate).collect();
        assert_eq!((stored.len(), dups.len()), (1, 1), "round {round}");
        assert_eq!(
            dups[0].records, stored[0].records,
            "the original, replies and all"
        );
    }
    let log = nodes[0].read("c1", 0).unwrap();
    assert_eq!(log.len(), 1 + 20 * 2, "every message once, with its reply");
}

/// A database that stops answers `Unavailable` within the pool's deadline:
/// for sessions it cut, for new connections, and for a new store; never a
/// hang, never a panic.
#[test]
fn a_stopped_database_is_unavailable_not_a_hang() {
    let Some(cluster) = pg::Cluster::start(false) else {
        return;
    };
    let url = cluster.database();
    let options = PgOptions {
        pool_size: 2,
        checkout_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        node_lock: true,
        ..PgOptions::default()
    };
    let s = PgStore::open_with(&url, &options).unwrap();
    s.create("c1", 1, Visitor::default()).unwrap();
    s.append("c1", 2, vec![note("before")]).unwrap();
    cluster.stop();
    // Each call: the pooled session is found cut, a new one cannot connect.
    let limit = options.checkout_timeout + options.connect_timeout + Duration::from_secs(1);
    for _ in 0..3 {
        let t = Instant::now();
        let r = s.append("c1", 3, vec![note("after")]);
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(t.elapsed() < limit, "took {:?}", t.elapsed());
        let t = Instant::now();
        let r = s.read("c1", 0);
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        assert!(t.elapsed() < limit, "took {:?}", t.elapsed());
    }
    let t = Instant::now();
    match PgStore::open_with(&url, &options) {
        Err(StoreError::Unavailable(m)) => assert!(!m.is_empty()),
        Err(e) => panic!("a new store on a stopped database: {e}"),
        Ok(_) => panic!("a new store on a stopped database opened"),
    }
    assert!(t.elapsed() < limit, "took {:?}", t.elapsed());
    // Back: the same store serves again (cut sessions were dropped and
    // new ones made), and nothing acknowledged was lost.
    cluster.start_again();
    s.append("c1", 4, vec![note("back")]).unwrap();
    let texts: Vec<_> = s
        .read("c1", 0)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::InternalNote { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["before", "back"]);
}

/// A port nobody listens on: `Unavailable` at once.
#[test]
fn a_closed_port_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let r = PgStore::open(&format!("postgresql://postgres@127.0.0.1:{port}/x"), 2);
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "{:?}",
        r.err()
    );
    assert!(t.elapsed() < Duration::from_secs(6));
    // A URL that does not parse is a plain error, not `Unavailable`.
    assert!(matches!(
        PgStore::open("postgresql://[nope", 2),
        Err(StoreError::Db(_))
    ));
    // TLS is not spoken yet: said at once, not as an unreachable database.
    match PgStore::open(
        &format!("postgresql://postgres@127.0.0.1:{port}/x?sslmode=require"),
        2,
    ) {
        Err(StoreError::Db(m)) => assert!(m.contains("sslmode=require"), "{m}"),
        other => panic!("TLS asked for: {:?}", other.err()),
    }
}

/// Every connection busy: a caller waits the checkout deadline, then gets
/// `Unavailable` (an export holds the only session while its callback
/// asks for another).
#[test]
fn a_busy_pool_answers_unavailable_after_its_deadline() {
    let Some(url) = pg::database() else { return };
    let s = PgStore::open_with(
        &url,
        &PgOptions {
            pool_size: 1,
            checkout_timeout: Duration::from_millis(300),
            ..PgOptions::default()
        },
    )
    .unwrap();
    s.create("c1", 1, Visitor::default()).unwrap();
    let mut inner = None;
    s.export(&mut |_, _, _| {
        if inner.is_none() {
            let t = Instant::now();
            inner = Some((s.read("c1", 0).map(drop), t.elapsed()));
        }
        Ok(())
    })
    .unwrap();
    let (r, waited) = inner.unwrap();
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // The session came back: the store works on.
    assert_eq!(s.read("c1", 0).unwrap().len(), 1);
}

/// Migrations run at open and again by hand change nothing the second
/// time: same version, same tables, data kept.
#[test]
fn migrations_run_twice_are_a_no_op() {
    let Some(url) = pg::database() else { return };
    assert_eq!(PgStore::migrate(&url).unwrap(), SCHEMA_VERSION);
    let tables = || -> Vec<String> {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let before = tables();
    assert!(before.contains(&"events".to_string()), "{before:?}");
    let s = PgStore::open(&url, 2).unwrap();
    s.create("c1", 1, Visitor::default()).unwrap();
    assert_eq!(PgStore::migrate(&url).unwrap(), SCHEMA_VERSION);
    // Nodes starting together: the advisory lock serialises them.
    let u = url.clone();
    let versions = at_once(move |_| PgStore::migrate(&u).unwrap());
    assert_eq!(versions, [SCHEMA_VERSION, SCHEMA_VERSION]);
    assert_eq!(tables(), before);
    assert_eq!(s.read("c1", 0).unwrap().len(), 1);
}

/// Several nodes share a database: a second `open` works. The one-node
/// guard is an opt-in (`PgOptions::node_lock`): with it a second such
/// store is refused with a sentence saying why (a store without it still
/// opens), and once the first is gone, it opens.
#[test]
fn nodes_share_a_database_and_the_one_node_guard_is_opt_in() {
    let Some(url) = pg::database() else { return };
    let a = PgStore::open(&url, 2).unwrap();
    let b = PgStore::open(&url, 2).unwrap();
    a.create("c1", 1, Visitor::default()).unwrap();
    assert_eq!(b.read("c1", 0).unwrap().len(), 1);
    drop((a, b));
    let only = PgOptions {
        pool_size: 2,
        node_lock: true,
        ..PgOptions::default()
    };
    let first = PgStore::open_with(&url, &only).unwrap();
    match PgStore::open_with(&url, &only) {
        Err(e) => assert!(
            e.to_string()
                .contains("another frontdesk node that asked to be the only one"),
            "{e}"
        ),
        Ok(_) => panic!("a second node opened past the guard"),
    }
    drop(PgStore::open(&url, 1).unwrap());
    drop(first);
    let t = Instant::now();
    loop {
        match PgStore::open_with(&url, &only) {
            Ok(_) => break,
            // The server lets go of the lock once it sees the session end.
            Err(_) if t.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("the lock outlived its node: {e}"),
        }
    }
}

/// Two nodes number their queue entries apart, so two visitors waiting at
/// the same moment on two nodes may get the same place: both stay
/// queued (the later one takes the next place), neither replaces the
/// other.
#[test]
fn two_nodes_queueing_at_the_same_place_keep_both() {
    let Some(url) = pg::database() else { return };
    let a = PgStore::open(&url, 2).unwrap();
    let b = PgStore::open(&url, 2).unwrap();
    let wait = |s: &PgStore, id: &str| {
        s.create(id, 1, Visitor::default()).unwrap();
        s.append_batch(
            id,
            Batch {
                at_ms: 2,
                events: vec![Event::Handoff {
                    reason: HandoffReason::Asked,
                    decision: None,
                }],
                after_seq: Some(1),
                index: vec![IndexOp::Wait(Waiting {
                    conversation: id.into(),
                    reason: HandoffReason::Asked,
                    priority: false,
                    since_ms: 2,
                    ticket: 7,
                })],
                ..Batch::default()
            },
        )
        .unwrap();
    };
    wait(&a, "on-a");
    wait(&b, "on-b");
    let queued: Vec<(String, u64)> = a
        .waiting()
        .unwrap()
        .into_iter()
        .map(|w| (w.conversation, w.ticket))
        .collect();
    assert_eq!(queued, [("on-a".to_string(), 7), ("on-b".to_string(), 8)]);
    // Put again at its own place: it stays there.
    let again = b.waiting().unwrap()[1].clone();
    b.put_waiting(&again).unwrap();
    assert_eq!(b.waiting().unwrap().len(), 2);
    assert_eq!(b.waiting().unwrap()[1].ticket, 8);
}

/// Nodes that start at once on an empty database each make a visitor
/// signing key and put it if there is none: all of them get the first.
#[test]
fn nodes_starting_at_once_share_the_first_setting_put() {
    let Some(url) = pg::database() else { return };
    let nodes: Arc<[PgStore; 2]> = Arc::new([
        PgStore::open(&url, 2).unwrap(),
        PgStore::open(&url, 2).unwrap(),
    ]);
    for round in 0..20 {
        let key = format!("k{round}");
        let n = Arc::clone(&nodes);
        let got = at_once(move |i| n[i].setting_or_put(&key, &[i as u8; 4]).unwrap());
        assert_eq!(got[0], got[1], "round {round}");
        assert_eq!(
            nodes[0].setting(&format!("k{round}")).unwrap(),
            Some(got[0].clone())
        );
    }
}

/// The next change on `rx`, within a few seconds.
fn next_change(rx: &std::sync::mpsc::Receiver<Change>) -> Change {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a change in time")
}

/// One node hears the other's writes, after their commit, in commit
/// order, and not its own; a write that is refused (a conflict) or rolled
/// back says nothing; a node that starts asks for a `Resync`. After the database restarts the feed comes back by
/// itself and says `Resync` (what was written meanwhile may be missed),
/// then carries on.
#[test]
fn a_node_hears_the_other_nodes_commits_and_a_resync_after_a_restart() {
    let Some(cluster) = pg::Cluster::start(false) else {
        return;
    };
    let url = cluster.database();
    let b = PgStore::open(&url, 2).unwrap();
    let rx = b.changes().expect("a PostgreSQL store has a feed");
    assert!(b.changes().is_none(), "one feed per store");
    // b listens before a opens, so b hears a's start: a node that starts
    // asks the others to read everything again (it may have been killed
    // with notifications unsent). Opened the other way round, whether b
    // heard it would depend on when a's notifier thread got to send it.
    let a = PgStore::open(&url, 2).unwrap();
    assert_eq!(next_change(&rx), Change::Resync);

    a.create("c1", 1, Visitor::default()).unwrap();
    b.create("mine", 1, Visitor::default()).unwrap();
    a.append("c1", 2, vec![note("x"), note("y")]).unwrap();
    let refused = a.append_batch(
        "c1",
        Batch {
            at_ms: 3,
            events: vec![note("late")],
            after_seq: Some(1),
            ..Batch::default()
        },
    );
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    a.put_agent(
        "alex",
        &AgentRecord {
            presence: Presence::Online,
            capacity: 2,
            admin: false,
            token_sha256: "00".into(),
            display_name: String::new(),
            disabled: false,
        },
    )
    .unwrap();
    a.delete("c1").unwrap();
    let appended = |first, last| Change::Appended {
        conversation: "c1".into(),
        first,
        last,
    };
    assert_eq!(next_change(&rx), appended(1, 1));
    assert_eq!(next_change(&rx), appended(2, 3));
    assert_eq!(next_change(&rx), Change::Agents);
    assert_eq!(
        next_change(&rx),
        Change::Deleted {
            conversation: "c1".into()
        }
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing more: not b's own write, not the refused one"
    );

    cluster.stop();
    cluster.start_again();
    assert_eq!(next_change(&rx), Change::Resync);
    let t = Instant::now();
    loop {
        match a.create("c2", 5, Visitor::default()) {
            Ok(_) => break,
            Err(StoreError::Unavailable(_)) if t.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        next_change(&rx),
        Change::Appended {
            conversation: "c2".into(),
            first: 1,
            last: 1
        }
    );
    // The listening thread ends with its store.
    drop(b);
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
    ));
}

/// A sled store with something in every tree.
fn fill(s: &dyn Store) {
    for (id, at) in [("a", 1_000), ("bb", 61_000), ("c", 200_000)] {
        s.create(id, at, Visitor::default()).unwrap();
    }
    s.append("a", 2_000, vec![msg("hi", "k1"), note("reply")])
        .unwrap();
    s.append_batch(
        "bb",
        Batch {
            at_ms: 62_000,
            events: vec![
                msg("help", "k2"),
                Event::Handoff {
                    reason: HandoffReason::Asked,
                    decision: None,
                },
            ],
            outbox: vec![("0001-x".into(), b"{\"hook\":1}".to_vec())],
            index: vec![IndexOp::Wait(Waiting {
                conversation: "bb".into(),
                reason: HandoffReason::Asked,
                priority: true,
                since_ms: 62_000,
                ticket: 7,
            })],
            ..Batch::default()
        },
    )
    .unwrap();
    s.append_batch(
        "c",
        Batch {
            at_ms: 201_000,
            events: vec![Event::AgentJoined {
                agent: "alex".into(),
            }],
            index: vec![IndexOp::Hold {
                agent: "alex".into(),
            }],
            ..Batch::default()
        },
    )
    .unwrap();
    s.append(
        "c",
        300_000,
        vec![Event::Rating {
            score: 5,
            comment: Some("thanks".into()),
        }],
    )
    .unwrap();
    s.put_agent(
        "alex",
        &AgentRecord {
            presence: Presence::Online,
            capacity: 3,
            admin: true,
            token_sha256: "ab".repeat(32),
            display_name: "Alex".into(),
            disabled: false,
        },
    )
    .unwrap();
    s.put_setting("visitor_secret", b"\x00\x01secret").unwrap();
    // Three parts, the last one short; and a small file.
    let big: Vec<u8> = (0..(2 * frontdesk::store::ATTACHMENT_CHUNK + 10))
        .map(|i| (i % 251) as u8)
        .collect();
    s.put_attachment("a", "f1", &big).unwrap();
    s.put_attachment("a", "f", b"small").unwrap();
    s.put_attachment("bb", "f1", b"other").unwrap();
}

type Entries = Vec<(String, Vec<u8>, Vec<u8>)>;

fn export(s: &dyn Store) -> Entries {
    let mut out = Vec::new();
    s.export(&mut |t, k, v| {
        out.push((t.to_string(), k.to_vec(), v.to_vec()));
        Ok(())
    })
    .unwrap();
    out
}

/// sled → PostgreSQL → sled: PostgreSQL's export is sled's, entry for
/// entry and in the same order, and its backup into a sled directory
/// exports the same again; the copy serves (a retried message is known).
#[test]
fn a_sled_store_copies_to_postgres_and_back_unchanged() {
    let Some(url) = pg::database() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let sled = SledStore::open(&tmp.path().join("sled")).unwrap();
    fill(&sled);
    let original = export(&sled);
    let trees: std::collections::BTreeSet<&str> =
        original.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(trees.len(), 11, "every tree has entries: {trees:?}");

    let pg = PgStore::open(&url, 2).unwrap();
    for (t, k, v) in &original {
        pg.import(t, k, v).unwrap();
    }
    pg.import_done().unwrap();
    assert_eq!(export(&pg), original);
    for id in sled.conversations().unwrap() {
        assert_eq!(pg.read(&id, 0).unwrap(), sled.read(&id, 0).unwrap());
    }
    assert_eq!(pg.waiting().unwrap(), sled.waiting().unwrap());
    assert_eq!(pg.held().unwrap(), sled.held().unwrap());
    assert_eq!(pg.ratings().unwrap(), sled.ratings().unwrap());
    assert_eq!(
        pg.attachment_bytes().unwrap(),
        sled.attachment_bytes().unwrap()
    );
    assert_eq!(
        pg.attachment_chunk("a", "f1", 2).unwrap(),
        sled.attachment_chunk("a", "f1", 2).unwrap()
    );
    let back = tmp.path().join("back");
    let mut w = BackupWriter::create(&back).unwrap();
    pg.export(&mut |t, k, v| w.put(t, k, v)).unwrap();
    w.finish().unwrap();
    let copy = SledStore::open(&back).unwrap();
    assert_eq!(export(&copy), original);
    // The copy goes on where the original stopped.
    let retry = pg.append("a", 3_000, vec![msg("hi", "k1")]).unwrap();
    assert!(retry.duplicate);
    let next = pg.append("a", 3_000, vec![note("n")]).unwrap();
    assert_eq!(next.records[0].seq, 4);
}

/// An attachment a sled store kept whole (before files were kept in
/// parts) is imported in parts: read back whole and part by part. A key
/// of an unknown tree, or one that does not parse, is an error.
#[test]
fn import_splits_a_whole_file_and_refuses_what_it_cannot_read() {
    let Some(url) = pg::database() else { return };
    let pg = PgStore::open(&url, 1).unwrap();
    pg.import("conversations", b"c1", br#"{"created_ms":5}"#)
        .unwrap();
    let chunk = frontdesk::store::ATTACHMENT_CHUNK;
    let file: Vec<u8> = (0..chunk + 3).map(|i| (i % 7) as u8).collect();
    pg.import("attachments", b"\x02c1f9", &file).unwrap();
    assert_eq!(pg.attachment("c1", "f9").unwrap(), Some(file.clone()));
    assert_eq!(
        pg.attachment_chunk("c1", "f9", 1).unwrap().as_deref(),
        Some(&file[chunk..])
    );
    assert_eq!(pg.attachment_chunk("c1", "f9", 2).unwrap(), None);
    assert!(pg.import("nonsense", b"k", b"v").is_err());
    assert!(pg.import("events", b"\x09c1", b"{}").is_err());
    assert!(pg.import("conversations", b"../x", b"{}").is_err());
    // An event of a conversation that is not there.
    let mut key = b"\x02zz".to_vec();
    key.extend_from_slice(&1u64.to_be_bytes());
    let record = serde_json::to_vec(&frontdesk::conversation::Record {
        seq: 1,
        at_ms: 5,
        event: Event::Started {
            visitor: Visitor::default(),
        },
    })
    .unwrap();
    match pg.import("events", &key, &record) {
        Err(StoreError::Db(m)) => assert!(m.contains("23503"), "a foreign key: {m}"),
        other => panic!("an orphan event imported: {other:?}"),
    }
    key[1..3].copy_from_slice(b"c1");
    pg.import("events", &key, &record).unwrap();
    assert_eq!(pg.read("c1", 0).unwrap().len(), 1);
}

/// The store dropped on a thread of a tokio runtime (a server ending its
/// `main`, an app's last reference going inside a task): its sessions
/// close without a panic, though the sync client closes each with a
/// runtime of its own, which tokio refuses inside another.
#[test]
fn the_store_drops_on_a_runtime_thread_without_a_panic() {
    let Some(url) = pg::database() else { return };
    for multi in [true, false] {
        let mut builder = if multi {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let rt = builder.enable_all().build().unwrap();
        let s = PgStore::open_unlocked(&url, 2).unwrap();
        let id = if multi { "drop-multi" } else { "drop-current" };
        s.create(id, 1, Visitor::default()).unwrap();
        s.outbox_lease().unwrap();
        let _changes = s.changes();
        s.typing(id, true);
        rt.block_on(async move {
            tokio::spawn(async move { drop(s) }).await.unwrap();
        });
    }
}

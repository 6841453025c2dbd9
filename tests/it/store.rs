//! The sled store on a temp directory: what is acknowledged is there after
//! a reopen, in order, once.

use std::sync::Arc;

use frontdesk::conversation::{Conversation, Event, HandoffReason, Visitor};
use frontdesk::handoff::{Presence, Queue};
use frontdesk::store::{AgentRecord, SledStore, Store, StoreError};

fn msg(text: &str, client_id: &str) -> Event {
    Event::VisitorMessage {
        text: text.into(),
        client_id: client_id.into(),
    }
}

#[test]
fn write_reopen_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let visitor = Visitor {
        name: Some("Ada".into()),
        ..Visitor::default()
    };
    {
        let s = SledStore::open(dir.path()).unwrap();
        s.create("c1", 1_000, visitor.clone()).unwrap();
        s.create("c2", 1_000, Visitor::default()).unwrap();
        for i in 0..300 {
            let a = s
                .append(
                    "c1",
                    2_000 + i,
                    vec![msg(&format!("m{i}"), &format!("k{i}"))],
                )
                .unwrap();
            assert_eq!(a.records[0].seq, i as u64 + 2);
        }
        s.append(
            "c2",
            5_000,
            vec![
                Event::AgentJoined {
                    agent: "alex".into(),
                },
                Event::Closed { by: "alex".into() },
            ],
        )
        .unwrap();
        assert!(matches!(
            s.create("c1", 0, Visitor::default()),
            Err(StoreError::Exists(_))
        ));
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.conversations().unwrap(), ["c1", "c2"]);
    let log = s.read("c1", 0).unwrap();
    assert_eq!(log.len(), 301);
    assert_eq!(log[0].event, Event::Started { visitor });
    for (i, r) in log.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "dense sequence numbers");
    }
    assert_eq!(log[300].event, msg("m299", "k299"));
    // Reading after a sequence number gives exactly the rest.
    let tail = s.read("c1", 298).unwrap();
    assert_eq!(
        tail.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [299, 300, 301]
    );
    assert!(s.read("c1", 301).unwrap().is_empty());
    assert!(s.read("c1", u64::MAX).unwrap().is_empty());
    // A conversation's state is the fold of what was read back.
    let c2 = Conversation::from_log(&s.read("c2", 0).unwrap());
    assert_eq!(c2.phase.as_str(), "closed");
}

#[test]
fn a_retry_with_the_same_client_id_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    s.create("c", 0, Visitor::default()).unwrap();
    let first = s
        .append(
            "c",
            1,
            vec![
                msg("hello", "abc"),
                Event::Fallback {
                    text: "?".into(),
                    trace: String::new(),
                    decision: None,
                },
            ],
        )
        .unwrap();
    assert!(!first.duplicate);
    let again = s.append("c", 2, vec![msg("hello", "abc")]).unwrap();
    // A retry gets the original and its reply back, as first stored.
    assert!(again.duplicate);
    assert_eq!(again.records, first.records);
    drop(s);
    let s = SledStore::open(dir.path()).unwrap();
    assert!(
        s.append("c", 3, vec![msg("hello", "abc")])
            .unwrap()
            .duplicate,
        "after a restart too"
    );
    assert_eq!(s.read("c", 0).unwrap().len(), 3);
    // The same client id in another conversation is another message.
    s.create("d", 0, Visitor::default()).unwrap();
    assert!(
        !s.append("d", 1, vec![msg("hello", "abc")])
            .unwrap()
            .duplicate
    );
}

#[test]
fn the_queue_survives_a_restart_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Queue::default();
    let order;
    {
        let s = SledStore::open(dir.path()).unwrap();
        for (i, (c, r)) in [
            ("a", HandoffReason::Asked),
            ("b", HandoffReason::LowConfidence),
            ("c", HandoffReason::NegativeSentiment),
            ("d", HandoffReason::Asked),
        ]
        .into_iter()
        .enumerate()
        {
            q.enqueue(c, r, i as i64);
        }
        for w in q.waiting() {
            s.put_waiting(w).unwrap();
        }
        q.remove("b");
        s.remove_waiting("b").unwrap();
        order = q.waiting().to_vec();
        s.put_agent(
            "alex",
            &AgentRecord {
                presence: Presence::Online,
                capacity: 3,
                admin: false,
                token_sha256: "ab".into(),
                display_name: String::new(),
                disabled: false,
            },
        )
        .unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.waiting().unwrap(), order);
    let names: Vec<&str> = order.iter().map(|w| w.conversation.as_str()).collect();
    assert_eq!(names, ["c", "a", "d"], "upset first, then arrival");
    let mut back = Queue::default();
    for w in s.waiting().unwrap() {
        back.restore(w);
    }
    assert_eq!(back.waiting(), q.waiting());
    assert_eq!(
        s.agents().unwrap(),
        [(
            "alex".to_string(),
            AgentRecord {
                presence: Presence::Online,
                capacity: 3,
                admin: false,
                token_sha256: "ab".into(),
                display_name: String::new(),
                disabled: false,
            }
        )]
    );
}

#[test]
fn ratings_are_indexed_and_delete_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    s.create("c", 0, Visitor::default()).unwrap();
    s.create("keep", 0, Visitor::default()).unwrap();
    s.append(
        "c",
        1,
        vec![
            msg("hi", "1"),
            Event::Closed { by: "alex".into() },
            Event::Rating {
                score: 4,
                comment: Some("ok".into()),
            },
        ],
    )
    .unwrap();
    let r = s.ratings().unwrap();
    assert_eq!((r.len(), r[0].score, r[0].seq), (1, 4, 4));
    s.delete("c").unwrap();
    assert!(matches!(s.read("c", 0), Err(StoreError::NotFound(_))));
    assert!(s.ratings().unwrap().is_empty());
    assert!(matches!(s.delete("c"), Err(StoreError::NotFound(_))));
    assert_eq!(s.conversations().unwrap(), ["keep"]);
    // Its client ids are gone too: the id can start over.
    s.create("c", 5, Visitor::default()).unwrap();
    assert!(!s.append("c", 6, vec![msg("hi", "1")]).unwrap().duplicate);
}

#[test]
fn bad_ids_and_unknown_conversations_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    for bad in ["", "a/b", "x\0y", "ü", &"a".repeat(65)] {
        assert!(
            matches!(
                s.create(bad, 0, Visitor::default()),
                Err(StoreError::BadId(_))
            ),
            "{bad:?}"
        );
        assert!(matches!(s.read(bad, 0), Err(StoreError::BadId(_))));
    }
    assert!(matches!(
        s.append("nope", 0, vec![msg("x", "1")]),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(s.read("nope", 0), Err(StoreError::NotFound(_))));
}

#[test]
fn concurrent_writers_keep_every_conversation_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SledStore::open(dir.path()).unwrap());
    let writers = 16;
    let per = 40;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let s = s.clone();
            scope.spawn(move || {
                let id = format!("w{w}");
                s.create(&id, 0, Visitor::default()).unwrap();
                for i in 0..per {
                    s.append(&id, i, vec![msg(&format!("{i}"), &format!("{i}"))])
                        .unwrap();
                }
            });
        }
    });
    for w in 0..writers {
        let log = s.read(&format!("w{w}"), 1).unwrap();
        let texts: Vec<String> = log
            .iter()
            .map(|r| match &r.event {
                Event::VisitorMessage { text, .. } => text.clone(),
                e => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(texts, (0..per).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}

fn fill(s: &SledStore, convs: usize, per: usize) {
    for c in 0..convs {
        let id = format!("c{c}");
        s.create(&id, 0, Visitor::default()).unwrap();
        for i in 0..per {
            s.append(
                &id,
                i as i64,
                vec![msg(
                    &format!("message {i} of a conversation about an order"),
                    &format!("{i}"),
                )],
            )
            .unwrap();
        }
    }
}

#[test]
fn compaction_keeps_everything_live_and_gives_space_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    {
        let s = SledStore::open(&dir).unwrap();
        fill(&s, 40, 50);
        for c in (0..40).step_by(2) {
            s.delete(&format!("c{c}")).unwrap();
        }
        let mut q = Queue::default();
        q.enqueue("c1", HandoffReason::Asked, 0);
        s.put_waiting(&q.waiting()[0]).unwrap();
        s.put_agent(
            "alex",
            &AgentRecord {
                presence: Presence::Away,
                capacity: 2,
                admin: true,
                token_sha256: String::new(),
                display_name: String::new(),
                disabled: false,
            },
        )
        .unwrap();
    }
    let (before, after) = SledStore::compact(&dir).unwrap();
    assert!(
        after < before,
        "compaction gave nothing back: {before} → {after} bytes"
    );
    let s = SledStore::open(&dir).unwrap();
    assert_eq!(s.conversations().unwrap().len(), 20);
    let log = s.read("c1", 0).unwrap();
    assert_eq!(log.len(), 51);
    assert_eq!(
        log[50].event,
        msg("message 49 of a conversation about an order", "49")
    );
    assert!(
        s.append("c1", 0, vec![msg("again", "49")])
            .unwrap()
            .duplicate,
        "client ids survive"
    );
    assert_eq!(s.waiting().unwrap().len(), 1);
    assert_eq!(s.agents().unwrap()[0].1.capacity, 2);
    assert!(!root.path().join("data.compacting").exists());
    assert!(!root.path().join("data.before-compaction").exists());
}

/// A crash between the two renames of a compaction's swap leaves the old
/// store aside and the fresh one complete: `open` finishes the swap.
#[test]
fn an_interrupted_compaction_is_finished_on_open() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    {
        let s = SledStore::open(&dir).unwrap();
        fill(&s, 3, 5);
    }
    // Make the state of a swap cut short: a complete fresh copy and the old
    // store moved aside, no `data`.
    let fresh = root.path().join("data.compacting");
    let old = root.path().join("data.before-compaction");
    std::fs::rename(&dir, &old).unwrap();
    copy_dir(&old, &fresh);
    let s = SledStore::open(&dir).unwrap();
    assert_eq!(s.conversations().unwrap().len(), 3);
    assert_eq!(s.read("c2", 0).unwrap().len(), 6);
    assert!(!old.exists() && !fresh.exists());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Issue 15, defect 1: a crash could leave a `client_ids` entry durable
/// without its event. After the restart another event took that sequence
/// number, and the visitor's retry was then taken for a duplicate and
/// answered with nothing: the message was never stored. This writes that
/// crash state with sled directly (the key layout is the one documented in
/// `src/store/sled.rs`), then retries.
#[test]
fn a_retry_is_stored_when_its_index_entry_names_another_event() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        s.create("c1", 1_000, Visitor::default()).unwrap();
    }
    {
        // The orphan: client id `k1` says seq 2, and no event 2 exists.
        let db = crate::raw_sled(dir.path());
        let ids = db.open_tree("client_ids").unwrap();
        let mut key = vec![2u8];
        key.extend_from_slice(b"c1k1");
        ids.insert(key, &2u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    // Another writer takes seq 2 after the restart.
    let note = s
        .append(
            "c1",
            2_000,
            vec![Event::InternalNote {
                agent: "alex".into(),
                text: "checking".into(),
            }],
        )
        .unwrap();
    assert_eq!(note.records[0].seq, 2);
    // The visitor's retry must be stored, not taken for a duplicate.
    let retry = s.append("c1", 3_000, vec![msg("hello", "k1")]).unwrap();
    assert!(!retry.duplicate, "a lost message was taken for a duplicate");
    assert_eq!(retry.records.len(), 1);
    assert_eq!(retry.records[0].seq, 3);
    let log = s.read("c1", 0).unwrap();
    assert_eq!(log.len(), 3);
    // And a second retry is now a duplicate that returns the original.
    let again = s.append("c1", 4_000, vec![msg("hello", "k1")]).unwrap();
    assert!(again.duplicate);
    assert_eq!(again.records.first().map(|r| r.seq), Some(3));
}

/// CI's flake of `an_older_store_gets_its_time_index_on_open`: sled
/// reports a held file lock as `ErrorKind::Other` ("could not acquire
/// lock"), not `WouldBlock`, so the wait for a store dropped a moment ago
/// never waited. Here the lock is held for 300 ms by a raw open.
#[test]
fn opening_waits_for_a_lock_held_a_moment_longer() {
    let dir = tempfile::tempdir().unwrap();
    drop(SledStore::open(dir.path()).unwrap());
    let held = sled::open(dir.path()).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    let opened = SledStore::open(dir.path());
    release.join().unwrap();
    assert!(opened.is_ok(), "{:?}", opened.err().map(|e| e.to_string()));
    drop(opened);
    let held = super::raw_sled(dir.path());
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    drop(super::raw_sled(dir.path()));
    release.join().unwrap();
}

//! The `Store` contract (its doc comment), checked the same way against
//! every backend: each check takes a fresh store and is called with a
//! `SledStore` in a temp dir, a `MemStore`, and a `PgStore` on a fresh
//! database of the tests' throwaway PostgreSQL (`crate::pg`; skipped,
//! with a line saying so, where PostgreSQL is not installed and not
//! required).

use std::sync::{Arc, Barrier};

use frontdesk::conversation::HandoffReason;
use frontdesk::conversation::{Event, Visitor};
use frontdesk::handoff::Waiting;
use frontdesk::store::{
    Batch, EventCursor, FactsRow, IndexOp, MemStore, PgStore, SledStore, Store, StoreError,
    MINUTE_MS,
};

/// Runs `check` on each backend, naming the backend in a failure.
fn each_backend(check: fn(Arc<dyn Store>)) {
    let dir = tempfile::tempdir().unwrap();
    let mut backends: Vec<(&str, Arc<dyn Store>)> = vec![
        ("sled", Arc::new(SledStore::open(dir.path()).unwrap())),
        ("memory", Arc::new(MemStore::new())),
    ];
    if let Some(url) = crate::pg::database() {
        backends.push(("postgres", Arc::new(PgStore::open(&url, 4).unwrap())));
    }
    for (name, store) in backends {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(store)));
        if let Err(p) = r {
            eprintln!("the {name} backend broke the contract");
            std::panic::resume_unwind(p);
        }
    }
}

fn msg(text: &str, client_id: &str) -> Event {
    Event::VisitorMessage {
        text: text.into(),
        client_id: client_id.into(),
    }
}

fn note(text: &str) -> Event {
    Event::InternalNote {
        agent: "alex".into(),
        text: text.into(),
    }
}

fn after(seq: u64, at_ms: i64, events: Vec<Event>) -> Batch {
    Batch {
        at_ms,
        events,
        after_seq: Some(seq),
        ..Batch::default()
    }
}

#[test]
fn of_two_writers_that_read_the_same_seq_one_gets_a_conflict() {
    each_backend(|s| {
        s.create("c1", 1, Visitor::default()).unwrap();
        // In turn: the second writer's view is stale.
        s.append_batch("c1", after(1, 2, vec![note("first")]))
            .unwrap();
        match s.append_batch("c1", after(1, 3, vec![note("second")])) {
            Err(StoreError::Conflict {
                id,
                expected,
                found,
            }) => assert_eq!((id.as_str(), expected, found), ("c1", 1, 2)),
            other => panic!("a stale writer got {other:?}"),
        }
        assert_eq!(s.read("c1", 0).unwrap().len(), 2, "nothing stored");
        // At once, from two threads, many times: exactly one wins each
        // round, and the log stays dense.
        for round in 0..50u64 {
            let seen = 2 + round;
            let gate = Arc::new(Barrier::new(2));
            let results: Vec<_> = (0..2)
                .map(|w| {
                    let (s, gate) = (Arc::clone(&s), Arc::clone(&gate));
                    std::thread::spawn(move || {
                        gate.wait();
                        s.append_batch("c1", after(seen, 4, vec![note(&format!("{round}.{w}"))]))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            let won = results.iter().filter(|r| r.is_ok()).count();
            let lost = results
                .iter()
                .filter(|r| matches!(r, Err(StoreError::Conflict { expected, found, .. }) if *expected == seen && *found == seen + 1))
                .count();
            assert_eq!((won, lost), (1, 1), "round {round}: {results:?}");
        }
        let log = s.read("c1", 0).unwrap();
        assert_eq!(log.len(), 52);
        assert!(log.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1));
        // `None` appends after whatever is there.
        let a = s.append("c1", 5, vec![note("any")]).unwrap();
        assert_eq!(a.records[0].seq, 53);
    });
}

#[test]
fn a_retried_message_is_stored_once_and_answered_as_first_stored() {
    each_backend(|s| {
        s.create("c1", 1, Visitor::default()).unwrap();
        let reply = Event::Fallback {
            text: "sorry?".into(),
            trace: String::new(),
            decision: None,
        };
        let first = s
            .append("c1", 2, vec![msg("hi", "k1"), reply.clone()])
            .unwrap();
        assert!(!first.duplicate);
        s.append("c1", 3, vec![msg("again", "k2")]).unwrap();
        let retry = s.append("c1", 4, vec![msg("hi", "k1")]).unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.records, first.records, "the original and its reply");
        assert_eq!(s.read("c1", 0).unwrap().len(), 4);
        // A client id is per conversation.
        s.create("c2", 1, Visitor::default()).unwrap();
        assert!(!s.append("c2", 5, vec![msg("hi", "k1")]).unwrap().duplicate);
    });
}

fn waiting(id: &str, ticket: u64) -> Waiting {
    Waiting {
        conversation: id.into(),
        reason: HandoffReason::Asked,
        priority: false,
        since_ms: 2,
        ticket,
    }
}

#[test]
fn index_ops_travel_with_their_events_and_delete_removes_them() {
    each_backend(|s| {
        for id in ["a", "b"] {
            s.create(id, 1, Visitor::default()).unwrap();
        }
        let handoff = Event::Handoff {
            reason: HandoffReason::Asked,
            decision: None,
        };
        for (id, ticket) in [("a", 1), ("b", 2)] {
            s.append_batch(
                id,
                Batch {
                    at_ms: 2,
                    events: vec![handoff.clone()],
                    index: vec![IndexOp::Wait(waiting(id, ticket))],
                    ..Batch::default()
                },
            )
            .unwrap();
        }
        assert_eq!(s.waiting().unwrap(), [waiting("a", 1), waiting("b", 2)]);
        s.append_batch(
            "a",
            Batch {
                at_ms: 3,
                events: vec![Event::AgentJoined {
                    agent: "alex".into(),
                }],
                index: vec![
                    IndexOp::Hold {
                        agent: "alex".into(),
                    },
                    IndexOp::Unwait,
                ],
                ..Batch::default()
            },
        )
        .unwrap();
        assert_eq!(s.waiting().unwrap(), [waiting("b", 2)]);
        assert_eq!(s.held().unwrap(), [("a".into(), "alex".into())]);
        // A conflict or a duplicate stores none of the batch's index ops.
        let stale = Batch {
            index: vec![IndexOp::Unhold],
            ..after(1, 4, vec![note("late")])
        };
        assert!(matches!(
            s.append_batch("a", stale),
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(s.held().unwrap().len(), 1);
        // A batch may only queue its own conversation.
        let wrong = Batch {
            at_ms: 4,
            events: vec![note("x")],
            index: vec![IndexOp::Wait(waiting("b", 9))],
            ..Batch::default()
        };
        assert!(s.append_batch("a", wrong).is_err());
        assert_eq!(s.read("a", 0).unwrap().len(), 3, "nothing stored");
        s.append_batch(
            "a",
            Batch {
                at_ms: 5,
                events: vec![Event::Transfer {
                    from: "alex".into(),
                    to: "sam".into(),
                }],
                index: vec![IndexOp::Hold {
                    agent: "sam".into(),
                }],
                ..Batch::default()
            },
        )
        .unwrap();
        assert_eq!(s.held().unwrap(), [("a".into(), "sam".into())]);
        s.delete("a").unwrap();
        s.delete("b").unwrap();
        assert!(s.held().unwrap().is_empty());
        assert!(s.waiting().unwrap().is_empty());
    });
}

/// Conversations at minute-scale times: (id, created, [event times]).
const TIMELINE: [(&str, i64, &[i64]); 4] = [
    ("early", 1_000, &[2_000, 61_000]),
    ("busy", 59_000, &[59_500, 60_000, 60_000, 200_000]),
    ("late", 300_000, &[300_001]),
    ("gone", 70_000, &[71_000]),
];

fn fill_timeline(s: &dyn Store) {
    for (id, created, times) in TIMELINE {
        s.create(id, created, Visitor::default()).unwrap();
        for (i, t) in times.iter().enumerate() {
            s.append(id, *t, vec![note(&format!("{id} {i}"))]).unwrap();
        }
    }
    s.delete("gone").unwrap();
}

#[test]
fn activity_in_a_window_comes_from_the_time_index() {
    each_backend(|s| {
        fill_timeline(s.as_ref());
        let ids = |from, to| -> Vec<(String, i64, i64)> {
            s.active(from, to)
                .unwrap()
                .into_iter()
                .map(|a| (a.conversation, a.started_at_ms, a.last_at_ms))
                .collect()
        };
        assert_eq!(
            ids(0, 60_000),
            [
                ("early".into(), 1_000, 2_000),
                ("busy".into(), 59_000, 59_500)
            ]
        );
        // The same minute, a narrower window: exact times are checked.
        assert_eq!(ids(2_001, 59_000), []);
        assert_eq!(
            ids(60_000, 100_000),
            [
                ("busy".into(), 59_000, 60_000),
                ("early".into(), 1_000, 61_000)
            ]
        );
        assert_eq!(ids(300_001, 300_002), [("late".into(), 300_000, 300_001)]);
        assert_eq!(ids(0, 0), []);
        assert_eq!(ids(400_000, i64::MAX), []);
        assert_eq!(ids(i64::MIN, 0), []);
        assert_eq!(
            ids(i64::MIN, i64::MAX).len(),
            3,
            "deleted ones are not seen"
        );
    });
}

#[test]
fn events_since_a_time_page_in_time_order() {
    each_backend(|s| {
        fill_timeline(s.as_ref());
        let all = s.events_between(0, i64::MAX, None, 1000).unwrap();
        let seen: Vec<(i64, &str, u64)> = all
            .iter()
            .map(|t| (t.record.at_ms, t.conversation.as_str(), t.record.seq))
            .collect();
        assert_eq!(
            seen,
            [
                (1_000, "early", 1),
                (2_000, "early", 2),
                (59_000, "busy", 1),
                (59_500, "busy", 2),
                (60_000, "busy", 3),
                (60_000, "busy", 4),
                (61_000, "early", 3),
                (200_000, "busy", 5),
                (300_000, "late", 1),
                (300_001, "late", 2),
            ]
        );
        // Page by page, three at a time, from the cursor of the last one.
        for size in [1, 3, 4] {
            let mut paged = Vec::new();
            let mut cursor: Option<EventCursor> = None;
            loop {
                let page = s
                    .events_between(0, i64::MAX, cursor.as_ref(), size)
                    .unwrap();
                assert!(page.len() <= size);
                let Some(last) = page.last() else { break };
                cursor = Some(last.cursor());
                paged.extend(page);
            }
            assert_eq!(paged, all, "pages of {size}");
        }
        let window = s.events_between(59_500, 61_000, None, 100).unwrap();
        assert_eq!(window.len(), 3);
        assert!(window
            .iter()
            .all(|t| t.record.at_ms >= 59_500 && t.record.at_ms < 61_000));
        assert!(s.events_between(0, i64::MAX, None, 0).unwrap().is_empty());
    });
}

#[test]
fn the_time_index_has_one_entry_per_conversation_per_minute() {
    each_backend(|s| {
        fill_timeline(s.as_ref());
        let entries = s.minutes(0, 120_000).unwrap();
        assert_eq!(
            entries,
            [
                (0, "busy".to_string()),
                (0, "early".to_string()),
                (60_000, "busy".to_string()),
                (60_000, "early".to_string()),
            ]
        );
        assert_eq!(s.minutes(-MINUTE_MS, 0).unwrap(), []);
    });
}

/// A `MemStore` exports the trees and keys a `SledStore` does: its backup
/// opens as a whole sled store with the same data.
#[test]
fn a_memory_store_backs_up_into_a_sled_store() {
    let m = MemStore::new();
    fill_timeline(&m);
    m.append_batch(
        "busy",
        Batch {
            at_ms: 400_000,
            events: vec![
                msg("hi", "k1"),
                Event::Handoff {
                    reason: HandoffReason::Asked,
                    decision: None,
                },
            ],
            index: vec![IndexOp::Wait(waiting("busy", 4))],
            ..Batch::default()
        },
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut w = frontdesk::store::BackupWriter::create(&tmp.path().join("copy")).unwrap();
    m.export(&mut |tree, k, v| w.put(tree, k, v)).unwrap();
    w.finish().unwrap();
    let s = SledStore::open(&tmp.path().join("copy")).unwrap();
    assert_eq!(s.conversations().unwrap(), m.conversations().unwrap());
    for id in m.conversations().unwrap() {
        assert_eq!(s.read(&id, 0).unwrap(), m.read(&id, 0).unwrap());
    }
    assert_eq!(s.waiting().unwrap(), m.waiting().unwrap());
    assert_eq!(
        s.events_between(0, i64::MAX, None, 100).unwrap(),
        m.events_between(0, i64::MAX, None, 100).unwrap()
    );
    assert!(
        s.append("busy", 400_001, vec![msg("hi", "k1")])
            .unwrap()
            .duplicate
    );
}

/// A store written before the time index existed gets it on its first
/// open: its old events are found by time.
#[test]
fn an_older_store_gets_its_time_index_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    drop({
        let s = SledStore::open(&dir).unwrap();
        fill_timeline(&s);
        s
    });
    // What a store made before the index looks like: no entries, no mark.
    {
        let db = crate::raw_sled(&dir);
        db.drop_tree("activity").unwrap();
        db.open_tree("settings")
            .unwrap()
            .remove("_activity_index")
            .unwrap();
        db.flush().unwrap();
    }
    let s = SledStore::open(&dir).unwrap();
    assert_eq!(s.active(i64::MIN, i64::MAX).unwrap().len(), 3);
    assert_eq!(s.events_between(0, i64::MAX, None, 100).unwrap().len(), 10);
}

fn row(id: &str, started_ms: i64, visitor: Option<&str>, data: &[u8]) -> FactsRow {
    FactsRow {
        conversation: id.into(),
        started_ms,
        visitor: visitor.map(String::from),
        data: data.to_vec(),
    }
}

#[test]
fn report_facts_are_read_by_start_range_and_by_visitor() {
    each_backend(|s| {
        assert_eq!(s.facts(i64::MIN, i64::MAX).unwrap(), vec![]);
        assert_eq!(s.facts_mark().unwrap(), None);
        s.put_facts(&[
            row("b", 2_000, Some("id:7"), b"two"),
            row("a", 2_000, None, b"one"),
            row("c", -5, Some("email:x@y.z"), b"early"),
            row("d", 9_000, Some("id:7"), b"late"),
        ])
        .unwrap();
        let ids = |rows: Vec<FactsRow>| -> Vec<String> {
            rows.into_iter().map(|r| r.conversation).collect()
        };
        // (start, id) order; `to` exclusive; negative starts sort first.
        assert_eq!(
            ids(s.facts(i64::MIN, i64::MAX).unwrap()),
            ["c", "a", "b", "d"]
        );
        assert_eq!(ids(s.facts(2_000, 9_000).unwrap()), ["a", "b"]);
        assert_eq!(ids(s.facts(2_001, 9_001).unwrap()), ["d"]);
        assert_eq!(s.facts(5, 5).unwrap(), vec![]);
        assert_eq!(
            s.facts(-5, -4).unwrap(),
            vec![row("c", -5, Some("email:x@y.z"), b"early")]
        );
        assert_eq!(
            s.visitor_starts("id:7", 0, i64::MAX).unwrap(),
            vec![(2_000, "b".to_string()), (9_000, "d".to_string())]
        );
        assert_eq!(s.visitor_starts("id:7", 2_001, 9_000).unwrap(), vec![]);
        // A visitor that is a prefix of another is not confused with it.
        assert_eq!(s.visitor_starts("id:", 0, i64::MAX).unwrap(), vec![]);
        // A new row replaces the old one, its visitor entry included.
        s.put_facts(&[row("b", 3_000, Some("email:b@c.d"), b"moved")])
            .unwrap();
        assert_eq!(ids(s.facts(0, i64::MAX).unwrap()), ["a", "b", "d"]);
        assert_eq!(s.facts(3_000, 3_001).unwrap()[0].data, b"moved");
        assert_eq!(
            s.visitor_starts("id:7", 0, i64::MAX).unwrap(),
            vec![(9_000, "d".to_string())]
        );
        assert_eq!(
            s.visitor_starts("email:b@c.d", 0, i64::MAX).unwrap(),
            vec![(3_000, "b".to_string())]
        );
        s.put_facts_mark(b"v1:42").unwrap();
        assert_eq!(s.facts_mark().unwrap().as_deref(), Some(&b"v1:42"[..]));
        s.clear_facts().unwrap();
        assert_eq!(s.facts(i64::MIN, i64::MAX).unwrap(), vec![]);
        assert_eq!(
            s.visitor_starts("id:7", i64::MIN, i64::MAX).unwrap(),
            vec![]
        );
        assert_eq!(s.facts_mark().unwrap(), None);
    });
}

#[test]
fn deleting_a_conversation_drops_its_report_facts() {
    each_backend(|s| {
        s.create("gone", 1_000, Visitor::default()).unwrap();
        s.create("kept", 1_000, Visitor::default()).unwrap();
        s.put_facts(&[
            row("gone", 1_000, Some("id:1"), b"x"),
            row("kept", 1_000, Some("id:1"), b"y"),
        ])
        .unwrap();
        s.delete("gone").unwrap();
        let left: Vec<String> = s
            .facts(0, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|r| r.conversation)
            .collect();
        assert_eq!(left, ["kept"]);
        assert_eq!(
            s.visitor_starts("id:1", 0, i64::MAX).unwrap(),
            vec![(1_000, "kept".to_string())]
        );
        // A row put back after the delete (a refresh that read the log
        // before it) is dropped by `drop_facts`, visitor entry and all.
        s.put_facts(&[row("gone", 1_000, Some("id:1"), b"x")])
            .unwrap();
        s.drop_facts("gone").unwrap();
        s.drop_facts("never-was").unwrap();
        assert_eq!(s.facts(0, i64::MAX).unwrap().len(), 1);
        assert_eq!(s.visitor_starts("id:1", 0, i64::MAX).unwrap().len(), 1);
    });
}

#[test]
fn report_facts_stay_out_of_a_backup() {
    each_backend(|s| {
        s.create("c", 1_000, Visitor::default()).unwrap();
        s.put_facts(&[row("c", 1_000, None, b"derived")]).unwrap();
        s.put_facts_mark(b"mark").unwrap();
        let mut trees = std::collections::BTreeSet::new();
        s.export(&mut |tree, _, v| {
            assert_ne!(v, b"derived", "facts are rebuilt, not copied");
            assert_ne!(v, b"mark");
            trees.insert(tree.to_string());
            Ok(())
        })
        .unwrap();
        assert!(trees.contains("events"));
    });
}

/// Attachments: stored for an existing conversation only, read back as
/// written, deleted one by one or with their conversation (and no other's),
/// and carried by a backup.
#[test]
fn attachments_live_and_die_with_their_conversation() {
    each_backend(|s| {
        s.create("c1", 1_000, Visitor::default()).unwrap();
        s.create("c2", 1_000, Visitor::default()).unwrap();
        assert!(matches!(
            s.put_attachment("nope", "a1", b"x"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.put_attachment("c1", "../a", b"x"),
            Err(StoreError::BadId(_))
        ));
        s.put_attachment("c1", "a1", b"\x89PNG one").unwrap();
        s.put_attachment("c1", "a2", b"%PDF- two").unwrap();
        s.put_attachment("c2", "a1", b"other").unwrap();
        assert_eq!(
            s.attachment("c1", "a1").unwrap().as_deref(),
            Some(&b"\x89PNG one"[..])
        );
        assert_eq!(
            s.attachment("c2", "a1").unwrap().as_deref(),
            Some(&b"other"[..])
        );
        assert_eq!(s.attachment("c1", "a3").unwrap(), None);
        s.delete_attachment("c1", "a2").unwrap();
        assert_eq!(s.attachment("c1", "a2").unwrap(), None);
        // A backup carries them.
        let tmp = tempfile::tempdir().unwrap();
        let mut w = frontdesk::store::BackupWriter::create(&tmp.path().join("copy")).unwrap();
        s.export(&mut |tree, k, v| w.put(tree, k, v)).unwrap();
        w.finish().unwrap();
        let copy = SledStore::open(&tmp.path().join("copy")).unwrap();
        assert_eq!(
            copy.attachment("c1", "a1").unwrap().as_deref(),
            Some(&b"\x89PNG one"[..])
        );
        // Deleting c1 deletes its files, not c2's.
        s.delete("c1").unwrap();
        assert_eq!(s.attachment("c1", "a1").unwrap(), None);
        assert_eq!(
            s.attachment("c2", "a1").unwrap().as_deref(),
            Some(&b"other"[..])
        );
    });
}

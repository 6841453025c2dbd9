//! Startup's rebuild of the queue and of who holds what, from the store's
//! handoff indexes (the queue and the held index), and the index changes
//! a write passes to the store with its events (`index_ops`).
//!
//! The logs are the truth and the indexes name a superset of the open
//! conversations (`store::IndexOp`: additions are durable no later than
//! their events, removals no earlier). So startup reads and folds only the
//! logs the indexes name, mending what a crash left between an index write
//! and its events; it never reads every conversation, except once on a
//! store made before the held index existed (then it folds every log, as
//! earlier versions did on every start, and records that it did).
//! Owns no state: `App::with_store` calls `restore` with the queue it
//! builds. Must not touch HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::conversation::{Conversation, Event, Phase, Record};
use crate::handoff::{Queue, Waiting};
use crate::store::{IndexOp, Result, Store, StoreError};

/// Set once the held index covers every conversation.
const HANDOFF_INDEXED: &str = "handoff_index";

/// What `restore` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restored {
    /// Conversations whose logs were read.
    pub read: usize,
    /// Index entries corrected (a crash between an index write and its
    /// events, or a store without the held index yet).
    pub mended: usize,
    /// Every log was read (the first start on an older store).
    pub full: bool,
}

/// Puts the stored queue into `queue` and marks who holds what, reading
/// only the conversations the indexes name. `queue` must know the agents
/// already (a holding is restored onto its agent).
pub fn restore(store: &dyn Store, queue: &mut Queue) -> Result<Restored> {
    let started = Instant::now();
    let full = store.setting(HANDOFF_INDEXED)?.is_none();
    let waiting = store.waiting()?;
    let held: BTreeMap<String, String> = store.held()?.into_iter().collect();
    let queued: BTreeSet<String> = waiting.iter().map(|w| w.conversation.clone()).collect();
    for w in waiting {
        queue.restore(w);
    }
    let mut named: BTreeSet<String> = queued
        .union(&held.keys().cloned().collect())
        .cloned()
        .collect();
    if full {
        named.extend(store.conversations()?);
    }
    let mut done = Restored {
        read: named.len(),
        full,
        ..Restored::default()
    };
    let named: Vec<&String> = named.iter().collect();
    for batch in named.chunks(FOLD_BATCH) {
        for (&id, conv) in batch.iter().zip(fold_all(store, batch)) {
            let conv = conv?;
            let in_queue = queued.contains(id);
            let holder = held.get(id);
            match &conv.phase {
                Phase::WithAgent { agent } => {
                    let _ = queue.claim_restored(agent, id);
                    if holder != Some(agent) {
                        store.put_held(id, agent)?;
                        done.mended += 1;
                    }
                    if in_queue {
                        store.remove_waiting(id)?;
                        done.mended += 1;
                    }
                }
                Phase::Queued { reason } => {
                    if queue.position(id).is_none() {
                        let at = conv.handoff_at_ms.unwrap_or(conv.last_at_ms);
                        queue.enqueue(id, *reason, at);
                        if let Some(w) = queue.waiting().iter().find(|w| w.conversation == *id) {
                            store.put_waiting(w)?;
                            done.mended += 1;
                        }
                    }
                    if holder.is_some() {
                        store.remove_held(id)?;
                        done.mended += 1;
                    }
                }
                Phase::Bot | Phase::Closed => {
                    queue.remove(id);
                    if in_queue {
                        store.remove_waiting(id)?;
                        done.mended += 1;
                    }
                    if holder.is_some() {
                        store.remove_held(id)?;
                        done.mended += 1;
                    }
                }
            }
        }
    }
    if full {
        store.put_setting(HANDOFF_INDEXED, b"1")?;
    }
    tracing::info!(
        read = done.read,
        mended = done.mended,
        full,
        ms = started.elapsed().as_millis() as u64,
        "queue and holdings restored"
    );
    Ok(done)
}

/// Logs folded at once: at most this many folded conversations are held
/// (the first start on an older store folds every log).
const FOLD_BATCH: usize = 1_024;
/// Below this many logs one thread reads them all.
const FOLD_SPLIT: usize = 64;

/// Each of `ids`'s logs folded, in order (a deleted one as a fresh
/// conversation, so that its index entries go). The reads are spread over
/// the cores: at a million stored messages the queue's 501 logs were a
/// tenth of a start (BENCHMARKS.md).
fn fold_all(store: &dyn Store, ids: &[&String]) -> Vec<Result<Conversation>> {
    let fold = |id: &String| match store.read(id, 0) {
        Ok(log) => Ok(Conversation::from_log(&log)),
        Err(StoreError::NotFound(_)) => Ok(Conversation::default()),
        Err(e) => Err(e),
    };
    let threads = if ids.len() < FOLD_SPLIT {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    if threads == 1 {
        return ids.iter().map(|id| fold(id)).collect();
    }
    let fold = &fold;
    std::thread::scope(|s| {
        let running: Vec<_> = ids
            .chunks(ids.len().div_ceil(threads))
            .map(|part| s.spawn(move || part.iter().map(|id| fold(id)).collect::<Vec<_>>()))
            .collect();
        running
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// The handoff index changes of appending `events` to `conv`: what the
/// write passes in its `Batch`. `enqueued` is the queue entry made for a
/// handoff among the events.
pub fn index_ops(
    conv: &Conversation,
    events: &[Event],
    now: i64,
    enqueued: Option<&Waiting>,
) -> Vec<IndexOp> {
    let mut next = conv.clone();
    for event in events {
        next.apply(&Record {
            seq: next.last_seq + 1,
            at_ms: now,
            event: event.clone(),
        });
    }
    let (before, after) = (&conv.phase, &next.phase);
    if before == after {
        return Vec::new();
    }
    let mut ops = Vec::new();
    match after {
        Phase::Queued { .. } => ops.extend(enqueued.cloned().map(IndexOp::Wait)),
        Phase::WithAgent { agent } => ops.push(IndexOp::Hold {
            agent: agent.clone(),
        }),
        Phase::Bot | Phase::Closed => {}
    }
    match before {
        Phase::Queued { .. } if !matches!(after, Phase::Queued { .. }) => ops.push(IndexOp::Unwait),
        Phase::WithAgent { .. } if !matches!(after, Phase::WithAgent { .. }) => {
            ops.push(IndexOp::Unhold)
        }
        _ => {}
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::HandoffReason;
    use crate::handoff::Presence;
    use crate::store::{Batch, MemStore};

    fn waiting(id: &str) -> Waiting {
        Waiting {
            conversation: id.into(),
            reason: HandoffReason::Asked,
            priority: false,
            since_ms: 5,
            ticket: 1,
        }
    }

    #[test]
    fn index_ops_follow_the_phase() {
        let bot = Conversation::default();
        let handoff = [Event::Handoff {
            reason: HandoffReason::Asked,
            decision: None,
        }];
        let w = waiting("c1");
        assert_eq!(
            index_ops(&bot, &handoff, 5, Some(&w)),
            [IndexOp::Wait(w.clone())]
        );
        let queued = {
            let mut c = bot.clone();
            c.phase = Phase::Queued {
                reason: HandoffReason::Asked,
            };
            c
        };
        let join = [Event::AgentJoined {
            agent: "alex".into(),
        }];
        assert_eq!(
            index_ops(&queued, &join, 6, None),
            [
                IndexOp::Hold {
                    agent: "alex".into()
                },
                IndexOp::Unwait
            ]
        );
        let held = {
            let mut c = bot.clone();
            c.phase = Phase::WithAgent {
                agent: "alex".into(),
            };
            c
        };
        let close = [Event::Closed { by: "alex".into() }];
        assert_eq!(index_ops(&held, &close, 7, None), [IndexOp::Unhold]);
        let transfer = [Event::Transfer {
            from: "alex".into(),
            to: "sam".into(),
        }];
        assert_eq!(
            index_ops(&held, &transfer, 7, None),
            [IndexOp::Hold {
                agent: "sam".into()
            }]
        );
        let note = [Event::InternalNote {
            agent: "alex".into(),
            text: "hi".into(),
        }];
        assert!(index_ops(&held, &note, 8, None).is_empty());
    }

    fn queue_with(agents: &[&str]) -> Queue {
        let mut q = Queue::default();
        for a in agents {
            q.set_agent(a, Presence::Away, 3);
        }
        q
    }

    /// A crash after an index addition but before its events: the index
    /// names a conversation whose log says otherwise; startup mends it.
    #[test]
    fn entries_whose_events_were_lost_are_mended() {
        let s = MemStore::new();
        for id in ["queued", "lost", "held", "stale"] {
            s.create(id, 1, Default::default()).unwrap();
        }
        let handoff = |id: &str, ticket| Batch {
            at_ms: 2,
            events: vec![Event::Handoff {
                reason: HandoffReason::Asked,
                decision: None,
            }],
            index: vec![IndexOp::Wait(Waiting {
                ticket,
                ..waiting(id)
            })],
            ..Batch::default()
        };
        s.append_batch("queued", handoff("queued", 1)).unwrap();
        s.append_batch("held", handoff("held", 2)).unwrap();
        s.append_batch(
            "held",
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
        // What a crash leaves: index entries without their events.
        s.put_waiting(&Waiting {
            ticket: 3,
            ..waiting("lost")
        })
        .unwrap();
        s.put_held("stale", "alex").unwrap();
        s.put_setting(HANDOFF_INDEXED, b"1").unwrap();

        let mut q = queue_with(&["alex"]);
        let done = restore(&s, &mut q).unwrap();
        assert!(!done.full);
        assert_eq!(done.read, 4, "the named ones only");
        let ids: Vec<_> = q.waiting().iter().map(|w| w.conversation.clone()).collect();
        assert_eq!(ids, ["queued"]);
        assert!(q.agent("alex").unwrap().active.contains("held"));
        assert!(!q.agent("alex").unwrap().active.contains("stale"));
        assert_eq!(
            s.held().unwrap(),
            [("held".to_string(), "alex".to_string())]
        );
        assert_eq!(s.waiting().unwrap().len(), 1);
        // Mended: the next start has nothing to correct.
        let again = restore(&s, &mut queue_with(&["alex"])).unwrap();
        assert_eq!(again.mended, 0);
        assert_eq!(again.read, 2);
    }

    /// A store from before the held index: the first start folds every
    /// log and writes the index; the next reads only what it names.
    #[test]
    fn an_older_store_is_indexed_once() {
        let s = MemStore::new();
        for i in 0..10 {
            s.create(&format!("c{i}"), 1, Default::default()).unwrap();
        }
        s.append(
            "c3",
            2,
            vec![
                Event::Handoff {
                    reason: HandoffReason::Asked,
                    decision: None,
                },
                Event::AgentJoined {
                    agent: "alex".into(),
                },
            ],
        )
        .unwrap();
        s.append(
            "c5",
            2,
            vec![Event::Handoff {
                reason: HandoffReason::Asked,
                decision: None,
            }],
        )
        .unwrap();
        let first = restore(&s, &mut queue_with(&["alex"])).unwrap();
        assert!(first.full);
        assert_eq!(first.read, 10);
        let mut q = queue_with(&["alex"]);
        let next = restore(&s, &mut q).unwrap();
        assert_eq!((next.full, next.read, next.mended), (false, 2, 0));
        assert_eq!(q.position("c5"), Some(1));
        assert!(q.agent("alex").unwrap().active.contains("c3"));
    }

    /// More logs than one thread folds and than one batch holds: each
    /// conversation's fold still meets its own index entry (the queue in
    /// ticket order, the entries without events mended).
    #[test]
    fn many_logs_are_folded_on_several_threads_in_order() {
        let s = MemStore::new();
        let n = FOLD_BATCH + 300;
        let mut expected = Vec::new();
        for i in 0..n {
            let id = format!("c{i:05}");
            s.create(&id, 1, Default::default()).unwrap();
            let entry = Waiting {
                // Tickets run against the ids' order.
                ticket: (n - i) as u64,
                ..waiting(&id)
            };
            if i % 7 == 0 {
                // Its events lost in a crash.
                s.put_waiting(&entry).unwrap();
                continue;
            }
            s.append_batch(
                &id,
                Batch {
                    at_ms: 2,
                    events: vec![Event::Handoff {
                        reason: HandoffReason::Asked,
                        decision: None,
                    }],
                    index: vec![IndexOp::Wait(entry)],
                    ..Batch::default()
                },
            )
            .unwrap();
            expected.push(id);
        }
        s.put_setting(HANDOFF_INDEXED, b"1").unwrap();
        expected.reverse();
        let mut q = queue_with(&["alex"]);
        let done = restore(&s, &mut q).unwrap();
        assert_eq!((done.read, done.mended), (n, n.div_ceil(7)));
        let ids: Vec<_> = q.waiting().iter().map(|w| w.conversation.clone()).collect();
        assert_eq!(ids, expected);
        assert_eq!(s.waiting().unwrap().len(), expected.len());
    }
}

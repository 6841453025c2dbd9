//! A `Store` in memory, meeting the same contract as `SledStore`
//! (duplicates, conflicts, the indexes, the time reads) without a disk:
//! for fast tests of the application. Nothing survives the process, so
//! "durable on return" holds trivially and a crash keeps nothing.
//!
//! One lock over everything: every operation is a few map lookups, and a
//! test has few writers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::sled::{activity_key, attachment_key, prefix, queue_key, seq_key};
use super::time::minute_of;
use super::{
    check_id, AgentRecord, Appended, Batch, ExportFn, FactsRow, IndexOp, RatingRecord, Result,
    Store, StoreError, Waiting,
};
use crate::conversation::{with_replies, Event, Record, Visitor};

/// The in-memory `Store`.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<Mem>,
}

#[derive(Default)]
struct Mem {
    /// Each conversation's log, in seq order.
    logs: BTreeMap<String, Vec<Record>>,
    /// (conversation, client id) → seq of that message.
    client_ids: HashMap<(String, String), u64>,
    /// Keyed like sled's queue: (0 priority / 1 normal, ticket).
    queue: BTreeMap<(u8, u64), Waiting>,
    agents: BTreeMap<String, AgentRecord>,
    ratings: BTreeMap<(String, u64), RatingRecord>,
    settings: BTreeMap<String, Vec<u8>>,
    outbox: BTreeMap<String, Vec<u8>>,
    held: BTreeMap<String, String>,
    /// The time index: (minute start, conversation).
    activity: BTreeSet<(i64, String)>,
    /// Report facts by (started, conversation), and the key of each
    /// conversation's row.
    facts: BTreeMap<(i64, String), FactsRow>,
    facts_of: HashMap<String, i64>,
    facts_mark: Option<Vec<u8>>,
    /// Attachment bytes by (conversation, attachment id).
    attachments: BTreeMap<(String, String), Vec<u8>>,
}

impl Mem {
    fn drop_facts(&mut self, id: &str) {
        if let Some(started) = self.facts_of.remove(id) {
            self.facts.remove(&(started, id.to_string()));
        }
    }
}

impl Mem {
    fn log(&self, id: &str) -> Result<&Vec<Record>> {
        self.logs
            .get(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    fn put_waiting(&mut self, w: &Waiting) {
        self.queue.retain(|_, q| q.conversation != w.conversation);
        self.queue
            .insert((if w.priority { 0 } else { 1 }, w.ticket), w.clone());
    }

    fn remove_waiting(&mut self, conversation: &str) {
        self.queue.retain(|_, q| q.conversation != conversation);
    }

    fn index_op(&mut self, id: &str, op: &IndexOp) {
        match op {
            IndexOp::Wait(w) => self.put_waiting(w),
            IndexOp::Hold { agent } => {
                self.held.insert(id.to_string(), agent.clone());
            }
            IndexOp::Unwait => self.remove_waiting(id),
            IndexOp::Unhold => {
                self.held.remove(id);
            }
        }
    }
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// A poisoned lock means a test panicked mid-operation; each operation
    /// checks before it changes anything, so the maps are still whole.
    fn lock(&self) -> MutexGuard<'_, Mem> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

impl Store for MemStore {
    fn create(&self, id: &str, at_ms: i64, visitor: Visitor) -> Result<Record> {
        check_id(id)?;
        let mut m = self.lock();
        if m.logs.contains_key(id) {
            return Err(StoreError::Exists(id.to_string()));
        }
        let record = Record {
            seq: 1,
            at_ms,
            event: Event::Started { visitor },
        };
        m.logs.insert(id.to_string(), vec![record.clone()]);
        m.activity.insert((minute_of(at_ms), id.to_string()));
        Ok(record)
    }

    fn append_batch(&self, id: &str, batch: Batch) -> Result<Appended> {
        if !batch.check(id)? {
            return Ok(Appended {
                records: Vec::new(),
                duplicate: false,
            });
        }
        let Batch {
            at_ms,
            events,
            after_seq,
            outbox,
            index,
        } = batch;
        let mut m = self.lock();
        let log = m.log(id)?;
        let last_seq = log.last().map_or(0, |r| r.seq);
        if let Some(expected) = after_seq {
            if expected != last_seq {
                return Err(StoreError::Conflict {
                    id: id.to_string(),
                    expected,
                    found: last_seq,
                });
            }
        }
        let mut client_key = None;
        if let Event::VisitorMessage { client_id, .. } = &events[0] {
            let key = (id.to_string(), client_id.clone());
            if let Some(&seq) = m.client_ids.get(&key) {
                // Only a message that is really there makes a duplicate
                // (the same rule as sled's, where a crash can orphan ids).
                let backed = log.get(seq as usize - 1).is_some_and(|r| {
                    matches!(&r.event, Event::VisitorMessage { client_id: c, .. } if c == client_id)
                });
                if backed {
                    return Ok(Appended {
                        records: with_replies(&log[seq as usize - 1..]),
                        duplicate: true,
                    });
                }
            }
            client_key = Some(key);
        }
        let records: Vec<Record> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Record {
                seq: last_seq + 1 + i as u64,
                at_ms,
                event,
            })
            .collect();
        for (k, v) in outbox {
            m.outbox.insert(k, v);
        }
        for op in &index {
            m.index_op(id, op);
        }
        m.activity.insert((minute_of(at_ms), id.to_string()));
        if let Some(k) = client_key {
            m.client_ids.insert(k, last_seq + 1);
        }
        for r in &records {
            if let Event::Rating { score, comment } = &r.event {
                m.ratings.insert(
                    (id.to_string(), r.seq),
                    RatingRecord {
                        conversation: id.to_string(),
                        seq: r.seq,
                        at_ms,
                        score: *score,
                        comment: comment.clone(),
                    },
                );
            }
        }
        m.logs
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?
            .extend(records.iter().cloned());
        Ok(Appended {
            records,
            duplicate: false,
        })
    }

    fn read(&self, id: &str, after_seq: u64) -> Result<Vec<Record>> {
        check_id(id)?;
        let m = self.lock();
        let log = m.log(id)?;
        let from = usize::try_from(after_seq)
            .unwrap_or(usize::MAX)
            .min(log.len());
        Ok(log[from..].to_vec())
    }

    fn conversations(&self) -> Result<Vec<String>> {
        Ok(self.lock().logs.keys().cloned().collect())
    }

    fn delete(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let mut m = self.lock();
        let log = m
            .logs
            .remove(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        for r in &log {
            m.activity.remove(&(minute_of(r.at_ms), id.to_string()));
        }
        m.client_ids.retain(|(c, _), _| c != id);
        m.ratings.retain(|(c, _), _| c != id);
        m.held.remove(id);
        m.attachments.retain(|(c, _), _| c != id);
        m.remove_waiting(id);
        m.drop_facts(id);
        Ok(())
    }

    fn put_facts(&self, rows: &[FactsRow]) -> Result<()> {
        let mut m = self.lock();
        for r in rows {
            check_id(&r.conversation)?;
        }
        for r in rows {
            m.drop_facts(&r.conversation);
            m.facts_of.insert(r.conversation.clone(), r.started_ms);
            m.facts
                .insert((r.started_ms, r.conversation.clone()), r.clone());
        }
        Ok(())
    }

    fn facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<FactsRow>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let m = self.lock();
        Ok(m.facts
            .range((from_ms, String::new())..(to_ms, String::new()))
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn visitor_starts(
        &self,
        visitor: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, String)>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let m = self.lock();
        Ok(m.facts
            .range((from_ms, String::new())..(to_ms, String::new()))
            .filter(|(_, r)| r.visitor.as_deref() == Some(visitor))
            .map(|((s, id), _)| (*s, id.clone()))
            .collect())
    }

    fn facts_mark(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().facts_mark.clone())
    }

    fn put_facts_mark(&self, mark: &[u8]) -> Result<()> {
        self.lock().facts_mark = Some(mark.to_vec());
        Ok(())
    }

    fn drop_facts(&self, id: &str) -> Result<()> {
        check_id(id)?;
        self.lock().drop_facts(id);
        Ok(())
    }

    fn clear_facts(&self) -> Result<()> {
        let mut m = self.lock();
        m.facts.clear();
        m.facts_of.clear();
        m.facts_mark = None;
        Ok(())
    }

    fn put_waiting(&self, w: &Waiting) -> Result<()> {
        check_id(&w.conversation)?;
        self.lock().put_waiting(w);
        Ok(())
    }

    fn remove_waiting(&self, conversation: &str) -> Result<()> {
        self.lock().remove_waiting(conversation);
        Ok(())
    }

    fn waiting(&self) -> Result<Vec<Waiting>> {
        Ok(self.lock().queue.values().cloned().collect())
    }

    fn put_agent(&self, name: &str, agent: &AgentRecord) -> Result<()> {
        self.lock().agents.insert(name.to_string(), agent.clone());
        Ok(())
    }

    fn remove_agent(&self, name: &str) -> Result<()> {
        self.lock().agents.remove(name);
        Ok(())
    }

    fn agents(&self) -> Result<Vec<(String, AgentRecord)>> {
        Ok(self
            .lock()
            .agents
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn ratings(&self) -> Result<Vec<RatingRecord>> {
        Ok(self.lock().ratings.values().cloned().collect())
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().settings.get(key).cloned())
    }

    fn put_setting(&self, key: &str, value: &[u8]) -> Result<()> {
        self.lock().settings.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn remove_setting(&self, key: &str) -> Result<()> {
        self.lock().settings.remove(key);
        Ok(())
    }

    fn put_outbox(&self, id: &str, value: &[u8]) -> Result<()> {
        self.lock().outbox.insert(id.to_string(), value.to_vec());
        Ok(())
    }

    fn remove_outbox(&self, id: &str) -> Result<()> {
        self.lock().outbox.remove(id);
        Ok(())
    }

    fn outbox(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self
            .lock()
            .outbox
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// The same trees, keys and values as sled's export, so a `MemStore`
    /// can be backed up into a `SledStore` (`BackupWriter`).
    fn export(&self, f: &mut ExportFn<'_>) -> Result<()> {
        let m = self.lock();
        for (id, log) in &m.logs {
            let created_ms = log.first().map_or(0, |r| r.at_ms);
            let meta = serde_json::json!({ "created_ms": created_ms });
            f("conversations", id.as_bytes(), &json(&meta))?;
        }
        for (id, log) in &m.logs {
            for r in log {
                f("events", &seq_key(id, r.seq), &json(r))?;
            }
        }
        for ((id, client_id), seq) in &m.client_ids {
            let mut k = prefix(id);
            k.extend_from_slice(client_id.as_bytes());
            f("client_ids", &k, &seq.to_be_bytes())?;
        }
        for r in m.ratings.values() {
            f("ratings", &seq_key(&r.conversation, r.seq), &json(r))?;
        }
        for w in m.queue.values() {
            f("queue", &queue_key(w), &json(w))?;
        }
        for (name, a) in &m.agents {
            f("agents", name.as_bytes(), &json(a))?;
        }
        for (k, v) in &m.settings {
            f("settings", k.as_bytes(), v)?;
        }
        for (k, v) in &m.outbox {
            f("outbox", k.as_bytes(), v)?;
        }
        for (id, agent) in &m.held {
            f("held", id.as_bytes(), &json(agent))?;
        }
        for (minute, id) in &m.activity {
            f("activity", &activity_key(*minute, id), &[])?;
        }
        for ((id, a), bytes) in &m.attachments {
            f("attachments", &attachment_key(id, a), bytes)?;
        }
        Ok(())
    }

    fn put_held(&self, conversation: &str, agent: &str) -> Result<()> {
        check_id(conversation)?;
        self.lock()
            .held
            .insert(conversation.to_string(), agent.to_string());
        Ok(())
    }

    fn remove_held(&self, conversation: &str) -> Result<()> {
        self.lock().held.remove(conversation);
        Ok(())
    }

    fn held(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .lock()
            .held
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn minutes(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, String)>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let (first, last) = (minute_of(from_ms), minute_of(to_ms - 1));
        Ok(self
            .lock()
            .activity
            .range((first, String::new())..)
            .take_while(|(minute, _)| *minute <= last)
            .cloned()
            .collect())
    }

    fn put_attachment(&self, conversation: &str, attachment: &str, bytes: &[u8]) -> Result<()> {
        check_id(conversation)?;
        super::check_attachment_id(attachment)?;
        let mut m = self.lock();
        m.log(conversation)?;
        m.attachments.insert(
            (conversation.to_string(), attachment.to_string()),
            bytes.to_vec(),
        );
        Ok(())
    }

    fn attachment(&self, conversation: &str, attachment: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .attachments
            .get(&(conversation.to_string(), attachment.to_string()))
            .cloned())
    }

    fn delete_attachment(&self, conversation: &str, attachment: &str) -> Result<()> {
        self.lock()
            .attachments
            .remove(&(conversation.to_string(), attachment.to_string()));
        Ok(())
    }

    fn attachment_bytes(&self) -> Result<u64> {
        Ok(self
            .lock()
            .attachments
            .values()
            .map(|b| b.len() as u64)
            .sum())
    }
}

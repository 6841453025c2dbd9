//! The embedded store: one sled database in one directory.
//!
//! Trees and keys (all big-endian, so that sled's byte order is the order
//! we read in, and a conversation or the queue is one range, never a scan):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `conversations` | id | `Meta` (JSON): when it was created |
//! | `events` | len(id) · id · seq | `Record` (JSON) |
//! | `client_ids` | len(id) · id · client id | seq of that message |
//! | `queue` | (0 priority / 1 normal) · ticket | `Waiting` (JSON) |
//! | `agents` | name | `AgentRecord` (JSON) |
//! | `ratings` | len(id) · id · seq | `RatingRecord` (JSON) |
//!
//! An append is one sled transaction over `events`, `client_ids`, `ratings`
//! and `outbox`, taken under a per-conversation lock (which also makes the
//! read of the last seq safe): sled recovers a transaction whole or not at
//! all, so after a crash no index entry or webhook delivery exists without
//! its event. (Plain inserts in a chosen order were used before, and a
//! flush between two of them made a client id durable without its message:
//! issue 15.) A client id counts as a duplicate only if the event it names
//! is that very visitor message.
//!
//! Durability is a group commit: a writer applies its change, then waits
//! until a flush that started after its change has finished. Whoever finds
//! no flush running becomes the flusher and covers every writer that came
//! before it, so 64 concurrent writers share a handful of fsyncs instead of
//! queueing for 64.

use std::path::Path;
use std::sync::{Condvar, Mutex};

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{check_id, AgentRecord, Appended, Batch, RatingRecord, Result, Store, StoreError};
use crate::conversation::{Event, Record, Visitor};
use crate::handoff::Waiting;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Meta {
    created_ms: i64,
}

/// Appends to one conversation are serialised by one of these locks (chosen
/// by a hash of the id); appends to different conversations run in parallel.
const STRIPES: usize = 64;

/// Group-commit bookkeeping. A std `Mutex`: it is never held across a
/// flush or an `.await`, only to read and bump the counters.
#[derive(Default)]
struct Commit {
    /// Writes registered so far.
    requested: u64,
    /// Writes known durable.
    durable: u64,
    flushing: bool,
    /// Flushes done, to show how many writes each one covered.
    flushes: u64,
}

/// The sled-backed `Store`.
pub struct SledStore {
    db: sled::Db,
    conversations: sled::Tree,
    events: sled::Tree,
    client_ids: sled::Tree,
    queue: sled::Tree,
    agents: sled::Tree,
    ratings: sled::Tree,
    settings: sled::Tree,
    outbox: sled::Tree,
    commit: Mutex<Commit>,
    flushed: Condvar,
    stripes: Vec<Mutex<()>>,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The sibling directories a compaction of `dir` uses: (fresh, old).
fn compaction_paths(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let parent = dir.parent().unwrap_or(Path::new("."));
    (
        parent.join(format!("{name}.compacting")),
        parent.join(format!("{name}.before-compaction")),
    )
}

/// Finishes or undoes a compaction that a crash interrupted.
fn recover_compaction(dir: &Path) -> Result<()> {
    let (fresh, old) = compaction_paths(dir);
    let io = |e: std::io::Error| StoreError::Db(e.to_string());
    if old.exists() {
        if dir.exists() {
            // The swap completed; only the old copy was left to remove.
            std::fs::remove_dir_all(&old).map_err(io)?;
        } else if fresh.exists() {
            // Cut between the renames: the fresh copy is complete (it was
            // flushed before the first rename).
            std::fs::rename(&fresh, dir).map_err(io)?;
            std::fs::remove_dir_all(&old).map_err(io)?;
        } else {
            std::fs::rename(&old, dir).map_err(io)?;
        }
    }
    Ok(())
}

/// Bytes of the files under `dir`: what a store takes on disk.
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len() + 8);
    k.push(id.len() as u8);
    k.extend_from_slice(id.as_bytes());
    k
}

fn seq_key(id: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn queue_key(w: &Waiting) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = if w.priority { 0 } else { 1 };
    k[1..].copy_from_slice(&w.ticket.to_be_bytes());
    k
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    })
}

/// Every value of a tree, decoded, in key order.
fn values<T: serde::de::DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>> {
    tree.iter()
        .map(|item| {
            let (k, v) = item.map_err(db_err)?;
            decode(&k, &v)
        })
        .collect()
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Our own types always serialise.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Why a transaction stopped on purpose.
struct Exists;

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore> {
        recover_compaction(dir)?;
        let config = sled::Config::new()
            .path(dir)
            // We flush ourselves (group commit); no background timer.
            .flush_every_ms(None);
        // A store dropped a moment ago (a restart, a test reopening) may
        // still hold its file lock while sled's background threads wind
        // down: wait for it, briefly, instead of failing.
        let mut tries = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(db_err(e)),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(db_err);
        Ok(SledStore {
            conversations: tree("conversations")?,
            events: tree("events")?,
            client_ids: tree("client_ids")?,
            queue: tree("queue")?,
            agents: tree("agents")?,
            ratings: tree("ratings")?,
            settings: tree("settings")?,
            outbox: tree("outbox")?,
            db,
            commit: Mutex::new(Commit::default()),
            flushed: Condvar::new(),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// Returns once every write this thread made before the call is on disk.
    fn durable(&self) -> Result<()> {
        let mut c = self.lock_commit();
        c.requested += 1;
        let mine = c.requested;
        loop {
            if c.durable >= mine {
                return Ok(());
            }
            if !c.flushing {
                c.flushing = true;
                let target = c.requested;
                drop(c);
                let result = self.db.flush();
                c = self.lock_commit();
                c.flushing = false;
                if result.is_ok() {
                    c.durable = c.durable.max(target);
                    c.flushes += 1;
                }
                self.flushed.notify_all();
                result.map_err(db_err)?;
                continue;
            }
            c = self.flushed.wait(c).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A poisoned lock only means another writer panicked between two
    /// counter updates; the counters are still consistent.
    fn lock_commit(&self) -> std::sync::MutexGuard<'_, Commit> {
        self.commit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (durable writes, flushes) so far: their ratio is what group commit
    /// saves.
    pub fn commit_stats(&self) -> (u64, u64) {
        let c = self.lock_commit();
        (c.durable, c.flushes)
    }

    /// Rewrites the store in `dir` into a fresh directory holding only live
    /// data, then swaps it in. sled neither returns nor reuses the space of
    /// deleted data (BENCHMARKS.md), so this is how a store with deletions
    /// stays bounded. Offline: nothing else may have the store open. A
    /// crash at any point leaves either the old or the new store, complete
    /// (`open` finishes an interrupted swap). Returns bytes (before, after).
    pub fn compact(dir: &Path) -> Result<(u64, u64)> {
        recover_compaction(dir)?;
        let (fresh, old) = compaction_paths(dir);
        let io = |e: std::io::Error| StoreError::Db(e.to_string());
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(io)?;
        }
        let before = disk_usage(dir);
        {
            let source = SledStore::open(dir)?;
            let target = sled::Config::new()
                .path(&fresh)
                .flush_every_ms(None)
                .open()
                .map_err(db_err)?;
            target.import(source.db.export());
            target.flush().map_err(db_err)?;
        }
        // Swap: dir → old, fresh → dir, then drop old. `open` completes a
        // swap cut short between the two renames.
        std::fs::rename(dir, &old).map_err(io)?;
        std::fs::rename(&fresh, dir).map_err(io)?;
        std::fs::remove_dir_all(&old).map_err(io)?;
        Ok((before, disk_usage(dir)))
    }
}

impl Store for SledStore {
    fn create(&self, id: &str, at_ms: i64, visitor: Visitor) -> Result<Record> {
        check_id(id)?;
        let record = Record {
            seq: 1,
            at_ms,
            event: Event::Started { visitor },
        };
        let meta = Meta { created_ms: at_ms };
        let result = (&self.conversations, &self.events).transaction(|(c, e)| {
            if c.get(id.as_bytes())?.is_some() {
                return Err(ConflictableTransactionError::Abort(Exists));
            }
            c.insert(id.as_bytes(), encode(&meta))?;
            e.insert(seq_key(id, 1), encode(&record))?;
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(_)) => return Err(StoreError::Exists(id.to_string())),
            Err(TransactionError::Storage(e)) => return Err(db_err(e)),
        }
        self.durable()?;
        Ok(record)
    }

    fn append_batch(&self, id: &str, batch: Batch) -> Result<Appended> {
        check_id(id)?;
        let Batch {
            at_ms,
            events,
            after_seq,
            outbox,
        } = batch;
        if events.is_empty() {
            return Ok(Appended {
                records: Vec::new(),
                duplicate: false,
            });
        }
        let stripe = {
            let mut h = crate::intents::compile::Fnv::new();
            h.write(id.as_bytes());
            h.finish() as usize % STRIPES
        };
        let guard = self.stripes[stripe]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.must_exist(id)?;
        let last_seq = self.last_seq(id)?;
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
            let mut k = prefix(id);
            k.extend_from_slice(client_id.as_bytes());
            if let Some(original) = self.indexed_message(id, &k, client_id)? {
                return Ok(Appended {
                    records: self.with_replies(id, original)?,
                    duplicate: true,
                });
            }
            client_key = Some(k);
        }
        let mut records = Vec::with_capacity(events.len());
        let mut ratings = Vec::new();
        for (i, event) in events.into_iter().enumerate() {
            let seq = last_seq + 1 + i as u64;
            if let Event::Rating { score, comment } = &event {
                ratings.push(RatingRecord {
                    conversation: id.to_string(),
                    seq,
                    at_ms,
                    score: *score,
                    comment: comment.clone(),
                });
            }
            records.push(Record { seq, at_ms, event });
        }
        // One sled transaction: the events, the client id naming the first
        // one, the ratings index and the webhook outbox become durable
        // together (sled recovers a transaction whole or not at all), so no
        // index entry or delivery can outlive a crash without its event.
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = records
            .iter()
            .map(|r| (seq_key(id, r.seq), encode(r)))
            .collect();
        let ratings: Vec<(Vec<u8>, Vec<u8>)> = ratings
            .iter()
            .map(|r| (seq_key(id, r.seq), encode(r)))
            .collect();
        let first = (last_seq + 1).to_be_bytes();
        (&self.events, &self.client_ids, &self.ratings, &self.outbox)
            .transaction(|(e, c, r, o)| {
                for (k, v) in &encoded {
                    e.insert(k.as_slice(), v.as_slice())?;
                }
                if let Some(k) = &client_key {
                    c.insert(k.as_slice(), &first)?;
                }
                for (k, v) in &ratings {
                    r.insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &outbox {
                    o.insert(k.as_bytes(), v.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => db_err("append aborted"),
                TransactionError::Storage(e) => db_err(e),
            })?;
        drop(guard);
        self.durable()?;
        Ok(Appended {
            records,
            duplicate: false,
        })
    }

    fn read(&self, id: &str, after_seq: u64) -> Result<Vec<Record>> {
        check_id(id)?;
        self.must_exist(id)?;
        let start = seq_key(id, after_seq.saturating_add(1));
        let end = seq_key(id, u64::MAX);
        let mut out = Vec::new();
        for item in self.events.range(start..=end) {
            let (k, v) = item.map_err(db_err)?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    fn conversations(&self) -> Result<Vec<String>> {
        self.conversations
            .iter()
            .keys()
            .map(|k| {
                k.map_err(db_err)
                    .map(|k| String::from_utf8_lossy(&k).into_owned())
            })
            .collect()
    }

    fn delete(&self, id: &str) -> Result<()> {
        check_id(id)?;
        if self
            .conversations
            .remove(id.as_bytes())
            .map_err(db_err)?
            .is_none()
        {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let p = prefix(id);
        for tree in [&self.events, &self.client_ids, &self.ratings] {
            let mut batch = sled::Batch::default();
            for k in tree.scan_prefix(&p).keys() {
                batch.remove(k.map_err(db_err)?);
            }
            tree.apply_batch(batch).map_err(db_err)?;
        }
        self.remove_waiting(id)?;
        self.durable()
    }

    fn put_waiting(&self, w: &Waiting) -> Result<()> {
        check_id(&w.conversation)?;
        // One entry per conversation: drop an older place first.
        self.remove_entry(&w.conversation)?;
        self.queue.insert(queue_key(w), encode(w)).map_err(db_err)?;
        self.durable()
    }

    fn remove_waiting(&self, conversation: &str) -> Result<()> {
        self.remove_entry(conversation)?;
        self.durable()
    }

    fn waiting(&self) -> Result<Vec<Waiting>> {
        values(&self.queue)
    }

    fn put_agent(&self, name: &str, agent: &AgentRecord) -> Result<()> {
        self.agents
            .insert(name.as_bytes(), encode(agent))
            .map_err(db_err)?;
        self.durable()
    }

    fn agents(&self) -> Result<Vec<(String, AgentRecord)>> {
        self.agents
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(db_err)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), decode(&k, &v)?))
            })
            .collect()
    }

    fn ratings(&self) -> Result<Vec<RatingRecord>> {
        values(&self.ratings)
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .settings
            .get(key.as_bytes())
            .map_err(db_err)?
            .map(|v| v.to_vec()))
    }

    fn put_setting(&self, key: &str, value: &[u8]) -> Result<()> {
        self.settings
            .insert(key.as_bytes(), value)
            .map_err(db_err)?;
        self.durable()
    }

    fn put_outbox(&self, id: &str, value: &[u8]) -> Result<()> {
        self.outbox.insert(id.as_bytes(), value).map_err(db_err)?;
        self.durable()
    }

    fn remove_outbox(&self, id: &str) -> Result<()> {
        self.outbox.remove(id.as_bytes()).map_err(db_err)?;
        self.durable()
    }

    fn outbox(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.outbox
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(db_err)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }
}

impl SledStore {
    /// The seq of a conversation's last event (0 for none).
    fn last_seq(&self, id: &str) -> Result<u64> {
        Ok(match self.events.scan_prefix(prefix(id)).next_back() {
            Some(item) => {
                let (k, _) = item.map_err(db_err)?;
                let tail: [u8; 8] = k[k.len() - 8..].try_into().unwrap_or([0; 8]);
                u64::from_be_bytes(tail)
            }
            None => 0,
        })
    }

    /// The stored visitor message a client id names, if the index entry is
    /// backed by that very message. An entry pointing at nothing, or at
    /// another event (an index written by an older version that a crash
    /// orphaned, its seq since taken by a note), is no proof of a duplicate.
    fn indexed_message(&self, id: &str, key: &[u8], client_id: &str) -> Result<Option<Record>> {
        let Some(seq) = self.client_ids.get(key).map_err(db_err)? else {
            return Ok(None);
        };
        let Ok(seq) = <[u8; 8]>::try_from(seq.as_ref()) else {
            return Ok(None);
        };
        let k = seq_key(id, u64::from_be_bytes(seq));
        let Some(value) = self.events.get(&k).map_err(db_err)? else {
            return Ok(None);
        };
        let record: Record = decode(&k, &value)?;
        Ok(match &record.event {
            Event::VisitorMessage { client_id: c, .. } if c == client_id => Some(record),
            _ => None,
        })
    }

    /// A stored visitor message and what followed it up to the next one.
    fn with_replies(&self, id: &str, original: Record) -> Result<Vec<Record>> {
        let mut out = vec![original];
        let after = self.read(id, out[0].seq)?;
        out.extend(
            after
                .into_iter()
                .take_while(|r| !matches!(r.event, Event::VisitorMessage { .. })),
        );
        Ok(out)
    }

    fn must_exist(&self, id: &str) -> Result<()> {
        match self.conversations.get(id.as_bytes()).map_err(db_err)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(id.to_string())),
        }
    }

    /// Removes a conversation's queue entry (the queue is short: a scan).
    fn remove_entry(&self, conversation: &str) -> Result<()> {
        for item in self.queue.iter() {
            let (k, v) = item.map_err(db_err)?;
            let w: Waiting = decode(&k, &v)?;
            if w.conversation == conversation {
                self.queue.remove(k).map_err(db_err)?;
            }
        }
        Ok(())
    }
}

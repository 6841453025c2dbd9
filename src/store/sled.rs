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
//! | `held` | id | agent name (JSON string) |
//! | `activity` | minute (i64, sign bit flipped) · id | empty: the time index |
//! | `attachments` | len(id) · id · attachment id · 0xFF · part (u32 BE); whole files of before: without the last two | the file's bytes, in parts of `ATTACHMENT_CHUNK` |
//!
//! Appends use plain inserts under a per-conversation lock, not sled
//! transactions or batches: in sled 0.34 both take one global write lock,
//! which made 64 writers barely faster than one (measured twice:
//! BENCHMARKS.md). sled recovers a prefix of the writes, so the write order
//! keeps a crash harmless: webhook outbox entries first (an event is never
//! durable without its delivery; the sender drops a delivery whose event
//! was lost), then the queue and holding additions and the time index (an
//! event is never durable without them; startup and the time reads check
//! the log), then the client id of a visitor message (a message is never
//! durable without it), then the events, then the ratings index, then the
//! queue and holding removals (a crash may leave a conversation named that
//! is no longer queued or held, never the other way round). A client
//! id counts as a duplicate only if the event at the seq it names is that
//! very visitor message: a crash can leave a client id whose message was
//! lost, and after the restart another event may take that seq; an earlier
//! version took that for a duplicate and swallowed the retry (issue 15).
//!
//! Durability is a group commit: a writer applies its change, then waits
//! until a flush that started after its change has finished. Whoever finds
//! no flush running becomes the flusher and covers every writer that came
//! before it, so 64 concurrent writers share a handful of fsyncs instead of
//! queueing for 64.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::integrity::{self, damaged, Marker, Walk, STAMP, STORE_ID};
use super::time::minute_of;
use super::{
    check_id, AgentRecord, Appended, Batch, ExportFn, FactsRow, IndexOp, RatingRecord, Result,
    Store, StoreError, Waiting,
};
use crate::conversation::{with_replies, Event, Record, Visitor};

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
    /// The integrity stamp last written (see `integrity`), and when.
    stamp: u64,
    stamped_at: Option<Instant>,
}

/// How often a flush also renews the integrity stamp and the marker.
const STAMP_EVERY: Duration = Duration::from_secs(1);

impl Commit {
    /// The next integrity stamp, taken now.
    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamped_at = Some(Instant::now());
        self.stamp
    }
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
    /// Conversation id → the agent holding it: read at startup instead of
    /// folding every log.
    held: sled::Tree,
    /// The time index (`Store::minutes`).
    activity: sled::Tree,
    /// Attachment bytes (`Store::put_attachment`), keyed by conversation
    /// first, so a conversation's are one range.
    attachments: sled::Tree,
    /// Report facts (`Store::put_facts`): derived data, so not in `TREES`
    /// (a backup leaves it out and the copy rebuilds it). Keys:
    /// `f`+start+id → row, `i`+id → start+visitor, `v`+visitor+start+id,
    /// `m` → the mark (see `facts_*` below). Opened on first use, so an
    /// open (and a store never asked for a report) writes nothing new.
    facts: std::sync::OnceLock<sled::Tree>,
    commit: Mutex<Commit>,
    flushed: Condvar,
    stripes: Vec<Mutex<()>>,
    /// The data directory, for the marker and for errors.
    dir: PathBuf,
    /// This store's id, in sled and in the marker.
    store_id: String,
    /// Set once the store passed its checks: only then do flushes and the
    /// close renew the marker (a refused store must not vouch for itself).
    accepted: AtomicBool,
    /// This open read every entry (false: the seal of a clean close held).
    walked: bool,
}

/// What `SledStore::verify` found.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub conversations: u64,
    pub events: u64,
    /// Damage, each a sentence; empty for a whole store.
    pub problems: Vec<String>,
    /// Harmless oddities worth knowing.
    pub notes: Vec<String>,
}

/// What `SledStore::backup` wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackupReport {
    pub dir: String,
    pub conversations: u64,
    pub events: u64,
    pub bytes: u64,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The sibling directories a compaction of `dir` uses: (fresh, old).
fn compaction_paths(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    // `.` or `data/` have no usable name or parent as written.
    let dir = &std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = &dir.components().collect::<PathBuf>();
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

/// Every tree, in the order `inspect` opens them; the trees a backup may
/// name.
const TREES: [&str; 11] = [
    "conversations",
    "events",
    "client_ids",
    "queue",
    "agents",
    "ratings",
    "settings",
    "outbox",
    "held",
    "activity",
    "attachments",
];

/// The report facts' tree (not in `TREES`: derived, rebuilt, not backed up).
const FACTS_TREE: &str = "report_facts";

/// A start time as 8 bytes that sort like the `i64`.
fn ordered(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

fn facts_key(started_ms: i64, id: &str) -> Vec<u8> {
    let mut k = vec![b'f'];
    k.extend_from_slice(&ordered(started_ms));
    k.extend_from_slice(id.as_bytes());
    k
}

fn facts_visitor_prefix(visitor: &str) -> Vec<u8> {
    let mut k = vec![b'v'];
    k.extend_from_slice(&(visitor.len() as u32).to_be_bytes());
    k.extend_from_slice(visitor.as_bytes());
    k
}

fn facts_visitor_key(visitor: &str, started_ms: i64, id: &str) -> Vec<u8> {
    let mut k = facts_visitor_prefix(visitor);
    k.extend_from_slice(&ordered(started_ms));
    k.extend_from_slice(id.as_bytes());
    k
}

/// `[0 | 1 + u32 BE length + visitor]`, then the rest.
fn put_visitor(buf: &mut Vec<u8>, visitor: Option<&str>) {
    match visitor {
        None => buf.push(0),
        Some(v) => {
            buf.push(1);
            buf.extend_from_slice(&(v.len() as u32).to_be_bytes());
            buf.extend_from_slice(v.as_bytes());
        }
    }
}

/// The visitor written by `put_visitor` and what follows it.
fn take_visitor(b: &[u8]) -> Option<(Option<String>, &[u8])> {
    match b.first()? {
        0 => Some((None, &b[1..])),
        1 => {
            let n = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?) as usize;
            let v = std::str::from_utf8(b.get(5..5 + n)?).ok()?;
            Some((Some(v.to_string()), &b[5 + n..]))
        }
        _ => None,
    }
}

fn facts_corrupt(k: &[u8]) -> StoreError {
    StoreError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
        message: "a report facts entry does not parse".into(),
    }
}

impl SledStore {
    /// The report facts' tree, opened (made) on first use.
    fn facts_tree(&self) -> Result<&sled::Tree> {
        if let Some(t) = self.facts.get() {
            return Ok(t);
        }
        let t = self.db.open_tree(FACTS_TREE).map_err(db_err)?;
        Ok(self.facts.get_or_init(|| t))
    }

    /// The keys of `id`'s facts row and visitor entry, if it has a row.
    fn facts_keys_of(&self, id: &str) -> Result<Vec<Vec<u8>>> {
        let mut ik = vec![b'i'];
        ik.extend_from_slice(id.as_bytes());
        let Some(v) = self.facts_tree()?.get(&ik).map_err(db_err)? else {
            return Ok(Vec::new());
        };
        let start = v.get(..8).ok_or_else(|| facts_corrupt(&ik))?;
        let started = (u64::from_be_bytes(start.try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
        let (visitor, _) = take_visitor(&v[8..]).ok_or_else(|| facts_corrupt(&ik))?;
        let mut keys = vec![ik, facts_key(started, id)];
        if let Some(visitor) = visitor {
            keys.push(facts_visitor_key(&visitor, started, id));
        }
        Ok(keys)
    }
}

/// Set once the time index covers every stored event (stores made before
/// it existed get it built on their first open).
const ACTIVITY_BUILT: &str = "_activity_index";

/// How long an open waits for a lock held by a store dropped a moment ago
/// (a restart, a backup reopening its copy, a test reopening): sled's
/// shared background threads were seen to hold a dropped handle past 5 s
/// while other stores kept them busy. A store another live process holds
/// is reported after this wait.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Random hex for store ids and scratch directories: the OS's source.
fn random_hex<const N: usize>() -> String {
    let mut b = [0u8; N];
    // The OS's random source failing is not something to serve through.
    getrandom::fill(&mut b).expect("the OS random source works");
    crate::util::hash::hex(&b)
}

/// The longest key a backup entry may have (ids are at most 64 bytes; a
/// key is a few more).
const MAX_KEY: usize = 4 * 1024;
/// The longest value: an outbox entry holds a whole transcript; nothing the
/// store writes comes near this, and a broken stream cannot make the reader
/// hold more than about this much.
const MAX_VALUE: usize = 64 * 1024 * 1024;

/// Appends one entry of a streamed backup to `buf`: `[n: u8][tree: n
/// bytes][u32 BE][key][u32 BE][value]`; a zero byte closes the stream.
/// `BackupWriter::feed` reads it back.
pub fn backup_frame(buf: &mut Vec<u8>, tree: &str, key: &[u8], value: &[u8]) {
    buf.push(tree.len() as u8);
    buf.extend_from_slice(tree.as_bytes());
    buf.extend_from_slice(&(key.len() as u32).to_be_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
    buf.extend_from_slice(value);
}

/// Writes a backup, entry by entry (from `SledStore::export`, here or at
/// the far end of `GET /api/v1/admin/backup`), into a fresh directory.
pub struct BackupWriter {
    dir: PathBuf,
    db: sled::Db,
    trees: Vec<sled::Tree>,
    report: BackupReport,
    /// Bytes of a streamed backup not yet parsed (`feed`).
    pending: Vec<u8>,
    /// The stream's closing byte came.
    ended: bool,
}

impl BackupWriter {
    /// Starts a backup in `to`, which must not exist or be empty.
    pub fn create(to: &Path) -> Result<BackupWriter> {
        let occupied = match std::fs::read_dir(to) {
            Ok(mut d) => d.next().is_some(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(StoreError::Target(format!("{}: {e}", to.display()))),
        };
        if occupied {
            return Err(StoreError::Target(format!(
                "{} exists and is not empty",
                to.display()
            )));
        }
        let db = sled::Config::new()
            .path(to)
            .flush_every_ms(None)
            .open()
            .map_err(|e| StoreError::Target(format!("{}: {e}", to.display())))?;
        let trees = TREES
            .iter()
            .map(|t| db.open_tree(t).map_err(db_err))
            .collect::<Result<_>>()?;
        Ok(BackupWriter {
            dir: to.to_path_buf(),
            db,
            trees,
            report: BackupReport {
                dir: to.display().to_string(),
                conversations: 0,
                events: 0,
                bytes: 0,
            },
            pending: Vec::new(),
            ended: false,
        })
    }

    /// Takes the next bytes of a streamed backup (the framing of
    /// `GET /api/v1/admin/backup`) and stores every whole entry in them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        let bad =
            |what: &str| StoreError::Target(format!("the backup stream is malformed: {what}"));
        if self.ended && !bytes.is_empty() {
            return Err(bad("bytes after its end"));
        }
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        while let Some(&n) = self.pending.get(at) {
            if n == 0 {
                self.ended = true;
                if at + 1 != self.pending.len() {
                    return Err(bad("bytes after its end"));
                }
                at += 1;
                break;
            }
            let buf = &self.pending;
            let u32_at = |i: usize| -> Option<usize> {
                Some(u32::from_be_bytes(buf.get(i..i + 4)?.try_into().ok()?) as usize)
            };
            let tree_end = at + 1 + n as usize;
            let Some(klen) = u32_at(tree_end) else { break };
            if klen > MAX_KEY {
                return Err(bad("a key longer than any the store writes"));
            }
            let key_end = tree_end + 4 + klen;
            let Some(vlen) = u32_at(key_end) else { break };
            if vlen > MAX_VALUE {
                return Err(bad("a value longer than any the store writes"));
            }
            let value_end = key_end + 4 + vlen;
            if buf.len() < value_end {
                break;
            }
            let tree = std::str::from_utf8(&buf[at + 1..tree_end])
                .map_err(|_| bad("a tree name"))?
                .to_string();
            let (key, value) = (
                buf[tree_end + 4..key_end].to_vec(),
                buf[key_end + 4..value_end].to_vec(),
            );
            self.put(&tree, &key, &value)?;
            at = value_end;
        }
        // Only what was consumed is dropped: an entry arriving in many
        // small pieces is copied once, not once per piece.
        self.pending.drain(..at);
        Ok(())
    }

    /// `finish` for a streamed backup: refused unless the stream ended.
    pub fn finish_stream(self) -> Result<BackupReport> {
        if !self.ended || !self.pending.is_empty() {
            return Err(StoreError::Target(
                "the backup stream was cut short: the copy is incomplete and was not kept".into(),
            ));
        }
        self.finish()
    }

    pub fn put(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let Some(i) = TREES.iter().position(|t| *t == tree) else {
            return Err(StoreError::Target(format!(
                "a backup names an unknown tree `{tree}`"
            )));
        };
        match i {
            0 => self.report.conversations += 1,
            1 => self.report.events += 1,
            _ => {}
        }
        self.trees[i].insert(key, value).map_err(db_err)?;
        Ok(())
    }

    /// Flushes, then opens the copy as a store: that checks it whole and
    /// writes its marker.
    pub fn finish(self) -> Result<BackupReport> {
        self.db.flush().map_err(db_err)?;
        let BackupWriter {
            dir,
            db,
            trees,
            mut report,
            ..
        } = self;
        drop(trees);
        drop(db);
        drop(SledStore::open(&dir)?);
        report.bytes = disk_usage(&dir);
        Ok(report)
    }
}

/// One sentence for a walk's problems.
fn summary(w: &Walk) -> String {
    match w.problems.len() {
        0 => String::new(),
        1 => w.problems[0].clone(),
        n => format!("{} (and {} more problems)", w.problems[0], n - 1),
    }
}

/// Copies a directory tree (sled's files are plain files).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

pub(super) fn prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len() + 8);
    k.push(id.len() as u8);
    k.extend_from_slice(id.as_bytes());
    k
}

pub(super) fn seq_key(id: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// (conversation id, seq) of a `seq_key`; `None` for a malformed key.
pub(super) fn split_seq_key(k: &[u8]) -> Option<(&[u8], u64)> {
    let n = *k.first()? as usize;
    if k.len() != 1 + n + 8 {
        return None;
    }
    Some((
        &k[1..1 + n],
        u64::from_be_bytes(k[1 + n..].try_into().ok()?),
    ))
}

/// The conversation id at the front of any key laid out as len · id · ….
pub(super) fn key_owner(k: &[u8]) -> &[u8] {
    let n = k.first().copied().unwrap_or(0) as usize;
    k.get(1..1 + n).unwrap_or_default()
}

/// A seq stored as a value (a client id's entry); `None` if malformed.
pub(super) fn seq_value(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

/// A time index key: the minute (sign bit flipped, so that big-endian
/// bytes sort as the numbers do) then the id.
/// What the keys of an attachment's parts start with: its key, then 0xFF
/// (no id has that byte, so no other attachment's key starts so).
fn chunk_prefix(conversation: &str, attachment: &str) -> Vec<u8> {
    let mut k = attachment_key(conversation, attachment);
    k.push(0xFF);
    k
}

/// The key of part `index` of an attachment: `chunk_prefix`, then the
/// index big-endian (so the parts sort in order).
pub(super) fn chunk_key(conversation: &str, attachment: &str, index: u32) -> Vec<u8> {
    let mut k = chunk_prefix(conversation, attachment);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The key of an attachment's bytes stored whole (files are now stored in
/// parts, `chunk_key`; a file stored whole before is still read): its
/// conversation's prefix, then its id.
pub(super) fn attachment_key(conversation: &str, attachment: &str) -> Vec<u8> {
    let mut k = prefix(conversation);
    k.extend_from_slice(attachment.as_bytes());
    k
}

pub(super) fn activity_key(at_ms: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.len());
    k.extend_from_slice(&minute_bytes(minute_of(at_ms)));
    k.extend_from_slice(id.as_bytes());
    k
}

fn minute_bytes(minute_ms: i64) -> [u8; 8] {
    ((minute_ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// (minute start, id) of an `activity_key`.
pub(super) fn split_activity_key(k: &[u8]) -> Option<(i64, String)> {
    let minute = u64::from_be_bytes(k.get(..8)?.try_into().ok()?) ^ (1 << 63);
    let id = std::str::from_utf8(&k[8..]).ok()?;
    Some((minute as i64, id.to_string()))
}

pub(super) fn queue_key(w: &Waiting) -> [u8; 9] {
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
    /// Opens (or creates) the store in `dir`. A store that is damaged or
    /// incomplete is refused with `StoreError::Damaged` (see `integrity`),
    /// never opened with data missing and never replaced by an empty one.
    pub fn open(dir: &Path) -> Result<SledStore> {
        let (store, walk) = SledStore::inspect(dir, false)?;
        if !walk.problems.is_empty() {
            return Err(damaged(dir, summary(&walk)));
        }
        store.accepted.store(true, Ordering::SeqCst);
        store.build_activity_index()?;
        store.renew_stamp()?;
        Ok(store)
    }

    /// Builds the time index of a store made before it existed: once,
    /// reading every event (the next opens find `ACTIVITY_BUILT`).
    fn build_activity_index(&self) -> Result<()> {
        if self.settings.get(ACTIVITY_BUILT).map_err(db_err)?.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        let mut last: Option<Vec<u8>> = None;
        let mut entries = 0u64;
        for item in self.events.iter() {
            let (k, v) = item.map_err(db_err)?;
            let Some((id, _)) = split_seq_key(&k) else {
                continue;
            };
            let record: Record = decode(&k, &v)?;
            let key = activity_key(record.at_ms, &String::from_utf8_lossy(id));
            if last.as_deref() != Some(key.as_slice()) {
                self.activity.insert(key.as_slice(), &[]).map_err(db_err)?;
                entries += 1;
                last = Some(key);
            }
        }
        self.settings
            .insert(ACTIVITY_BUILT, &[1u8][..])
            .map_err(db_err)?;
        self.durable()?;
        tracing::info!(
            entries,
            ms = started.elapsed().as_millis() as u64,
            "time index built"
        );
        Ok(())
    }

    /// Reads the store in `dir` (a copy of it, so that nothing in `dir` is
    /// touched, not even by sled's recovery) and reports every damage
    /// found. Offline: the server must not hold the store.
    pub fn verify(dir: &Path) -> Result<VerifyReport> {
        if !dir.is_dir() {
            return Err(damaged(dir, "there is no directory here"));
        }
        let copy = std::env::temp_dir().join(format!(
            "frontdesk-verify-{}-{}",
            std::process::id(),
            random_hex::<6>()
        ));
        let io = |e: std::io::Error| {
            StoreError::Db(format!("copying the store to {}: {e}", copy.display()))
        };
        copy_dir(dir, &copy).map_err(io)?;
        let result = SledStore::inspect(&copy, true);
        let report = match result {
            Ok((store, walk)) => {
                drop(store);
                VerifyReport {
                    conversations: walk.conversations,
                    events: walk.events,
                    problems: walk.problems,
                    notes: walk.notes,
                }
            }
            Err(StoreError::Damaged { what, .. }) => VerifyReport {
                conversations: 0,
                events: 0,
                problems: vec![what],
                notes: Vec::new(),
            },
            Err(e) => {
                let _ = std::fs::remove_dir_all(&copy);
                return Err(e);
            }
        };
        let _ = std::fs::remove_dir_all(&copy);
        Ok(report)
    }

    /// Opens sled and runs every check; the caller decides what the walk's
    /// problems mean.
    fn inspect(dir: &Path, full: bool) -> Result<(SledStore, Walk)> {
        recover_compaction(dir)?;
        let marker = integrity::read_marker(dir)?;
        integrity::check_files(dir, marker.as_ref())?;
        // A store sealed at a clean close and untouched since needs no walk
        // (`verify` always walks). Checked before sled opens: its recovery
        // may write (it zeroes the unused tail of its active segment).
        // Each part's time goes to the log ("store opened"): at a million
        // messages sled's own open is most of a start (BENCHMARKS.md).
        let timer = Instant::now();
        let sealed = !full
            && marker
                .as_ref()
                .and_then(|m| m.seal.as_deref())
                .is_some_and(|s| integrity::seal_holds(dir, s));
        let seal_ms = timer.elapsed().as_millis() as u64;
        let timer = Instant::now();
        let config = sled::Config::new()
            .path(dir)
            // We flush ourselves (group commit); no background timer.
            .flush_every_ms(None);
        // A store dropped a moment ago (a restart, a test reopening) may
        // still hold its file lock while sled's background threads wind
        // down: wait for it (up to 5 s: a busy machine was seen to need
        // more than 2 s) instead of failing.
        let waiting = Instant::now();
        let db = loop {
            match integrity::quietly(|| config.open()) {
                Ok(Ok(db)) => break db,
                Ok(Err(e)) if sled_lock_busy(&e) && waiting.elapsed() < LOCK_PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Ok(Err(e @ sled::Error::Io(_))) => return Err(db_err(e)),
                Ok(Err(e)) => return Err(damaged(dir, format!("sled cannot open it: {e}"))),
                Err(panic) => {
                    return Err(damaged(
                        dir,
                        format!("sled failed while opening it: {panic}"),
                    ))
                }
            }
        };
        let sled_ms = timer.elapsed().as_millis() as u64;
        let opened = integrity::quietly(|| {
            TREES
                .iter()
                .map(|name| db.open_tree(name))
                .collect::<std::result::Result<Vec<_>, _>>()
        });
        let trees: [sled::Tree; TREES.len()] = match opened {
            Ok(Ok(t)) => t.try_into().map_err(|_| db_err("a tree is missing"))?,
            Ok(Err(e)) => return Err(damaged(dir, format!("sled cannot read its trees: {e}"))),
            Err(p) => return Err(damaged(dir, format!("sled failed reading its trees: {p}"))),
        };
        let [conversations, events, client_ids, queue, agents, ratings, settings, outbox, held, activity, attachments] =
            trees;
        let read_setting = |key: &str| {
            integrity::quietly(|| settings.get(key))
                .map_err(|p| damaged(dir, format!("sled failed reading its settings: {p}")))?
                .map_err(|e| damaged(dir, format!("its settings are unreadable: {e}")))
        };
        let stored_id = read_setting(STORE_ID)?.map(|v| String::from_utf8_lossy(&v).into_owned());
        let stamp = read_setting(STAMP)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        let store_id = match (&marker, stored_id) {
            (Some(m), Some(id)) if id == m.store_id => id,
            (Some(m), Some(id)) => {
                return Err(damaged(
                    dir,
                    format!("sled holds store {id}, but {} names store {}", integrity::MARKER, m.store_id),
                ))
            }
            (Some(_), None) => {
                return Err(damaged(
                    dir,
                    "sled's files hold no store (empty, or their start is lost), though the directory held one",
                ))
            }
            (None, Some(id)) => id,
            (None, None) => {
                // A new store, or one made before stores had ids: named now.
                let id = random_hex::<16>();
                settings.insert(STORE_ID, id.as_bytes()).map_err(db_err)?;
                id
            }
        };
        if let Some(m) = &marker {
            if stamp < m.stamp {
                return Err(damaged(
                    dir,
                    format!(
                        "its newest writes are missing (stamp {stamp} in sled, {} in {})",
                        m.stamp,
                        integrity::MARKER
                    ),
                ));
            }
        }
        let timer = Instant::now();
        let walk = integrity::quietly(|| {
            if sealed {
                return Walk::default();
            }
            integrity::walk(
                &integrity::Trees {
                    conversations: &conversations,
                    events: &events,
                    client_ids: &client_ids,
                    small: vec![
                        ("queue", &queue),
                        ("agents", &agents),
                        ("ratings", &ratings),
                        ("settings", &settings),
                        ("outbox", &outbox),
                        ("held", &held),
                        ("activity", &activity),
                        ("attachments", &attachments),
                    ],
                },
                full,
            )
        })
        .map_err(|p| damaged(dir, format!("sled failed reading it: {p}")))?;
        let store = SledStore {
            facts: std::sync::OnceLock::new(),
            conversations,
            events,
            client_ids,
            queue,
            agents,
            ratings,
            settings,
            outbox,
            held,
            activity,
            attachments,
            db,
            commit: Mutex::new(Commit {
                stamp,
                ..Commit::default()
            }),
            flushed: Condvar::new(),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            dir: dir.to_path_buf(),
            store_id,
            accepted: AtomicBool::new(false),
            walked: !sealed,
        };
        tracing::info!(
            seal_ms,
            sled_ms,
            walk_ms = timer.elapsed().as_millis() as u64,
            walked = !sealed,
            "store opened"
        );
        Ok((store, walk))
    }

    /// Writes a new stamp into sled, flushes, then records it (and `db`'s
    /// size) in the marker: the evidence `open` checks next time.
    fn renew_stamp(&self) -> Result<()> {
        let next = self.lock_commit().next_stamp();
        self.settings
            .insert(STAMP, &next.to_be_bytes())
            .map_err(db_err)?;
        self.db.flush().map_err(db_err)?;
        self.write_marker(next)
    }

    fn write_marker(&self, stamp: u64) -> Result<()> {
        self.write_marker_sealed(stamp, None)
    }

    fn write_marker_sealed(&self, stamp: u64, seal: Option<Vec<integrity::Sealed>>) -> Result<()> {
        let marker = Marker {
            format: 1,
            store_id: self.store_id.clone(),
            stamp,
            db_bytes: integrity::db_len(&self.dir),
            seal,
        };
        integrity::write_marker(&self.dir, &marker).map_err(|e| {
            StoreError::Db(format!(
                "{}: writing {}: {e}",
                self.dir.display(),
                integrity::MARKER
            ))
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
                // Now and then a flush carries a new integrity stamp too.
                let stamp = (self.accepted.load(Ordering::Relaxed)
                    && c.stamped_at.is_none_or(|t| t.elapsed() >= STAMP_EVERY))
                .then(|| c.next_stamp());
                drop(c);
                if let Some(n) = stamp {
                    let _ = self.settings.insert(STAMP, &n.to_be_bytes());
                }
                let result = self.db.flush();
                if let (Some(n), Ok(_)) = (stamp, &result) {
                    if let Err(e) = self.write_marker(n) {
                        tracing::warn!(error = %e, "integrity marker not written");
                    }
                }
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

    /// Whether this open read the whole store (it does unless the store
    /// was closed cleanly and its files are untouched since).
    pub fn walked_on_open(&self) -> bool {
        self.walked
    }

    /// (durable writes, flushes) so far: their ratio is what group commit
    /// saves.
    pub fn commit_stats(&self) -> (u64, u64) {
        let c = self.lock_commit();
        (c.durable, c.flushes)
    }

    /// A consistent copy of the live store into `to` (which must not exist
    /// or be empty), while it serves. Restore: stop the server and put the
    /// copy where `data_dir` points (README, "Backups").
    pub fn backup_to(&self, to: &Path) -> Result<BackupReport> {
        self.backup_into(BackupWriter::create(to)?)
    }

    /// `backup_to` into a writer already made.
    pub fn backup_into(&self, mut w: BackupWriter) -> Result<BackupReport> {
        self.export_to(&mut |tree, k, v| w.put(tree, k, v))?;
        w.finish()
    }

    /// Every entry of a consistent copy, tree by tree: `(tree, key, value)`.
    /// sled has no snapshots, so the copy is read in an order that keeps it
    /// whole: conversations first, then their logs (appends only add keys
    /// after those read, so each log is a gap-free prefix of the live one),
    /// then the indexes, keeping only entries whose events made it in.
    fn export_to(&self, f: &mut ExportFn<'_>) -> Result<()> {
        let mut last: std::collections::HashMap<Vec<u8>, u64> = Default::default();
        for item in self.conversations.iter() {
            let (k, v) = item.map_err(db_err)?;
            last.insert(k.to_vec(), 0);
            f("conversations", &k, &v)?;
        }
        for item in self.events.iter() {
            let (k, v) = item.map_err(db_err)?;
            let Some((id, seq)) = split_seq_key(&k) else {
                continue;
            };
            let Some(l) = last.get_mut(id) else { continue };
            *l = seq;
            f("events", &k, &v)?;
        }
        for item in self.client_ids.iter() {
            let (k, v) = item.map_err(db_err)?;
            let seq = seq_value(&v).unwrap_or(u64::MAX);
            if last.get(key_owner(&k)).is_some_and(|l| seq <= *l) {
                f("client_ids", &k, &v)?;
            }
        }
        for item in self.ratings.iter() {
            let (k, v) = item.map_err(db_err)?;
            if split_seq_key(&k).is_some_and(|(id, seq)| last.get(id).is_some_and(|l| seq <= *l)) {
                f("ratings", &k, &v)?;
            }
        }
        for item in self.queue.iter() {
            let (k, v) = item.map_err(db_err)?;
            let w: Waiting = decode(&k, &v)?;
            if last.contains_key(w.conversation.as_bytes()) {
                f("queue", &k, &v)?;
            }
        }
        for item in self.held.iter() {
            let (k, v) = item.map_err(db_err)?;
            if last.contains_key(k.as_ref()) {
                f("held", &k, &v)?;
            }
        }
        // Entries of minutes whose events came after the copy's logs are
        // harmless: the time reads check the log.
        for item in self.activity.iter() {
            let (k, v) = item.map_err(db_err)?;
            if k.len() > 8 && last.contains_key(&k[8..]) {
                f("activity", &k, &v)?;
            }
        }
        // Bytes of attachments whose conversation is in the copy (bytes
        // written after its log was read are harmless: no event names them).
        for item in self.attachments.iter() {
            let (k, v) = item.map_err(db_err)?;
            if last.contains_key(key_owner(&k)) {
                f("attachments", &k, &v)?;
            }
        }
        for (name, tree) in [
            ("agents", &self.agents),
            ("settings", &self.settings),
            ("outbox", &self.outbox),
        ] {
            for item in tree.iter() {
                let (k, v) = item.map_err(db_err)?;
                if name == "settings" && k.as_ref() == STAMP.as_bytes() {
                    continue;
                }
                f(name, &k, &v)?;
            }
        }
        Ok(())
    }

    /// Rewrites the store in `dir` into a fresh directory holding only live
    /// data, then swaps it in. sled neither returns nor reuses the space of
    /// deleted data (BENCHMARKS.md), so this is how a store with deletions
    /// stays bounded. Offline: nothing else may have the store open. A
    /// crash at any point leaves either the old or the new store, complete
    /// (`open` finishes an interrupted swap). Returns bytes (before, after).
    pub fn compact(dir: &Path) -> Result<(u64, u64)> {
        let here = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
        if here.is_some() && dir.canonicalize().ok() == here {
            return Err(StoreError::Target(format!(
                "{}: run compact from outside the store's directory (it is swapped for a new one)",
                dir.display()
            )));
        }
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

impl Drop for SledStore {
    /// A clean close leaves a fresh stamp, so the next open can tell a
    /// store cut short since from one that is whole.
    fn drop(&mut self) {
        if !self.accepted.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.renew_stamp() {
            tracing::warn!(error = %e, "integrity stamp not renewed on close");
            return;
        }
        // Seal the files as the final flush left them. Should sled still
        // write after this (it may give back free segments at the end of
        // `db`), the seal no longer holds and the next open walks: slower,
        // never wrong.
        let stamp = self.lock_commit().stamp;
        let sealed = integrity::seal(&self.dir)
            .map_err(|e| StoreError::Db(e.to_string()))
            .and_then(|seal| self.write_marker_sealed(stamp, Some(seal)));
        if let Err(e) = sealed {
            tracing::warn!(error = %e, "store not sealed on close");
        }
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
        let minute = activity_key(at_ms, id);
        let result =
            (&self.conversations, &self.events, &self.activity).transaction(|(c, e, a)| {
                if c.get(id.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Exists));
                }
                c.insert(id.as_bytes(), encode(&meta))?;
                a.insert(minute.as_slice(), &[])?;
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
        let stripe = {
            let mut h = crate::util::hash::Fnv::new();
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
            if let Some(seq) = self.indexed_message(id, &k, client_id)? {
                return Ok(Appended {
                    records: with_replies(&self.read(id, seq - 1)?),
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
        // Plain inserts in an order that makes a crash harmless (sled
        // recovers a prefix of the writes): the outbox entries first, so no
        // event is ever durable without the webhook it causes (an entry
        // whose event was lost is dropped by the sender, which checks);
        // then the client id, so no message is durable without it (one
        // whose message was lost names a seq that another event may take
        // later, which `indexed_message` does not take for a duplicate);
        // then the events. A sled transaction would make it atomic, but in
        // sled 0.34 transactions take a global write lock, which cost more
        // than half the throughput of 64 writers (BENCHMARKS.md).
        for (k, v) in &outbox {
            self.outbox
                .insert(k.as_bytes(), v.as_slice())
                .map_err(db_err)?;
        }
        // Index additions and the time index before the events, removals
        // after them (`IndexOp`).
        let (adds, removes): (Vec<_>, Vec<_>) = index.iter().partition(|op| op.adds());
        for op in adds {
            self.index_op(id, op)?;
        }
        // One entry per conversation per minute: a read (cheap, usually
        // cached) saves a write for every other event of the minute.
        let minute = activity_key(at_ms, id);
        if !self.activity.contains_key(&minute).map_err(db_err)? {
            self.activity.insert(minute, &[]).map_err(db_err)?;
        }
        if let Some(k) = client_key {
            self.client_ids
                .insert(k, &(last_seq + 1).to_be_bytes())
                .map_err(db_err)?;
        }
        for r in &records {
            self.events
                .insert(seq_key(id, r.seq), encode(r))
                .map_err(db_err)?;
        }
        for r in &ratings {
            self.ratings
                .insert(seq_key(id, r.seq), encode(r))
                .map_err(db_err)?;
        }
        // The events are stored: a removal that fails now leaves an entry
        // that names a conversation no longer queued or held, which the
        // next start mends, so it is logged rather than failing a write
        // that happened.
        for op in removes {
            if let Err(e) = self.index_op(id, op) {
                tracing::warn!(conversation = %id, error = %e, "index entry not removed");
            }
        }
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
        self.must_exist(id)?;
        let p = prefix(id);
        let keys = |tree: &sled::Tree| -> Result<Vec<sled::IVec>> {
            tree.scan_prefix(&p)
                .keys()
                .map(|k| k.map_err(db_err))
                .collect()
        };
        let (events, ids, ratings, files) = (
            keys(&self.events)?,
            keys(&self.client_ids)?,
            keys(&self.ratings)?,
            keys(&self.attachments)?,
        );
        // The time index entries of its events (an entry left by a crash,
        // whose event was lost, stays: readers skip what has no log).
        let mut minutes: Vec<Vec<u8>> = Vec::new();
        for item in self.events.scan_prefix(&p) {
            let (k, v) = item.map_err(db_err)?;
            let r: Record = decode(&k, &v)?;
            minutes.push(activity_key(r.at_ms, id));
        }
        minutes.dedup();
        // One transaction (deletes are rare, so its global lock costs
        // nothing that matters): a crash never leaves a conversation's
        // entry without its log, or a log without its entry, which the
        // next open would take for damage.
        (
            &self.conversations,
            &self.events,
            &self.client_ids,
            &self.ratings,
            &self.activity,
            &self.held,
            &self.attachments,
        )
            .transaction(|(c, e, i, r, a, h, f)| {
                c.remove(id.as_bytes())?;
                h.remove(id.as_bytes())?;
                for k in &minutes {
                    a.remove(k.as_slice())?;
                }
                for k in &events {
                    e.remove(k)?;
                }
                for k in &ids {
                    i.remove(k)?;
                }
                for k in &ratings {
                    r.remove(k)?;
                }
                for k in &files {
                    f.remove(k)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => db_err("delete aborted"),
                TransactionError::Storage(e) => db_err(e),
            })?;
        self.remove_waiting(id)?;
        self.drop_facts(id)
    }

    fn put_facts(&self, rows: &[FactsRow]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for r in rows {
            check_id(&r.conversation)?;
            for k in self.facts_keys_of(&r.conversation)? {
                batch.remove(k);
            }
            let mut ik = vec![b'i'];
            ik.extend_from_slice(r.conversation.as_bytes());
            let mut iv = ordered(r.started_ms).to_vec();
            put_visitor(&mut iv, r.visitor.as_deref());
            batch.insert(ik, iv);
            let mut fv = Vec::with_capacity(r.data.len() + 16);
            put_visitor(&mut fv, r.visitor.as_deref());
            fv.extend_from_slice(&r.data);
            batch.insert(facts_key(r.started_ms, &r.conversation), fv);
            if let Some(v) = &r.visitor {
                batch.insert(
                    facts_visitor_key(v, r.started_ms, &r.conversation),
                    &[] as &[u8],
                );
            }
        }
        self.facts_tree()?.apply_batch(batch).map_err(db_err)
    }

    fn facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<FactsRow>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let (lo, hi) = (facts_key(from_ms, ""), facts_key(to_ms, ""));
        self.facts_tree()?
            .range(lo..hi)
            .map(|item| {
                let (k, v) = item.map_err(db_err)?;
                let start = k.get(1..9).ok_or_else(|| facts_corrupt(&k))?;
                let started_ms =
                    (u64::from_be_bytes(start.try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
                let conversation = String::from_utf8_lossy(&k[9..]).into_owned();
                let (visitor, data) = take_visitor(&v).ok_or_else(|| facts_corrupt(&k))?;
                Ok(FactsRow {
                    conversation,
                    started_ms,
                    visitor,
                    data: data.to_vec(),
                })
            })
            .collect()
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
        let p = facts_visitor_prefix(visitor);
        let bound = |ms: i64| {
            let mut k = p.clone();
            k.extend_from_slice(&ordered(ms));
            k
        };
        self.facts_tree()?
            .range(bound(from_ms)..bound(to_ms))
            .keys()
            .map(|k| {
                let k = k.map_err(db_err)?;
                let rest = k.get(p.len()..).filter(|r| r.len() >= 8);
                let rest = rest.ok_or_else(|| facts_corrupt(&k))?;
                let started =
                    (u64::from_be_bytes(rest[..8].try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
                Ok((started, String::from_utf8_lossy(&rest[8..]).into_owned()))
            })
            .collect()
    }

    fn facts_mark(&self) -> Result<Option<Vec<u8>>> {
        Ok(self
            .facts_tree()?
            .get(b"m")
            .map_err(db_err)?
            .map(|v| v.to_vec()))
    }

    fn put_facts_mark(&self, mark: &[u8]) -> Result<()> {
        self.facts_tree()?.insert(b"m", mark).map_err(db_err)?;
        self.durable()
    }

    fn clear_facts(&self) -> Result<()> {
        self.facts_tree()?.clear().map_err(db_err)?;
        self.durable()
    }

    fn drop_facts(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let mut batch = sled::Batch::default();
        for k in self.facts_keys_of(id)? {
            batch.remove(k);
        }
        self.facts_tree()?.apply_batch(batch).map_err(db_err)?;
        self.durable()
    }

    fn put_waiting(&self, w: &Waiting) -> Result<()> {
        check_id(&w.conversation)?;
        self.insert_waiting(w)?;
        self.durable()
    }

    fn put_held(&self, conversation: &str, agent: &str) -> Result<()> {
        check_id(conversation)?;
        self.held
            .insert(conversation.as_bytes(), encode(&agent))
            .map_err(db_err)?;
        self.durable()
    }

    fn remove_held(&self, conversation: &str) -> Result<()> {
        self.held.remove(conversation.as_bytes()).map_err(db_err)?;
        self.durable()
    }

    fn held(&self) -> Result<Vec<(String, String)>> {
        self.held
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(db_err)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), decode(&k, &v)?))
            })
            .collect()
    }

    fn minutes(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, String)>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let start = minute_bytes(minute_of(from_ms));
        // Every key of the last minute that overlaps the window.
        let end = minute_bytes(minute_of(to_ms - 1).saturating_add(super::MINUTE_MS));
        self.activity
            .range(start..end)
            .keys()
            .filter_map(|k| match k {
                Ok(k) => split_activity_key(&k).map(Ok),
                Err(e) => Some(Err(db_err(e))),
            })
            .collect()
    }

    fn remove_waiting(&self, conversation: &str) -> Result<()> {
        self.remove_entry(conversation, None)?;
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

    fn remove_agent(&self, name: &str) -> Result<()> {
        self.agents.remove(name.as_bytes()).map_err(db_err)?;
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

    fn remove_setting(&self, key: &str) -> Result<()> {
        self.settings.remove(key.as_bytes()).map_err(db_err)?;
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

    fn export(&self, f: &mut ExportFn<'_>) -> Result<()> {
        self.export_to(f)
    }

    /// In parts of `ATTACHMENT_CHUNK` bytes (`chunk_key`), written in one
    /// atomic batch: a download reads one part at a time.
    fn put_attachment(&self, conversation: &str, attachment: &str, bytes: &[u8]) -> Result<()> {
        check_id(conversation)?;
        super::check_attachment_id(attachment)?;
        self.must_exist(conversation)?;
        let mut batch = sled::Batch::default();
        for (i, part) in bytes.chunks(super::ATTACHMENT_CHUNK).enumerate() {
            let i =
                u32::try_from(i).map_err(|_| db_err("an attachment of over 4 billion parts"))?;
            batch.insert(chunk_key(conversation, attachment, i), part);
        }
        self.attachments.apply_batch(batch).map_err(db_err)?;
        self.durable()
    }

    fn attachment(&self, conversation: &str, attachment: &str) -> Result<Option<Vec<u8>>> {
        check_id(conversation)?;
        super::check_attachment_id(attachment)?;
        // A file stored whole (before files were stored in parts).
        if let Some(v) = self
            .attachments
            .get(attachment_key(conversation, attachment))
            .map_err(db_err)?
        {
            return Ok(Some(v.to_vec()));
        }
        let mut all = Vec::new();
        let mut any = false;
        for item in self
            .attachments
            .scan_prefix(chunk_prefix(conversation, attachment))
        {
            all.extend_from_slice(&item.map_err(db_err)?.1);
            any = true;
        }
        Ok(any.then_some(all))
    }

    fn attachment_chunk(
        &self,
        conversation: &str,
        attachment: &str,
        index: u64,
    ) -> Result<Option<Vec<u8>>> {
        check_id(conversation)?;
        super::check_attachment_id(attachment)?;
        if let Some(v) = self
            .attachments
            .get(attachment_key(conversation, attachment))
            .map_err(db_err)?
        {
            return Ok(super::chunk_of(&v, index).map(<[u8]>::to_vec));
        }
        let Ok(i) = u32::try_from(index) else {
            return Ok(None);
        };
        Ok(self
            .attachments
            .get(chunk_key(conversation, attachment, i))
            .map_err(db_err)?
            .map(|v| v.to_vec()))
    }

    fn delete_attachment(&self, conversation: &str, attachment: &str) -> Result<()> {
        check_id(conversation)?;
        super::check_attachment_id(attachment)?;
        let mut batch = sled::Batch::default();
        batch.remove(attachment_key(conversation, attachment));
        for k in self
            .attachments
            .scan_prefix(chunk_prefix(conversation, attachment))
            .keys()
        {
            batch.remove(k.map_err(db_err)?);
        }
        self.attachments.apply_batch(batch).map_err(db_err)?;
        self.durable()
    }

    fn attachment_bytes(&self) -> Result<u64> {
        self.attachments
            .iter()
            .values()
            .try_fold(0u64, |sum, v| Ok(sum + v.map_err(db_err)?.len() as u64))
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
            Some(item) => split_seq_key(&item.map_err(db_err)?.0).map_or(0, |(_, seq)| seq),
            None => 0,
        })
    }

    /// The seq of the stored visitor message a client id names, if the
    /// index entry is backed by that very message. An entry pointing at
    /// nothing, or at another event (its message lost in a crash, the seq
    /// since taken by a note), is no proof of a duplicate.
    fn indexed_message(&self, id: &str, key: &[u8], client_id: &str) -> Result<Option<u64>> {
        let Some(seq) = self.client_ids.get(key).map_err(db_err)? else {
            return Ok(None);
        };
        let Some(seq) = seq_value(&seq) else {
            return Ok(None);
        };
        let k = seq_key(id, seq);
        let Some(value) = self.events.get(&k).map_err(db_err)? else {
            return Ok(None);
        };
        let record: Record = decode(&k, &value)?;
        Ok(match &record.event {
            Event::VisitorMessage { client_id: c, .. } if c == client_id => Some(seq),
            _ => None,
        })
    }

    fn must_exist(&self, id: &str) -> Result<()> {
        match self.conversations.get(id.as_bytes()).map_err(db_err)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(id.to_string())),
        }
    }

    /// Removes a conversation's queue entry (the queue is short: a scan),
    /// but one under `keep`.
    fn remove_entry(&self, conversation: &str, keep: Option<&[u8]>) -> Result<()> {
        for item in self.queue.iter() {
            let (k, v) = item.map_err(db_err)?;
            let w: Waiting = decode(&k, &v)?;
            if w.conversation == conversation && keep != Some(k.as_ref()) {
                self.queue.remove(k).map_err(db_err)?;
            }
        }
        Ok(())
    }

    /// Puts a queue entry, one per conversation. The new one is written
    /// before an older place is dropped, so a crash between the two never
    /// leaves a queued conversation without an entry.
    fn insert_waiting(&self, w: &Waiting) -> Result<()> {
        let key = queue_key(w);
        self.queue.insert(key, encode(w)).map_err(db_err)?;
        self.remove_entry(&w.conversation, Some(&key))
    }

    /// One handoff index change for conversation `id`, not yet durable.
    fn index_op(&self, id: &str, op: &IndexOp) -> Result<()> {
        match op {
            // `append_batch` checked that it names `id`.
            IndexOp::Wait(w) => self.insert_waiting(w),
            IndexOp::Hold { agent } => self
                .held
                .insert(id.as_bytes(), encode(agent))
                .map(drop)
                .map_err(db_err),
            IndexOp::Unwait => self.remove_entry(id, None),
            IndexOp::Unhold => self.held.remove(id.as_bytes()).map(drop).map_err(db_err),
        }
    }
}

/// Whether sled could not open a store because another handle (one
/// dropped a moment ago, still winding down) holds its file lock. sled
/// 0.34 wraps the lock's `WouldBlock` in an `ErrorKind::Other` error with
/// its own message, so the kind alone never matched and nothing waited.
pub fn sled_lock_busy(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
        || io.to_string().starts_with("could not acquire lock"))
}

//! Persistence behind a trait, so the server can be generic over the
//! backend (sled is the embedded default; PostgreSQL, `PgStore`, the
//! shared one for when one node is not enough). This is the only module
//! that names sled or PostgreSQL.
//!
//! Every write returns only once it is durable: a message is acknowledged
//! to its sender after that, never before.
//!
//! The contract a backend meets is written on `Store` and checked by one
//! set of tests run against each backend (`tests/it/store_contract.rs`):
//! `SledStore` here, `PgStore`, and `MemStore` for fast tests of the
//! application. This
//! module owns what it persists (`Presence`, `Waiting` included: `handoff`
//! re-exports them) and must not import `handoff`, `app` or `http`.

mod integrity;
mod memory;
mod postgres;
mod sled;
mod time;

pub use self::memory::MemStore;
pub use self::postgres::{PgOptions, PgStore, SCHEMA_VERSION};
pub use self::sled::{
    backup_frame, disk_usage, sled_lock_busy, BackupReport, BackupWriter, SledStore, VerifyReport,
};
pub use self::time::{Activity, EventCursor, Timed, MINUTE_MS};

use crate::conversation::HandoffReason;
use crate::conversation::{Event, Record, Visitor};

/// Whether an agent takes new conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Takes new conversations (up to capacity).
    Online,
    /// Keeps current conversations, takes no new ones.
    Away,
    Offline,
}

/// One waiting conversation (a queue entry, as stored).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Waiting {
    pub conversation: String,
    pub reason: HandoffReason,
    /// Upset visitors may go first (see `Queue::priority_for_upset`).
    pub priority: bool,
    pub since_ms: i64,
    /// Arrival order, the tie-breaker that makes the order total.
    pub ticket: u64,
}

/// A change to the handoff indexes (the queue, and who holds what) made in
/// the same `append_batch` as the events that cause it. Additions (`Wait`,
/// `Hold`) are durable no later than the events, removals (`Unwait`,
/// `Unhold`) no earlier: after a crash an index may name a conversation
/// that is no longer queued or held (startup reads its log and mends that),
/// never miss one that is.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexOp {
    /// Puts (or replaces) the batch's conversation in the queue.
    Wait(Waiting),
    /// The conversation is held by this agent (replaces a previous holder).
    Hold { agent: String },
    /// The conversation leaves the queue.
    Unwait,
    /// Nobody holds the conversation any more.
    Unhold,
}

impl IndexOp {
    /// Whether the op adds to an index (written before the events).
    pub fn adds(&self) -> bool {
        matches!(self, IndexOp::Wait(_) | IndexOp::Hold { .. })
    }
}

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Db(String),
    #[error("stored record under {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
    #[error("conversation `{0}` not found")]
    NotFound(String),
    #[error("conversation `{0}` exists already")]
    Exists(String),
    #[error("invalid conversation id {0:?}: 1 to 64 bytes of letters, digits, `-` and `_`")]
    BadId(String),
    /// The data directory holds a store that is damaged or incomplete: it
    /// is refused rather than served with data missing.
    #[error(
        "the store in {dir} is damaged: {what}. frontdesk will not serve it with data missing. \
         Keep a copy of the directory as it is, run `frontdesk store verify --data {dir}` for a \
         full report, and restore the last backup (README, \"Backups\")"
    )]
    Damaged { dir: String, what: String },
    /// A backup's target directory cannot be used.
    #[error("backup target: {0}")]
    Target(String),
    /// Another writer appended first: the caller read a log that is no
    /// longer the last word, and must read again.
    #[error("conversation `{id}` moved on: expected last seq {expected}, found {found}")]
    Conflict {
        id: String,
        expected: u64,
        found: u64,
    },
    /// The database cannot be reached, or no connection to it was free
    /// within the pool's deadline (a shared backend): worth retrying, and
    /// at the HTTP edge a 503.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One write to a conversation: its events, and the webhook deliveries
/// they cause. After a crash an event is never there without its
/// deliveries (a delivery may be there without its event: the sender
/// checks the log before sending).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub at_ms: i64,
    pub events: Vec<Event>,
    /// The last seq the caller saw; another one stored is a `Conflict`.
    /// `None` appends after whatever is there.
    pub after_seq: Option<u64>,
    /// Outbox entries (id, value), made durable no later than the events,
    /// so a crash cannot keep an event and lose its webhook.
    pub outbox: Vec<(String, Vec<u8>)>,
    /// Queue and holding changes the events make (see `IndexOp` for the
    /// order): what lets startup read only the open conversations.
    pub index: Vec<IndexOp>,
}

impl Batch {
    /// What every backend checks before writing: the id, and that the
    /// queue entries name this conversation. `false`: there is nothing to
    /// write (no events).
    pub fn check(&self, id: &str) -> Result<bool> {
        check_id(id)?;
        if self.events.is_empty() {
            return Ok(false);
        }
        if let Some(IndexOp::Wait(w)) = self
            .index
            .iter()
            .find(|op| matches!(op, IndexOp::Wait(w) if w.conversation != id))
        {
            return Err(StoreError::Db(format!(
                "a batch for `{id}` queues `{}`",
                w.conversation
            )));
        }
        Ok(true)
    }
}

/// Takes each (tree, key, value) of an export.
pub type ExportFn<'a> = dyn FnMut(&str, &[u8], &[u8]) -> Result<()> + 'a;

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The stored records, with their sequence numbers. For a duplicate:
    /// the original message and what followed it up to the next visitor
    /// message (its replies), as first stored.
    pub records: Vec<Record>,
    /// The batch began with a visitor message whose client id was already
    /// stored: nothing was written (a retry after a lost acknowledgement).
    pub duplicate: bool,
}

/// A stored agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentRecord {
    pub presence: Presence,
    pub capacity: u32,
    /// May use the admin API as well as the agent API.
    #[serde(default)]
    pub admin: bool,
    /// SHA-256 (hex) of the agent's bearer token: the token itself is shown
    /// once and never stored.
    #[serde(default)]
    pub token_sha256: String,
    /// The name visitors see (any Unicode, spaces allowed); empty: the
    /// login name. Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// A disabled agent's token is refused; the record (and its name in
    /// old conversations) stays. Absent in older records: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// Who drains the outbox now (`Store::outbox_lease`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The store has one node, this one: it always drains, and its own
    /// writes are all there is to wake it.
    Sole,
    /// This node holds the shared lease: it drains, and looks every
    /// second for entries other nodes wrote.
    Held,
    /// Another node holds it: this one asks again in a few seconds.
    Elsewhere,
}

/// One node's view of one agent, as it beats it into a store shared by
/// several nodes (`Store::beat`).
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceRow {
    /// The node that beats it (a name made at each start).
    pub node: String,
    pub agent: String,
    /// What the agent is on that node's queue.
    pub presence: Presence,
    pub capacity: u32,
    /// The agent's console sockets open on that node.
    pub consoles: u32,
    /// When that node decided the agent's presence (a choice made there,
    /// or its away timer); 0: it decided nothing (only consoles). Of the
    /// rows of one agent, the latest decision is the agent's presence.
    pub changed_ms: i64,
}

/// What the other nodes share with this one (`Store::beat`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shared {
    /// The other nodes' rows whose last beat is recent.
    pub presence: Vec<PresenceRow>,
    /// The latest handle times of every node (seconds), oldest first.
    pub handle_secs: Vec<u64>,
}

/// A stored rating, indexed apart from the log for reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RatingRecord {
    pub conversation: String,
    pub seq: u64,
    pub at_ms: i64,
    pub score: u8,
    pub comment: Option<String>,
}

/// A conversation's report facts as the store keeps them: derived data,
/// rebuilt from the logs whenever needed (`report::refresh`), opaque
/// bytes to the store. Not part of a backup or an export: a restored
/// store rebuilds them. A server also keeps them parsed in memory
/// (`report::cache`, synced by the refresh); the app tells that cache of
/// every `delete`, so a backend needs nothing more for it.
#[derive(Debug, Clone, PartialEq)]
pub struct FactsRow {
    pub conversation: String,
    /// When the conversation started: rows are read by ranges of it.
    pub started_ms: i64,
    /// Its visitor key (README, "Reports": same visitor), indexed so the
    /// visitor's later conversations are found without a scan.
    pub visitor: Option<String>,
    pub data: Vec<u8>,
}

/// A change another node made to a shared store (`Store::changes`): a
/// hint to read the store again, never the data itself, so a lost or
/// merged one costs latency, not data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Records `first..=last` were stored in `conversation` (its creation:
    /// `1..=1`).
    Appended {
        conversation: String,
        first: u64,
        last: u64,
    },
    /// The conversation was deleted.
    Deleted { conversation: String },
    /// Agents' records changed (one added or removed, a token rotated, a
    /// disable, a presence choice).
    Agents,
    /// Someone is typing in `conversation` on another node (the agent, or
    /// the visitor): nothing stored, only passed on to sockets.
    Typing { conversation: String, agent: bool },
    /// Sessions bought with an email's link were revoked on another node:
    /// the sockets of such sessions check their token again.
    Sessions,
    /// The feed was cut and is back: changes in between may be lost, so
    /// everything kept in memory is read again.
    Resync,
}

/// Storage of conversations, the queue and agents.
///
/// The contract, which a second backend must meet the same way (the tests
/// in `tests/it/store_contract.rs` run against every backend):
///
/// - **Durable on return**: every write returns once it survives a crash.
/// - **Dense logs**: a conversation's records have seqs 1, 2, 3, … with no
///   gap, in append order; `read` returns them in that order.
/// - **Expected sequence**: `append_batch` with `after_seq: Some(n)` stores
///   nothing and returns `StoreError::Conflict { expected: n, found }` when
///   the log's last seq is not `n` (another writer got there first). Of two
///   writers that both read seq `n`, exactly one succeeds.
/// - **Duplicates**: a batch whose first event is a visitor message with a
///   `client_id` already stored in that conversation stores nothing and
///   returns the original message and its replies with `duplicate` set.
/// - **Crash order**: outbox entries, index additions (`IndexOp::adds`),
///   the time index and the client id are durable no later than the
///   events; index removals no earlier.
/// - **Report facts**: `put_facts` replaces a conversation's row (and its
///   visitor entry); `facts` and `visitor_starts` read key ranges only;
///   `delete` drops the row; `clear_facts` drops every row and the mark.
/// - **Time index**: every stored event is findable by `minutes` in the
///   minute of its `at_ms` (an entry per conversation per minute, written
///   before the events: an entry may name a minute whose event was lost,
///   and readers check the log).
pub trait Store: Send + Sync {
    /// Creates a conversation; its log starts with `Started`.
    fn create(&self, id: &str, at_ms: i64, visitor: Visitor) -> Result<Record>;
    /// Appends a batch in order, durably: outbox entries, index additions,
    /// the time index and the client id no later than the events (a crash
    /// may keep them without the events, never the events without them),
    /// index removals after. When the first event is a visitor message
    /// whose `client_id` is already stored, nothing is written and
    /// `duplicate` is set. With `after_seq: Some(n)` and a log whose last
    /// seq is not `n`, nothing is written and the answer is
    /// `StoreError::Conflict`: a second backend must do the same.
    fn append_batch(&self, id: &str, batch: Batch) -> Result<Appended>;
    /// `append_batch` with no outbox entries and no expected seq.
    fn append(&self, id: &str, at_ms: i64, events: Vec<Event>) -> Result<Appended> {
        self.append_batch(
            id,
            Batch {
                at_ms,
                events,
                ..Batch::default()
            },
        )
    }
    /// The records after `after_seq`, in order.
    fn read(&self, id: &str, after_seq: u64) -> Result<Vec<Record>>;
    /// Every conversation id, in id order.
    fn conversations(&self) -> Result<Vec<String>>;
    /// The last seq of each of `ids` that exists (one deleted or never
    /// made is left out): what a node's periodic sweep compares with the
    /// states it keeps (`app::cluster`). This default reads each log; a
    /// store several nodes share answers in one query.
    fn last_seqs(&self, ids: &[String]) -> Result<Vec<(String, u64)>> {
        let mut seqs = Vec::with_capacity(ids.len());
        for id in ids {
            match self.read(id, 0) {
                Ok(log) => seqs.extend(log.last().map(|r| (id.clone(), r.seq))),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(seqs)
    }
    /// Deletes a conversation with its log, client ids, rating and
    /// attachments.
    fn delete(&self, id: &str) -> Result<()>;
    /// Puts (or replaces) a waiting conversation in the queue.
    fn put_waiting(&self, w: &Waiting) -> Result<()>;
    fn remove_waiting(&self, conversation: &str) -> Result<()>;
    /// The queue in its order: priority first, then arrival.
    fn waiting(&self) -> Result<Vec<Waiting>>;
    fn put_agent(&self, name: &str, agent: &AgentRecord) -> Result<()>;
    fn agents(&self) -> Result<Vec<(String, AgentRecord)>>;
    /// Every rating, by conversation.
    fn ratings(&self) -> Result<Vec<RatingRecord>>;
    /// A small named value the server keeps (its signing secret).
    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>>;
    fn put_setting(&self, key: &str, value: &[u8]) -> Result<()>;
    /// The setting `key`, or `value` put there when there is none: of
    /// several nodes that start at once on a shared store, each gets the
    /// value put first (a backend several processes share makes that one
    /// step, as this default, for a store one process owns, need not).
    fn setting_or_put(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        if let Some(v) = self.setting(key)? {
            return Ok(v);
        }
        self.put_setting(key, value)?;
        Ok(value.to_vec())
    }
    /// Removes a setting (nothing if absent): what the app kept about a
    /// conversation under a key of its own goes when the conversation does.
    fn remove_setting(&self, key: &str) -> Result<()>;
    /// The webhook outbox: deliveries not yet acknowledged, keyed by an id
    /// that sorts by creation.
    fn put_outbox(&self, id: &str, value: &[u8]) -> Result<()>;
    fn remove_outbox(&self, id: &str) -> Result<()>;
    fn outbox(&self) -> Result<Vec<(String, Vec<u8>)>>;
    /// Whether this node drains the outbox (webhooks and emails) now.
    /// A store of one node (sled, memory) answers `Sole`.
    fn outbox_lease(&self) -> Result<Lease> {
        Ok(Lease::Sole)
    }
    /// A heartbeat of node `node` in a store shared by several: replaces
    /// its presence rows with `rows` (stamped with the store's clock),
    /// adds its new handle times (`handled`), and returns what the others
    /// share: their rows beaten within the last `fresh_ms`, and the
    /// latest `HANDLE_TIMES_SHARED` handle times of all. A node that stops
    /// beating (killed, frozen, cut off) drops out of the answers once
    /// `fresh_ms` have passed. A store of one node (sled, memory) answers
    /// `None`, and keeps nothing.
    fn beat(
        &self,
        node: &str,
        rows: &[PresenceRow],
        handled: &[u64],
        fresh_ms: i64,
    ) -> Result<Option<Shared>> {
        let _ = (node, rows, handled, fresh_ms);
        Ok(None)
    }
    /// Every entry of a consistent copy of the store, as (tree, key,
    /// value), while it serves: what a backup is made of (`BackupWriter`).
    fn export(&self, f: &mut ExportFn<'_>) -> Result<()>;
    /// Records that `agent` holds `conversation` (replacing any holder).
    fn put_held(&self, conversation: &str, agent: &str) -> Result<()>;
    fn remove_held(&self, conversation: &str) -> Result<()>;
    /// Every held conversation as (conversation, agent), by conversation.
    fn held(&self) -> Result<Vec<(String, String)>>;
    /// The time index: (minute start in ms, conversation id) for every
    /// minute in which a conversation may have events, for the minutes
    /// that overlap `[from_ms, to_ms)`, in (minute, id) order. An entry is
    /// a hint (its event may have been lost in a crash, or the
    /// conversation deleted since): `active` and `events_between` check
    /// the log. Reads only the index range, never every conversation.
    fn minutes(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, String)>>;
    /// Puts report facts, each replacing its conversation's previous row
    /// (and visitor entry). Not flushed on its own: derived data, written
    /// before the mark that covers it (`put_facts_mark` makes both
    /// durable).
    fn put_facts(&self, rows: &[FactsRow]) -> Result<()>;
    /// Facts rows with `from_ms <= started_ms < to_ms`, in (started_ms,
    /// conversation) order, reading only that range.
    fn facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<FactsRow>>;
    /// (started_ms, conversation) of the facts rows of `visitor` with
    /// `from_ms <= started_ms < to_ms`, in that order.
    fn visitor_starts(&self, visitor: &str, from_ms: i64, to_ms: i64)
        -> Result<Vec<(i64, String)>>;
    /// The report facts' mark (how far they are refreshed; the report
    /// module's bytes), kept beside the facts so they travel together.
    fn facts_mark(&self) -> Result<Option<Vec<u8>>>;
    /// Sets the mark, durably, with every row put before it.
    fn put_facts_mark(&self, mark: &[u8]) -> Result<()>;
    /// Drops every facts row and the mark (a changed fold rebuilds them).
    fn clear_facts(&self) -> Result<()>;
    /// Drops `id`'s facts row (and its visitor entry), if any: what a
    /// refresh does for a conversation deleted while it was folding it.
    fn drop_facts(&self, id: &str) -> Result<()>;
    /// Conversations with at least one event in `[from_ms, to_ms)`
    /// (started, written to or closed then), ordered by their last event
    /// in the window, then id.
    fn active(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Activity>> {
        time::active(self, from_ms, to_ms)
    }
    /// Events with `from_ms <= at_ms < to_ms`, in (at_ms, conversation,
    /// seq) order, after `after` (the cursor of the last one a previous
    /// page returned), at most `limit`.
    fn events_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<&EventCursor>,
        limit: usize,
    ) -> Result<Vec<Timed>> {
        time::events_between(self, from_ms, to_ms, after, limit)
    }
    /// Deletes an agent's record (absent: nothing to do). The conversations
    /// they took part in keep their name.
    fn remove_agent(&self, name: &str) -> Result<()>;
    /// The changes other nodes sharing this store make, from now on, in
    /// the order they were committed (a `Resync` where the feed broke).
    /// `None` (this default): a store one process owns (sled, memory),
    /// where every change is this process's own. Called once, at start,
    /// before the app reads the queue from the store, so nothing falls
    /// between the two.
    fn changes(&self) -> Option<std::sync::mpsc::Receiver<Change>> {
        None
    }
    /// Tells the other nodes that someone is typing in `conversation`
    /// (`Change::Typing`): nothing is stored, and a notice lost is lost.
    /// Never blocks on the store. This default: nobody else to tell.
    fn typing(&self, _conversation: &str, _agent: bool) {}
    /// Tells the other nodes that visitor sessions were revoked
    /// (`Change::Sessions`), after the write that revoked them. Never
    /// blocks on the store. This default: nobody else to tell.
    fn sessions_revoked(&self) {}
    /// Stores the bytes of attachment `attachment` of `conversation`,
    /// durably (before the `attachment` event that names it is appended:
    /// a crash may leave bytes that no event names, never an event whose
    /// bytes are missing). `delete` of the conversation deletes them.
    fn put_attachment(&self, conversation: &str, attachment: &str, bytes: &[u8]) -> Result<()>;
    /// The bytes of an attachment, if stored.
    fn attachment(&self, conversation: &str, attachment: &str) -> Result<Option<Vec<u8>>>;
    /// Deletes one attachment's bytes (nothing if absent): what a failed
    /// append undoes.
    fn delete_attachment(&self, conversation: &str, attachment: &str) -> Result<()>;
    /// The bytes of all stored attachments together: read once at start
    /// (it reads every file), then kept up to date by the app.
    fn attachment_bytes(&self) -> Result<u64>;
    /// Part `index` of an attachment's bytes, `ATTACHMENT_CHUNK` bytes
    /// each (the last one shorter): a download reads one part at a time,
    /// so serving a file never holds all of it. `None` past the end, or
    /// when the file is not stored. This default slices the whole file,
    /// for a store that keeps files whole (the memory store).
    fn attachment_chunk(
        &self,
        conversation: &str,
        attachment: &str,
        index: u64,
    ) -> Result<Option<Vec<u8>>> {
        let Some(all) = self.attachment(conversation, attachment)? else {
            return Ok(None);
        };
        Ok(chunk_of(&all, index).map(<[u8]>::to_vec))
    }
}

/// How many of the latest handle times a shared store keeps and returns
/// (`Store::beat`): the window the queue's wait estimate averages.
pub const HANDLE_TIMES_SHARED: usize = 50;

/// The size of an attachment's parts (`Store::attachment_chunk`; the sled
/// store keeps files in parts of this size).
pub const ATTACHMENT_CHUNK: usize = 256 << 10;

/// Part `index` of `all`, if it has one.
pub fn chunk_of(all: &[u8], index: u64) -> Option<&[u8]> {
    let start = usize::try_from(index).ok()?.checked_mul(ATTACHMENT_CHUNK)?;
    (start < all.len()).then(|| &all[start..(start + ATTACHMENT_CHUNK).min(all.len())])
}

/// Checks an attachment id: 1 to 64 bytes of `[A-Za-z0-9_-]`, like a
/// conversation id (it becomes part of keys and URLs).
pub fn check_attachment_id(id: &str) -> Result<()> {
    check_id(id)
}

/// Checks a conversation id: it becomes part of keys and URLs.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadId(id.chars().take(80).collect()))
    }
}

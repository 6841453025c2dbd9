//! Persistence behind a trait, so the server can be generic over the
//! backend (sled is the embedded default; a shared backend such as
//! PostgreSQL can implement the same trait when one node is not enough).
//! This is the only module that names sled.
//!
//! Every write returns only once it is durable: a message is acknowledged
//! to its sender after that, never before.

mod integrity;
mod sled;

pub use self::sled::{
    backup_frame, disk_usage, BackupReport, BackupWriter, SledStore, VerifyReport,
};

use crate::conversation::{Event, Record, Visitor};
use crate::handoff::{Presence, Waiting};

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

/// Storage of conversations, the queue and agents.
pub trait Store: Send + Sync {
    /// Creates a conversation; its log starts with `Started`.
    fn create(&self, id: &str, at_ms: i64, visitor: Visitor) -> Result<Record>;
    /// Appends a batch in order, durably: outbox entries and the client id
    /// no later than the events (a crash may keep them without the events,
    /// never the events without them). When the first event is a visitor
    /// message whose `client_id` is already stored, nothing is written and
    /// `duplicate` is set.
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
    /// Deletes a conversation with its log, client ids and rating.
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
    /// The webhook outbox: deliveries not yet acknowledged, keyed by an id
    /// that sorts by creation.
    fn put_outbox(&self, id: &str, value: &[u8]) -> Result<()>;
    fn remove_outbox(&self, id: &str) -> Result<()>;
    fn outbox(&self) -> Result<Vec<(String, Vec<u8>)>>;
    /// Every entry of a consistent copy of the store, as (tree, key,
    /// value), while it serves: what a backup is made of (`BackupWriter`).
    fn export(&self, f: &mut ExportFn<'_>) -> Result<()>;
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

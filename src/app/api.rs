//! What the application's operations take and return, in the domain's
//! terms. The wire form of each (JSON, with its OpenAPI schema) is
//! `http/api.rs`'s business, so the API can change without touching the
//! operations, and the store's record format is not the API's.

use serde::{Deserialize, Serialize};

use crate::conversation::HandoffReason;
use crate::conversation::Record;
use crate::handoff::{Presence, Summary};

/// Starts a conversation. Every field is optional; the page passes what it
/// knows about the visitor.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    pub name: Option<String>,
    /// The shop's own id for a logged-in visitor.
    pub visitor_id: Option<String>,
    pub email: Option<String>,
    pub page_url: Option<String>,
    /// Hex HMAC-SHA256 of `visitor_id` under `[identity] secret`, made by
    /// the shop's server (`app::identity`).
    #[serde(default)]
    pub identity_hash: Option<String>,
}

/// A new conversation and its secret: the token authorises this
/// conversation only (`Authorization: Bearer …`, or `?token=` on the
/// WebSocket).
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedConversation {
    pub id: String,
    pub token: String,
    pub events: Vec<Record>,
}

/// A visitor's message. `client_id` is the client's own id for it: the same
/// id sent again returns the stored original instead of a second copy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// At most `[limits] message_chars` characters (2000 by default), not
    /// blank.
    pub text: String,
    pub client_id: String,
}

/// What a write stored: the records, in order, with their sequence numbers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stored {
    pub records: Vec<Record>,
    /// True when the message was a retry of one already stored: `records`
    /// are the original message and the replies to it.
    pub duplicate: bool,
}

/// A page of a conversation's log.
#[derive(Debug, Serialize, Deserialize)]
pub struct Events {
    pub events: Vec<Record>,
    /// The newest sequence number of the conversation.
    pub last_seq: u64,
    /// `bot`, `queued`, `with_agent` or `closed`.
    pub phase: String,
    /// Place in the queue while queued.
    pub position: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub score: u8,
    pub comment: Option<String>,
}

/// The visitor's helpful / not helpful on one answer of the bot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    /// The seq of the `bot_reply` record it is about.
    pub about: u64,
    pub helpful: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveEmail {
    pub email: String,
}

/// An agent's availability.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPresence {
    pub presence: Presence,
    /// Conversations held at once (default: unchanged, at first 3).
    pub capacity: Option<u32>,
}

/// The agent behind a token.
#[derive(Debug, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    /// What visitors see: the display name, or the login name without one.
    pub display_name: String,
    pub admin: bool,
    pub presence: Presence,
    pub capacity: u32,
    /// Conversations this agent holds.
    pub active: Vec<String>,
}

/// One waiting visitor, as the agents' queue shows them.
#[derive(Debug, Serialize, Deserialize)]
pub struct QueueItem {
    pub conversation: String,
    pub position: u32,
    pub reason: HandoffReason,
    /// Upset visitors are served first.
    pub priority: bool,
    pub waited_secs: u64,
    pub summary: Summary,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct QueueView {
    pub waiting: Vec<QueueItem>,
    pub agents_online: u32,
}

/// A conversation the bot has now, which an agent may take over.
#[derive(Debug, Serialize, Deserialize)]
pub struct LiveItem {
    pub conversation: String,
    pub last_at_ms: i64,
    pub summary: Summary,
}

/// Agent assist: an intent's answer offered as a reply to a visitor
/// message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suggestion {
    /// The visitor message it answers.
    pub seq: u64,
    pub intent: String,
    pub score: f32,
    pub answer: String,
}

/// Everything an agent sees of a conversation: the summary first, then the
/// whole log with each bot turn's decision trace and the internal notes,
/// and suggested replies to the visitor's messages.
#[derive(Debug, Serialize, Deserialize)]
pub struct Transcript {
    pub id: String,
    pub phase: String,
    /// The agent who holds it, if any.
    pub agent: Option<String>,
    pub summary: Summary,
    pub events: Vec<Record>,
    pub suggestions: Vec<Suggestion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentText {
    /// At most `[limits] message_chars` characters, not blank.
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferTo {
    /// The agent's name.
    pub to: String,
}

/// Whether the running intents are the files on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// True when the last load attempt succeeded.
    pub ok: bool,
    /// When the serving set was loaded (ms since the epoch).
    pub loaded_at_ms: i64,
    pub intents: usize,
    /// When the last attempt was made.
    pub attempted_at_ms: i64,
    /// The errors of the last failed attempt, each `path:line:col: message`;
    /// the previous set keeps serving.
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IntentView {
    pub id: String,
    pub description: String,
    /// `answer`, `handoff` or `end`.
    pub action: String,
    pub keywords: Vec<String>,
    pub patterns: Vec<String>,
    pub examples: usize,
    pub answers: Vec<String>,
    pub tests: usize,
    pub file: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IntentsView {
    pub status: ReloadStatus,
    pub answer_threshold: f32,
    pub clarify_threshold: f32,
    /// Where the thresholds come from (defaults or `_calibration.toml`).
    pub thresholds: String,
    pub intents: Vec<IntentView>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CandidateView {
    pub intent: String,
    pub score: f32,
    pub lexical: f32,
    pub rule: f32,
    /// e.g. `keyword "shipping cost"`, `example "How much is shipping?" (0.71)`.
    pub evidence: Vec<String>,
}

/// A decision and everything behind it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Classified {
    /// `answer`, `clarify`, `fallback` or `handoff`.
    pub decision: String,
    pub intent: Option<String>,
    pub options: Vec<String>,
    pub reason: Option<HandoffReason>,
    pub why: String,
    pub candidates: Vec<CandidateView>,
    pub out_of_scope: f32,
    pub coverage: f32,
    pub frustration: f32,
    pub frustration_cues: Vec<String>,
    /// The same trace `frontdesk chat` prints.
    pub trace: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub name: String,
    /// Left out: a new agent is not an admin, an existing one keeps its
    /// role. The last admin cannot be demoted.
    pub admin: Option<bool>,
    /// Leave out to have one generated.
    pub token: Option<String>,
}

/// The token is shown this once; only its hash is stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedAgent {
    pub name: String,
    pub admin: bool,
    pub token: String,
    /// True when the agent existed and got a new token (the old one no
    /// longer works).
    pub existed: bool,
}

/// An agent as colleagues and admins see them: to transfer to, and to
/// manage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentListItem {
    /// The login name (what transfers and the API name).
    pub name: String,
    /// What visitors see (the login name when none is set).
    pub display_name: String,
    pub admin: bool,
    /// A disabled agent's token is refused.
    pub disabled: bool,
    /// What the agent is now: their choice, or away when no console of
    /// theirs has been connected for `away_after_secs`.
    pub presence: Presence,
    pub capacity: u32,
    /// Conversations the agent holds now.
    pub active: u32,
    /// Only in the answer to the change that enabled a disabled agent:
    /// their new token (the old one was revoked by the disable).
    pub token: Option<String>,
}

/// An admin's change to an agent; what is left out stays.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentChange {
    /// Empty: visitors see the login name again.
    pub display_name: Option<String>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
}

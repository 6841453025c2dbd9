//! What happens in a conversation, as an append-only log. The wire and
//! storage form is serde's (snake_case, tagged by `type`), so the HTTP API
//! and the store share it.

use serde::{Deserialize, Serialize};

use super::decide::HandoffReason;
use super::turn::Turn;

/// Who the visitor is, as far as the page told us.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Visitor {
    pub name: Option<String>,
    /// The shop's own id for the visitor, if logged in.
    pub id: Option<String>,
    pub email: Option<String>,
    /// The page the chat was started on.
    pub page_url: Option<String>,
    /// `id` was proven by the shop's HMAC of it (README, "Identity
    /// verification"); false: the id, if any, is only *claimed*. Only
    /// the id is proven: `name` and `email` are as the page passed them.
    /// Absent in records written before it existed (and when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verified: bool,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The conversation began.
    Started {
        visitor: Visitor,
    },
    /// The visitor wrote; `client_id` makes a retried send idempotent.
    VisitorMessage {
        text: String,
        client_id: String,
    },
    /// The bot answered an intent.
    BotReply {
        text: String,
        intent: Option<String>,
        confidence: f32,
        /// The decision trace in words, for the agent and the admin (left
        /// out of what the visitor receives).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        trace: String,
        quick_replies: Vec<String>,
        /// Slot values the answer used: (name, value).
        #[serde(default)]
        slots: Vec<(String, String)>,
        /// The bot's decision as data (absent in records written before it
        /// existed; left out of what the visitor receives).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<Turn>>,
    },
    /// The bot asked "Did you mean …?"; `options` are intent ids.
    Clarification {
        text: String,
        options: Vec<String>,
        quick_replies: Vec<String>,
        /// The bot's decision as data (absent in records written before it
        /// existed; left out of what the visitor receives).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<Turn>>,
    },
    /// The bot asked for a slot value the answer needs.
    SlotPrompt {
        intent: String,
        slot: String,
        text: String,
        /// Values of the intent's other slots found so far.
        #[serde(default)]
        slots: Vec<(String, String)>,
        /// The bot's decision as data (absent in records written before it
        /// existed; left out of what the visitor receives).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<Turn>>,
    },
    /// The bot did not understand.
    Fallback {
        text: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        trace: String,
        /// The bot's decision as data (absent in records written before it
        /// existed; left out of what the visitor receives).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<Turn>>,
    },
    /// The bot offered a person instead of handing off at once.
    HandoffOffered {
        reason: HandoffReason,
        text: String,
        /// The bot's decision as data (absent in records written before it
        /// existed; left out of what the visitor receives).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<Turn>>,
    },
    /// The conversation goes to a person.
    Handoff {
        reason: HandoffReason,
        /// Present when the bot decided it (not for the visitor's button
        /// or an agent's takeover).
        /// Absent in records written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<Turn>>,
    },
    /// Place in the queue and the estimated wait, told to the visitor.
    Queued {
        position: u32,
        wait_secs: Option<u64>,
    },
    AgentJoined {
        agent: String,
    },
    AgentMessage {
        agent: String,
        text: String,
    },
    /// Seen by agents only.
    InternalNote {
        agent: String,
        text: String,
    },
    Transfer {
        from: String,
        to: String,
    },
    /// An agent gave the conversation back to the bot.
    ReturnedToBot {
        agent: String,
    },
    /// `by` is an agent name, or `bot` for an intent whose action is `end`.
    Closed {
        by: String,
    },
    Rating {
        score: u8,
        comment: Option<String>,
    },
    /// The visitor said whether the bot's answer at seq `about` (a
    /// `BotReply`) helped: the widget's helpful / not helpful choice. What
    /// a report's *confirmed* containment and an intent's helpfulness
    /// count; a later choice about the same answer replaces an earlier one.
    Feedback {
        about: u64,
        helpful: bool,
    },
    /// The visitor left an email address for the reply (outside hours, or
    /// with nobody online).
    EmailLeft {
        email: String,
    },
    /// A file sent into the conversation (an image or a PDF): its bytes
    /// are in the store under `id` (`Store::attachment`), this is what the
    /// log says of it. `agent` is the sender when an agent sent it; `None`
    /// is the visitor.
    Attachment {
        id: String,
        kind: AttachmentKind,
        /// Bytes.
        size: u64,
        /// The file name the sender gave, sanitised (`AttachmentKind`
        /// decides the type, never the name).
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// The page told who the visitor is after the chat began
    /// (`FrontDesk.identify`): it replaces the visitor's id, and the name
    /// and email it gives. `verified`: the shop's HMAC of `id` checked out
    /// (never the hash itself: it is not stored). A verified identity is
    /// never replaced by an unverified one (`app::identity` refuses it,
    /// and `Conversation::apply` would ignore it).
    Identified {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        verified: bool,
    },
}

/// What an attachment is, found from its first bytes (magic numbers),
/// never from its name or the content type a client claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
}

impl AttachmentKind {
    /// The kind of `bytes`, if it is one we accept. Only the signature is
    /// read: a file that starts like a PNG is served as `image/png` with
    /// `nosniff`, so a browser renders it as an image or not at all.
    pub fn sniff(bytes: &[u8]) -> Option<AttachmentKind> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if bytes.starts_with(PNG) {
            Some(AttachmentKind::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(AttachmentKind::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(AttachmentKind::Gif)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(AttachmentKind::Webp)
        } else if bytes.starts_with(b"%PDF-") {
            Some(AttachmentKind::Pdf)
        } else {
            None
        }
    }

    /// The content type it is served with.
    pub fn mime(self) -> &'static str {
        match self {
            AttachmentKind::Png => "image/png",
            AttachmentKind::Jpeg => "image/jpeg",
            AttachmentKind::Gif => "image/gif",
            AttachmentKind::Webp => "image/webp",
            AttachmentKind::Pdf => "application/pdf",
        }
    }

    pub fn is_image(self) -> bool {
        self != AttachmentKind::Pdf
    }

    /// The file name extension that goes with it.
    pub fn extension(self) -> &'static str {
        match self {
            AttachmentKind::Png => "png",
            AttachmentKind::Jpeg => "jpg",
            AttachmentKind::Gif => "gif",
            AttachmentKind::Webp => "webp",
            AttachmentKind::Pdf => "pdf",
        }
    }
}

impl Event {
    /// The bot's decision behind this event, when it has one.
    pub fn decision(&self) -> Option<&Turn> {
        match self {
            Event::BotReply { decision, .. }
            | Event::Clarification { decision, .. }
            | Event::SlotPrompt { decision, .. }
            | Event::Fallback { decision, .. }
            | Event::HandoffOffered { decision, .. }
            | Event::Handoff { decision, .. } => decision.as_deref(),
            _ => None,
        }
    }

    /// Drops what only agents and admins see: the decision trace and data.
    pub fn hide_internals(&mut self) {
        match self {
            Event::BotReply {
                trace, decision, ..
            }
            | Event::Fallback {
                trace, decision, ..
            } => {
                trace.clear();
                *decision = None;
            }
            Event::Clarification { decision, .. }
            | Event::SlotPrompt { decision, .. }
            | Event::HandoffOffered { decision, .. }
            | Event::Handoff { decision, .. } => *decision = None,
            _ => {}
        }
    }
}

/// An event with its place in the log and its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1-based, dense within a conversation: a client that reconnects asks
    /// for everything after the last `seq` it saw.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub event: Event,
}

/// A visitor message and what followed it up to the next visitor message
/// (its replies): what a retry of that message is answered with. `from`
/// starts at the message.
pub fn with_replies(from: &[Record]) -> Vec<Record> {
    from.iter()
        .enumerate()
        .take_while(|(i, r)| *i == 0 || !matches!(r.event, Event::VisitorMessage { .. }))
        .map(|(_, r)| r.clone())
        .collect()
}

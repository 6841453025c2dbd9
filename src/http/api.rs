//! The wire types of `/api/v1` and of the WebSockets: what handlers take
//! and return, and, by their `ToSchema` derives, what the OpenAPI document
//! says they take and return (one set of types for both, so the document
//! cannot drift). Each is a mirror of an application type, converted at the
//! edge (`From`), so the API can change without touching the operations,
//! and a record's wire form is not its stored form (`store/` owns that).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app;
use crate::conversation::turn::{Clue, Reason, Scored, Signals, Thresholds, Turn, TurnKind};
use crate::conversation::{Event, HandoffReason, Record, Visitor};
use crate::handoff::{Presence, Summary};
use crate::report;

/// A value's wire form (or, for requests, the wire value's domain form).
pub trait Wire<T> {
    fn wire(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {
        $(impl Wire<$t> for $t {
            fn wire(self) -> $t {
                self
            }
        })*
    };
}
same!(
    String,
    bool,
    u8,
    u16,
    u32,
    u64,
    i64,
    f32,
    f64,
    usize,
    (String, String),
    (String, String, String)
);

impl<A: Wire<B>, B> Wire<Vec<B>> for Vec<A> {
    fn wire(self) -> Vec<B> {
        self.into_iter().map(Wire::wire).collect()
    }
}

impl<A: Wire<B>, B> Wire<Box<B>> for Box<A> {
    fn wire(self) -> Box<B> {
        Box::new((*self).wire())
    }
}

/// A field-less enum: the type as written, and its variants one to one
/// from the application's enum of the same variants.
macro_rules! unit_enum {
    ($(#[$m:meta])* pub enum $name:ident from $src:path {
        $($(#[$vm:meta])* $v:ident,)*
    }) => {
        $(#[$m])*
        pub enum $name {
            $($(#[$vm])* $v,)*
        }
        impl Wire<$name> for $src {
            fn wire(self) -> $name {
                use $src as Src;
                match self {
                    $(Src::$v => $name::$v,)*
                }
            }
        }
    };
}

impl<A: Wire<B>, B> Wire<Option<B>> for Option<A> {
    fn wire(self) -> Option<B> {
        self.map(Wire::wire)
    }
}

/// A response body: the type as written, and `From` the application type
/// of the same shape, field by field.
macro_rules! outbound {
    ($(#[$m:meta])* pub struct $name:ident from $src:path {
        $($(#[$fm:meta])* pub $f:ident : $t:ty,)*
    }) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }
        impl From<$src> for $name {
            fn from(x: $src) -> $name {
                $name { $($f: Wire::wire(x.$f),)* }
            }
        }
        impl Wire<$name> for $src {
            fn wire(self) -> $name {
                $name::from(self)
            }
        }
    };
}

/// A request body: the type as written, and `From` it the application's
/// input of the same shape.
macro_rules! inbound {
    ($(#[$m:meta])* pub struct $name:ident into $dst:path {
        $($(#[$fm:meta])* pub $f:ident : $t:ty,)*
    }) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }
        impl From<$name> for $dst {
            fn from(x: $name) -> $dst {
                use $dst as Dst;
                Dst { $($f: Wire::wire(x.$f),)* }
            }
        }
    };
}

/// Who the visitor is, as far as the page told us.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Visitor)]
pub struct ApiVisitor {
    pub name: Option<String>,
    /// The shop's own id for the visitor, if logged in.
    pub id: Option<String>,
    pub email: Option<String>,
    /// The page the chat was started on.
    pub page_url: Option<String>,
    /// `id` was proven by the shop's HMAC of it (README, "Identity
    /// verification"); false: an `id` is only claimed. Only the id is
    /// proven, not the name or email. Absent when false, as in the
    /// stored record.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verified: bool,
}

impl Wire<ApiVisitor> for Visitor {
    fn wire(self) -> ApiVisitor {
        ApiVisitor {
            name: self.name,
            id: self.id,
            email: self.email,
            page_url: self.page_url,
            verified: self.verified,
        }
    }
}

/// Why a conversation went to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = HandoffReason)]
pub enum ApiHandoffReason {
    /// The visitor asked for a person.
    Asked,
    /// An intent whose action is `handoff` won.
    IntentAction,
    /// The message read as upset.
    NegativeSentiment,
    /// The bot was unsure.
    LowConfidence,
    /// The bot fell back several times in a row.
    RepeatedFallback,
    /// An agent picked up a live bot conversation.
    AgentTookOver,
    /// An action's call to the shop's backend failed and the action hands
    /// off on error.
    BackendError,
}

impl Wire<ApiHandoffReason> for HandoffReason {
    fn wire(self) -> ApiHandoffReason {
        match self {
            HandoffReason::Asked => ApiHandoffReason::Asked,
            HandoffReason::IntentAction => ApiHandoffReason::IntentAction,
            HandoffReason::NegativeSentiment => ApiHandoffReason::NegativeSentiment,
            HandoffReason::LowConfidence => ApiHandoffReason::LowConfidence,
            HandoffReason::RepeatedFallback => ApiHandoffReason::RepeatedFallback,
            HandoffReason::AgentTookOver => ApiHandoffReason::AgentTookOver,
            HandoffReason::BackendError => ApiHandoffReason::BackendError,
        }
    }
}

/// An agent's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Presence)]
pub enum ApiPresence {
    /// Takes new conversations.
    Online,
    /// Keeps the current ones, takes no new ones.
    Away,
    Offline,
}

impl Wire<ApiPresence> for Presence {
    fn wire(self) -> ApiPresence {
        match self {
            Presence::Online => ApiPresence::Online,
            Presence::Away => ApiPresence::Away,
            Presence::Offline => ApiPresence::Offline,
        }
    }
}

impl Wire<Presence> for ApiPresence {
    fn wire(self) -> Presence {
        match self {
            ApiPresence::Online => Presence::Online,
            ApiPresence::Away => Presence::Away,
            ApiPresence::Offline => Presence::Offline,
        }
    }
}

outbound! {
/// What an agent reads at the top of a handed-off transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Summary)]
pub struct ApiSummary from Summary {
    pub reason: Option<ApiHandoffReason>,
    /// Intents the bot recognised, first seen first, without repeats.
    pub intents: Vec<String>,
    /// Slot values gathered: (intent, slot, value).
    #[schema(value_type = Vec<Vec<String>>)]
    pub slots: Vec<(String, String, String)>,
    pub visitor: ApiVisitor,
    /// Seconds since the handoff, if one is under way.
    pub waited_secs: Option<u64>,
}
}

/// An event with its place in the log and its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Record)]
pub struct ApiRecord {
    /// 1-based, dense within a conversation: a client that reconnects asks
    /// for everything after the last `seq` it saw.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub event: ApiEvent,
}

impl Wire<ApiRecord> for Record {
    fn wire(self) -> ApiRecord {
        ApiRecord {
            seq: self.seq,
            at_ms: self.at_ms,
            event: self.event.wire(),
        }
    }
}

unit_enum! {
/// What the bot did in a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = TurnKind)]
pub enum ApiTurnKind from TurnKind {
    /// Replied with an intent's answer (or a fixed reply).
    Answer,
    /// Asked "Did you mean …?".
    Clarify,
    /// Said it did not understand.
    Fallback,
    /// Asked for a slot value the answer needs.
    SlotPrompt,
    /// Offered a person.
    Offer,
    /// Handed off to a person.
    Handoff,
}
}

unit_enum! {
/// Why the bot did what it did: a stable code for dashboards and tests;
/// the words are `crate::conversation::trace::why`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Reason)]
pub enum ApiReason from Reason {
    /// The top intent reached its answer threshold.
    AboveAnswerThreshold,
    /// The top intent is between the clarify and the answer threshold.
    InClarifyBand,
    /// The top intent is below the clarify threshold.
    BelowClarifyThreshold,
    /// In the clarify band, but too little of the message is known to guess.
    LowCoverage,
    /// The out-of-scope class beat the top intent.
    OutOfScope,
    /// No intent scored at all.
    NoCandidates,
    /// The top intent is not in the intent set (cannot happen with a
    /// classifier built from the set).
    UnknownIntent,
    /// The message reads as upset and sentiment escalation is on.
    NegativeSentiment,
    /// The `human_agent` intent reached its answer threshold.
    Asked,
    /// An intent whose action is `handoff` reached its answer threshold.
    IntentAction,
    /// The visitor picked one of the "Did you mean …?" options.
    PickedOption,
    /// The visitor gave the slot value the bot asked for.
    SlotFilled,
    /// The visitor said yes to "Shall I get a person?".
    OfferAccepted,
    /// The visitor said no to "Shall I get a person?".
    OfferDeclined,
    /// The bot fell back too many times in a row.
    RepeatedFallback,
    /// The visitor meant none of the "Did you mean …?" options.
    LowConfidence,
    /// An action's call to the shop's backend failed.
    BackendError,
    /// A short, vague message got a menu of topics.
    VagueMessage,
    /// The visitor asked again what the bot had just answered.
    RepeatedQuestion,
}
}

outbound! {
/// One candidate intent as the decision saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Scored)]
pub struct ApiScored from Scored {
    pub intent: String,
    /// The fused confidence compared to the thresholds.
    pub score: f32,
    /// The layers behind `score`, for the trace.
    #[serde(default)]
    pub lexical: f32,
    #[serde(default)]
    pub rule: f32,
    #[serde(default)]
    pub semantic: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<ApiClue>,
    /// Slot values found in the message: (name, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<String>>)]
    pub slots: Vec<(String, String)>,
}
}

outbound! {
/// The thresholds the top intent was held to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Thresholds)]
pub struct ApiThresholds from Thresholds {
    /// The top intent's answer threshold (its own, calibrated or global).
    pub answer: f32,
    pub clarify: f32,
    /// Share of known words a guess in the clarify band needs.
    pub clarify_coverage: f32,
    /// How close a runner-up must be to be offered too.
    pub margin: f32,
}
}

outbound! {
/// The other signals of the message the policy reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Signals)]
pub struct ApiSignals from Signals {
    /// Probability of the out-of-scope class.
    pub out_of_scope: f32,
    /// Share of the message's words the examples know.
    pub coverage: f32,
    /// The frustration score and the cues behind it.
    pub frustration: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cues: Vec<String>,
}
}

outbound! {
/// A bot turn's decision, as stored on its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Turn)]
pub struct ApiTurn from Turn {
    pub kind: ApiTurnKind,
    /// The intent the bot acted on (answered, prompted a slot for, or
    /// recognised in a handoff); none for a clarification or a fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The intents a clarification offers, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The top candidate's score; 1 for a turn decided by the visitor's
    /// choice (an option picked, a slot filled, an offer answered), 0 when
    /// nothing scored. Always finite.
    pub confidence: f32,
    /// The candidates weighed, best first (none when the turn followed
    /// from the visitor's choice without classifying).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<ApiScored>,
    /// The thresholds the top intent was held to, when it got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ApiThresholds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<ApiSignals>,
    pub reason: ApiReason,
    /// What the code alone does not say: the slot filled, the fallbacks
    /// in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The call to the shop's backend this turn made, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ApiActionRecord>,
}
}

outbound! {
/// A call to the shop's backend as a decision keeps it: never the reply,
/// never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ActionRecord)]
pub struct ApiActionRecord from crate::action::ActionRecord {
    /// The action's name.
    pub name: String,
    /// `ok`, `not_found`, `fact_mismatch`, `status`, `timeout`,
    /// `bad_json`, `too_large`, `unreachable`, `not_called`.
    pub outcome: String,
    /// The HTTP status, when the outcome is `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
}
}

/// Why a candidate scored what it did (the classifier's `Evidence`, in the
/// stored form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[schema(as = Clue)]
pub enum ApiClue {
    Keyword {
        phrase: String,
    },
    Pattern {
        index: usize,
        source: String,
    },
    /// The most similar example (word cosine).
    Example {
        text: String,
        similarity: f32,
    },
    /// The example closest in meaning (embedding cosine).
    Meaning {
        text: String,
        similarity: f32,
    },
}

impl Wire<ApiClue> for Clue {
    fn wire(self) -> ApiClue {
        match self {
            Clue::Keyword { phrase } => ApiClue::Keyword { phrase },
            Clue::Pattern { index, source } => ApiClue::Pattern { index, source },
            Clue::Example { text, similarity } => ApiClue::Example { text, similarity },
            Clue::Meaning { text, similarity } => ApiClue::Meaning { text, similarity },
        }
    }
}

/// One entry of a conversation's log, as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = Event)]
pub enum ApiEvent {
    /// The conversation began.
    Started {
        visitor: ApiVisitor,
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
        /// The decision trace in words (agents and admins only).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        trace: String,
        quick_replies: Vec<String>,
        /// Slot values the answer used: (name, value).
        #[serde(default)]
        #[schema(value_type = Vec<Vec<String>>)]
        slots: Vec<(String, String)>,
        /// The bot's decision as data (agents and admins only; absent on
        /// records from before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<ApiTurn>>,
    },
    /// The bot asked "Did you mean …?"; `options` are intent ids.
    Clarification {
        text: String,
        options: Vec<String>,
        quick_replies: Vec<String>,
        /// The bot's decision as data (agents and admins only; absent on
        /// records from before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<ApiTurn>>,
    },
    /// The bot asked for a slot value the answer needs.
    SlotPrompt {
        intent: String,
        slot: String,
        text: String,
        /// Values of the intent's other slots found so far.
        #[serde(default)]
        #[schema(value_type = Vec<Vec<String>>)]
        slots: Vec<(String, String)>,
        /// The bot's decision as data (agents and admins only; absent on
        /// records from before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<ApiTurn>>,
    },
    /// The bot did not understand.
    Fallback {
        text: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        trace: String,
        /// The bot's decision as data (agents and admins only; absent on
        /// records from before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<ApiTurn>>,
    },
    /// The bot offered a person instead of handing off at once.
    HandoffOffered {
        reason: ApiHandoffReason,
        text: String,
        /// The bot's decision as data (agents and admins only; absent on
        /// records from before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<ApiTurn>>,
    },
    /// The conversation goes to a person.
    Handoff {
        reason: ApiHandoffReason,
        /// The bot's decision as data (agents and admins only; absent on
        /// records from before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<Box<ApiTurn>>,
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
    /// The visitor said whether the bot's answer at seq `about` helped.
    Feedback {
        about: u64,
        helpful: bool,
    },
    /// The visitor left an email address for the reply.
    EmailLeft {
        email: String,
    },
    /// A file sent into the conversation: fetch its bytes from
    /// `GET /api/v1/conversations/{conversation}/attachments/{id}`.
    Attachment {
        id: String,
        kind: ApiAttachmentKind,
        /// Bytes.
        size: u64,
        /// The file name the sender gave, sanitised.
        name: String,
        /// The agent who sent it; absent when the visitor did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// The page told who the visitor is after the chat began
    /// (`FrontDesk.identify`): the visitor's id from now on, with the name
    /// and email given. `verified`: the shop's HMAC of `id` checked out.
    Identified {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        verified: bool,
    },
}

/// What an attachment is, from its content (never its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AttachmentKind)]
pub enum ApiAttachmentKind {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
}

impl Wire<ApiAttachmentKind> for crate::conversation::AttachmentKind {
    fn wire(self) -> ApiAttachmentKind {
        use crate::conversation::AttachmentKind as K;
        match self {
            K::Png => ApiAttachmentKind::Png,
            K::Jpeg => ApiAttachmentKind::Jpeg,
            K::Gif => ApiAttachmentKind::Gif,
            K::Webp => ApiAttachmentKind::Webp,
            K::Pdf => ApiAttachmentKind::Pdf,
        }
    }
}

impl Wire<ApiEvent> for Event {
    fn wire(self) -> ApiEvent {
        match self {
            Event::Started { visitor } => ApiEvent::Started {
                visitor: visitor.wire(),
            },
            Event::VisitorMessage { text, client_id } => {
                ApiEvent::VisitorMessage { text, client_id }
            }
            Event::BotReply {
                text,
                intent,
                confidence,
                trace,
                quick_replies,
                slots,
                decision,
            } => ApiEvent::BotReply {
                text,
                intent,
                confidence,
                trace,
                quick_replies,
                slots,
                decision: decision.wire(),
            },
            Event::Clarification {
                text,
                options,
                quick_replies,
                decision,
            } => ApiEvent::Clarification {
                text,
                options,
                quick_replies,
                decision: decision.wire(),
            },
            Event::SlotPrompt {
                intent,
                slot,
                text,
                slots,
                decision,
            } => ApiEvent::SlotPrompt {
                intent,
                slot,
                text,
                slots,
                decision: decision.wire(),
            },
            Event::Fallback {
                text,
                trace,
                decision,
            } => ApiEvent::Fallback {
                text,
                trace,
                decision: decision.wire(),
            },
            Event::HandoffOffered {
                reason,
                text,
                decision,
            } => ApiEvent::HandoffOffered {
                reason: reason.wire(),
                text,
                decision: decision.wire(),
            },
            Event::Handoff { reason, decision } => ApiEvent::Handoff {
                reason: reason.wire(),
                decision: decision.wire(),
            },
            Event::Queued {
                position,
                wait_secs,
            } => ApiEvent::Queued {
                position,
                wait_secs,
            },
            Event::AgentJoined { agent } => ApiEvent::AgentJoined { agent },
            Event::AgentMessage { agent, text } => ApiEvent::AgentMessage { agent, text },
            Event::InternalNote { agent, text } => ApiEvent::InternalNote { agent, text },
            Event::Transfer { from, to } => ApiEvent::Transfer { from, to },
            Event::ReturnedToBot { agent } => ApiEvent::ReturnedToBot { agent },
            Event::Closed { by } => ApiEvent::Closed { by },
            Event::Rating { score, comment } => ApiEvent::Rating { score, comment },
            Event::Feedback { about, helpful } => ApiEvent::Feedback { about, helpful },
            Event::EmailLeft { email } => ApiEvent::EmailLeft { email },
            Event::Attachment {
                id,
                kind,
                size,
                name,
                agent,
            } => ApiEvent::Attachment {
                id,
                kind: kind.wire(),
                size,
                name,
                agent,
            },
            Event::Identified {
                id,
                name,
                email,
                verified,
            } => ApiEvent::Identified {
                id,
                name,
                email,
                verified,
            },
        }
    }
}

/// Every error body: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: `unauthorized`, `not_found`, `rate_limited`,
    /// `store_unavailable` (503), …
    pub code: String,
    pub message: String,
}

inbound! {
/// Starts a conversation. Every field is optional; the page passes what it
/// knows about the visitor.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation into app::NewConversation {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// The shop's own id for a logged-in visitor.
    #[schema(max_length = 200)]
    pub visitor_id: Option<String>,
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[schema(max_length = 2000)]
    pub page_url: Option<String>,
    /// Proves `visitor_id`: the hex HMAC-SHA256 of it under the shop's
    /// `[identity] secret`, made by the shop's server (README, "Identity
    /// verification"). Without it (or with a wrong one) the id is kept as
    /// claimed, or refused with `identity_unverified` under `[identity]
    /// enforce`. Never stored.
    #[schema(max_length = 128)]
    pub identity_hash: Option<String>,
}
}

outbound! {
/// A new conversation and its secret: the token authorises this
/// conversation only (`Authorization: Bearer …`, or `?token=` on the
/// WebSocket).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedConversation from app::CreatedConversation {
    pub id: String,
    pub token: String,
    pub events: Vec<ApiRecord>,
}
}

inbound! {
/// A visitor's message. `client_id` is the client's own id for it: the same
/// id sent again returns the stored original instead of a second copy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage into app::SendMessage {
    /// At most `[limits] message_chars` characters (2000 by default), not
    /// blank.
    #[schema(min_length = 1, max_length = 2000)]
    pub text: String,
    #[schema(min_length = 1, max_length = 64)]
    pub client_id: String,
}
}

outbound! {
/// What a write stored: the records, in order, with their sequence numbers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Stored from app::Stored {
    pub records: Vec<ApiRecord>,
    /// True when the message was a retry of one already stored: `records`
    /// are the original message and the replies to it.
    pub duplicate: bool,
}
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only records with a larger sequence number (0: from the start).
    pub after: Option<u64>,
}

outbound! {
/// A page of a conversation's log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Events from app::Events {
    pub events: Vec<ApiRecord>,
    /// The newest sequence number of the conversation.
    pub last_seq: u64,
    /// `bot`, `queued`, `with_agent` or `closed`.
    pub phase: String,
    /// Place in the queue while queued.
    pub position: Option<u32>,
}
}

inbound! {
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate into app::Rate {
    #[schema(minimum = 1, maximum = 5)]
    pub score: u8,
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}
}

inbound! {
/// The visitor's helpful / not helpful on one answer of the bot. The same
/// choice again stores nothing; a different one replaces it (both stay in
/// the log, the last counts).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Feedback into app::Feedback {
    /// The `seq` of a `bot_reply` record of this conversation.
    pub about: u64,
    pub helpful: bool,
}
}

inbound! {
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveEmail into app::LeaveEmail {
    #[schema(max_length = 254)]
    pub email: String,
}
}

inbound! {
/// An agent's availability.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPresence into app::SetPresence {
    pub presence: ApiPresence,
    /// Conversations held at once (default: unchanged, at first 3).
    #[schema(minimum = 1, maximum = 100)]
    pub capacity: Option<u32>,
}
}

outbound! {
/// The agent behind a token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentInfo from app::AgentInfo {
    pub name: String,
    /// What visitors see: the display name, or the login name without one.
    pub display_name: String,
    pub admin: bool,
    pub presence: ApiPresence,
    pub capacity: u32,
    /// Conversations this agent holds.
    pub active: Vec<String>,
}
}

outbound! {
/// One waiting visitor, as the agents' queue shows them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueItem from app::QueueItem {
    pub conversation: String,
    pub position: u32,
    pub reason: ApiHandoffReason,
    /// Upset visitors are served first.
    pub priority: bool,
    pub waited_secs: u64,
    pub summary: ApiSummary,
}
}

outbound! {
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueView from app::QueueView {
    pub waiting: Vec<QueueItem>,
    pub agents_online: u32,
}
}

outbound! {
/// A conversation the bot has now, which an agent may take over.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveItem from app::LiveItem {
    pub conversation: String,
    pub last_at_ms: i64,
    pub summary: ApiSummary,
}
}

outbound! {
/// Agent assist: an intent's answer offered as a reply to a visitor
/// message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Suggestion from app::Suggestion {
    /// The visitor message it answers.
    pub seq: u64,
    pub intent: String,
    pub score: f32,
    pub answer: String,
}
}

outbound! {
/// Everything an agent sees of a conversation: the summary first, then the
/// whole log with each bot turn's decision trace and the internal notes,
/// and suggested replies to the visitor's messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Transcript from app::Transcript {
    pub id: String,
    pub phase: String,
    /// The agent who holds it, if any.
    pub agent: Option<String>,
    pub summary: ApiSummary,
    pub events: Vec<ApiRecord>,
    pub suggestions: Vec<Suggestion>,
}
}

inbound! {
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentText into app::AgentText {
    /// At most `[limits] message_chars` characters, not blank.
    #[schema(min_length = 1, max_length = 2000)]
    pub text: String,
}
}

inbound! {
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferTo into app::TransferTo {
    /// The agent's name.
    pub to: String,
}
}

outbound! {
/// Whether the running intents are the files on disk.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReloadStatus from app::ReloadStatus {
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
}

outbound! {
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentView from app::IntentView {
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
}

outbound! {
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentsView from app::IntentsView {
    pub status: ReloadStatus,
    pub answer_threshold: f32,
    pub clarify_threshold: f32,
    /// Where the thresholds come from (defaults or `_calibration.toml`).
    pub thresholds: String,
    pub intents: Vec<IntentView>,
}
}

inbound! {
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest into app::ClassifyRequest {
    #[schema(min_length = 1, max_length = 2000)]
    pub text: String,
}
}

outbound! {
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CandidateView from app::CandidateView {
    pub intent: String,
    pub score: f32,
    pub lexical: f32,
    pub rule: f32,
    /// e.g. `keyword "shipping cost"`, `example "How much is shipping?" (0.71)`.
    pub evidence: Vec<String>,
}
}

outbound! {
/// A decision and everything behind it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Classified from app::Classified {
    /// `answer`, `clarify`, `fallback` or `handoff`.
    pub decision: String,
    pub intent: Option<String>,
    pub options: Vec<String>,
    pub reason: Option<ApiHandoffReason>,
    pub why: String,
    pub candidates: Vec<CandidateView>,
    pub out_of_scope: f32,
    pub coverage: f32,
    pub frustration: f32,
    pub frustration_cues: Vec<String>,
    /// The same trace `frontdesk chat` prints.
    pub trace: String,
}
}

inbound! {
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent into app::NewAgent {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Left out: not an admin. (An existing name is refused: 409
    /// `agent_exists`.)
    pub admin: Option<bool>,
    /// Leave out to have one generated.
    pub token: Option<String>,
}
}

outbound! {
/// The token is shown this once; only its hash is stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedAgent from app::CreatedAgent {
    pub name: String,
    pub admin: bool,
    pub token: String,
    /// True when the agent existed and got a new token (the old one no
    /// longer works): a token rotation. Creating never does that (409
    /// `agent_exists`).
    pub existed: bool,
}
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `store_unavailable` (with 503) while the store cannot be
    /// read.
    pub status: String,
    pub intents: usize,
}

/// What the server sends on a WebSocket, one JSON text message each.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerMessage {
    /// A stored record; on an agent socket `conversation` says whose and
    /// `suggestions` offers replies to a visitor message.
    Record {
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation: Option<String>,
        record: ApiRecord,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        suggestions: Vec<Suggestion>,
    },
    /// The other side is typing (`visitor` or `agent`).
    Typing {
        from: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation: Option<String>,
    },
    /// The queue changed (agent sockets).
    Queue { queue: QueueView },
    /// The client asked for records after a sequence number the server
    /// does not have: fetch the log again from `last_seq`'s side.
    Resync { last_seq: u64 },
}

/// What a client may send on a WebSocket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The sender is typing; an agent names the conversation.
    Typing {
        #[serde(default)]
        conversation: Option<String>,
    },
}

/// What a webhook receiver gets (`POST`, JSON, signed with
/// `X-Frontdesk-Signature`); built by `app/webhook.rs`, documented here.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookPacket {
    pub version: u32,
    /// Unique per event and URL; the same on every retry, so receivers can
    /// drop duplicates.
    pub delivery: String,
    /// `handoff` or `closed`.
    pub event: String,
    pub at_ms: i64,
    pub conversation: WebhookConversation,
    pub summary: ApiSummary,
    pub transcript: Vec<ApiRecord>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookConversation {
    pub id: String,
    pub phase: String,
    pub visitor: ApiVisitor,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitorQuery {
    /// The shop's own id for the visitor (as the page passed it).
    pub visitor_id: Option<String>,
    /// An email address the visitor gave, at the start or later (case does
    /// not matter). Exactly one of the two.
    pub email: Option<String>,
}

outbound! {
/// One conversation of an export: everything stored about it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportedConversation from app::privacy::ExportedConversation {
    pub id: String,
    /// `bot`, `queued`, `with_agent` or `closed`.
    pub phase: String,
    /// The whole log, internal notes and decision traces included.
    pub events: Vec<ApiRecord>,
}
}

outbound! {
/// Everything stored about one visitor: each of their conversations (found
/// by the visitor id or email the page passed at the start, or an email
/// left later) with its full log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VisitorExport from app::privacy::VisitorExport {
    pub visitor_id: Option<String>,
    pub email: Option<String>,
    pub exported_at_ms: i64,
    pub conversations: Vec<ExportedConversation>,
}
}

outbound! {
/// What a deletion removed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Deleted from app::privacy::Deleted {
    /// The conversations deleted, by id.
    pub conversations: Vec<String>,
}
}

// ---- replay (src/http/replay.rs) -------------------------------------------

/// Replay an edit of the intents over recent traffic before saving it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// How many days back from now (1 to 90).
    #[schema(minimum = 1, maximum = 90)]
    pub since_days: u32,
    /// Intent files by name (`order_status.toml`) with their edited TOML:
    /// they replace or join the files of the intents directory, in memory
    /// only. Empty: replay the current set.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

/// `?since_days=7` (1 to 90).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThresholdsQuery {
    #[param(minimum = 1, maximum = 90)]
    pub since_days: u32,
}

unit_enum! {
/// What the bot did with a visitor message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiReplayKind from crate::replay::Kind {
    Answer,
    Clarify,
    SlotPrompt,
    Fallback,
    Offer,
    Handoff,
    Declined,
    Silent,
}
}

outbound! {
/// What the bot did (or would do) with one visitor message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayOutcome from crate::replay::Outcome {
    pub kind: ApiReplayKind,
    /// The intent answered, prompted for, or recognised in a handoff.
    pub intent: Option<String>,
    /// The intents a clarification offers.
    pub options: Vec<String>,
    /// Why a person was offered or handed the conversation.
    pub reason: Option<ApiHandoffReason>,
    /// The top candidate's score (1 for a turn the visitor's choice decided).
    pub score: f32,
    /// A fallback came first (then escalated).
    pub fell_back: bool,
}
}

outbound! {
/// One message the edit would decide differently.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayDifference from crate::replay::Difference {
    pub conversation: String,
    pub seq: u64,
    pub at_ms: i64,
    pub text: String,
    pub before: ReplayOutcome,
    pub after: ReplayOutcome,
    /// `fallback_to_answer`, `handoff_to_answer`, `answer_changed_intent`, …
    pub change: String,
}
}

outbound! {
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayChange from crate::replay::Change {
    pub change: String,
    pub count: usize,
}
}

outbound! {
/// Counts of one side of a replay (stored, or predicted).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayTotals from crate::replay::Totals {
    pub answered: usize,
    pub clarified: usize,
    pub slot_prompts: usize,
    pub fallbacks: usize,
    pub offers: usize,
    pub handoffs: usize,
    /// Conversations contained: at least one bot-decided message
    /// answered, none handed off, no person taking over otherwise.
    pub contained: usize,
    pub handed_off: usize,
    /// `contained / conversations`.
    pub containment: f64,
}
}

outbound! {
/// What an edit would change on the window's traffic. Each message is
/// replayed on its conversation as it really was, so later turns that
/// would differ in reality are not simulated.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayReport from crate::replay::Report {
    pub from_ms: i64,
    pub to_ms: i64,
    pub conversations: usize,
    /// Visitor messages the bot decided, each replayed.
    pub messages: usize,
    /// Messages sent while a person held the conversation (not replayed).
    pub skipped_with_agent: usize,
    /// Messages decided differently (all counted; `differences` lists at
    /// most 500).
    pub changed: usize,
    pub changes: Vec<ReplayChange>,
    pub before: ReplayTotals,
    pub after: ReplayTotals,
    pub differences: Vec<ReplayDifference>,
}
}

outbound! {
/// One answer threshold of the what-if.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThresholdPoint from crate::replay::Point {
    pub threshold: f32,
    pub contained: usize,
    pub containment: f64,
    pub answers: usize,
    /// Answers given then to the same intent and rated not helpful or
    /// followed by a handoff.
    pub bad_answers: usize,
    /// Answers not given then: unknown quality, not counted bad.
    pub unjudged_answers: usize,
    /// `bad_answers / answers` (a lower bound where answers are unjudged).
    pub bad_share: f64,
}
}

outbound! {
/// Containment against bad answers over answer thresholds, for the
/// current set on the window's traffic.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThresholdCurve from crate::replay::Curve {
    pub from_ms: i64,
    pub to_ms: i64,
    pub conversations: usize,
    pub messages: usize,
    /// The set's global answer threshold now.
    pub current: f32,
    pub bad_answers_stored: usize,
    pub points: Vec<ThresholdPoint>,
}
}

// ---- Reports (`crate::report::model`, README "Reports") ----

outbound! {
/// A share with the counts behind it. `value` is `num / den` as an f64
/// (`None` when `den` is 0), so two computations of the same counts agree
/// bit for bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportRate)]
pub struct ApiReportRate from report::Rate {
    pub num: u64,
    pub den: u64,
    pub value: Option<f64>,
}
}

outbound! {
/// The period a report covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportWindow)]
pub struct ApiReportWindow from report::Window {
    /// First day, `YYYY-MM-DD` in `timezone`.
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    /// The shop's time zone (`[business_hours] timezone`, else `UTC`).
    pub timezone: String,
    /// `from` 00:00 in `timezone`, as Unix ms.
    pub from_ms: i64,
    /// The day after `to`, 00:00 in `timezone` (exclusive).
    pub to_ms: i64,
    /// `[reports] durable_days` and `fcr_days` the report used.
    pub durable_days: u32,
    pub fcr_days: u32,
    /// Whether business-hours figures use a schedule (`false`: none is
    /// configured, the shop counts as always open and they equal the
    /// plain figures).
    pub business_hours: bool,
}
}

outbound! {
/// Which conversations the report is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportCohort)]
pub struct ApiReportCohort from report::Cohort {
    /// Conversations started in the window.
    pub started: u64,
    /// Of those, without any visitor message: left out of everything.
    pub without_visitor_message: u64,
    /// `started - without_visitor_message`: the denominator of the outcomes.
    pub conversations: u64,
}
}

outbound! {
/// Where the cohort's conversations ended up. `contained + handed_off +
/// abandoned` = `cohort.conversations`, always (each has den = cohort).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportOutcomes)]
pub struct ApiReportOutcomes from report::Outcomes {
    /// The bot answered at least once and no person was involved.
    pub contained: ApiReportRate,
    /// A handoff happened (any reason, an agent's takeover included).
    pub handed_off: ApiReportRate,
    /// No bot answer and no handoff.
    pub abandoned: ApiReportRate,
    /// Of the contained (den = contained): the visitor's latest feedback
    /// on at least one answer is helpful and on none is not helpful.
    pub confirmed: ApiReportRate,
    /// Of the contained: no feedback at all on any answer.
    pub assumed: ApiReportRate,
    /// Of the contained: the latest feedback on at least one answer is
    /// not helpful (the visitor left unhappy without a person).
    /// `confirmed + assumed + unhelpful = contained`.
    pub unhelpful: ApiReportRate,
    /// Of the contained with a known visitor whose `durable_days` have
    /// passed (den = `contained - contained_anonymous - durable_pending`):
    /// the same visitor started no other conversation within
    /// `durable_days` after this one started.
    pub durable: ApiReportRate,
    /// Contained conversations without a visitor id or email: durability
    /// cannot be told, so they are left out of `durable`.
    pub contained_anonymous: u64,
    /// Contained conversations with a known visitor started less than
    /// `durable_days` before the report: not judged yet, left out of
    /// `durable`.
    pub durable_pending: u64,
}
}

outbound! {
/// Handoffs of one reason; a conversation counts once, under the reason of
/// its first handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportReasonCount)]
pub struct ApiReportReasonCount from report::ReasonCount {
    /// One of [`HANDOFF_REASONS`].
    pub reason: String,
    /// num: conversations whose first handoff had this reason; den: cohort.
    pub rate: ApiReportRate,
    /// The same num over den = handed-off conversations (the shares sum
    /// to 1).
    pub share: ApiReportRate,
}
}

outbound! {
/// Fallback and clarify rates over a set of visitor messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportMessageRates)]
pub struct ApiReportMessageRates from report::MessageRates {
    /// Visitor messages the bot handled (written while no person had the
    /// conversation): the denominator of both rates.
    pub messages: u64,
    /// num: of those, messages the bot answered with a fallback.
    pub fallback: ApiReportRate,
    /// num: of those, messages the bot answered with "Did you mean …?".
    pub clarify: ApiReportRate,
}
}

outbound! {
/// Fallbacks and clarifications, first messages apart from later ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportMessages)]
pub struct ApiReportMessages from report::Messages {
    /// Every visitor message of the cohort (handled by the bot or not).
    pub visitor_messages: u64,
    /// The first visitor message of each conversation (when the bot
    /// handled it).
    pub first: ApiReportMessageRates,
    /// Every later visitor message the bot handled.
    pub later: ApiReportMessageRates,
    /// `first` and `later` together.
    pub all: ApiReportMessageRates,
}
}

outbound! {
/// One distribution of durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportDurations)]
pub struct ApiReportDurations from report::Durations {
    /// Samples.
    pub count: u64,
    /// Nearest-rank p50 and p90, ms.
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    /// num: samples <= 60 000 ms; den: count.
    pub within_60s: ApiReportRate,
}
}

outbound! {
/// A duration measured on the clock and in business hours only (the time
/// the shop was open between the two instants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportTiming)]
pub struct ApiReportTiming from report::Timing {
    pub clock: ApiReportDurations,
    pub business: ApiReportDurations,
}
}

outbound! {
/// Resolution of closed cycles, whole and in its bot and human parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportResolution)]
pub struct ApiReportResolution from report::Resolution {
    /// Cycle start → close, one sample per close.
    pub total: ApiReportTiming,
    /// Cycle start → the cycle's first handoff (→ close when none).
    pub bot: ApiReportTiming,
    /// The cycle's first handoff → close (cycles with a handoff only).
    pub human: ApiReportTiming,
}
}

outbound! {
/// The person side, measured within each handoff cycle (a handoff until
/// the conversation goes back to the bot or is closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportHuman)]
pub struct ApiReportHuman from report::Human {
    /// Handoff → the first `AgentJoined` in its cycle, one sample per
    /// handoff cycle (takeovers excluded).
    pub wait: ApiReportTiming,
    /// Handoff → the first `AgentMessage` in its cycle (bot replies never
    /// stop the clock), one sample per handoff cycle (takeovers excluded).
    pub first_response: ApiReportTiming,
    pub resolution: ApiReportResolution,
    /// num: handoff cycles (takeovers excluded) with no agent message in
    /// them (as of the report); den: handoff cycles, takeovers excluded.
    /// Not in `wait` or `first_response` (they have no sample).
    pub never_answered: ApiReportRate,
    /// Handoff cycles (takeovers excluded) no agent joined (no `wait`
    /// sample).
    pub never_joined: u64,
    /// Handoff cycles that were an agent's takeover (`agent_took_over`):
    /// nobody waited, so they give no wait or first-response sample and
    /// are counted here instead.
    pub takeovers: u64,
}
}

outbound! {
/// First contact resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportFcr)]
pub struct ApiReportFcr from report::Fcr {
    /// num: of den, first closed by an agent, every agent event before
    /// that close by one agent, and not reopened within `fcr_days` of the
    /// close (no visitor message or handoff in it after the close, no new
    /// conversation of the same visitor started); den: handed-off conversations closed at least
    /// once by an agent, whose `fcr_days` after that close have passed.
    pub rate: ApiReportRate,
    /// Handed-off conversations first closed by an agent less than
    /// `fcr_days` before the report: not judged yet, left out of `rate`.
    pub pending: u64,
}
}

outbound! {
/// CSAT of one group of conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportCsatGroup)]
pub struct ApiReportCsatGroup from report::CsatGroup {
    /// num: conversations whose latest rating is 4 or 5; den: rated
    /// conversations.
    pub positive: ApiReportRate,
    /// num: rated conversations; den: closed conversations (closed at
    /// least once).
    pub response: ApiReportRate,
}
}

outbound! {
/// A rating with a comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportComment)]
pub struct ApiReportComment from report::Comment {
    pub conversation: String,
    pub at_ms: i64,
    pub score: u8,
    pub comment: String,
}
}

outbound! {
/// Customer satisfaction, from each conversation's latest rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportCsat)]
pub struct ApiReportCsat from report::Csat {
    pub all: ApiReportCsatGroup,
    /// Conversations no person was involved in.
    pub bot_only: ApiReportCsatGroup,
    /// Handed-off conversations.
    pub with_person: ApiReportCsatGroup,
    /// Latest ratings with a non-empty comment, newest first.
    pub comments: Vec<ApiReportComment>,
}
}

outbound! {
/// How one intent did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportIntentStats)]
pub struct ApiReportIntentStats from report::IntentStats {
    pub intent: String,
    /// Bot answers (`BotReply`) with this intent.
    pub answers: u64,
    /// num: answers whose latest feedback is helpful; den: answers with
    /// feedback.
    pub helpful: ApiReportRate,
    /// num: answers whose latest feedback is not helpful; den: the same.
    pub not_helpful: ApiReportRate,
    /// Conversations with at least one answer of this intent.
    pub conversations: u64,
    /// num: of those, handed off (at any point); den: `conversations`.
    pub handed_off: ApiReportRate,
}
}

outbound! {
/// Bot turns that failed a visitor message, by the decision's reason code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportFailureCount)]
pub struct ApiReportFailureCount from report::FailureCount {
    /// `fallback` or `clarify`.
    pub kind: String,
    /// The decision's reason code (`below_clarify_threshold`,
    /// `out_of_scope`, …; `unknown` for records without a decision).
    pub reason: String,
    pub messages: u64,
}
}

outbound! {
/// One day of the window (by start, in the shop's time zone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportDay)]
pub struct ApiReportDay from report::Day {
    pub date: String,
    /// Cohort conversations started that day.
    pub conversations: u64,
    pub contained: u64,
    pub handed_off: u64,
    pub abandoned: u64,
    /// Of that day's conversations: num positive latest ratings, den rated.
    pub csat: ApiReportRate,
}
}

outbound! {
/// One histogram bucket: `[from_ms, to_ms)`; `to_ms: None` is unbounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportBucket)]
pub struct ApiReportBucket from report::Bucket {
    pub from_ms: i64,
    pub to_ms: Option<i64>,
    pub count: u64,
}
}

outbound! {
/// Clock-time distributions, bucketed by [`HISTOGRAM_BOUNDS_MS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportHistograms)]
pub struct ApiReportHistograms from report::Histograms {
    pub wait: Vec<ApiReportBucket>,
    pub first_response: Vec<ApiReportBucket>,
}
}

outbound! {
/// `GET /api/v1/admin/reports/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Report)]
pub struct ApiReport from report::Report {
    pub window: ApiReportWindow,
    pub cohort: ApiReportCohort,
    pub outcomes: ApiReportOutcomes,
    /// Every reason, in [`HANDOFF_REASONS`] order.
    pub handoff_reasons: Vec<ApiReportReasonCount>,
    pub messages: ApiReportMessages,
    pub human: ApiReportHuman,
    pub fcr: ApiReportFcr,
    pub csat: ApiReportCsat,
    /// Every intent that answered, most answers first (then by name).
    pub intents: Vec<ApiReportIntentStats>,
    /// Every (kind, reason) that occurred, most messages first (then by
    /// kind and reason).
    pub failures: Vec<ApiReportFailureCount>,
    /// Every day of the window, in order (zero days included).
    pub days: Vec<ApiReportDay>,
    pub histograms: ApiReportHistograms,
}
}

outbound! {
/// One conversation behind a number (drill-down) or a CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportConversationRow)]
pub struct ApiReportConversationRow from report::ConversationRow {
    pub id: String,
    pub started_ms: i64,
    /// Name, else email, else the shop's visitor id, else empty.
    pub visitor: String,
    /// The first visitor message, up to 120 characters.
    pub first_question: String,
    /// `contained`, `handed_off` or `abandoned`.
    pub outcome: String,
    /// For a contained one: `confirmed`, `assumed` or `unhelpful`; for a
    /// handed-off one: the first handoff's reason; else empty.
    pub reason: String,
    /// Wait and first response of the first handoff cycle that was not an
    /// agent's takeover; never negative.
    pub wait_ms: Option<i64>,
    pub first_response_ms: Option<i64>,
    /// First closed cycle: start → close (never negative).
    pub resolution_ms: Option<i64>,
    /// Latest rating.
    pub rating: Option<u8>,
    /// Intents the bot answered, first seen first, without repeats.
    pub intents: Vec<String>,
}
}

outbound! {
/// `GET /api/v1/admin/reports/conversations`: a page of the conversations
/// behind `filter`, in start order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ReportConversationPage)]
pub struct ApiReportConversationPage from report::ConversationPage {
    pub filter: String,
    /// Conversations matching, over all pages.
    pub total: u64,
    pub offset: u64,
    pub conversations: Vec<ApiReportConversationRow>,
}
}

/// `from` / `to` of a report (dates in the shop's time zone, `to`
/// inclusive; default the last 7 days).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day, inclusive, `YYYY-MM-DD`.
    pub to: Option<String>,
}

/// The CSV's rows: the window, and optionally a filter and a day as a
/// drill-down takes them (default: every conversation of the window).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportCsvQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day, inclusive, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// A drill-down filter name (default `cohort`: every conversation).
    pub filter: Option<String>,
    /// Only the conversations started on this day (within the window).
    pub day: Option<String>,
}

/// A drill-down: the window, the filter and the page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportConversationsQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day, inclusive, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// A filter name (README, "Reports"): `cohort` (default),
    /// `contained_confirmed`, `handoff:asked`, `intent:order_status`, …
    pub filter: Option<String>,
    /// Only the conversations started on this day (`YYYY-MM-DD`, within
    /// the window), combined with `filter`: `filter=handed_off&day=…` is
    /// one day's segment of the volume chart.
    pub day: Option<String>,
    /// Rows to skip (default 0).
    pub offset: Option<u64>,
    /// Rows to return, 1 to 500 (default 50).
    pub limit: Option<u64>,
}

outbound! {
/// An agent as colleagues (to transfer to) and admins (to manage) see them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentListItem from app::AgentListItem {
    /// The login name (what a transfer names).
    pub name: String,
    /// What visitors see (the login name when none is set).
    pub display_name: String,
    pub admin: bool,
    /// A disabled agent's token is refused.
    pub disabled: bool,
    /// What the agent is now: their choice, or away once no console of
    /// theirs has been connected for `away_after_secs`.
    pub presence: ApiPresence,
    pub capacity: u32,
    /// Conversations the agent holds now.
    pub active: u32,
    /// Only in the answer to the `PATCH` that enabled a disabled agent:
    /// their new token, shown this once (a disable revokes the old one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}
}

inbound! {
/// An admin's change to an agent; what is left out stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentChange into app::AgentChange {
    /// What visitors see: any letters and spaces, at most 64 characters;
    /// empty: the login name again.
    #[schema(max_length = 64)]
    pub display_name: Option<String>,
    /// The last admin who can log in stays one; nobody demotes themselves.
    pub admin: Option<bool>,
    /// A disable revokes the agent's token (their record stays); an
    /// enable gives a new one, in the answer's `token`. Not the last
    /// admin, not oneself, not an agent holding conversations.
    pub disabled: Option<bool>,
}
}

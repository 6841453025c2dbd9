//! A conversation: its append-only event log (`event.rs`), the state derived
//! from it (`state.rs`), the one home of the bot's decisions and of
//! escalation (`decide.rs`) with their stored form (`turn.rs`), the pure
//! rules that turn an input into new events (`machine.rs`), and every
//! sentence the bot says to a visitor (`texts.rs`), and the visitor
//! identity the shop proved (`identity.rs`). No I/O here: storage and
//! delivery live elsewhere.

pub mod decide;
pub mod event;
pub mod identity;
pub mod machine;
pub mod state;
pub mod texts;
pub mod trace;
pub mod turn;

pub use decide::{
    decide, decide_turn, Decide, Decision, EscalationPolicy, HandoffReason, Move, Outcome,
    TestResult, HUMAN_AGENT_INTENT,
};
pub use event::{with_replies, AttachmentKind, Event, Record, Visitor};
pub use identity::{verified_visitor, VerifiedIdentity};
pub use machine::{
    may_call, planned_call, step, step_with, Actions, Gate, Input, Rules, StepError,
};
pub use state::{Conversation, Pending, Phase};
pub use texts::{Language, Texts};
pub use turn::{Reason, Turn, TurnKind};

#[cfg(test)]
mod tests;

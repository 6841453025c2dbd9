//! A conversation: its append-only event log (`event.rs`), the state derived
//! from it (`state.rs`), the pure rules that turn an input into new events
//! (`machine.rs`), and every sentence the bot says to a visitor
//! (`texts.rs`). No I/O here: storage and delivery live elsewhere.

pub mod event;
pub mod machine;
pub mod state;
pub mod texts;

pub use event::{with_replies, Event, Record, Visitor};
pub use machine::{step, EscalationPolicy, Input, Rules, StepError};
pub use state::{Conversation, Pending, Phase};
pub use texts::{Language, Texts};

#[cfg(test)]
mod tests;

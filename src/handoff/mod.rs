//! The agent side of a handoff: the queue of waiting conversations, agents
//! with presence and capacity, assignment, wait estimates, and the summary an
//! agent reads first. Pure data with the time passed in (`now_ms`), so the
//! rules are testable with a controlled clock; the server wraps it in a lock
//! and persists what changes.

mod hours;
mod notice;
mod queue;
mod summary;

pub use hours::{BusinessHours, HoursError, RawHours};
pub use notice::queue_notice;
pub use queue::{Agent, Presence, Queue, QueueError, Waiting};
pub use summary::Summary;

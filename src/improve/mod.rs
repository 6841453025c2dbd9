//! Improving the bot from its own traffic: the failures inbox (visitor
//! messages the bot fell back on, clarified, was rated not helpful on or
//! handed off, grouped into clusters of similar messages) and intent files
//! edited from the admin page, validated like `frontdesk check` and
//! written atomically.
//!
//! It reads conversations through the `Store` trait and classifies with
//! `classify`; it must not import `app` or `http` (the HTTP face is
//! `http::improve`, which reloads the running set after a write).

pub mod cluster;
pub mod edit;
pub mod failures;

pub use edit::{EditError, Fields, FileEntry, IntentFile, NewIntent};
pub use failures::{Cluster, Failed, Inbox, Why};

//! frontdesk: a customer-support chatbot for websites.
//!
//! - [`config`]: `frontdesk.toml` and `FRONTDESK_SECTION__KEY` overrides.
//! - [`intents`]: the intent files admins edit; loading and validation with
//!   `path:line:col` errors.
//! - [`classify`]: rules, the lexical model, fusion into a
//!   ranked and explained result, the decision policy, the frustration
//!   detector.
//! - [`conversation`]: the event log of a conversation, its derived state,
//!   and the pure rules of answering, clarifying and handing off.
//! - [`handoff`]: the agent queue, presence and capacity, assignment, wait
//!   estimates, and the summary an agent reads first.
//! - [`eval`]: labelled-CSV import, evaluation and threshold calibration.
//! - [`store`]: persistence behind the `Store` trait; sled is the embedded
//!   default, with durable (group-committed) appends.
//! - [`trace`]: the human-readable decision trace shared by the CLI commands.
//! - [`util`]: leaf helpers (text normalisation, a stable hash) that
//!   depend on nothing of ours, so any module may use them.
//!
//! ```
//! use frontdesk::classify::{Classifier, Decision};
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
//! let bot = Classifier::load(&dir).expect("the default intents load and pass their tests");
//! let outcome = bot.decide("How much is shipping to Canada?");
//! assert_eq!(outcome.decision, Decision::Answer { intent: "shipping_cost".into() });
//! // Every decision explains itself.
//! println!("{}", outcome.why);
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod classify;
pub mod config;
pub mod conversation;
pub mod eval;
pub mod handoff;
pub mod http;
pub mod intents;
pub mod store;
pub mod trace;
pub mod util;

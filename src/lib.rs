//! frontdesk: a customer-support chatbot for websites.
//!
//! Dependencies point one way, roughly `util` ← `intents` ← `classify` ←
//! `conversation` ← `store` ← `handoff` ← `app` ← `http` (← `main`):
//! no cycles, `classify` knows no conversation, `store` no `handoff`, and
//! only `http` knows the wire (`tests/structure.rs` keeps it so).
//!
//! - [`config`]: `frontdesk.toml` and `FRONTDESK_SECTION__KEY` overrides.
//! - [`action`]: an intent's call to the shop's backend (`[call]`), the
//!   reply template language, and the pure halves of a call (the request
//!   from the slots, the answer or the failure from the reply).
//! - [`intents`]: the intent files admins edit; loading and validation with
//!   `path:line:col` errors.
//! - [`classify`]: rules, the lexical model, fusion into a
//!   ranked and explained result, the frustration detector. It knows
//!   nothing of conversations.
//! - [`conversation`]: the event log of a conversation, its derived state,
//!   the one decision policy (answer, clarify, fall back, hand off, and why,
//!   stored as data on every bot turn), the pure rules of a conversation
//!   (`step`), and every sentence the bot says to a visitor (`texts`, in
//!   English and German, overridable in `frontdesk.toml`).
//! - [`handoff`]: the agent queue, presence and capacity, assignment, wait
//!   estimates, and the summary an agent reads first.
//! - [`improve`]: the failures inbox (what the bot fails at, clustered)
//!   and intent files edited from the admin page (validated like
//!   `frontdesk check`, written atomically).
//! - [`email`]: the emails a visitor or the team gets (replies,
//!   transcripts, notices) as text, and the SMTP client (`lettre`).
//! - [`inbox`]: the agents' inbox: every conversation in an in-memory
//!   index (kept current by the write path), searched, filtered and
//!   paged by cursor.
//! - [`eval`]: labelled-CSV import, evaluation and threshold calibration.
//! - [`store`]: persistence behind the `Store` trait (appends that name the
//!   last seq they saw, a time-ordered read, the queue, outbox and agents);
//!   sled is the embedded default, with durable (group-committed) appends.
//!   Only `main` picks the backend.
//! - [`transfer`]: `frontdesk store copy`, a shop moved between stores
//!   through the `Store` trait's export and counted on both sides.
//! - [`replay`]: stored traffic decided again by an edited intent set (the
//!   differences and predicted containment before an edit goes live), and
//!   the threshold what-if; reads the store, writes nothing.
//! - [`app`]: the running bot: one file per job (visitor and agent
//!   operations, the one write path, read-only views, admin), shared by
//!   every request; it speaks in domain types and error kinds.
//! - [`http`]: the axum face: the wire types and their OpenAPI schema
//!   (`http::api`), the status of each error kind, handlers, WebSockets,
//!   the accept loop.
//! - [`report`]: per-conversation facts folded from the logs and the
//!   reports computed from them (containment, handoffs, waits, FCR, CSAT).
//! - [`util`]: leaf helpers (text normalisation, a stable hash) that
//!   depend on nothing of ours, so any module may use them.
//!
//! ```
//! use frontdesk::classify::Classifier;
//! use frontdesk::conversation::{Decide, Decision, Reason};
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
//! let bot = Classifier::load(&dir).expect("the default intents load and pass their tests");
//! let outcome = bot.decide("How much is shipping to Canada?");
//! assert_eq!(outcome.decision, Decision::Answer { intent: "shipping_cost".into() });
//! // Every decision explains itself, as data and in words.
//! assert_eq!(outcome.turn().reason, Reason::AboveAnswerThreshold);
//! println!("{}", frontdesk::conversation::trace::trace(&outcome.turn()));
//! ```
// No unsafe code, but for one line: `util::prefetch` (a cache hint that
// cannot touch memory), which takes a fifth off the intent set's fit.
#![deny(unsafe_code)]

pub mod action;
pub mod app;
pub mod classify;
pub mod config;
pub mod conversation;
pub mod email;
pub mod eval;
pub mod handoff;
pub mod http;
pub mod improve;
pub mod inbox;
pub mod intents;
pub mod replay;
pub mod report;
pub mod store;
pub mod transfer;
pub mod util;

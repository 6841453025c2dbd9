//! The running bot, shared by every request: the store, the intent set
//! being served (swapped whole on reload), the queue, live delivery,
//! credentials, limits and metrics. Each operation is synchronous (it
//! waits for durable writes); the HTTP layer runs them in
//! `spawn_blocking`. HTTP types stay out: see `http/`.
//!
//! One file per job:
//! - this file: the `App` handle, what it holds, and opening it;
//! - `visitor.rs`: what a visitor does; `agents.rs`: credentials and what
//!   an agent does; `admin.rs`: the intents being served and `/metrics`;
//! - `write.rs`: the one write path every conversation change takes;
//!   `cluster.rs`: other nodes' writes, on a store several nodes share;
//! - `views.rs`: read-only views (queue, live list, transcript,
//!   suggestions);
//! - `hub.rs` live delivery, `webhook.rs` the outbox sender, `email.rs`
//!   emails through the same outbox, `reload.rs`
//!   hot reload, `auth.rs` tokens, `limits.rs` rates and connection
//!   counts, `metrics.rs` counters, `api.rs` request and response bodies,
//!   `error.rs` the error every operation returns, `identity.rs` the
//!   check of a visitor identity the shop's page passes (HMAC).
//!
//! Locks, always taken in this order and never across an `.await`: a
//! conversation's stripe, then the queue. They are std `Mutex`es for that
//! reason.

mod action;
mod admin;
mod agents;
pub mod api;
pub mod attachments;
pub mod auth;
pub mod canned;
mod cluster;
pub mod email;
pub mod error;
pub mod hub;
pub mod identity;
pub mod inbox;
pub mod limits;
pub mod metrics;
pub mod privacy;
pub mod reload;
pub mod report_cache;
pub mod retention;
pub mod startup;
mod states;
mod views;
mod visitor;
pub mod webhook;
mod write;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::classify::{Classifier, Evidence, Model};
use crate::config::Config;
use crate::conversation::{with_replies, Conversation, Event, Input, Phase, Record, Visitor};
use crate::conversation::{Decide, Decision, HandoffReason};
use crate::handoff::{queue_notice, Presence, Queue, Summary};
use crate::store::{AgentRecord, Appended, Batch, Store};
use crate::util::clock::Clock;

pub use self::agents::{
    add_agent_to, check_display_name, run_heartbeat, run_presence, ConsoleGuard,
};
pub use self::api::*;
pub use self::cluster::SWEEP_EVERY;
pub use self::error::{ApiError, ErrorKind};
use self::hub::Hub;
use self::limits::{ConnectionCount, RateLimiter};
use self::metrics::{Count, Gauges, Metrics};
pub use self::views::{for_visitor, resync};

/// Lock stripes for conversations: operations on one conversation are
/// serialised, on different ones they run in parallel.
const STRIPES: usize = 64;

/// How many suggested replies an agent gets per visitor message.
const SUGGESTIONS: usize = 3;

/// A bot conversation counts as live (offered for take-over) this long
/// after its last event.
const LIVE_MS: i64 = 30 * 60 * 1000;
/// At most this many conversations are remembered as live.
const LIVE_MAX: usize = 10_000;

/// Milliseconds since the Unix epoch, from the system clock (what the
/// rate limiter and the webhook sender's real sleeps use; conversation
/// times come from `App::now_ms`).
pub use crate::util::clock::system_ms as now_ms;

/// Agent `a`'s presence on a node that none of their consoles has reached
/// (a start, or an agent first heard of from another node): nobody is
/// connected yet, so an online agent is away from new work until they
/// say otherwise.
fn unconnected(a: &AgentRecord) -> Presence {
    if a.presence == Presence::Online {
        Presence::Away
    } else {
        a.presence
    }
}

/// The valid tokens of `agents`: token hash → (name, admin).
fn tokens_of(agents: &[(String, AgentRecord)]) -> HashMap<String, (String, bool)> {
    agents
        .iter()
        .filter(|(_, a)| !a.token_sha256.is_empty() && !a.disabled)
        .map(|(n, a)| (a.token_sha256.clone(), (n.clone(), a.admin)))
        .collect()
}

/// A cheap-to-clone handle on the running bot.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

/// What the handle shares; private: every use goes through `App`'s
/// methods.
struct Inner {
    config: Config,
    /// Behind the trait, so another backend can take sled's place.
    store: Arc<dyn Store>,
    /// The intent set being served; a reload builds a new one and swaps
    /// the pointer, so a request never sees half of one.
    classifier: RwLock<Arc<Classifier>>,
    /// The digest of the intent files the serving set was built from
    /// (`replay::dir_digest`): the watcher does not reload a directory
    /// that holds exactly those files (a save swaps its validated set in
    /// itself).
    served_digest: Mutex<Option<String>>,
    /// The semantic model, loaded once, used by every reload.
    model: Model,
    reload: Mutex<ReloadStatus>,
    queue: Mutex<Queue>,
    stripes: Vec<Mutex<()>>,
    hub: Arc<Hub>,
    /// Serialises read-modify-writes of agent records (a presence change
    /// must not write back a token hash that a rotation just replaced).
    agent_writes: Mutex<()>,
    /// Token hash → (agent name, admin).
    tokens: RwLock<HashMap<String, (String, bool)>>,
    /// Bumped whenever `tokens` changes: every agent socket watches it and
    /// closes once its own token stops being valid (a watch channel never
    /// drops a change, unlike a lagging broadcast).
    tokens_changed: tokio::sync::watch::Sender<u64>,
    /// Key of visitor tokens; made on the first start and kept in the store.
    secret: Vec<u8>,
    metrics: Metrics,
    rates: RateLimiter,
    sockets: Arc<ConnectionCount>,
    /// Bot conversations with recent activity: id → last event time.
    live: Mutex<HashMap<String, i64>>,
    /// Wakes the webhook sender when the outbox gets an entry.
    outbox: tokio::sync::Notify,
    /// Folded states of recently written conversations.
    states: states::States,
    /// Report facts parsed, kept fresh by the refresh (`report::cache`).
    report_cache: crate::report::FactsCache,
    /// The agents' inbox index, built in the background after start
    /// (`inbox::run`) and kept current by `after_write` and deletes.
    inbox: crate::inbox::Inbox,
    /// The time of every event, view and report (`util::clock`).
    clock: Clock,
    /// Consoles connected per agent, their choices and display names, and
    /// the auto-assigner's turn (`agents.rs`).
    people: agents::People,
    /// The canned replies, read from their file when it changes
    /// (`canned.rs`).
    canned: canned::Canned,
    /// Wakes the email sender when the outbox gets an email (the webhook
    /// sender has its own `outbox`: one `notify_one` wakes one waiter).
    mail: tokio::sync::Notify,
    /// Bytes of attachments stored, for `[attachments] max_total_bytes`
    /// (`attachments.rs`).
    attachment_usage: attachments::Usage,
}

/// The model and the intents, loaded (`App::load`).
pub struct Loaded {
    model: Model,
    classifier: Classifier,
    /// The digest of the files it was built from (`replay::dir_digest`).
    digest: String,
}

/// Who a bearer token belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub name: String,
    pub admin: bool,
}

/// Every waiting conversation's (id, position, wait estimate).
type Positions = Vec<(String, u32, Option<u64>)>;

/// The admin made because the store has none: its name, its record, and
/// its token when this node chose it. Of several nodes that start at once
/// on an empty shared store, each finds no admin; the first to put the
/// setting `first_admin` (`setting_or_put`) names the admin and its
/// token's hash for all, so each puts the same record and only that node
/// shows the token (each making its own, the last put replaced the token
/// the others had printed).
fn first_admin(
    store: &dyn Store,
    agents: &[(String, AgentRecord)],
) -> anyhow::Result<(String, AgentRecord, Option<String>)> {
    let token = auth::new_token();
    let name = if agents.iter().any(|(n, _)| n == "admin") {
        format!("admin-{}", &auth::hex(&auth::random_bytes::<3>()))
    } else {
        "admin".to_string()
    };
    let mine = format!("{name} {}", auth::token_hash(&token));
    let chosen = store.setting_or_put("first_admin", mine.as_bytes())?;
    let chosen = String::from_utf8_lossy(&chosen).into_owned();
    let Some((name, hash)) = chosen.split_once(' ') else {
        anyhow::bail!("the setting `first_admin` is not `name token-hash`: {chosen:?}");
    };
    let record = AgentRecord {
        presence: Presence::Offline,
        capacity: 3,
        admin: true,
        token_sha256: hash.to_string(),
        display_name: String::new(),
        disabled: false,
    };
    Ok((name.to_string(), record, (chosen == mine).then_some(token)))
}

/// Startup results a caller shows once.
#[derive(Debug, Default)]
pub struct Started {
    /// The token of an admin made because there was none.
    pub first_admin_token: Option<String>,
    /// That admin's name: `admin`, or `admin-` and six hex digits where an
    /// agent who is not an admin is already called `admin`.
    pub first_admin_name: Option<String>,
}

impl App {
    /// Loads the intents (which must be valid to start), restores the
    /// queue and agents from `store`, and makes the first admin if there
    /// is none. `main` opens the store and picks its backend.
    pub fn with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<(App, Started)> {
        App::with_clock(config, store, Clock::system())
    }

    /// `with_store` with a given clock: a test that scripts days of
    /// traffic through the real server sets the time itself.
    pub fn with_clock(
        config: Config,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> anyhow::Result<(App, Started)> {
        let loaded = App::load(&config)?;
        App::with_loaded(config, store, loaded, clock)
    }

    /// What the app needs before the store: the semantic model and the
    /// intents (which must be valid to start). It needs nothing of the
    /// store, so `main` loads it on a thread while the store opens.
    pub fn load(config: &Config) -> anyhow::Result<Loaded> {
        let model = Model::load_at(config.model_dir.as_deref(), config.model_precision)
            .map_err(|e| anyhow::anyhow!("[model] {e}"))?;
        if let Some(p) = model.precision() {
            tracing::info!(precision = %p, "semantic layer on");
        }
        let (classifier, digest) =
            crate::replay::edited_set(&config.server.intents_dir, &Default::default(), &model)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Loaded {
            model,
            classifier,
            digest,
        })
    }

    /// The app from what `load` loaded and an open store.
    pub fn with_loaded(
        config: Config,
        store: Arc<dyn Store>,
        loaded: Loaded,
        clock: Clock,
    ) -> anyhow::Result<(App, Started)> {
        let Loaded {
            model,
            classifier,
            digest,
        } = loaded;
        let count = classifier.intents().intents.len();
        // Put once for every node sharing the store (`setting_or_put`).
        let fresh = auth::random_bytes::<32>();
        let secret = match store.setting_or_put("visitor_secret", &fresh)? {
            s if s.len() == 32 => s,
            _ => {
                let s = auth::random_bytes::<32>().to_vec();
                store.put_setting("visitor_secret", &s)?;
                s
            }
        };
        let mut queue = Queue::default();
        queue.priority_for_upset = config.priority_for_upset;
        queue.default_handle_secs = config.default_handle_secs;
        let mut started = Started::default();
        let mut agents = store.agents()?;
        if !agents.iter().any(|(_, a)| a.admin) {
            let (name, record, token) = first_admin(store.as_ref(), &agents)?;
            store.put_agent(&name, &record)?;
            agents.retain(|(n, _)| *n != name);
            if token.is_some() {
                started.first_admin_name = Some(name.clone());
            }
            agents.push((name, record));
            started.first_admin_token = token;
        }
        for (name, a) in &agents {
            queue.set_agent(name, unconnected(a), a.capacity);
        }
        let tokens = tokens_of(&agents);
        // Other nodes' changes from here on (a shared store), so that
        // none falls between the reads below and the first one heard.
        let changes = store.changes();
        // The queue and who holds what, from the store's indexes (only the
        // conversations they name are read: `startup`).
        startup::restore(store.as_ref(), &mut queue)?;
        let now = clock.now_ms();
        let app = App {
            inner: Arc::new(Inner {
                reload: Mutex::new(ReloadStatus {
                    ok: true,
                    loaded_at_ms: now,
                    intents: count,
                    attempted_at_ms: now,
                    errors: Vec::new(),
                }),
                classifier: RwLock::new(Arc::new(classifier)),
                served_digest: Mutex::new(Some(digest)),
                model,
                queue: Mutex::new(queue),
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                hub: Arc::new(Hub::default()),
                agent_writes: Mutex::new(()),
                tokens: RwLock::new(tokens),
                tokens_changed: tokio::sync::watch::Sender::new(0),
                secret,
                metrics: Metrics::default(),
                rates: RateLimiter::per_minute(),
                sockets: Arc::new(ConnectionCount::default()),
                live: Mutex::new(HashMap::new()),
                outbox: tokio::sync::Notify::new(),
                states: states::States::default(),
                report_cache: crate::report::FactsCache::default(),
                inbox: crate::inbox::Inbox::default(),
                clock,
                people: agents::People::new(&agents),
                canned: canned::Canned::default(),
                attachment_usage: attachments::Usage::default(),
                mail: tokio::sync::Notify::new(),
                store,
                config,
            }),
        };
        if let Some(changes) = changes {
            app.follow(changes);
        }
        Ok((app, started))
    }

    /// Milliseconds since the Unix epoch, from the app's clock.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Someone is typing in `id` (its agent, or its visitor): this node's
    /// sockets are told, and the other nodes' through the store.
    pub fn typing(&self, id: &str, agent: bool) {
        self.inner.hub.typing(id, agent);
        self.inner.store.typing(id, agent);
    }

    /// Live delivery to sockets.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// Bumped whenever the set of valid tokens changes, and when visitor
    /// sessions from email links are revoked (here or on another node).
    pub fn tokens_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.tokens_changed.subscribe()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn rates(&self) -> &RateLimiter {
        &self.inner.rates
    }

    pub fn sockets(&self) -> &Arc<ConnectionCount> {
        &self.inner.sockets
    }

    /// Wakes the webhook sender when the outbox gets an entry.
    pub fn outbox_notify(&self) -> &tokio::sync::Notify {
        &self.inner.outbox
    }

    /// The report facts this process keeps parsed (`report::cache`).
    pub fn report_cache(&self) -> &crate::report::FactsCache {
        &self.inner.report_cache
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn classifier(&self) -> Arc<Classifier> {
        Arc::clone(
            &self
                .inner
                .classifier
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// The semantic model every load uses (so a replay of an edit decides
    /// as the server would).
    pub fn model(&self) -> &Model {
        &self.inner.model
    }

    pub fn intents_dir(&self) -> PathBuf {
        self.inner.config.server.intents_dir.clone()
    }

    pub(super) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.inner.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn stripe(&self, id: &str) -> MutexGuard<'_, ()> {
        let mut h = crate::util::hash::Fnv::new();
        h.write(id.as_bytes());
        let h = h.finish() as usize % STRIPES;
        self.inner.stripes[h]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

//! The running bot, shared by every request: the store, the intent set
//! being served (swapped whole on reload), the queue, live delivery,
//! credentials, limits and metrics. Each operation here is synchronous
//! (it waits for durable writes); the HTTP layer runs them in
//! `spawn_blocking`. HTTP types stay out: see `http/`.
//!
//! Locks, always taken in this order and never across an `.await`: a
//! conversation's stripe, then the queue. They are std `Mutex`es for that
//! reason.

pub mod api;
pub mod auth;
pub mod error;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod reload;
pub mod startup;
pub mod webhook;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::classify::{Classifier, Decision, Evidence, HandoffReason, Model};
use crate::config::Config;
use crate::conversation::{step, with_replies, Conversation, Event, Input, Phase, Record, Visitor};
use crate::handoff::{queue_notice, Presence, Queue, Summary};
use crate::store::{AgentRecord, Appended, Batch, SledStore, Store};

pub use self::api::*;
pub use self::error::ApiError;
use self::hub::Hub;
use self::limits::{ConnectionCount, RateLimiter};
use self::metrics::{label, Metrics};

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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A cheap-to-clone handle on the running bot.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub config: Config,
    /// Behind the trait, so another backend can take sled's place.
    store: Arc<dyn Store>,
    /// The intent set being served; a reload builds a new one and swaps
    /// the pointer, so a request never sees half of one.
    classifier: RwLock<Arc<Classifier>>,
    /// The semantic model, loaded once, used by every reload.
    model: Model,
    reload: Mutex<ReloadStatus>,
    queue: Mutex<Queue>,
    stripes: Vec<Mutex<()>>,
    pub hub: Arc<Hub>,
    /// Serialises read-modify-writes of agent records (a presence change
    /// must not write back a token hash that a rotation just replaced).
    agent_writes: Mutex<()>,
    /// Token hash → (agent name, admin).
    tokens: RwLock<HashMap<String, (String, bool)>>,
    /// Bumped whenever `tokens` changes: every agent socket watches it and
    /// closes once its own token stops being valid (a watch channel never
    /// drops a change, unlike a lagging broadcast).
    pub tokens_changed: tokio::sync::watch::Sender<u64>,
    /// Key of visitor tokens; made on the first start and kept in the store.
    secret: Vec<u8>,
    pub metrics: Metrics,
    pub rates: RateLimiter,
    pub sockets: Arc<ConnectionCount>,
    /// Bot conversations with recent activity: id → last event time.
    live: Mutex<HashMap<String, i64>>,
    /// Wakes the webhook sender when the outbox gets an entry.
    pub outbox: tokio::sync::Notify,
}

/// Who a bearer token belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub name: String,
    pub admin: bool,
}

/// Every waiting conversation's (id, position, wait estimate).
type Positions = Vec<(String, u32, Option<u64>)>;

/// Startup results a caller shows once.
#[derive(Debug, Default)]
pub struct Started {
    /// The token of an admin made because there was none.
    pub first_admin_token: Option<String>,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl App {
    /// Opens the store, loads the intents (which must be valid to start),
    /// restores the queue and agents, and makes the first admin if there
    /// is none.
    pub fn open(config: Config) -> anyhow::Result<(App, Started)> {
        let dir = &config.server.data_dir;
        if config.server.compact_on_start && dir.exists() {
            let (before, after) = SledStore::compact(dir)
                .map_err(|e| anyhow::anyhow!("{}: compaction: {e}", dir.display()))?;
            tracing::info!(before, after, "store compacted");
        }
        let store = SledStore::open(&config.server.data_dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.server.data_dir.display()))?;
        Self::with_store(config, Arc::new(store))
    }

    pub fn with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<(App, Started)> {
        let dir = config.server.intents_dir.clone();
        let model = Model::load_at(config.model_dir.as_deref(), config.model_precision)
            .map_err(|e| anyhow::anyhow!("[model] {e}"))?;
        if let Some(p) = model.precision() {
            tracing::info!(precision = %p, "semantic layer on");
        }
        let classifier = Classifier::load_with(&dir, &model).map_err(|e| anyhow::anyhow!("{e}"))?;
        let count = classifier.intents().intents.len();
        let secret = match store.setting("visitor_secret")? {
            Some(s) if s.len() == 32 => s,
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
            let token = auth::new_token();
            let name = if agents.iter().any(|(n, _)| n == "admin") {
                format!("admin-{}", &auth::hex(&auth::random_bytes::<3>()))
            } else {
                "admin".to_string()
            };
            let record = AgentRecord {
                presence: Presence::Offline,
                capacity: 3,
                admin: true,
                token_sha256: auth::token_hash(&token),
            };
            store.put_agent(&name, &record)?;
            agents.push((name, record));
            started.first_admin_token = Some(token);
        }
        let mut tokens = HashMap::new();
        for (name, a) in &agents {
            // After a restart nobody is connected: everyone starts away
            // from new work until they say otherwise.
            let presence = if a.presence == Presence::Online {
                Presence::Away
            } else {
                a.presence
            };
            queue.set_agent(name, presence, a.capacity);
            if !a.token_sha256.is_empty() {
                tokens.insert(a.token_sha256.clone(), (name.clone(), a.admin));
            }
        }
        // The queue and who holds what, from the store's indexes (only the
        // conversations they name are read: `startup`).
        startup::restore(store.as_ref(), &mut queue)?;
        let now = now_ms();
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
                store,
                config,
            }),
        };
        Ok((app, started))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn classifier(&self) -> Arc<Classifier> {
        Arc::clone(&self.classifier.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn intents_dir(&self) -> PathBuf {
        self.config.server.intents_dir.clone()
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stripe(&self, id: &str) -> MutexGuard<'_, ()> {
        let mut h = crate::intents::compile::Fnv::new();
        h.write(id.as_bytes());
        let h = h.finish() as usize % STRIPES;
        self.stripes[h].lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- credentials -------------------------------------------------

    /// The agent a bearer token belongs to.
    pub fn agent_for(&self, token: &str) -> Option<Agent> {
        let hash = auth::token_hash(token);
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .map(|(name, admin)| Agent {
                name: name.clone(),
                admin: *admin,
            })
    }

    /// Whether `token` is the visitor token of conversation `id`.
    pub fn visitor_may(&self, id: &str, token: &str) -> bool {
        auth::same(&auth::visitor_token(&self.secret, id), token)
    }

    /// Creates (or replaces the token of) an agent; returns the token.
    pub fn add_agent(&self, new: NewAgent) -> Result<CreatedAgent, ApiError> {
        let _w = self.agent_writes.lock().unwrap_or_else(|e| e.into_inner());
        let created = add_agent_to(self.store.as_ref(), &new.name, new.admin, new.token)?;
        let (name, hash) = (created.name.clone(), auth::token_hash(&created.token));
        let record = self
            .store
            .agents()?
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a)
            .ok_or_else(ApiError::internal)?;
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (n, _)| *n != name);
        tokens.insert(hash, (name.clone(), created.admin));
        drop(tokens);
        self.tokens_changed
            .send_modify(|generation| *generation += 1);
        let mut q = self.queue();
        if q.agent(&name).is_none() {
            q.set_agent(&name, record.presence, record.capacity);
        }
        Ok(created)
    }

    // ---- visitors ----------------------------------------------------

    pub fn create_conversation(
        &self,
        new: NewConversation,
    ) -> Result<CreatedConversation, ApiError> {
        let clip =
            |v: Option<String>, max: usize, field: &str| -> Result<Option<String>, ApiError> {
                match v {
                    Some(s) if s.chars().count() > max => Err(ApiError::invalid(
                        "field_too_long",
                        format!("`{field}` is longer than {max} characters"),
                    )),
                    Some(s) if s.trim().is_empty() => Ok(None),
                    other => Ok(other.map(|s| s.trim().to_string())),
                }
            };
        let visitor = Visitor {
            name: clip(new.name, 200, "name")?,
            id: clip(new.visitor_id, 200, "visitor_id")?,
            email: clip(new.email, 254, "email")?,
            page_url: clip(new.page_url, 2000, "page_url")?,
        };
        let id = format!("c{}", auth::hex(&auth::random_bytes::<12>()));
        let record = self.store.create(&id, now_ms(), visitor)?;
        self.touch_live(&id, record.at_ms, true);
        Ok(CreatedConversation {
            token: auth::visitor_token(&self.secret, &id),
            id,
            events: vec![record],
        })
    }

    /// A visitor's message; a retried `client_id` returns what was stored
    /// for it the first time.
    pub fn send(&self, id: &str, msg: SendMessage) -> Result<Stored, ApiError> {
        self.check_text(&msg.text)?;
        let cid = msg.client_id.trim().to_string();
        if cid.is_empty() || cid.len() > 64 {
            return Err(ApiError::invalid(
                "bad_client_id",
                "`client_id` is 1 to 64 characters",
            ));
        }
        let _g = self.stripe(id);
        let log = self.store.read(id, 0)?;
        if let Some(i) = log.iter().position(
            |r| matches!(&r.event, Event::VisitorMessage { client_id, .. } if *client_id == cid),
        ) {
            return Ok(Stored {
                records: with_replies(&log[i..]),
                duplicate: true,
            });
        }
        let now = now_ms();
        if let Err(wait) = self.rates.hit(
            &format!("msg:{id}"),
            self.config.limits.messages_per_minute,
            now,
        ) {
            return Err(ApiError::rate_limited("messages", wait));
        }
        self.metrics
            .inc("frontdesk_messages_total", "from=\"visitor\"".into());
        let input = Input::Visitor {
            text: msg.text,
            client_id: cid,
        };
        let (appended, before) = self.apply_locked(id, log, input, now)?;
        drop(_g);
        self.after_queue_change(id, before);
        Ok(Stored {
            records: appended.records,
            duplicate: appended.duplicate,
        })
    }

    pub fn ask_for_person(&self, id: &str) -> Result<Stored, ApiError> {
        self.apply(id, Input::AskForPerson)
    }

    pub fn rate(&self, id: &str, rate: Rate) -> Result<Stored, ApiError> {
        let comment = rate.comment.filter(|c| !c.trim().is_empty());
        if let Some(c) = &comment {
            self.check_text(c)?;
        }
        self.apply(
            id,
            Input::Rate {
                score: rate.score,
                comment,
            },
        )
    }

    pub fn leave_email(&self, id: &str, email: LeaveEmail) -> Result<Stored, ApiError> {
        self.apply(id, Input::LeaveEmail { email: email.email })
    }

    /// The log after `after`, as the visitor sees it (no internal notes,
    /// no traces); `for_agent` shows everything.
    pub fn events(&self, id: &str, after: u64, for_agent: bool) -> Result<Events, ApiError> {
        let log = self.store.read(id, 0)?;
        let last_seq = log.last().map_or(0, |r| r.seq);
        if after > last_seq {
            return Err(resync(last_seq));
        }
        let conv = Conversation::from_log(&log);
        let position = self.queue().position(id);
        Ok(Events {
            events: log
                .into_iter()
                .filter(|r| r.seq > after)
                .filter_map(|r| if for_agent { Some(r) } else { for_visitor(r) })
                .collect(),
            last_seq,
            phase: conv.phase.as_str().to_string(),
            position,
        })
    }

    // ---- agents --------------------------------------------------------

    pub fn agent_info(&self, agent: &Agent) -> AgentInfo {
        let q = self.queue();
        let a = q.agent(&agent.name);
        AgentInfo {
            name: agent.name.clone(),
            admin: agent.admin,
            presence: a.map_or(Presence::Offline, |a| a.presence),
            capacity: a.map_or(0, |a| a.capacity),
            active: a.map_or(Vec::new(), |a| a.active.iter().cloned().collect()),
        }
    }

    /// Whether `agent` holds conversation `id` (for socket filtering).
    pub fn holds(&self, agent: &str, id: &str) -> bool {
        self.queue()
            .agent(agent)
            .is_some_and(|a| a.active.contains(id))
    }

    pub fn set_presence(&self, agent: &Agent, p: SetPresence) -> Result<AgentInfo, ApiError> {
        if p.capacity.is_some_and(|c| c == 0 || c > 100) {
            return Err(ApiError::invalid("bad_capacity", "capacity is 1 to 100"));
        }
        let before;
        let capacity;
        {
            let mut q = self.queue();
            before = q.positions();
            capacity = p
                .capacity
                .or(q.agent(&agent.name).map(|a| a.capacity))
                .unwrap_or(3);
            q.set_agent(&agent.name, p.presence, capacity);
        }
        let admin = agent.admin;
        let _w = self.agent_writes.lock().unwrap_or_else(|e| e.into_inner());
        let token_sha256 = self
            .store
            .agents()?
            .into_iter()
            .find(|(n, _)| *n == agent.name)
            .map(|(_, a)| a.token_sha256)
            .unwrap_or_default();
        self.store.put_agent(
            &agent.name,
            &AgentRecord {
                presence: p.presence,
                capacity,
                admin,
                token_sha256,
            },
        )?;
        self.tell_positions(&before, "");
        self.hub.queue_changed();
        Ok(self.agent_info(agent))
    }

    pub fn queue_view(&self) -> QueueView {
        let now = now_ms();
        let (waiting, online) = {
            let q = self.queue();
            (q.waiting().to_vec(), q.online() as u32)
        };
        let items = waiting
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                let conv = self
                    .store
                    .read(&w.conversation, 0)
                    .map(|log| Conversation::from_log(&log))
                    .unwrap_or_default();
                QueueItem {
                    position: i as u32 + 1,
                    reason: w.reason,
                    priority: w.priority,
                    waited_secs: (now.saturating_sub(w.since_ms).max(0) / 1000) as u64,
                    summary: Summary::of(&conv, now),
                    conversation: w.conversation,
                }
            })
            .collect();
        QueueView {
            waiting: items,
            agents_online: online,
        }
    }

    /// Bot conversations active lately, newest first: what an agent may
    /// take over.
    pub fn live(&self) -> Vec<LiveItem> {
        let now = now_ms();
        let mut ids: Vec<(String, i64)> = {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            live.retain(|_, t| now - *t < LIVE_MS);
            live.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        ids.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ids.into_iter()
            .take(100)
            .filter_map(|(id, at)| {
                let conv = Conversation::from_log(&self.store.read(&id, 0).ok()?);
                (conv.phase == Phase::Bot).then(|| LiveItem {
                    summary: Summary::of(&conv, now),
                    conversation: id,
                    last_at_ms: at,
                })
            })
            .collect()
    }

    pub fn transcript(&self, id: &str) -> Result<Transcript, ApiError> {
        let log = self.store.read(id, 0)?;
        let conv = Conversation::from_log(&log);
        let classifier = self.classifier();
        let suggestions = log
            .iter()
            .flat_map(|r| suggest(&classifier, &conv, r))
            .collect();
        Ok(Transcript {
            id: id.to_string(),
            phase: conv.phase.as_str().to_string(),
            agent: match &conv.phase {
                Phase::WithAgent { agent } => Some(agent.clone()),
                _ => None,
            },
            summary: Summary::of(&conv, now_ms()),
            events: log,
            suggestions,
        })
    }

    /// Suggested replies to one record (a visitor message), for sockets.
    pub fn suggestions_for(&self, id: &str, record: &Record) -> Vec<Suggestion> {
        if !matches!(record.event, Event::VisitorMessage { .. }) {
            return Vec::new();
        }
        let conv = self
            .store
            .read(id, 0)
            .map(|log| Conversation::from_log(&log))
            .unwrap_or_default();
        suggest(&self.classifier(), &conv, record)
    }

    pub fn claim(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::Claim {
                agent: agent.name.clone(),
            },
        )
    }

    pub fn agent_message(&self, agent: &Agent, id: &str, t: AgentText) -> Result<Stored, ApiError> {
        self.check_text(&t.text)?;
        self.metrics
            .inc("frontdesk_messages_total", "from=\"agent\"".into());
        self.apply(
            id,
            Input::AgentMessage {
                agent: agent.name.clone(),
                text: t.text,
            },
        )
    }

    pub fn note(&self, agent: &Agent, id: &str, t: AgentText) -> Result<Stored, ApiError> {
        self.check_text(&t.text)?;
        self.apply(
            id,
            Input::Note {
                agent: agent.name.clone(),
                text: t.text,
            },
        )
    }

    pub fn transfer(&self, agent: &Agent, id: &str, t: TransferTo) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::Transfer {
                from: agent.name.clone(),
                to: t.to,
            },
        )
    }

    pub fn close(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::Close {
                agent: agent.name.clone(),
            },
        )
    }

    pub fn return_to_bot(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        self.apply(
            id,
            Input::ReturnToBot {
                agent: agent.name.clone(),
            },
        )
    }

    // ---- the one write path ----------------------------------------------

    fn check_text(&self, text: &str) -> Result<(), ApiError> {
        let max = self.config.limits.message_chars;
        if text.trim().is_empty() {
            return Err(ApiError::invalid("empty_message", "the message is empty"));
        }
        if text.chars().count() > max {
            return Err(ApiError::invalid(
                "message_too_long",
                format!("a message is at most {max} characters"),
            ));
        }
        Ok(())
    }

    fn apply(&self, id: &str, input: Input) -> Result<Stored, ApiError> {
        let g = self.stripe(id);
        let log = self.store.read(id, 0)?;
        let (appended, before) = self.apply_locked(id, log, input, now_ms())?;
        drop(g);
        self.after_queue_change(id, before);
        Ok(Stored {
            records: appended.records,
            duplicate: appended.duplicate,
        })
    }

    /// After the conversation's stripe is released (telling others takes
    /// their stripes): new places in the queue, and agents' queue views.
    fn after_queue_change(&self, id: &str, before: Option<Positions>) {
        if let Some(before) = before {
            self.tell_positions(&before, id);
            self.hub.queue_changed();
        }
    }

    /// Steps the conversation, does the queue's part, stores the events
    /// durably, then tells watchers, agents and webhooks. The caller holds
    /// the conversation's stripe, and passes the queue positions returned
    /// to `after_queue_change` once it has let go of it.
    fn apply_locked(
        &self,
        id: &str,
        log: Vec<Record>,
        input: Input,
        now: i64,
    ) -> Result<(Appended, Option<Positions>), ApiError> {
        if log.is_empty() {
            return Err(ApiError::not_found("conversation"));
        }
        let conv = Conversation::from_log(&log);
        let classifier = self.classifier();
        let mut events = step(&conv, input.clone(), &classifier, &self.config.escalation)?;
        if events.is_empty() {
            let nothing = Appended {
                records: Vec::new(),
                duplicate: false,
            };
            return Ok((nothing, None));
        }
        let mut before = None;
        let mut enqueued = None;
        let mut waited = None;
        {
            let mut q = self.queue();
            // The queue's rules (capacity, who holds what) are checked
            // before anything is written.
            match &input {
                Input::Claim { agent } => {
                    before = Some(q.positions());
                    let since = q
                        .waiting()
                        .iter()
                        .find(|w| w.conversation == id)
                        .map(|w| w.since_ms);
                    q.claim(agent, id, conv.phase == Phase::Bot)?;
                    waited = since.map(|s| (now - s).max(0) as f64 / 1000.0);
                }
                Input::Transfer { from, to } => q.transfer(from, to, id)?,
                _ => {}
            }
            for e in &events.clone() {
                match e {
                    Event::Handoff { reason } if *reason != HandoffReason::AgentTookOver => {
                        before.get_or_insert_with(|| q.positions());
                        q.enqueue(id, *reason, now);
                        events.extend(queue_notice(
                            &q,
                            self.config.business_hours.as_ref(),
                            id,
                            now,
                        ));
                        enqueued = q.waiting().iter().find(|w| w.conversation == id).cloned();
                    }
                    Event::Closed { .. } | Event::ReturnedToBot { .. } => {
                        before.get_or_insert_with(|| q.positions());
                        match &conv.phase {
                            Phase::WithAgent { agent } => {
                                let held = conv
                                    .handoff_at_ms
                                    .map_or(0, |t| ((now - t).max(0) / 1000) as u64);
                                let _ = q.release(agent, id, held);
                            }
                            Phase::Queued { .. } => {
                                q.remove(id);
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        let last_seq = log.last().map_or(0, |r| r.seq);
        let outbox = self.webhook_packets(id, &log, &events, now);
        let notify_outbox = !outbox.is_empty();
        let index = startup::index_ops(&conv, &events, now, enqueued.as_ref());
        let batch = Batch {
            at_ms: now,
            events,
            after_seq: Some(last_seq),
            outbox,
            index,
        };
        let undo = |q: &mut Queue| {
            if enqueued.is_some() {
                q.remove(id);
            }
            if let Input::Claim { agent } = &input {
                let _ = q.release(agent, id, 0);
            }
        };
        let appended = match self.store.append_batch(id, batch) {
            Ok(a) if a.duplicate => {
                // The store holds this message already (the caller's log
                // check missed it only if another writer raced it): nothing
                // was written, so the queue's part is undone too.
                undo(&mut self.queue());
                return Ok((a, None));
            }
            Ok(a) => a,
            Err(e) => {
                // Nothing was stored: undo the queue's part.
                undo(&mut self.queue());
                return Err(e.into());
            }
        };
        if notify_outbox {
            self.outbox.notify_one();
        }
        if let Some(w) = waited {
            self.metrics.observe_wait(w);
        }
        self.after_write(id, &appended.records);
        Ok((appended, before))
    }

    /// The webhook deliveries that `events`, about to be appended to `log`,
    /// cause: built before the write so they are stored with it.
    fn webhook_packets(
        &self,
        id: &str,
        log: &[Record],
        events: &[Event],
        now: i64,
    ) -> Vec<(String, Vec<u8>)> {
        let kind = webhook::kind_of;
        if self.config.webhooks.is_empty() || !events.iter().any(|e| kind(e).is_some()) {
            return Vec::new();
        }
        let first = log.last().map_or(0, |r| r.seq) + 1;
        let mut full = log.to_vec();
        full.extend(events.iter().enumerate().map(|(i, e)| Record {
            seq: first + i as u64,
            at_ms: now,
            event: e.clone(),
        }));
        events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| kind(e).map(|k| (first + i as u64, k)))
            .flat_map(|(seq, k)| webhook::packets(self, id, &full, k, seq))
            .collect()
    }

    /// Live delivery, metrics and webhooks for stored records.
    fn after_write(&self, id: &str, records: &[Record]) {
        self.hub.publish(id, records);
        let mut bot = None;
        for r in records {
            match &r.event {
                Event::BotReply {
                    intent: Some(_), ..
                } => self
                    .metrics
                    .inc("frontdesk_decisions_total", "kind=\"answer\"".into()),
                Event::Clarification { .. } => self
                    .metrics
                    .inc("frontdesk_decisions_total", "kind=\"clarify\"".into()),
                Event::Fallback { .. } => self
                    .metrics
                    .inc("frontdesk_decisions_total", "kind=\"fallback\"".into()),
                Event::Handoff { reason } => {
                    self.metrics.inc(
                        "frontdesk_handoffs_total",
                        format!("reason=\"{}\"", label(reason.as_str())),
                    );
                    bot = Some(false);
                }
                Event::Closed { .. } => {
                    bot = Some(false);
                }
                Event::Started { .. }
                | Event::VisitorMessage { .. }
                | Event::ReturnedToBot { .. } => {
                    bot.get_or_insert(true);
                }
                _ => {}
            }
        }
        if let Some(last) = records.last() {
            match bot {
                Some(true) => self.touch_live(id, last.at_ms, true),
                Some(false) => self.touch_live(id, last.at_ms, false),
                None => {}
            }
        }
    }

    fn touch_live(&self, id: &str, at_ms: i64, live: bool) {
        let mut m = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live {
            m.insert(id.to_string(), at_ms);
            // Bounded even if no agent ever asks for the list: past the
            // bound, the older half goes (rarely, so amortised O(1)).
            if m.len() > LIVE_MAX {
                m.retain(|_, t| at_ms - *t < LIVE_MS);
                if m.len() > LIVE_MAX / 2 {
                    let mut times: Vec<i64> = m.values().copied().collect();
                    let cut = times.len() - LIVE_MAX / 2;
                    let (_, nth, _) = times.select_nth_unstable(cut);
                    let nth = *nth;
                    m.retain(|_, t| *t > nth);
                }
            }
        } else {
            m.remove(id);
        }
    }

    /// Tells each waiting visitor whose place or estimate changed (but
    /// `except`, whose own events said it already).
    fn tell_positions(&self, before: &[(String, u32, Option<u64>)], except: &str) {
        let changes = self.queue().changes(before);
        for (conv, _) in changes {
            if conv == except {
                continue;
            }
            let _g = self.stripe(&conv);
            // Read the place now, under the conversation's stripe: another
            // claim or close may have moved it since the list was made.
            let event = {
                let q = self.queue();
                match q.positions().into_iter().find(|(c, _, _)| *c == conv) {
                    Some((_, position, wait_secs)) => Event::Queued {
                        position,
                        wait_secs,
                    },
                    None => continue,
                }
            };
            match self.store.append(&conv, now_ms(), vec![event]) {
                Ok(a) => self.hub.publish(&conv, &a.records),
                Err(e) => {
                    tracing::warn!(conversation = %conv, error = %e, "queue update not stored")
                }
            }
        }
    }

    // ---- admin -------------------------------------------------------------

    pub fn reload_status(&self) -> ReloadStatus {
        self.reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the intents directory; on success swaps the set in, on failure
    /// keeps the old one and records why.
    pub fn reload_now(&self) -> ReloadStatus {
        let now = now_ms();
        let result = Classifier::load_with(&self.config.server.intents_dir, &self.model);
        let mut status = self.reload.lock().unwrap_or_else(|e| e.into_inner());
        status.attempted_at_ms = now;
        match result {
            Ok(c) => {
                status.ok = true;
                status.errors.clear();
                status.loaded_at_ms = now;
                status.intents = c.intents().intents.len();
                *self.classifier.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(c);
                self.metrics
                    .inc("frontdesk_reloads_total", "result=\"ok\"".into());
                tracing::info!(intents = status.intents, "intents reloaded");
            }
            Err(e) => {
                status.ok = false;
                status.errors = e.0.iter().map(|e| e.to_string()).collect();
                self.metrics
                    .inc("frontdesk_reloads_total", "result=\"error\"".into());
                tracing::warn!(errors = %e, "intents not reloaded; the previous set keeps serving");
            }
        }
        status.clone()
    }

    pub fn intents_view(&self) -> IntentsView {
        let c = self.classifier();
        let set = c.intents();
        IntentsView {
            status: self.reload_status(),
            answer_threshold: set.thresholds.answer,
            clarify_threshold: set.thresholds.clarify,
            thresholds: set.thresholds.source.clone(),
            intents: set
                .intents
                .iter()
                .map(|i| IntentView {
                    id: i.id.clone(),
                    description: i.description.clone(),
                    action: i.action.as_str().to_string(),
                    keywords: i.keywords.iter().map(|k| k.phrase.clone()).collect(),
                    patterns: i.patterns.iter().map(|p| p.source.clone()).collect(),
                    examples: i.examples.len(),
                    answers: i.answers.clone(),
                    tests: i.tests.len(),
                    file: i.path.display().to_string(),
                })
                .collect(),
        }
    }

    pub fn classify(&self, text: &str) -> Result<Classified, ApiError> {
        self.check_text(text)?;
        let outcome = self.classifier().decide(text);
        let (intent, options, reason) = match &outcome.decision {
            Decision::Answer { intent } => (Some(intent.clone()), vec![], None),
            Decision::Clarify { options } => (None, options.clone(), None),
            Decision::Fallback => (None, vec![], None),
            Decision::Handoff { reason, intent } => (intent.clone(), vec![], Some(*reason)),
        };
        let r = &outcome.ranking;
        Ok(Classified {
            decision: outcome.decision.kind().to_string(),
            intent,
            options,
            reason,
            why: outcome.why.clone(),
            candidates: r
                .candidates
                .iter()
                .map(|c| CandidateView {
                    intent: c.intent.clone(),
                    score: c.score,
                    lexical: c.lexical,
                    rule: c.rule,
                    evidence: c
                        .evidence
                        .iter()
                        .map(|e| match e {
                            Evidence::Keyword { phrase } => format!("keyword {phrase:?}"),
                            Evidence::Pattern { source, .. } => format!("pattern {source:?}"),
                            Evidence::Meaning { text, similarity } => {
                                format!("meaning {text:?} ({similarity:.2})")
                            }
                            Evidence::Example { text, similarity } => {
                                format!("example {text:?} ({similarity:.2})")
                            }
                        })
                        .collect(),
                })
                .collect(),
            out_of_scope: r.out_of_scope,
            coverage: r.coverage,
            frustration: r.frustration.score,
            frustration_cues: r.frustration.cues.clone(),
            trace: crate::trace::trace(&outcome),
        })
    }

    /// The gauges of `/metrics`, read now.
    pub fn render_metrics(&self) -> String {
        let (len, online) = {
            let q = self.queue();
            (q.waiting().len() as f64, q.online() as f64)
        };
        let outbox = self.store.outbox().map(|o| o.len()).unwrap_or(0) as f64;
        self.metrics.render(&[
            (
                "frontdesk_queue_length",
                "Conversations waiting for an agent.",
                len,
            ),
            ("frontdesk_agents_online", "Agents online.", online),
            (
                "frontdesk_websockets_open",
                "Open WebSockets.",
                self.sockets.open() as f64,
            ),
            (
                "frontdesk_webhook_outbox",
                "Webhook deliveries not yet acknowledged.",
                outbox,
            ),
        ])
    }
}

/// Stores an agent with a new token (given, or generated); an existing
/// agent keeps presence and capacity and gets the new token.
/// `admin`: `None` keeps an existing agent's role (a new one is not an
/// admin). The last admin cannot be demoted, and a token cannot be shared.
pub fn add_agent_to(
    store: &dyn Store,
    name: &str,
    admin: Option<bool>,
    token: Option<String>,
) -> Result<CreatedAgent, ApiError> {
    let name = name.trim().to_string();
    if crate::store::check_id(&name).is_err() {
        return Err(ApiError::invalid(
            "bad_name",
            "an agent name is 1 to 64 letters, digits, `-` or `_`",
        ));
    }
    let token = match token {
        Some(t) if t.len() < 16 || t.len() > 200 || t.chars().any(char::is_whitespace) => {
            return Err(ApiError::invalid(
                "bad_token",
                "a token is 16 to 200 characters without spaces",
            ))
        }
        Some(t) => t,
        None => auth::new_token(),
    };
    let agents = store.agents()?;
    let hash = auth::token_hash(&token);
    if agents
        .iter()
        .any(|(n, a)| *n != name && a.token_sha256 == hash)
    {
        return Err(ApiError::new(
            409,
            "token_in_use",
            "another agent has this token; choose another",
        ));
    }
    let old = agents.iter().find(|(n, _)| *n == name).map(|(_, a)| a);
    let admin = admin.unwrap_or(old.is_some_and(|a| a.admin));
    if !admin && old.is_some_and(|a| a.admin) && !agents.iter().any(|(n, a)| *n != name && a.admin)
    {
        return Err(ApiError::new(
            409,
            "last_admin",
            format!("`{name}` is the only admin and stays one"),
        ));
    }
    let record = AgentRecord {
        presence: old.map_or(Presence::Offline, |a| a.presence),
        capacity: old.map_or(3, |a| a.capacity),
        admin,
        token_sha256: hash,
    };
    store.put_agent(&name, &record)?;
    Ok(CreatedAgent {
        name,
        admin,
        token,
        existed: old.is_some(),
    })
}

/// The error for a client ahead of the log.
pub fn resync(last_seq: u64) -> ApiError {
    ApiError::new(
        409,
        "resync",
        format!("the conversation has no records after {last_seq}; fetch it again from after={last_seq}"),
    )
}

/// What the visitor may see of a record: not internal notes, not traces.
pub fn for_visitor(mut r: Record) -> Option<Record> {
    match &mut r.event {
        Event::InternalNote { .. } => return None,
        Event::BotReply { trace, .. } | Event::Fallback { trace, .. } => trace.clear(),
        _ => {}
    }
    Some(r)
}

/// Agent assist: the top intents' answers to a visitor message.
fn suggest(classifier: &Classifier, conv: &Conversation, r: &Record) -> Vec<Suggestion> {
    let Event::VisitorMessage { text, .. } = &r.event else {
        return Vec::new();
    };
    let ranking = classifier.classify(text);
    let set = classifier.intents();
    ranking
        .candidates
        .iter()
        .filter(|c| c.score > 0.05)
        .filter_map(|c| {
            let intent = set.get(&c.intent)?;
            let answer = intent.answers.first()?;
            let slots = conv.slots_of(&c.intent);
            let text = crate::intents::render(answer, |k| {
                if k == "name" {
                    conv.visitor.name.as_deref()
                } else {
                    slots.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
                }
            });
            Some(Suggestion {
                seq: r.seq,
                intent: c.intent.clone(),
                score: c.score,
                answer: text,
            })
        })
        .take(SUGGESTIONS)
        .collect()
}

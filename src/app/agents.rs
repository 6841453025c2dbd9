//! Agents: credentials (bearer tokens, visitor tokens), presence and
//! capacity, and what an agent does to a conversation (claim, reply, note,
//! transfer, close, give back); agents as people (display names, the
//! admins' management of agents); presence that follows the consoles
//! really connected, and automatic assignment. Each conversation
//! operation goes through the one write path (`write.rs`).
//!
//! Presence has two sides. What the agent *chose* (`PUT
//! /agent/presence`) is stored. What the queue runs on is what the agent
//! *is*: their choice, except that an agent who chose `online` and whose
//! last console socket closed is away once `away_after_secs` have passed
//! (visitors are then told the truth), and online again as soon as a
//! console of theirs connects. An agent who never opened a console (an
//! API client) is what they chose.
//!
//! On a store shared by several nodes, presence crosses nodes through
//! heartbeats (`run_heartbeat`): the latest decision about an agent, made
//! on any node, is what every node's queue runs on, and an agent whose
//! deciding node stops beating is away on the others.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::config::Assignment;
use crate::store::{Lease, PresenceRow};

impl App {
    // ---- credentials -------------------------------------------------

    /// The agent a bearer token belongs to.
    pub fn agent_for(&self, token: &str) -> Option<Agent> {
        let hash = auth::token_hash(token);
        self.inner
            .tokens
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
        auth::same(&auth::visitor_token(&self.inner.secret, id), token)
            || self.resumed_may(id, token)
    }

    /// Refuses (403 `not_admin`) an admin's request whose sender was
    /// disabled, demoted or removed after the request's token check and
    /// before it took the agents' lock, held by the caller: such a request
    /// must not undo that, nor act as an admin any more.
    fn acting_admin(&self, by: &Agent) -> Result<(), ApiError> {
        match self.stored_agent(&by.name)? {
            Some(r) if r.admin && !r.disabled => Ok(()),
            _ => Err(ApiError::new(
                super::ErrorKind::Forbidden,
                "not_admin",
                "you are no longer an admin who can log in: nothing changed",
            )),
        }
    }

    /// Held by every change to the stored agents (add, presence, change,
    /// rotate, remove), so a check and the write it guards see one state.
    fn agent_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .agent_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Agent `name`'s stored record, if there is one.
    fn stored_agent(&self, name: &str) -> Result<Option<AgentRecord>, ApiError> {
        Ok(self
            .inner
            .store
            .agents()?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a))
    }

    /// Creates an agent; returns its token (shown this once). An existing
    /// name is refused (409 `agent_exists`), nothing changed: making it
    /// again would give it a new token and the role asked for, past the
    /// rules of PATCH (nobody demotes themselves) and silently replacing
    /// a colleague's token (review P3). Changes go through
    /// `change_agent` and `rotate_token`. (`frontdesk agent add`, run
    /// with the server stopped, still gives an existing agent a new
    /// token: the way back in for an operator who lost every admin token.)
    pub fn add_agent(&self, new: NewAgent) -> Result<CreatedAgent, ApiError> {
        self.add_agent_as(None, new)
    }

    /// `add_agent` on behalf of admin `by` (an API request), who must
    /// still be one when it runs.
    pub fn add_agent_as(
        &self,
        by: Option<&Agent>,
        new: NewAgent,
    ) -> Result<CreatedAgent, ApiError> {
        let _w = self.agent_writes();
        if let Some(by) = by {
            self.acting_admin(by)?;
        }
        let name = new.name.trim();
        if self.stored_agent(name)?.is_some() {
            return Err(ApiError::conflict(
                "agent_exists",
                format!(
                    "there is an agent `{name}` already: change it with PATCH \
                     /api/v1/admin/agents/{name}, or give it a new token with POST \
                     /api/v1/admin/agents/{name}/token"
                ),
            ));
        }
        let created = add_agent_to(self.inner.store.as_ref(), &new.name, new.admin, new.token)?;
        let name = created.name.clone();
        let record = self.stored_agent(&name)?.ok_or_else(ApiError::internal)?;
        self.set_token_of(&name, Some(&record));
        self.inner.people.learn(&name, &record);
        let mut q = self.queue();
        if q.agent(&name).is_none() {
            q.set_agent(&name, record.presence, record.capacity);
        }
        drop(q);
        self.inner.hub.queue_changed();
        Ok(created)
    }

    // ---- agents --------------------------------------------------------

    pub fn agent_info(&self, agent: &Agent) -> AgentInfo {
        let q = self.queue();
        let a = q.agent(&agent.name);
        AgentInfo {
            name: agent.name.clone(),
            display_name: self.display_of(&agent.name),
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
        let capacity = p
            .capacity
            .or(self.queue().agent(&agent.name).map(|a| a.capacity))
            .unwrap_or(3);
        // Under the agents' lock, so that an admin's disable or removal
        // that finished after this request's token check wins: such an
        // agent is refused, never made online (review P1).
        let before = {
            let _w = self.agent_writes();
            let mut record = self
                .stored_agent(&agent.name)?
                .ok_or_else(|| ApiError::not_found("agent"))?;
            if record.disabled || !self.enabled(&agent.name) {
                return Err(ApiError::unauthorized("this agent is disabled"));
            }
            record.presence = p.presence;
            record.capacity = capacity;
            self.inner.store.put_agent(&agent.name, &record)?;
            let mut q = self.queue();
            let before = (q.positions(), q.online());
            q.set_agent(&agent.name, p.presence, capacity);
            (before.0, before.1, q.online())
        };
        self.inner.people.chose(&agent.name, p.presence);
        self.inner.people.decided_here(&agent.name, self.now_ms());
        self.presence_followup(before);
        Ok(self.agent_info(agent))
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
        let done = self.apply(
            id,
            Input::AgentMessage {
                agent: agent.name.clone(),
                text: t.text,
            },
        );
        if done.is_ok() {
            self.inner.metrics.inc(Count::Message("agent"));
        }
        self.yours(agent, id, done)
    }

    pub fn note(&self, agent: &Agent, id: &str, t: AgentText) -> Result<Stored, ApiError> {
        self.check_text(&t.text)?;
        let done = self.apply(
            id,
            Input::Note {
                agent: agent.name.clone(),
                text: t.text,
            },
        );
        self.yours(agent, id, done)
    }

    pub fn transfer(&self, agent: &Agent, id: &str, t: TransferTo) -> Result<Stored, ApiError> {
        let to = t.to.trim().to_string();
        if to == agent.name {
            return Err(ApiError::conflict(
                "transfer_to_self",
                "this conversation is yours already; pick another agent",
            ));
        }
        let done = self.apply(
            id,
            Input::Transfer {
                from: agent.name.clone(),
                to: to.clone(),
            },
        );
        let done = match done {
            Err(e) if e.code == "unknown_agent" => Err(ApiError::conflict(
                "unknown_agent",
                format!("there is no agent `{to}` to transfer to"),
            )),
            Err(e) if e.code == "not_online" => Err(ApiError::conflict(
                "not_online",
                format!(
                    "{} is not online and cannot take the conversation now",
                    self.display_of(&to)
                ),
            )),
            Err(e) if e.code == "at_capacity" => Err(ApiError::conflict(
                "at_capacity",
                format!(
                    "{} has no room for another conversation",
                    self.display_of(&to)
                ),
            )),
            done => done,
        };
        // The transferring agent has a free slot now.
        if done.is_ok() {
            self.auto_assign();
        }
        self.yours(agent, id, done)
    }

    pub fn close(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        let done = self.apply(
            id,
            Input::Close {
                agent: agent.name.clone(),
            },
        );
        self.yours(agent, id, done)
    }

    pub fn return_to_bot(&self, agent: &Agent, id: &str) -> Result<Stored, ApiError> {
        let done = self.apply(
            id,
            Input::ReturnToBot {
                agent: agent.name.clone(),
            },
        );
        self.yours(agent, id, done)
    }

    /// `done`, with a `not_your_conversation` refusal told in words that
    /// say where the conversation is now (the code stays, for clients):
    /// an agent who transferred a chat away and still has it on screen
    /// learns that, and to whom.
    fn yours(
        &self,
        agent: &Agent,
        id: &str,
        done: Result<Stored, ApiError>,
    ) -> Result<Stored, ApiError> {
        let e = match done {
            Err(e) if e.code == "not_your_conversation" => e,
            done => return done,
        };
        let Ok(log) = self.inner.store.read(id, 0) else {
            return Err(e);
        };
        let conv = Conversation::from_log(&log);
        let message = match &conv.phase {
            Phase::WithAgent { agent: other } => {
                let gave = log.iter().rev().find_map(|r| match &r.event {
                    Event::Transfer { from, to } if to == other => Some(from == &agent.name),
                    Event::AgentJoined { .. } => Some(false),
                    _ => None,
                });
                if gave == Some(true) {
                    format!(
                        "you transferred this conversation to {}: it is theirs now, and only they can reply, transfer or close it",
                        self.display_of(other)
                    )
                } else {
                    format!(
                        "this conversation is with {} now: only they can reply, transfer or close it",
                        self.display_of(other)
                    )
                }
            }
            Phase::Queued { .. } => {
                "this conversation is waiting in the queue: claim it before replying".to_string()
            }
            Phase::Bot => "the bot has this conversation: take it over before replying".to_string(),
            Phase::Closed => "this conversation is closed".to_string(),
        };
        Err(ApiError::conflict("not_your_conversation", message))
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
    // The bot signs its own closes `bot`; an agent of that name would be
    // taken for it in reports and replay, and by visitors.
    if name.eq_ignore_ascii_case("bot") {
        return Err(ApiError::invalid(
            "reserved_name",
            "`bot` is the bot's own name; choose another agent name",
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
        return Err(ApiError::conflict(
            "token_in_use",
            "another agent has this token; choose another",
        ));
    }
    // Without a display name, visitors see the login name.
    check_name_free(&agents, &name, &name)?;
    let old = agents.iter().find(|(n, _)| *n == name).map(|(_, a)| a);
    let admin = admin.unwrap_or(old.is_some_and(|a| a.admin));
    if !admin && old.is_some_and(|a| a.admin) && !other_admins(&agents, &name) {
        return Err(ApiError::conflict(
            "last_admin",
            format!("`{name}` is the only admin and stays one"),
        ));
    }
    let record = AgentRecord {
        presence: old.map_or(Presence::Offline, |a| a.presence),
        capacity: old.map_or(3, |a| a.capacity),
        admin,
        token_sha256: hash,
        display_name: old.map_or(String::new(), |a| a.display_name.clone()),
        disabled: old.is_some_and(|a| a.disabled),
    };
    store.put_agent(&name, &record)?;
    Ok(CreatedAgent {
        name,
        admin,
        token,
        existed: old.is_some(),
    })
}

/// Whether an admin other than `name` can still log in.
fn other_admins(agents: &[(String, AgentRecord)], name: &str) -> bool {
    agents
        .iter()
        .any(|(n, a)| n != name && a.admin && !a.disabled)
}

/// The longest display name, in characters.
const DISPLAY_NAME_CHARS: usize = 64;

/// A display name as an admin typed it, checked: any letters of any
/// script and spaces, no control characters, at most 64 characters
/// (inner runs of spaces become one). Empty: none (the login name shows).
pub fn check_display_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().count() > DISPLAY_NAME_CHARS {
        return Err(ApiError::invalid(
            "bad_display_name",
            format!("a display name is at most {DISPLAY_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(|c| c.is_control() || hidden(c)) {
        return Err(ApiError::invalid(
            "bad_display_name",
            "a display name has no control, invisible or text-direction characters",
        ));
    }
    if name.chars().next().is_some_and(combining)
        || (!name.is_empty() && !name.chars().any(char::is_alphabetic))
    {
        return Err(ApiError::invalid(
            "bad_display_name",
            "a display name has letters, and starts with one or a sign, not a mark",
        ));
    }
    if fold(&name) == "bot" {
        return Err(ApiError::invalid(
            "bad_display_name",
            "`bot` is the bot's name: visitors must not take an agent for it",
        ));
    }
    Ok(name)
}

/// A name as a visitor tells it from another: compatibility forms
/// folded (NFKC: fullwidth `ＳＡＭ` is `SAM`), case folded, runs of
/// spaces one, as `check_display_name` folds them.
fn fold(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let name: String = name.nfkc().collect();
    name.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Refuses `shown` (a display name, or a new agent's login name, as
/// visitors would see it) when it is, folded, another agent's login or
/// display name: one agent could pass for a colleague. `name`'s own
/// names are theirs.
fn check_name_free(
    agents: &[(String, AgentRecord)],
    name: &str,
    shown: &str,
) -> Result<(), ApiError> {
    let want = fold(shown);
    if want.is_empty() {
        return Ok(());
    }
    let other = agents.iter().find(|(n, a)| {
        n != name
            && (fold(n) == want || (!a.display_name.is_empty() && fold(&a.display_name) == want))
    });
    match other {
        Some((n, _)) => Err(ApiError::conflict(
            "display_name_taken",
            format!(
                "`{shown}` is the name of another agent (`{n}`) as visitors see it; \
                 choose one that tells them apart"
            ),
        )),
        None => Ok(()),
    }
}

/// Characters that show nothing or change the direction of what follows
/// (Unicode's format characters, Cf, of the scripts a shop may meet;
/// separators of lines and paragraphs; private use): a name with one can
/// look like another agent's. Explicit ranges, so no Unicode table crate.
fn hidden(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{e000}'..='\u{f8ff}' | '\u{e0000}'..='\u{e007f}' | '\u{f0000}'..
        // Blanks and joiners that show as nothing: the grapheme joiner,
        // Hangul fillers, Khmer's invisible vowels, variation selectors,
        // the braille blank.
        | '\u{34f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{2800}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}'
        | '\u{ffa0}' | '\u{e0100}'..='\u{e01ef}')
}

/// Combining marks (the common blocks): one cannot begin a name.
fn combining(c: char) -> bool {
    matches!(c,
        '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}'
        | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// Who is really there: the console sockets open per agent and since
/// when none is, what each agent chose, and the display names visitors
/// see. A std `Mutex`: held for a map update, never across an `.await`.
#[derive(Debug, Default)]
pub(super) struct People {
    consoles: Mutex<HashMap<String, Console>>,
    /// Login name → display name, for those that have one.
    names: RwLock<HashMap<String, String>>,
    /// Held while auto-assignment runs: one assigner at a time.
    assigning: Mutex<()>,
    /// Set by a trigger that found the assigner busy: it looks again.
    again: AtomicBool,
    /// This node's name among the nodes sharing a store (made at start).
    node: String,
    /// Agents whose presence this node decided last (a choice made here,
    /// a console here bringing them back, the away timer here), with
    /// when: this node beats their rows (`run_heartbeat`).
    decided: Mutex<HashMap<String, i64>>,
    /// Agents whose presence this node took from another node's row,
    /// with that row's decision time: when no fresh row decides them any
    /// more (their node stopped beating), they are away here.
    borrowed: Mutex<HashMap<String, i64>>,
    /// Console sockets of each agent open on other nodes (fresh rows):
    /// the away timer here waits while there are some.
    consoles_elsewhere: Mutex<HashMap<String, u32>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Console {
    /// Console sockets of this agent open now.
    open: u32,
    /// When the last one closed, while the away timer runs.
    gone_since_ms: Option<i64>,
    /// What the agent chose (stored); `None` until known.
    chose: Option<Presence>,
}

impl People {
    /// From the stored agents, at start.
    pub(super) fn new(agents: &[(String, AgentRecord)]) -> People {
        let people = People {
            node: format!(
                "{}-{}",
                std::process::id(),
                auth::hex(&auth::random_bytes::<4>())
            ),
            ..People::default()
        };
        for (name, a) in agents {
            people.learn(name, a);
        }
        people
    }

    /// Takes in what a stored record says (choice, display name).
    pub(super) fn learn(&self, name: &str, a: &AgentRecord) {
        self.chose(name, a.presence);
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if a.display_name.is_empty() {
            names.remove(name);
        } else {
            names.insert(name.to_string(), a.display_name.clone());
        }
    }

    fn chose(&self, name: &str, p: Presence) {
        self.consoles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_default()
            .chose = Some(p);
    }

    /// This node decided `name`'s presence at `now_ms`.
    fn decided_here(&self, name: &str, now_ms: i64) {
        lock(&self.decided).insert(name.to_string(), now_ms);
        lock(&self.borrowed).remove(name);
    }

    pub(super) fn forget(&self, name: &str) {
        self.consoles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        lock(&self.decided).remove(name);
        lock(&self.borrowed).remove(name);
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

/// An open console socket of an agent: counted while it lives; the last
/// one dropped starts the away timer.
pub struct ConsoleGuard {
    app: App,
    name: String,
}

impl Drop for ConsoleGuard {
    fn drop(&mut self) {
        let now = self.app.now_ms();
        let mut consoles = self
            .app
            .inner
            .people
            .consoles
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = consoles.get_mut(&self.name) {
            c.open = c.open.saturating_sub(1);
            if c.open == 0 {
                c.gone_since_ms = Some(now);
            }
        }
    }
}

/// Every second, agents whose consoles have all been closed for
/// `away_after_secs` become away (`App::sweep_presence`), until
/// `shutdown`. Real time paces the loop; the app's clock decides who is
/// due, so a test on a manual clock moves it on and waits a second.
pub async fn run_presence(app: App, shutdown: impl std::future::Future<Output = ()>) {
    if app.config().assignment.away_after_secs == 0 {
        return;
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        if app.presence_due().is_empty() {
            continue;
        }
        let a = app.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || a.sweep_presence()).await {
            tracing::error!(error = %e, "presence sweep panicked");
        }
    }
}

/// A std mutex's guard, through a poisoning (the maps stay usable).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How often a node beats into a shared store (`run_heartbeat`).
pub const BEAT_MS: u64 = 1000;
/// A node whose last beat is older than this many beats is gone: its
/// agents are no longer counted by the others.
pub const MISSED_BEATS: u64 = 5;

/// Presence across nodes on a shared store (PostgreSQL): every `BEAT_MS`
/// this node writes a row per agent whose presence it decided or whose
/// consoles it holds (`PresenceRow`), with the handle times it measured,
/// and takes in the other nodes' fresh rows and everyone's latest handle
/// times (`App::beat`). The latest decision about an agent wins on every
/// node; an agent whose deciding node stops beating for `MISSED_BEATS`
/// beats (killed, frozen, cut off) is away on the others, unless a
/// console of theirs is open there. On a store of one node (sled) the
/// first beat says so and the task only waits for `shutdown`.
pub async fn run_heartbeat(app: App, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let a = app.clone();
        match tokio::task::spawn_blocking(move || a.beat()).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return shutdown.await,
            Ok(Err(e)) => tracing::warn!(error = %e, "presence heartbeat failed; will retry"),
            Err(e) => tracing::error!(error = %e, "presence heartbeat panicked"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(BEAT_MS)) => {}
        }
    }
}

impl App {
    // ---- agents as people -------------------------------------------

    /// What visitors see of agent `name`: the display name, or the login
    /// name without one.
    pub fn display_of(&self, name: &str) -> String {
        self.inner
            .people
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// A stored record as its visitor sees it: no internal notes or
    /// traces (`for_visitor`), and agents by their display names (the one
    /// they have now).
    pub fn visitor_record(&self, r: Record) -> Option<Record> {
        let mut r = for_visitor(r)?;
        let show = |n: &mut String| *n = self.display_of(n);
        match &mut r.event {
            Event::AgentJoined { agent }
            | Event::AgentMessage { agent, .. }
            | Event::ReturnedToBot { agent } => show(agent),
            // An agent's file names its sender by display name too.
            Event::Attachment {
                agent: Some(agent), ..
            } => show(agent),
            Event::Transfer { from, to } => {
                show(from);
                show(to);
            }
            // `bot` is no agent's name (it is reserved).
            Event::Closed { by } if by != "bot" => show(by),
            _ => {}
        }
        Some(r)
    }

    /// Every agent with presence and load: the console's list to transfer
    /// to and the admin page's list.
    pub fn agents_list(&self) -> Result<Vec<AgentListItem>, ApiError> {
        let stored = self.inner.store.agents()?;
        let q = self.queue();
        Ok(stored
            .into_iter()
            .map(|(name, a)| {
                let now = q.agent(&name);
                AgentListItem {
                    display_name: if a.display_name.is_empty() {
                        name.clone()
                    } else {
                        a.display_name.clone()
                    },
                    admin: a.admin,
                    disabled: a.disabled,
                    presence: if a.disabled {
                        Presence::Offline
                    } else {
                        now.map_or(Presence::Offline, |x| x.presence)
                    },
                    capacity: now.map_or(a.capacity, |x| x.capacity),
                    active: now.map_or(0, |x| x.active.len() as u32),
                    name,
                    token: None,
                }
            })
            .collect())
    }

    /// An admin's change to agent `name` (display name, admin, disabled).
    /// The last admin who can log in stays an enabled admin, an admin
    /// does not demote or disable themselves, and an agent holding
    /// conversations is not disabled (they would be stranded). A disable
    /// revokes the agent's token; an enable gives a new one, in the
    /// answer's `token` (shown this once), as a rotation does.
    pub fn change_agent(
        &self,
        by: &Agent,
        name: &str,
        change: AgentChange,
    ) -> Result<AgentListItem, ApiError> {
        let display = change
            .display_name
            .as_deref()
            .map(check_display_name)
            .transpose()?;
        let mut new_token = None;
        let before = {
            let _w = self.agent_writes();
            self.acting_admin(by)?;
            let agents = self.inner.store.agents()?;
            let mut record = agents
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a.clone())
                .ok_or_else(|| ApiError::not_found("agent"))?;
            if let Some(d) = &display {
                check_name_free(&agents, name, d)?;
            }
            let demote = change.admin == Some(false) && record.admin;
            let disable = change.disabled == Some(true) && !record.disabled;
            if (demote || disable) && record.admin && !other_admins(&agents, name) {
                return Err(ApiError::conflict(
                    "last_admin",
                    format!("`{name}` is the only admin who can log in, and stays one"),
                ));
            }
            if (demote || disable) && by.name == name {
                return Err(ApiError::conflict(
                    "own_account",
                    "you cannot demote or disable yourself; another admin can",
                ));
            }
            // A disable holds the queue from the check to the token's
            // removal: a claim or assignment (which need the agent online
            // in the queue) lands either before, and the disable is
            // refused, or after, and finds the agent offline (review P1).
            let mut q = self.queue();
            let before = (q.positions(), q.online());
            if disable && q.agent(name).is_some_and(|a| !a.active.is_empty()) {
                return Err(ApiError::conflict(
                    "agent_busy",
                    format!("`{name}` holds conversations; transfer or close them first"),
                ));
            }
            let was = q.agent(name).map(|a| (a.presence, a.capacity));
            if disable {
                let capacity = was.map_or(record.capacity, |w| w.1);
                q.set_agent(name, Presence::Offline, capacity);
            }
            if let Some(d) = display {
                record.display_name = d;
            }
            if let Some(admin) = change.admin {
                record.admin = admin;
            }
            // A disable revokes the token (its hash goes); an enable gives
            // a new one, shown once in the answer: a token handed out
            // before the disable never works again (review P4).
            let enable = change.disabled == Some(false) && record.disabled;
            if disable {
                record.disabled = true;
                record.presence = Presence::Offline;
                record.token_sha256 = String::new();
            }
            if enable {
                let token = auth::new_token();
                record.disabled = false;
                record.token_sha256 = auth::token_hash(&token);
                new_token = Some(token);
            }
            if let Err(e) = self.inner.store.put_agent(name, &record) {
                // Nothing changed: the queue as it was.
                if let (true, Some((presence, capacity))) = (disable, was) {
                    q.set_agent(name, presence, capacity);
                }
                return Err(e.into());
            }
            self.set_token_of(name, Some(&record));
            let after = q.online();
            drop(q);
            self.inner.people.learn(name, &record);
            disable.then_some((before.0, before.1, after))
        };
        if let Some(before) = before {
            self.presence_followup(before);
        } else {
            self.inner.hub.queue_changed();
        }
        let mut item = self
            .agents_list()?
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| ApiError::not_found("agent"))?;
        item.token = new_token;
        Ok(item)
    }

    /// A new token for agent `name`, shown this once; the old one stops
    /// working at once (its sockets close).
    pub fn rotate_token(&self, by: &Agent, name: &str) -> Result<CreatedAgent, ApiError> {
        let _w = self.agent_writes();
        self.acting_admin(by)?;
        let mut record = self
            .stored_agent(name)?
            .ok_or_else(|| ApiError::not_found("agent"))?;
        // A disabled agent has no token; enabling gives one.
        if record.disabled {
            return Err(ApiError::conflict(
                "agent_disabled",
                format!("`{name}` is disabled: enable them, which gives a new token"),
            ));
        }
        let token = auth::new_token();
        record.token_sha256 = auth::token_hash(&token);
        self.inner.store.put_agent(name, &record)?;
        self.set_token_of(name, Some(&record));
        Ok(CreatedAgent {
            name: name.to_string(),
            admin: record.admin,
            token,
            existed: true,
        })
    }

    /// Deletes agent `name`. Not oneself, not the last admin who can log
    /// in, not an agent holding conversations. Their name stays in the
    /// conversations they took part in.
    pub fn remove_agent(&self, by: &Agent, name: &str) -> Result<(), ApiError> {
        {
            let _w = self.agent_writes();
            self.acting_admin(by)?;
            let agents = self.inner.store.agents()?;
            let record = agents
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a)
                .ok_or_else(|| ApiError::not_found("agent"))?;
            if record.admin && !record.disabled && !other_admins(&agents, name) {
                return Err(ApiError::conflict(
                    "last_admin",
                    format!("`{name}` is the only admin who can log in, and stays"),
                ));
            }
            if by.name == name {
                return Err(ApiError::conflict(
                    "own_account",
                    "you cannot remove yourself; another admin can",
                ));
            }
            if self.holds_any(name) {
                return Err(ApiError::conflict(
                    "agent_busy",
                    format!("`{name}` holds conversations; transfer or close them first"),
                ));
            }
            self.inner.store.remove_agent(name)?;
            self.set_token_of(name, None);
            self.inner.people.forget(name);
        }
        let before = {
            let mut q = self.queue();
            let before = (q.positions(), q.online());
            q.remove_agent(name);
            (before.0, before.1, q.online())
        };
        self.presence_followup(before);
        Ok(())
    }

    fn holds_any(&self, name: &str) -> bool {
        self.queue()
            .agent(name)
            .is_some_and(|a| !a.active.is_empty())
    }

    /// Whether agent `name` exists and may log in (has a token that is
    /// not disabled).
    fn enabled(&self, name: &str) -> bool {
        self.inner
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|(n, _)| n == name)
    }

    /// Makes the token map say what `record` says of agent `name` (none:
    /// removed), and tells sockets to check their tokens.
    fn set_token_of(&self, name: &str, record: Option<&AgentRecord>) {
        let mut tokens = self.inner.tokens.write().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (n, _)| n != name);
        if let Some(r) = record.filter(|r| !r.disabled && !r.token_sha256.is_empty()) {
            tokens.insert(r.token_sha256.clone(), (name.to_string(), r.admin));
        }
        drop(tokens);
        self.inner
            .tokens_changed
            .send_modify(|generation| *generation += 1);
    }

    // ---- presence that follows the consoles ------------------------------

    /// A console socket of `agent` opened: counted until the guard drops.
    /// An agent who chose `online` and was made away by absence (or by a
    /// restart) is online again. Blocking (it may tell visitors and assign).
    pub fn console_opened(&self, agent: &str) -> ConsoleGuard {
        let back = {
            let mut consoles = self
                .inner
                .people
                .consoles
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let c = consoles.entry(agent.to_string()).or_default();
            c.open += 1;
            c.gone_since_ms = None;
            c.chose == Some(Presence::Online)
        };
        let guard = ConsoleGuard {
            app: self.clone(),
            name: agent.to_string(),
        };
        let now = self.queue().agent(agent).map(|a| a.presence);
        if back && now.is_some_and(|p| p != Presence::Online) {
            self.shift_presence(agent, Presence::Online, None);
        }
        guard
    }

    /// One heartbeat (`run_heartbeat`), blocking: `false` on a store of
    /// one node.
    pub fn beat(&self) -> Result<bool, crate::store::StoreError> {
        let people = &self.inner.people;
        let decided = lock(&people.decided).clone();
        let consoles: HashMap<String, u32> = lock(&people.consoles)
            .iter()
            .filter(|(_, c)| c.open > 0)
            .map(|(n, c)| (n.clone(), c.open))
            .collect();
        let (rows, handled) = {
            let mut q = self.queue();
            let names: std::collections::BTreeSet<&String> =
                decided.keys().chain(consoles.keys()).collect();
            let rows: Vec<PresenceRow> = names
                .into_iter()
                .filter_map(|name| {
                    let a = q.agent(name)?;
                    Some(PresenceRow {
                        node: people.node.clone(),
                        agent: name.clone(),
                        presence: a.presence,
                        capacity: a.capacity,
                        consoles: consoles.get(name).copied().unwrap_or(0),
                        changed_ms: decided.get(name).copied().unwrap_or(0),
                    })
                })
                .collect();
            (rows, q.take_unshared())
        };
        let fresh_ms = (BEAT_MS * MISSED_BEATS) as i64;
        let shared = match self
            .inner
            .store
            .beat(&people.node, &rows, &handled, fresh_ms)
        {
            Ok(Some(shared)) => shared,
            Ok(None) => return Ok(false),
            Err(e) => {
                self.queue().unshare(handled);
                return Err(e);
            }
        };
        self.queue().share_handle_times(&shared.handle_secs);
        self.take_presence(shared.presence);
        Ok(true)
    }

    /// Takes in the other nodes' fresh rows: an agent whose latest
    /// decision was made elsewhere is here what it is there; an agent
    /// taken from a node that no longer beats (no fresh deciding row) is
    /// away, unless a console of theirs is open here.
    fn take_presence(&self, rows: Vec<PresenceRow>) {
        let people = &self.inner.people;
        let mut elsewhere: HashMap<String, u32> = HashMap::new();
        let mut latest: HashMap<String, PresenceRow> = HashMap::new();
        for r in rows {
            *elsewhere.entry(r.agent.clone()).or_default() += r.consoles;
            if r.changed_ms == 0 {
                continue;
            }
            match latest.get(&r.agent) {
                Some(l) if l.changed_ms >= r.changed_ms => {}
                _ => {
                    latest.insert(r.agent.clone(), r);
                }
            }
        }
        *lock(&people.consoles_elsewhere) = elsewhere;
        for (name, r) in &latest {
            {
                let mut decided = lock(&people.decided);
                if decided.get(name).is_some_and(|&t| t >= r.changed_ms) {
                    continue;
                }
                decided.remove(name);
                lock(&people.borrowed).insert(name.clone(), r.changed_ms);
            }
            if matches!(r.presence, Presence::Online | Presence::Offline) {
                people.chose(name, r.presence);
            }
            let here = self.queue().agent(name).map(|a| (a.presence, a.capacity));
            if here.is_some_and(|h| h != (r.presence, r.capacity)) {
                tracing::info!(agent = %name, node = %r.node, presence = ?r.presence,
                    "presence decided on another node");
                self.shift_presence_as(name, r.presence, Some(r.capacity));
            }
        }
        let gone: Vec<String> = {
            let mut borrowed = lock(&people.borrowed);
            let gone: Vec<String> = borrowed
                .keys()
                .filter(|n| !latest.contains_key(*n))
                .cloned()
                .collect();
            for n in &gone {
                borrowed.remove(n);
            }
            gone
        };
        for name in gone {
            let online = self
                .queue()
                .agent(&name)
                .is_some_and(|a| a.presence == Presence::Online);
            if online && self.consoles_open(&name) == 0 {
                tracing::info!(agent = %name, "the node that had this agent stopped beating: away");
                self.shift_presence_as(&name, Presence::Away, None);
            }
        }
    }

    /// How many console sockets of `agent` are open now.
    pub fn consoles_open(&self, agent: &str) -> u32 {
        self.inner
            .people
            .consoles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(agent)
            .map_or(0, |c| c.open)
    }

    /// Agents whose away timer has run out.
    fn presence_due(&self) -> Vec<String> {
        let Assignment {
            away_after_secs, ..
        } = self.inner.config.assignment;
        if away_after_secs == 0 {
            return Vec::new();
        }
        let due = self.now_ms() - away_after_secs as i64 * 1000;
        let elsewhere = lock(&self.inner.people.consoles_elsewhere).clone();
        self.inner
            .people
            .consoles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, c)| c.open == 0 && c.gone_since_ms.is_some_and(|t| t <= due))
            // A console on another node keeps them there.
            .filter(|(n, _)| elsewhere.get(*n).is_none_or(|&k| k == 0))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Makes away every agent whose consoles have all been closed for
    /// `away_after_secs` and who is online: they take no new visitors,
    /// and waiting visitors hear the estimate (or that nobody is there)
    /// again. Their choice stays stored: a console that connects makes
    /// them online again.
    pub fn sweep_presence(&self) {
        for name in self.presence_due() {
            {
                let mut consoles = self
                    .inner
                    .people
                    .consoles
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match consoles.get_mut(&name) {
                    Some(c) if c.open == 0 => c.gone_since_ms = None,
                    _ => continue,
                }
            }
            let online = self
                .queue()
                .agent(&name)
                .is_some_and(|a| a.presence == Presence::Online);
            if online {
                tracing::info!(agent = %name, "no console connected: away");
                self.shift_presence(&name, Presence::Away, None);
            }
        }
    }

    /// Sets what agent `name` is in the queue (capacity: unchanged when
    /// `None`), then tells waiting visitors and agents, and assigns.
    fn shift_presence(&self, name: &str, presence: Presence, capacity: Option<u32>) {
        self.inner.people.decided_here(name, self.now_ms());
        self.shift_presence_as(name, presence, capacity);
    }

    /// `shift_presence` without taking the decision as this node's (one
    /// taken from another node's row).
    fn shift_presence_as(&self, name: &str, presence: Presence, capacity: Option<u32>) {
        let before = {
            let mut q = self.queue();
            // A disabled or removed agent (no token) is left as the
            // disable or removal put them: offline, or gone (review P1).
            if !self.enabled(name) {
                return;
            }
            let before = (q.positions(), q.online());
            let capacity = capacity.or(q.agent(name).map(|a| a.capacity)).unwrap_or(3);
            q.set_agent(name, presence, capacity);
            (before.0, before.1, q.online())
        };
        self.presence_followup(before);
    }

    /// After agents' presence changed: waiting visitors whose estimate
    /// changed are told; when the last online agent went, each waiting
    /// visitor is told that nobody is there (as on arrival), with the offer
    /// to leave an email. Then agents' queues, then assignment.
    ///
    /// `online_after` is counted under the same hold of the queue as the
    /// change: of several agents leaving at once, only the change that
    /// took the count to zero tells visitors so (read later, after the
    /// lock, two changes both saw zero and the notice went out twice).
    fn presence_followup(&self, (before, had_online, online_after): (Positions, usize, usize)) {
        if had_online > 0 && online_after == 0 {
            let waiting: Vec<String> = self
                .queue()
                .waiting()
                .iter()
                .map(|w| w.conversation.clone())
                .collect();
            for id in waiting {
                let _g = self.stripe(&id);
                let now = self.now_ms();
                let events = queue_notice(
                    &self.queue(),
                    self.inner.config.business_hours.as_ref(),
                    &id,
                    now,
                    &self.inner.config.texts,
                    self.email_on(),
                );
                if events.is_empty() {
                    continue;
                }
                // Through the write path, so the notice reaches what
                // every other event reaches: sockets, the inbox, webhooks,
                // metrics (review P5: it was appended past them).
                // Unless its visitor was told already that there is no
                // estimate: every node that sees the last agent leave
                // (there, or from that node's beat) comes here, and the
                // first append wins (pglease's finding: each node wrote
                // the notice).
                let told = |c: &Conversation| c.told_wait == Some(None);
                if let Err(e) = self.write_queue_notice(&id, events, now, told) {
                    tracing::warn!(conversation = %id, error = %e, "queue notice not stored")
                }
            }
        } else {
            self.tell_positions(&before, "");
        }
        self.inner.hub.queue_changed();
        self.auto_assign();
    }

    // ---- automatic assignment -------------------------------------------------

    /// With `[assignment] auto_assign`, gives waiting visitors to online
    /// agents with room, the least busy first, upset visitors first (the
    /// queue's order), each as a claim by that agent through the write
    /// path (an `agent_joined` like any claim). Called when a visitor
    /// starts waiting and whenever an agent may have become available.
    /// One assigner at a time; a trigger that finds it busy makes it look
    /// again before it stops.
    ///
    /// On a store several nodes share, only the node holding the outbox
    /// lease assigns: each node counts an agent's holds from its own
    /// queue, which hears another node's claims only once they are
    /// committed, so two assigners at once gave one agent past their
    /// capacity. The lease holder hears every node's waiting visitors,
    /// releases and presence (`cluster.rs`, the beats), and its own claims
    /// are in its queue as each is stored.
    pub fn auto_assign(&self) {
        if !self.inner.config.assignment.auto_assign {
            return;
        }
        match self.inner.store.outbox_lease() {
            Ok(Lease::Sole | Lease::Held) => {}
            Ok(Lease::Elsewhere) => return,
            Err(e) => {
                tracing::warn!(error = %e, "the lease cannot be checked; not assigning");
                return;
            }
        }
        let people = &self.inner.people;
        loop {
            let Ok(guard) = people.assigning.try_lock() else {
                people.again.store(true, Ordering::SeqCst);
                return;
            };
            people.again.store(false, Ordering::SeqCst);
            // A conversation whose claim failed (its state moved on) is
            // not tried again in this round.
            let mut skip: Vec<String> = Vec::new();
            let mut tried: HashSet<(String, String)> = HashSet::new();
            loop {
                let Some(pair) = self.queue().next_assignment(&skip) else {
                    break;
                };
                if !tried.insert(pair.clone()) {
                    skip.push(pair.1.clone());
                    continue;
                }
                let (agent, id) = pair;
                match self.apply(
                    &id,
                    Input::Claim {
                        agent: agent.clone(),
                    },
                ) {
                    Ok(_) => tracing::info!(%agent, conversation = %id, "assigned"),
                    Err(e) => {
                        tracing::debug!(%agent, conversation = %id, error = %e, "not assigned");
                        skip.push(id);
                    }
                }
            }
            drop(guard);
            if !people.again.swap(false, Ordering::SeqCst) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_display_name;

    #[test]
    fn display_names_take_any_script_and_refuse_what_hides_or_breaks() {
        for (raw, want) in [
            ("  Zoë   Müller ", Some("Zoë Müller")),
            ("李小龍", Some("李小龍")),
            ("Ana-María O'Neil", Some("Ana-María O'Neil")),
            ("", Some("")),
            ("   ", Some("")),
            ("tab\tinside", Some("tab inside")),
            ("bell\u{7}", None),
            ("right\u{202e}left", None),
            ("zero\u{200b}width", None),
            // Invisible or direction-changing format characters.
            ("arabic\u{61c}mark", None),
            ("\u{feff}bom", None),
            ("soft\u{ad}hyphen", None),
            ("word\u{2060}joiner", None),
            ("tag\u{e0041}", None),
            ("private\u{e000}use", None),
            // Blank or joining characters that look like nothing (review of
            // the uniqueness fix: "Sam" plus one of these passed as new).
            ("Sam\u{34f}", None),
            ("Sam\u{fe0f}", None),
            ("Sam\u{3164}", None),
            ("sam\u{2800}", None),
            ("B\u{3164}ot", None),
            ("Sam\u{e0100}", None),
            ("Sam\u{ffa0}", None),
            // A line separator is whitespace: folded like a tab.
            ("line\u{2028}sep", Some("line sep")),
            // Marks with nothing to sit on, or no letter at all.
            ("\u{301}\u{301}", None),
            ("\u{301}Ana", None),
            ("José", Some("José")),
            ("12 34", None),
            // The bot's name is the bot's.
            ("Bot", None),
            (" bot ", None),
            ("Bot Builder", Some("Bot Builder")),
            // Fullwidth letters are the same name (NFKC).
            ("\u{ff22}\u{ff4f}\u{ff54}", None),
        ] {
            assert_eq!(check_display_name(raw).ok().as_deref(), want, "{raw:?}");
        }
        assert!(
            check_display_name(&"é".repeat(64)).is_ok(),
            "64 characters, not bytes"
        );
        let e = check_display_name(&"é".repeat(65)).unwrap_err();
        assert_eq!(e.code, "bad_display_name");
    }
}

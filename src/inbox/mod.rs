//! The agents' inbox: every conversation in one list, newest activity
//! first, searchable and filterable, paged by cursor (README, "Inbox").
//!
//! An in-memory index, one compact `Row` per conversation: what a list
//! line shows (name, email, first question, state, agent, handoff reason,
//! rating, times) and one lowercased `hay` string to search: the distinct
//! words of the visitor's name and email, the intents the bot recognised,
//! the visitor's and agents' messages, notes and rating comments (the
//! bot's own sentences are left out: they are the same in every
//! conversation, and the intent ids stand for them). At most `MAX_TEXT`
//! bytes of it per conversation: the name, email and first question
//! stay, of the rest the newest words (a visitor cannot make one
//! conversation cost the index more). A search scans the
//! rows (a substring search per term with `memchr::memmem`), so any part
//! of a word is found; no log is read per query. A search holds the read
//! lock for the scan (tens of ms at 100,000 conversations); a write never
//! waits for it: its change is queued and applied before the next search.
//!
//! The index is built from the store once, off the request path (the app
//! starts it in the background after start: `app::inbox`), and kept
//! current by the write path's fan-out (`record`, from the records just
//! stored) and deletes (`remove`). Until the build is done, `search`
//! answers `InboxError::Building`; writes made during the build are noted
//! and their logs read again before the index goes live, so none is lost.
//!
//! Paging is stable while traffic flows: a cursor carries the index's
//! version when the first page was made, and the rows are ordered by
//! their activity *as of that version* (the index remembers, for an hour,
//! what each write changed). A conversation that gets a message while an
//! agent pages is neither shown twice nor skipped; conversations started
//! after the first page are left to the next refresh of the list. Filters
//! on state, agent, reason and rating see the rows as they are now.
//!
//! This module owns the index only; it reads the store and knows nothing
//! of `app` or `http`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use crate::conversation::{Event, HandoffReason, Record};
use crate::store::{Store, StoreError};

/// Bytes of searchable words kept per conversation, each distinct word
/// once. A visitor decides how many distinct words their messages have,
/// so this bounds what one conversation costs the index (review I2: at
/// 4 KB, 100,000 hostile conversations held ~700 MB). First come the
/// words an agent looks a conversation up by and that never go: the
/// visitor's name and email and the first question (the title), up to
/// `PINNED_TEXT`; the rest holds the newest words of everything else
/// (messages, notes, intents, rating comments), the oldest going first,
/// and a word that comes again is new again.
pub const MAX_TEXT: usize = 1024;
/// Of `MAX_TEXT`, at most this much for the words that stay.
const PINNED_TEXT: usize = 512;
/// A longer word is kept by its first bytes (an email address fits).
const MAX_WORD: usize = 256;
/// Characters of the first visitor question kept for the title.
const FIRST_CHARS: usize = 120;
/// Rows per page unless asked otherwise, and at most.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// A search is at most this many characters and terms.
pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_TERMS: usize = 8;
/// How long (and how many) changes are remembered for cursors: a cursor
/// older than that is refused (`CursorExpired`) and the list starts again.
const CHANGES_MS: i64 = 3_600_000;
const CHANGES_MAX: usize = 200_000;

/// Where a conversation stands, as the inbox shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Bot,
    Queued,
    WithAgent,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Bot => "bot",
            State::Queued => "queued",
            State::WithAgent => "with_agent",
            State::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::Bot, State::Queued, State::WithAgent, State::Closed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A handoff reason from its name (`asked`, `agent_took_over`, …).
pub fn parse_reason(s: &str) -> Option<HandoffReason> {
    use HandoffReason::*;
    [
        Asked,
        IntentAction,
        NegativeSentiment,
        LowConfidence,
        RepeatedFallback,
        AgentTookOver,
        BackendError,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
}

/// One conversation in the index.
#[derive(Debug, Clone)]
struct Row {
    id: Box<str>,
    started_ms: i64,
    /// The time of its last event (queue position updates aside).
    last_ms: i64,
    state: State,
    /// The latest handoff's reason (kept after the close).
    reason: Option<HandoffReason>,
    /// The latest rating.
    rating: Option<u8>,
    /// Who has it, or the last agent who had it; interned (`Inner::agents`).
    agent: Option<Arc<str>>,
    name: Option<Box<str>>,
    email: Option<Box<str>>,
    /// The first visitor message, clipped: the title when there is no name.
    first: Option<Box<str>>,
    /// What a search looks in: its distinct words, lowercased, one per
    /// line (`\n` before each), at most `MAX_TEXT` bytes: the words that
    /// stay, then the newest others, oldest first.
    hay: String,
    /// Bytes of `hay` that stay: the leading `\n` and the pinned words.
    pinned: u16,
}

impl Row {
    fn new(id: &str, at_ms: i64) -> Row {
        Row {
            id: id.into(),
            started_ms: at_ms,
            last_ms: at_ms,
            state: State::Bot,
            reason: None,
            rating: None,
            agent: None,
            name: None,
            email: None,
            first: None,
            hay: String::new(),
            pinned: 0,
        }
    }

    /// Adds the words of `text` that the row does not hold yet, as
    /// words that stay (`pin`, while `PINNED_TEXT` has room) or as the
    /// newest others (a held one moves to the end; past `MAX_TEXT` the
    /// oldest go). A search term never spans whitespace (terms are split
    /// on it), so the set of distinct words finds what the full text
    /// would, in a fraction of the bytes (chats repeat their words).
    fn push(&mut self, text: &str, pin: bool) {
        let lower = text.to_lowercase();
        if self.hay.is_empty() {
            self.hay.push('\n');
            self.pinned = 1;
        }
        for word in lower.split_whitespace() {
            let word = clip_word(word);
            let pinned = self.pinned as usize;
            let held = self.hay.match_indices(word).map(|(i, _)| i).find(|&i| {
                self.hay.as_bytes()[i - 1] == b'\n'
                    && self.hay.as_bytes().get(i + word.len()) == Some(&b'\n')
            });
            match held {
                Some(i) if i < pinned => continue,
                // Held among the others, now pinned (an email typed in a
                // message before it was left): into the pinned part, so
                // later words cannot push it out.
                Some(i) if pin && pinned + word.len() < PINNED_TEXT => {
                    self.hay.replace_range(i..i + word.len() + 1, "");
                    self.hay.insert_str(pinned, word);
                    self.hay.insert(pinned + word.len(), '\n');
                    self.pinned += word.len() as u16 + 1;
                }
                Some(i) if i + word.len() + 1 == self.hay.len() => continue,
                // Newest again (or pinned with no room left): to the end.
                Some(i) => {
                    self.hay.replace_range(i..i + word.len() + 1, "");
                    self.hay.push_str(word);
                    self.hay.push('\n');
                }
                None if pin && pinned + word.len() < PINNED_TEXT => {
                    self.reserve(word.len() + 1);
                    self.hay.insert_str(pinned, word);
                    self.hay.insert(pinned + word.len(), '\n');
                    self.pinned += word.len() as u16 + 1;
                }
                None => {
                    self.reserve(word.len() + 1);
                    self.hay.push_str(word);
                    self.hay.push('\n');
                }
            }
            // The oldest of the others go.
            while self.hay.len() > MAX_TEXT {
                let start = self.pinned as usize;
                let Some(end) = self.hay[start..].find('\n') else {
                    break;
                };
                self.hay.replace_range(start..start + end + 1, "");
            }
        }
    }

    /// Room for `more` bytes, growing `hay` by doubling up to `MAX_TEXT`
    /// and then only by what is asked (the oldest words go right after),
    /// so its capacity, which the memory count includes, stays near
    /// `MAX_TEXT` and never past it by more than a word.
    fn reserve(&mut self, more: usize) {
        let len = self.hay.len();
        if self.hay.capacity() - len >= more {
            return;
        }
        let want = (len * 2).clamp(64, MAX_TEXT).max(len + more);
        self.hay.reserve_exact(want - len);
    }

    fn apply(&mut self, r: &Record, agents: &mut HashMap<Box<str>, Arc<str>>) {
        if !matches!(r.event, Event::Queued { .. }) {
            self.last_ms = self.last_ms.max(r.at_ms);
        }
        match &r.event {
            Event::Started { visitor } => {
                self.started_ms = r.at_ms;
                self.name = visitor.name.as_deref().map(Into::into);
                self.email = visitor.email.as_deref().map(Into::into);
                for v in [&visitor.name, &visitor.email].into_iter().flatten() {
                    self.push(v, true);
                }
            }
            Event::VisitorMessage { text, .. } => {
                if self.first.is_none() {
                    let first: String = text.trim().chars().take(FIRST_CHARS).collect();
                    // The title's words stay searchable.
                    self.push(&first, true);
                    self.first = Some(first.into());
                }
                if self.state == State::Closed {
                    self.state = State::Bot;
                }
                self.push(text, false);
            }
            Event::BotReply {
                intent: Some(intent),
                ..
            }
            | Event::SlotPrompt { intent, .. } => self.push(intent, false),
            Event::Handoff { reason, .. } => {
                self.state = State::Queued;
                self.reason = Some(*reason);
            }
            Event::AgentJoined { agent } | Event::Transfer { to: agent, .. } => {
                self.state = State::WithAgent;
                self.agent = Some(intern(agents, agent));
            }
            Event::AgentMessage { text, .. } | Event::InternalNote { text, .. } => {
                self.push(text, false)
            }
            Event::ReturnedToBot { .. } => self.state = State::Bot,
            Event::Closed { .. } => self.state = State::Closed,
            Event::Rating { score, comment } => {
                self.rating = Some(*score);
                if let Some(c) = comment {
                    self.push(c, false);
                }
            }
            Event::EmailLeft { email } => {
                self.email = Some(email.as_str().into());
                self.push(email, true);
            }
            // The page identified the visitor after the chat began.
            Event::Identified { name, email, .. } => {
                if let Some(n) = name {
                    self.name = Some(n.as_str().into());
                    self.push(n, true);
                }
                if let Some(e) = email {
                    self.email = Some(e.as_str().into());
                    self.push(e, true);
                }
            }
            _ => {}
        }
    }

    /// The bytes it holds, heap included (the index's memory estimate).
    fn bytes(&self) -> usize {
        std::mem::size_of::<Row>()
            + self.id.len()
            + self.name.as_ref().map_or(0, |s| s.len())
            + self.email.as_ref().map_or(0, |s| s.len())
            + self.first.as_ref().map_or(0, |s| s.len())
            + self.hay.capacity()
    }
}

/// `word`'s first `MAX_WORD` bytes (at a character's boundary).
fn clip_word(word: &str) -> &str {
    if word.len() <= MAX_WORD {
        return word;
    }
    let mut end = MAX_WORD;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

fn intern(agents: &mut HashMap<Box<str>, Arc<str>>, name: &str) -> Arc<str> {
    if let Some(a) = agents.get(name) {
        return Arc::clone(a);
    }
    let a: Arc<str> = name.into();
    agents.insert(name.into(), Arc::clone(&a));
    a
}

/// What one write changed, remembered for cursors made before it.
#[derive(Debug)]
struct Change {
    version: u64,
    at_ms: i64,
    id: Box<str>,
    /// The row's activity before the write; `None`: the write created it.
    before: Option<i64>,
}

#[derive(Default)]
struct Inner {
    ready: bool,
    rows: Vec<Row>,
    slots: HashMap<Box<str>, u32>,
    agents: HashMap<Box<str>, Arc<str>>,
    /// Bumped by every write the index takes.
    version: u64,
    changes: VecDeque<Change>,
    /// Changes up to this version were let go: older cursors are refused.
    forgotten: u64,
}

impl Inner {
    fn upsert(&mut self, id: &str, records: &[Record]) {
        let Some(first) = records.first() else { return };
        let slot = self.slots.get(id).copied();
        self.version += 1;
        let before = slot.map(|s| self.rows[s as usize].last_ms);
        let mut row = match slot {
            Some(s) => std::mem::replace(&mut self.rows[s as usize], Row::new(id, 0)),
            None => Row::new(id, first.at_ms),
        };
        for r in records {
            row.apply(r, &mut self.agents);
        }
        if before != Some(row.last_ms) {
            self.changes.push_back(Change {
                version: self.version,
                at_ms: row.last_ms,
                id: id.into(),
                before,
            });
        }
        match slot {
            Some(s) => self.rows[s as usize] = row,
            None => self.put(row),
        }
        self.prune();
    }

    fn put(&mut self, row: Row) {
        match self.slots.get(&row.id) {
            Some(&s) => self.rows[s as usize] = row,
            None => {
                self.slots.insert(row.id.clone(), self.rows.len() as u32);
                self.rows.push(row);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(slot) = self.slots.remove(id) else {
            return;
        };
        let slot = slot as usize;
        self.rows.swap_remove(slot);
        if let Some(moved) = self.rows.get(slot) {
            self.slots.insert(moved.id.clone(), slot as u32);
        }
    }

    fn prune(&mut self) {
        let newest = self.changes.back().map_or(0, |c| c.at_ms);
        while let Some(c) = self.changes.front() {
            if self.changes.len() <= CHANGES_MAX && newest - c.at_ms <= CHANGES_MS {
                break;
            }
            self.forgotten = c.version;
            self.changes.pop_front();
        }
    }
}

/// Why a search has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The index is still being built from the store after a start.
    #[error("the inbox is being built after a start; try again in a few seconds")]
    Building,
    /// The cursor names a version whose changes are no longer remembered.
    #[error("the cursor is too old; start again from the first page")]
    CursorExpired,
}

/// A bad query parameter: a stable code and a message naming the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadQuery {
    pub code: &'static str,
    pub message: String,
}

fn bad(code: &'static str, message: String) -> BadQuery {
    BadQuery { code, message }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Where a page ended: the version the paging started at, and the last
/// row's (activity, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub version: u64,
    pub last_ms: i64,
    pub id: String,
}

impl Cursor {
    /// `version.activity.id`, as `next_cursor` gives it.
    pub fn parse(s: &str) -> Result<Cursor, BadQuery> {
        let err = || {
            bad(
                "bad_cursor",
                format!(
                    "cursor `{}` is not one this server gave (pass `next_cursor` as it is)",
                    clip(s)
                ),
            )
        };
        let mut parts = s.splitn(3, '.');
        let version = parts.next().and_then(|v| v.parse().ok()).ok_or_else(err)?;
        let last_ms = parts.next().and_then(|v| v.parse().ok()).ok_or_else(err)?;
        let id = parts.next().ok_or_else(err)?;
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err());
        }
        Ok(Cursor {
            version,
            last_ms,
            id: id.to_string(),
        })
    }

    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.version, self.last_ms, self.id)
    }
}

/// A search, validated (`Query::parse` from the request's strings).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Lowercased; every one must occur.
    pub terms: Vec<String>,
    pub state: Option<State>,
    pub agent: Option<String>,
    pub reason: Option<HandoffReason>,
    pub rating: Option<u8>,
    /// Last activity at or after (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Last activity before (ms since the epoch).
    pub to_ms: Option<i64>,
    pub cursor: Option<Cursor>,
    pub limit: usize,
}

/// The request's parameters as written.
#[derive(Debug, Clone, Default)]
pub struct RawQuery<'a> {
    pub q: Option<&'a str>,
    pub state: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub rating: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub cursor: Option<&'a str>,
    pub limit: Option<&'a str>,
}

impl Query {
    /// Validates every parameter; an empty one counts as absent.
    pub fn parse(raw: &RawQuery<'_>) -> Result<Query, BadQuery> {
        let some = |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        let mut query = Query {
            limit: DEFAULT_LIMIT,
            ..Query::default()
        };
        if let Some(q) = some(raw.q) {
            if q.chars().count() > MAX_QUERY_CHARS {
                return Err(bad(
                    "query_too_long",
                    format!("a search is at most {MAX_QUERY_CHARS} characters"),
                ));
            }
            query.terms = q
                .to_lowercase()
                .split_whitespace()
                .map(String::from)
                .collect();
            if query.terms.len() > MAX_TERMS {
                return Err(bad(
                    "query_too_long",
                    format!("a search is at most {MAX_TERMS} words"),
                ));
            }
        }
        if let Some(s) = some(raw.state) {
            query.state = Some(State::parse(&s).ok_or_else(|| {
                bad(
                    "bad_state",
                    format!(
                        "state `{}` is not one of bot, queued, with_agent, closed",
                        clip(&s)
                    ),
                )
            })?);
        }
        if let Some(a) = some(raw.agent) {
            if a.chars().count() > 200 {
                return Err(bad(
                    "bad_agent",
                    "an agent name is at most 200 characters".into(),
                ));
            }
            query.agent = Some(a);
        }
        if let Some(r) = some(raw.reason) {
            query.reason = Some(parse_reason(&r).ok_or_else(|| {
                bad(
                    "bad_reason",
                    format!(
                        "reason `{}` is not one of asked, intent_action, negative_sentiment, \
                         low_confidence, repeated_fallback, agent_took_over",
                        clip(&r)
                    ),
                )
            })?);
        }
        if let Some(r) = some(raw.rating) {
            query.rating = Some(
                r.parse::<u8>()
                    .ok()
                    .filter(|n| (1..=5).contains(n))
                    .ok_or_else(|| {
                        bad("bad_rating", format!("rating `{}` is not 1 to 5", clip(&r)))
                    })?,
            );
        }
        let time = |v: Option<&str>, name: &str| -> Result<Option<i64>, BadQuery> {
            match some(v) {
                None => Ok(None),
                Some(t) => t
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .map(Some)
                    .ok_or_else(|| {
                        bad(
                            "bad_date",
                            format!(
                                "`{name}` = `{}` is not a time in milliseconds since 1970",
                                clip(&t)
                            ),
                        )
                    }),
            }
        };
        query.from_ms = time(raw.from, "from")?;
        query.to_ms = time(raw.to, "to")?;
        if let (Some(f), Some(t)) = (query.from_ms, query.to_ms) {
            if f > t {
                return Err(bad("bad_date", format!("`from` ({f}) is after `to` ({t})")));
            }
        }
        if let Some(c) = some(raw.cursor) {
            query.cursor = Some(Cursor::parse(&c)?);
        }
        if let Some(l) = some(raw.limit) {
            query.limit = l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    bad(
                        "bad_limit",
                        format!("limit `{}` is not 1 to {MAX_LIMIT}", clip(&l)),
                    )
                })?;
        }
        Ok(query)
    }
}

/// One line of the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    /// What a person reads: the visitor's name, else their email, else
    /// their first question, else "New conversation".
    pub title: String,
    /// The first visitor question (when the title is a name or email).
    pub preview: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub state: State,
    /// Who has it, or who had it last.
    pub agent: Option<String>,
    pub reason: Option<HandoffReason>,
    pub rating: Option<u8>,
    pub started_ms: i64,
    pub last_activity_ms: i64,
}

impl Item {
    fn of(row: &Row) -> Item {
        let title = row
            .name
            .as_deref()
            .or(row.email.as_deref())
            .or(row.first.as_deref())
            .unwrap_or("New conversation")
            .to_string();
        let preview = row
            .first
            .as_deref()
            .filter(|f| *f != title)
            .map(String::from);
        Item {
            id: row.id.to_string(),
            title,
            preview,
            name: row.name.as_deref().map(String::from),
            email: row.email.as_deref().map(String::from),
            state: row.state,
            agent: row.agent.as_deref().map(String::from),
            reason: row.reason,
            rating: row.rating,
            started_ms: row.started_ms,
            last_activity_ms: row.last_ms,
        }
    }
}

/// A page of the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Conversations matching the search and filters, on every page.
    pub total: usize,
    /// Pass it as `cursor` for the next page; `None`: this was the last.
    pub next_cursor: Option<String>,
}

/// What a build did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    pub conversations: usize,
    /// Logs read again because they were written during the build.
    pub reread: usize,
}

/// The index of one store, shared by the requests of a process.
#[derive(Default)]
pub struct Inbox {
    /// Searches read it for the scan; writes and deletes take it briefly
    /// when it is free (else they queue in `pending`). A std lock: never
    /// held across an `.await`.
    inner: RwLock<Inner>,
    /// Conversations written or deleted while the index is being built:
    /// their logs are read again before it goes live.
    dirty: Mutex<HashSet<String>>,
    /// Changes not yet applied (a search held the lock), in order.
    pending: Mutex<Vec<Op>>,
}

/// A change waiting in `Inbox::pending`.
enum Op {
    Record(String, Vec<Record>),
    Remove(String),
}

impl Inbox {
    fn inner(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn inner_mut(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the index has been built and answers searches.
    pub fn ready(&self) -> bool {
        self.inner().ready
    }

    /// Conversations in the index.
    pub fn len(&self) -> usize {
        self.inner().rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the index holds (rows with their text, the id map, the
    /// remembered changes): an estimate from the sizes it knows, without
    /// the allocator's overhead.
    pub fn bytes(&self) -> usize {
        let i = self.inner();
        let rows: usize = i.rows.iter().map(Row::bytes).sum::<usize>()
            + (i.rows.capacity() - i.rows.len()) * std::mem::size_of::<Row>();
        let slots: usize = i
            .slots
            .keys()
            .map(|k| k.len() + std::mem::size_of::<(Box<str>, u32)>() + 8)
            .sum();
        let changes = i.changes.len() * (std::mem::size_of::<Change>() + 26);
        rows + slots + changes
    }

    /// Records just stored for `id` (the write path's fan-out). Never
    /// waits for a search: the change is queued, and applied now if the
    /// index is free, else by the next write or search (a search applies
    /// every queued change before it reads).
    pub fn record(&self, id: &str, records: &[Record]) {
        self.queue(Op::Record(id.into(), records.to_vec()));
    }

    /// `id` was deleted from the store: it leaves the index before the
    /// next search.
    pub fn remove(&self, id: &str) {
        self.queue(Op::Remove(id.into()));
    }

    fn queue(&self, op: Op) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(op);
        match self.inner.try_write() {
            Ok(mut inner) => self.drain(&mut inner),
            Err(std::sync::TryLockError::Poisoned(e)) => self.drain(&mut e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }

    /// Applies the queued changes in order (before the build is done:
    /// notes their conversations to be read again). The caller holds the
    /// write lock; lock order: `inner`, then `pending`, then `dirty`.
    fn drain(&self, inner: &mut Inner) {
        let ops = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if ops.is_empty() {
            return;
        }
        if !inner.ready {
            let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            for op in ops {
                dirty.insert(match op {
                    Op::Record(id, _) | Op::Remove(id) => id,
                });
            }
            return;
        }
        for op in ops {
            match op {
                Op::Record(id, records) => inner.upsert(&id, &records),
                Op::Remove(id) => inner.remove(&id),
            }
        }
    }

    /// Reads every conversation's log once and makes the index live; the
    /// logs written meanwhile are read again (until none is left) first.
    /// Takes no lock while it reads the store.
    pub fn build(&self, store: &dyn Store) -> Result<Built, StoreError> {
        let mut fresh = Inner::default();
        let ids = store.conversations()?;
        for id in &ids {
            read_into(&mut fresh, store, id)?;
        }
        let mut reread = 0;
        loop {
            // The dirty set is taken under the index's write lock: a write
            // either lands in the set before this, or sees `ready`.
            let mut inner = self.inner_mut();
            self.drain(&mut inner);
            let dirty = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()));
            if dirty.is_empty() {
                for row in &mut fresh.rows {
                    row.hay.shrink_to_fit();
                }
                fresh.rows.shrink_to_fit();
                fresh.ready = true;
                fresh.version = inner.version.max(1);
                fresh.forgotten = fresh.version;
                *inner = fresh;
                return Ok(Built {
                    conversations: ids.len(),
                    reread,
                });
            }
            drop(inner);
            for id in &dirty {
                fresh.remove(id);
                read_into(&mut fresh, store, id)?;
                reread += 1;
            }
        }
    }

    /// A page of conversations matching `q`, newest activity first.
    pub fn search(&self, q: &Query) -> Result<Page, InboxError> {
        if !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            self.drain(&mut self.inner_mut());
        }
        let inner = self.inner();
        if !inner.ready {
            return Err(InboxError::Building);
        }
        let version = match &q.cursor {
            Some(c) if c.version < inner.forgotten || c.version > inner.version => {
                return Err(InboxError::CursorExpired)
            }
            Some(c) => c.version,
            None => inner.version,
        };
        // Rows written since `version`: their activity as of then (the
        // oldest change after it tells), or `None` if they did not exist.
        let mut then: HashMap<&str, Option<i64>> = HashMap::new();
        for c in inner.changes.iter().rev() {
            if c.version <= version {
                break;
            }
            then.insert(&c.id, c.before);
        }
        let finders: Vec<memchr::memmem::Finder<'_>> = q
            .terms
            .iter()
            .map(|t| memchr::memmem::Finder::new(t.as_bytes()))
            .collect();
        let agent = q.agent.as_deref();
        let mut total = 0;
        let mut hits: Vec<(i64, u32)> = Vec::new();
        for (slot, row) in inner.rows.iter().enumerate() {
            let key = if then.is_empty() {
                row.last_ms
            } else {
                match then.get(&*row.id) {
                    Some(None) => continue,
                    Some(Some(t)) => *t,
                    None => row.last_ms,
                }
            };
            if q.state.is_some_and(|s| s != row.state)
                || q.reason.is_some_and(|r| Some(r) != row.reason)
                || q.rating.is_some_and(|r| Some(r) != row.rating)
                || agent.is_some_and(|a| row.agent.as_deref() != Some(a))
                || q.from_ms.is_some_and(|f| key < f)
                || q.to_ms.is_some_and(|t| key >= t)
                || !finders.iter().all(|f| f.find(row.hay.as_bytes()).is_some())
            {
                continue;
            }
            total += 1;
            if let Some(c) = &q.cursor {
                if (key, &*row.id) >= (c.last_ms, c.id.as_str()) {
                    continue;
                }
            }
            hits.push((key, slot as u32));
        }
        let rows = &inner.rows;
        let order = |a: &(i64, u32), b: &(i64, u32)| {
            (b.0, &*rows[b.1 as usize].id).cmp(&(a.0, &*rows[a.1 as usize].id))
        };
        let more = hits.len() > q.limit;
        if more {
            hits.select_nth_unstable_by(q.limit, order);
            hits.truncate(q.limit);
        }
        hits.sort_unstable_by(order);
        let next_cursor = if more {
            hits.last().map(|&(key, slot)| {
                Cursor {
                    version,
                    last_ms: key,
                    id: rows[slot as usize].id.to_string(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(Page {
            items: hits
                .iter()
                .map(|&(_, slot)| Item::of(&rows[slot as usize]))
                .collect(),
            total,
            next_cursor,
        })
    }
}

/// Folds `id`'s log into a row of `inner` (nothing for an empty log: a
/// conversation deleted meanwhile).
fn read_into(inner: &mut Inner, store: &dyn Store, id: &str) -> Result<(), StoreError> {
    let log = match store.read(id, 0) {
        Ok(log) => log,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(first) = log.first() else {
        return Ok(());
    };
    let mut row = Row::new(id, first.at_ms);
    for r in &log {
        row.apply(r, &mut inner.agents);
    }
    inner.put(row);
    Ok(())
}

#[cfg(test)]
mod tests;

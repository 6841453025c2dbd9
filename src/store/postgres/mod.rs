//! The PostgreSQL `Store` (issue 20): one database shared by the nodes
//! that serve it, through the sync `postgres` client and a small pool of
//! our own (`pool`). The schema and its migrations are in `schema`.
//!
//! Every write is one transaction, acknowledged after its commit (with
//! PostgreSQL's default `synchronous_commit`, after the WAL is flushed).
//! An append locks its conversation's row (`FOR UPDATE`), checks the
//! expected seq and the client id, and assigns the seqs after the row's
//! `last_seq`, all inside that transaction: of two writers (two threads
//! or two nodes) that read seq n, the second waits for the first's commit
//! and then sees n + 1, so it gets `Conflict`; a retried message finds its
//! client id, which is unique per conversation. The crash order the
//! `Store` contract asks for (outbox, index additions, time index and
//! client id no later than the events; removals no earlier) holds
//! trivially: a transaction is durable whole or not at all.
//!
//! Values are the bytes sled stores (`schema`), so `export` yields what
//! `SledStore::export` does, tree by tree in sled's key order, and
//! `import` takes those entries: a sled store copies here, and this store
//! backs up into a sled directory (`BackupWriter`).
//!
//! **Several nodes per database.** Each write that other nodes keep
//! something of in memory (records stored, a delete, an agent changed)
//! is announced with a `NOTIFY` after its commit, batched per node on a
//! session of its own, and `Store::changes` listens on another (`listen`,
//! which says why not inside the write's transaction): what lets each
//! node's app follow the others (`app::cluster`). The log stays the
//! judge of every write: of two nodes that append after the same seq,
//! one gets `Conflict`. An opt-in guard (`PgOptions::node_lock`) still
//! refuses a second store that asks for it: a session-level advisory lock
//! held on a session of its own for the store's life (a restart of the
//! database ends it and it is not taken again: a guard against a mistake,
//! not a fence).
//!
//! What nodes share about the work, beside the conversations: the outbox
//! lease (`Store::outbox_lease`: a session-level advisory lock on a
//! session of its own, which the server frees when that session ends, so
//! a dead node's lease goes with its connection), and the heartbeat
//! (`Store::beat`: each node's presence rows, stamped with the database's
//! clock so nodes' clocks need not agree, and the latest handle times of
//! all, in the `presence` and `handle_times` tables). Both are runtime
//! state: neither is exported nor copied.
//!
//! Connections are plain TCP or a unix socket: no TLS yet (keep the
//! database on loopback or a private network; `sslmode=require` is
//! refused at open). A database that is down or unreachable gives
//! `StoreError::Unavailable` within the pool's deadline, never a hang.
//! One limit: a server process that is alive but frozen (it accepts bytes
//! and never answers) stalls the calls already talking to it; the pool's
//! deadline still answers every other caller, and a server that runs
//! cuts any statement at `statement_timeout` (30 s).
//!
//! The sync client drives each connection with a small tokio runtime of
//! its own, so, like sled's flushes, the store is called from blocking
//! threads (`spawn_blocking`), never from inside an async task, where
//! tokio refuses to block.

mod listen;
mod pool;
mod schema;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::ToSql;
use ::postgres::{Client, Config, GenericClient, IsolationLevel, Row, Statement, Transaction};

use self::pool::{Pool, Session};
use super::sled::{
    activity_key, chunk_key, key_owner, prefix, queue_key, seq_key, seq_value, split_activity_key,
    split_seq_key,
};
use super::time::minute_of;
use super::{
    check_attachment_id, check_id, AgentRecord, Appended, Batch, Change, ExportFn, FactsRow,
    IndexOp, Lease, Presence, PresenceRow, RatingRecord, Result, Shared, Store, StoreError,
    Waiting, ATTACHMENT_CHUNK, HANDLE_TIMES_SHARED,
};
use crate::conversation::{with_replies, Event, Record, Visitor};

pub use self::schema::LATEST as SCHEMA_VERSION;

/// `pg_try_advisory_lock` key of the one serving node (8 ASCII bytes).
const NODE_LOCK: i64 = i64::from_be_bytes(*b"fd-node1");

/// `pg_try_advisory_lock` key of the outbox lease (8 ASCII bytes).
const OUTBOX_LEASE: i64 = i64::from_be_bytes(*b"fd-outbx");

/// Presence rows of nodes that stopped beating this long ago are deleted
/// (they stopped counting long before, at the reader's `fresh_ms`).
const PRESENCE_FORGET_MS: i64 = 3_600_000;

/// How a `PgStore` connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections at most (at least 1).
    pub pool_size: usize,
    /// How long a caller waits for a free connection before
    /// `StoreError::Unavailable`.
    pub checkout_timeout: Duration,
    /// How long making a connection may take.
    pub connect_timeout: Duration,
    /// Refuse to open while another store holding this lock has the
    /// database (an opt-in guard for a deployment that means to run one
    /// node; off by default: several nodes share a database, kept in step
    /// by `Store::changes`).
    pub node_lock: bool,
    /// Announce this store's writes to the other nodes (`listen`). Off
    /// only where nobody listens for them (the others then learn a write
    /// from their periodic sweep, as after a node was killed between its
    /// commit and its notification: what the tests of that sweep use).
    pub notify: bool,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            pool_size: 8,
            checkout_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            node_lock: false,
            notify: true,
        }
    }
}

/// The PostgreSQL-backed `Store`.
pub struct PgStore {
    pool: Pool,
    /// The session holding the one-node advisory lock (released when it
    /// closes, with the store); `None` without the opt-in guard.
    _node_lock: Option<Mutex<Client>>,
    /// The session of the outbox lease (`Store::outbox_lease`), kept
    /// between tries; it holds the lease while `held`.
    lease: Mutex<Option<LeaseSession>>,
    /// How long the lease's check of its session may take.
    lease_timeout: Duration,
    /// How the listening and the notifying sessions connect.
    config: Config,
    /// This store's id in its notifications (random per open), by which
    /// it skips its own.
    node: String,
    /// Sends this store's notifications after their commits; `None`
    /// without `PgOptions::notify`.
    notifier: Option<Arc<listen::Notifier>>,
    /// Set on drop: the listening thread ends.
    stop: Arc<AtomicBool>,
    /// `changes` was called (it starts one listener, once).
    listening: AtomicBool,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(n) = &self.notifier {
            n.stop();
        }
        // The sync client closes a session by blocking on a runtime of its
        // own, which panics on a thread of another runtime (a server's
        // last reference to its store may go inside a task): the sessions
        // close on a thread of their own, waited for a little (a session
        // that must reach a server gone away is left to its thread).
        let sessions = (
            self.pool.take_idle(),
            self.lease
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
            self._node_lock.take(),
        );
        let (done, closed) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("frontdesk-pg-close".into())
            .spawn(move || {
                drop(sessions);
                let _ = done.send(());
            });
        if spawned.is_ok() {
            let _ = closed.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// A session of its own for the outbox lease: a session-level advisory
/// lock, which the server frees when the session ends (the node stopped,
/// was killed, or lost its connection), never while it lives.
struct LeaseSession {
    client: Client,
    held: bool,
}

/// A `postgres` error as a `StoreError`: the server gone or unreachable
/// (no SQLSTATE, or the classes for connections, shutdown and overload)
/// is `Unavailable`, the rest `Db` with the server's own message.
pub(crate) fn pg_err(e: ::postgres::Error) -> StoreError {
    let unreachable = |code: &str| {
        code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "57014")
    };
    match e.as_db_error() {
        Some(db) if !unreachable(db.code().code()) => StoreError::Db(format!(
            "postgres: {}: {}{}",
            db.code().code(),
            db.message(),
            db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
        )),
        Some(db) => StoreError::Unavailable(format!("postgres: {}", db.message())),
        None => {
            let mut m = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                m.push_str(&format!(": {s}"));
                source = s.source();
            }
            StoreError::Unavailable(format!("the database cannot be reached: {m}"))
        }
    }
}

/// Statements through a session's cache, on a client or a transaction.
struct Q<'a, C> {
    c: &'a mut C,
    stmts: &'a mut HashMap<&'static str, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Q<'_, C> {
    fn exec(&mut self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        let s = Session::stmt(self.stmts, self.c, sql)?;
        self.c.execute(&s, params).map_err(pg_err)
    }

    fn rows(&mut self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        let s = Session::stmt(self.stmts, self.c, sql)?;
        self.c.query(&s, params).map_err(pg_err)
    }

    fn opt(&mut self, sql: &'static str, params: Params<'_>) -> Result<Option<Row>> {
        let s = Session::stmt(self.stmts, self.c, sql)?;
        self.c.query_opt(&s, params).map_err(pg_err)
    }

    /// Rows one at a time (an export does not hold a table in memory).
    fn each(&mut self, sql: &'static str, mut f: impl FnMut(&Row) -> Result<()>) -> Result<()> {
        let s = Session::stmt(self.stmts, self.c, sql)?;
        let none: [&(dyn ToSql + Sync); 0] = [];
        let mut rows = self.c.query_raw(&s, none).map_err(pg_err)?;
        while let Some(row) = rows.next().map_err(pg_err)? {
            f(&row)?;
        }
        Ok(())
    }
}

/// Runs `f`, which blocks on the database. The `postgres` client drives a
/// runtime of its own and panics when called inside another's, so on a
/// worker of the server's (multi-thread) runtime `f` runs in
/// `block_in_place`, which leaves that runtime's context and lets the
/// worker's other tasks move on: a store call made on the executor (the
/// app has a few, cheap on sled) then blocks that worker as a sled call
/// does, and never panics. On any other thread (a `spawn_blocking` one, a
/// CLI) `f` runs as it is. A current-thread runtime (some tests) cannot
/// lend its only thread: calls from there must be moved off it.
fn off_executor<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn presence_name(p: Presence) -> &'static str {
    match p {
        Presence::Online => "online",
        Presence::Away => "away",
        Presence::Offline => "offline",
    }
}

fn presence_of(name: &str) -> Option<Presence> {
    match name {
        "online" => Some(Presence::Online),
        "away" => Some(Presence::Away),
        "offline" => Some(Presence::Offline),
        _ => None,
    }
}

fn big(n: u64, what: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Db(format!("{what} {n} is out of range")))
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Our own types always serialise.
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn record_of(id: &str, row: &Row) -> Result<Record> {
    let seq: i64 = row.get(0);
    decode(&format!("events/{id}/{seq}"), row.get::<_, &[u8]>(1))
}

fn utf8(tree: &str, b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| StoreError::Corrupt {
        key: format!("{tree}/{}", String::from_utf8_lossy(b)),
        message: "a key that is not UTF-8".into(),
    })
}

impl PgStore {
    /// Connects to `url` (a `postgresql://` URL or `key=value` string) and
    /// runs the migrations. Other nodes may serve the same database.
    pub fn open(url: &str, pool_size: usize) -> Result<PgStore> {
        PgStore::open_with(
            url,
            &PgOptions {
                pool_size,
                ..PgOptions::default()
            },
        )
    }

    /// `open` as an offline tool opens it (a copy, a migration): the same
    /// as `open` now that several nodes may share a database.
    pub fn open_unlocked(url: &str, pool_size: usize) -> Result<PgStore> {
        PgStore::open_with(
            url,
            &PgOptions {
                pool_size,
                node_lock: false,
                ..PgOptions::default()
            },
        )
    }

    pub fn open_with(url: &str, options: &PgOptions) -> Result<PgStore> {
        let config = parse_url(url)?;
        let pool = Pool::new(
            config.clone(),
            options.pool_size,
            options.checkout_timeout,
            options.connect_timeout,
        );
        let node_lock = if options.node_lock {
            let mut c = pool.connect()?;
            let row = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&NODE_LOCK])
                .map_err(pg_err)?;
            if !row.get::<_, bool>(0) {
                return Err(StoreError::Db(
                    "another frontdesk node that asked to be the only one serves this \
                     database: stop it first"
                        .into(),
                ));
            }
            Some(Mutex::new(c))
        } else {
            None
        };
        {
            let mut conn = pool.get()?;
            schema::migrate(&mut conn.client)?;
        }
        let mut node = [0u8; 8];
        getrandom::fill(&mut node)
            .map_err(|e| StoreError::Db(format!("no random node id: {e}")))?;
        let mut config = config;
        config.connect_timeout(options.connect_timeout);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let node = crate::util::hash::hex(&node);
        let notifier = options
            .notify
            .then(|| listen::Notifier::start(config.clone(), node.clone()));
        Ok(PgStore {
            pool,
            _node_lock: node_lock,
            lease: Mutex::new(None),
            lease_timeout: options.checkout_timeout,
            config,
            node,
            notifier,
            stop: Arc::new(AtomicBool::new(false)),
            listening: AtomicBool::new(false),
        })
    }

    /// `Store::outbox_lease` on the calling thread: a holder checks its
    /// session still lives (a round trip, within the pool's checkout
    /// deadline); anyone else tries the lock on its session, made anew
    /// when there is none or it broke.
    fn lease_now(&self) -> Result<Lease> {
        let mut slot = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slot.as_mut() {
            if s.client.is_closed() || s.client.is_valid(self.lease_timeout).is_err() {
                if s.held {
                    tracing::warn!("the outbox lease's session broke: the lease is lost");
                }
                *slot = None;
            } else if s.held {
                return Ok(Lease::Held);
            }
        }
        let s = match slot.as_mut() {
            Some(s) => s,
            None => slot.insert(LeaseSession {
                client: self.pool.connect()?,
                held: false,
            }),
        };
        let row = s
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&OUTBOX_LEASE])
            .map_err(pg_err)?;
        s.held = row.get(0);
        if s.held {
            tracing::info!("this node holds the outbox lease: it sends webhooks and emails");
            Ok(Lease::Held)
        } else {
            Ok(Lease::Elsewhere)
        }
    }

    /// Runs the migrations on the database at `url`: the schema version
    /// after (`SCHEMA_VERSION`). Running it again changes nothing.
    pub fn migrate(url: &str) -> Result<u32> {
        let mut config = parse_url(url)?;
        config.connect_timeout(PgOptions::default().connect_timeout);
        let mut c = config.connect(::postgres::NoTls).map_err(pg_err)?;
        schema::migrate(&mut c)
    }

    /// Announces a committed write to the other nodes (`listen`).
    fn announce(&self, payload: &str) {
        if let Some(n) = &self.notifier {
            n.send(payload);
        }
    }

    /// `f` in one transaction, committed if it returns `Ok` (rolled back
    /// otherwise).
    fn tx<T>(&self, f: impl FnOnce(&mut Q<'_, Transaction<'_>>) -> Result<T>) -> Result<T> {
        off_executor(|| {
            let mut conn = self.pool.get()?;
            let (client, stmts) = conn.parts();
            let mut tx = client.transaction().map_err(pg_err)?;
            let v = f(&mut Q { c: &mut tx, stmts })?;
            tx.commit().map_err(pg_err)?;
            Ok(v)
        })
    }

    /// `f` on a session in autocommit (each statement its own transaction).
    fn auto<T>(&self, f: impl FnOnce(&mut Q<'_, Client>) -> Result<T>) -> Result<T> {
        off_executor(|| {
            let mut conn = self.pool.get()?;
            let (client, stmts) = conn.parts();
            f(&mut Q { c: client, stmts })
        })
    }

    /// `Store::export`'s work, on the calling thread.
    fn export_now(&self, f: &mut ExportFn<'_>) -> Result<()> {
        let mut conn = self.pool.get()?;
        let (client, stmts) = conn.parts();
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg_err)?;
        // A big store takes longer than one statement may.
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .map_err(pg_err)?;
        let q = &mut Q { c: &mut tx, stmts };
        q.each("SELECT id, meta FROM conversations ORDER BY id", |r| {
            f("conversations", r.get::<_, &str>(0).as_bytes(), r.get(1))
        })?;
        q.each(
            "SELECT conversation, seq, record FROM events
             ORDER BY octet_length(conversation), conversation, seq",
            |r| {
                let key = seq_key(r.get(0), r.get::<_, i64>(1) as u64);
                f("events", &key, r.get(2))
            },
        )?;
        q.each(
            "SELECT conversation, client_id, seq FROM client_ids
             ORDER BY octet_length(conversation), conversation, client_id",
            |r| {
                let mut key = prefix(r.get(0));
                key.extend_from_slice(r.get(1));
                f(
                    "client_ids",
                    &key,
                    &(r.get::<_, i64>(2) as u64).to_be_bytes(),
                )
            },
        )?;
        q.each(
            "SELECT conversation, seq, value FROM ratings
             ORDER BY octet_length(conversation), conversation, seq",
            |r| {
                f(
                    "ratings",
                    &seq_key(r.get(0), r.get::<_, i64>(1) as u64),
                    r.get(2),
                )
            },
        )?;
        q.each(
            "SELECT rank, ticket, value FROM queue ORDER BY rank, ticket",
            |r| {
                let mut key = vec![r.get::<_, i16>(0) as u8];
                key.extend_from_slice(&(r.get::<_, i64>(1) as u64).to_be_bytes());
                f("queue", &key, r.get(2))
            },
        )?;
        q.each(
            "SELECT conversation, agent FROM held ORDER BY conversation",
            |r| {
                f(
                    "held",
                    r.get::<_, &str>(0).as_bytes(),
                    &json(&r.get::<_, &str>(1)),
                )
            },
        )?;
        q.each(
            "SELECT minute, conversation FROM activity ORDER BY minute, conversation",
            |r| f("activity", &activity_key(r.get(0), r.get(1)), &[]),
        )?;
        q.each(
            "SELECT conversation, attachment, part, bytes FROM attachments
             ORDER BY octet_length(conversation), conversation,
                      convert_to(attachment, 'UTF8') || '\\xff'::bytea, part",
            |r| {
                let key = chunk_key(r.get(0), r.get(1), r.get::<_, i32>(2) as u32);
                f("attachments", &key, r.get(3))
            },
        )?;
        q.each("SELECT name, value FROM agents ORDER BY name", |r| {
            f("agents", r.get::<_, &str>(0).as_bytes(), r.get(1))
        })?;
        q.each("SELECT key, value FROM settings ORDER BY key", |r| {
            f("settings", r.get::<_, &str>(0).as_bytes(), r.get(1))
        })?;
        q.each("SELECT id, value FROM outbox ORDER BY id", |r| {
            f("outbox", r.get::<_, &str>(0).as_bytes(), r.get(1))
        })?;
        tx.commit().map_err(pg_err)
    }

    /// Loads one entry of an export (`SledStore::export`'s shape: tree,
    /// key, value), replacing what is there under that key. Entries come
    /// in any order within a tree, but a conversation before its events
    /// (the export's order). Commits without waiting for the WAL flush:
    /// call `import_done` after the last one.
    pub fn import(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.tx(|q| {
            q.exec("SET LOCAL synchronous_commit = off", &[])?;
            import_entry(q, tree, key, value)
        })
    }

    /// Makes every `import` before it durable (a synchronous commit flushes
    /// the WAL up to itself, and so the imports before it).
    pub fn import_done(&self) -> Result<()> {
        self.auto(|q| {
            q.exec("UPDATE frontdesk_schema SET version = version", &[])
                .map(drop)
        })
    }
}

/// The connection settings in `url`; TLS asked for is refused here, with
/// a sentence, rather than failing every connection later.
fn parse_url(url: &str) -> Result<Config> {
    let config: Config = url
        .parse()
        .map_err(|e| StoreError::Db(format!("the database URL does not parse: {e}")))?;
    if config.get_ssl_mode() == ::postgres::config::SslMode::Require {
        return Err(StoreError::Db(
            "the database URL asks for TLS (sslmode=require), which frontdesk does not speak \
             yet: keep the database on loopback or a private network and use sslmode=disable"
                .into(),
        ));
    }
    Ok(config)
}

/// The conversation id at the front of an export key, checked.
fn owner(tree: &str, key: &[u8]) -> Result<String> {
    let id = utf8(tree, key_owner(key))?;
    check_id(&id)?;
    Ok(id)
}

fn import_entry(
    q: &mut Q<'_, Transaction<'_>>,
    tree: &str,
    key: &[u8],
    value: &[u8],
) -> Result<()> {
    let bad = |what: &str| StoreError::Corrupt {
        key: format!("{tree}/{}", String::from_utf8_lossy(key)),
        message: what.to_string(),
    };
    match tree {
        "conversations" => {
            let id = utf8(tree, key)?;
            check_id(&id)?;
            let meta: serde_json::Value = decode(&format!("{tree}/{id}"), value)?;
            let created = meta
                .get("created_ms")
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| bad("no created_ms"))?;
            q.exec(
                "INSERT INTO conversations (id, created_ms, meta, last_seq) VALUES ($1, $2, $3, 0)
                 ON CONFLICT (id) DO UPDATE SET created_ms = EXCLUDED.created_ms, meta = EXCLUDED.meta",
                &[&id, &created, &value],
            )?;
        }
        "events" => {
            let (id, seq) = split_seq_key(key).ok_or_else(|| bad("not an event key"))?;
            let id = owner(tree, &prefix_of(id))?;
            let record: Record = decode(&format!("{tree}/{id}/{seq}"), value)?;
            let seq = big(seq, "seq")?;
            q.exec(
                "INSERT INTO events (conversation, seq, at_ms, record) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (conversation, seq) DO UPDATE SET at_ms = EXCLUDED.at_ms, record = EXCLUDED.record",
                &[&id, &seq, &record.at_ms, &value],
            )?;
            q.exec(
                "UPDATE conversations SET last_seq = GREATEST(last_seq, $2) WHERE id = $1",
                &[&id, &seq],
            )?;
        }
        "client_ids" => {
            let id = owner(tree, key)?;
            let client_id = &key[1 + id.len()..];
            let seq = seq_value(value).ok_or_else(|| bad("not a seq"))?;
            q.exec(
                "INSERT INTO client_ids (conversation, client_id, seq) VALUES ($1, $2, $3)
                 ON CONFLICT (conversation, client_id) DO UPDATE SET seq = EXCLUDED.seq",
                &[&id, &client_id, &big(seq, "seq")?],
            )?;
        }
        "ratings" => {
            let (id, seq) = split_seq_key(key).ok_or_else(|| bad("not a rating key"))?;
            let id = owner(tree, &prefix_of(id))?;
            q.exec(
                "INSERT INTO ratings (conversation, seq, value) VALUES ($1, $2, $3)
                 ON CONFLICT (conversation, seq) DO UPDATE SET value = EXCLUDED.value",
                &[&id, &big(seq, "seq")?, &value],
            )?;
        }
        "queue" => {
            let w: Waiting = decode(&format!("{tree}/{}", w_key(key)), value)?;
            if queue_key(&w).as_slice() != key {
                return Err(bad("a queue entry under another entry's key"));
            }
            check_id(&w.conversation)?;
            put_waiting(q, &w, value)?;
        }
        "held" => {
            let id = utf8(tree, key)?;
            let agent: String = decode(&format!("{tree}/{id}"), value)?;
            put_held(q, &id, &agent)?;
        }
        "activity" => {
            let (minute, id) = split_activity_key(key).ok_or_else(|| bad("not a minute key"))?;
            check_id(&id)?;
            q.exec(
                "INSERT INTO activity (minute, conversation) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&minute, &id],
            )?;
        }
        "attachments" => {
            let id = owner(tree, key)?;
            let rest = &key[1 + id.len()..];
            // A part (`chunk_key`: id · 0xFF · u32 BE), or a whole file
            // stored before files were kept in parts: split here.
            let n = rest.len();
            let (attachment, parts) = match rest.iter().position(|&b| b == 0xFF) {
                Some(p) if p + 5 == n => {
                    let index = u32::from_be_bytes(rest[p + 1..].try_into().expect("4 bytes"));
                    (&rest[..p], vec![(index, value)])
                }
                Some(_) => return Err(bad("not an attachment key")),
                None => (
                    rest,
                    value
                        .chunks(ATTACHMENT_CHUNK)
                        .enumerate()
                        .map(|(i, c)| (i as u32, c))
                        .collect(),
                ),
            };
            let attachment = utf8(tree, attachment)?;
            check_attachment_id(&attachment)?;
            for (index, bytes) in parts {
                let part = i32::try_from(index).map_err(|_| bad("a part past 2^31"))?;
                q.exec(
                    "INSERT INTO attachments (conversation, attachment, part, bytes) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (conversation, attachment, part) DO UPDATE SET bytes = EXCLUDED.bytes",
                    &[&id, &attachment, &part, &bytes],
                )?;
            }
        }
        "agents" => {
            let name = utf8(tree, key)?;
            q.exec(
                "INSERT INTO agents (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&name, &value],
            )?;
        }
        "settings" => put_setting(q, &utf8(tree, key)?, value)?,
        "outbox" => put_outbox(q, &utf8(tree, key)?, value)?,
        _ => {
            return Err(StoreError::Db(format!(
                "an export names an unknown tree `{tree}`"
            )))
        }
    }
    Ok(())
}

/// `len · id`, the prefix `owner` reads, of a bare id.
fn prefix_of(id: &[u8]) -> Vec<u8> {
    let mut k = vec![id.len() as u8];
    k.extend_from_slice(id);
    k
}

fn w_key(key: &[u8]) -> String {
    crate::util::hash::hex(key)
}

/// Puts a queue entry, one per conversation and one per queue place (as
/// sled's queue, keyed by place, holds it).
fn put_waiting<C: GenericClient>(q: &mut Q<'_, C>, w: &Waiting, value: &[u8]) -> Result<()> {
    let rank: i16 = if w.priority { 0 } else { 1 };
    let ticket = big(w.ticket, "ticket")?;
    q.exec(
        "DELETE FROM queue WHERE conversation = $1 OR (rank = $2 AND ticket = $3)",
        &[&w.conversation, &rank, &ticket],
    )?;
    q.exec(
        "INSERT INTO queue (conversation, rank, ticket, value) VALUES ($1, $2, $3, $4)",
        &[&w.conversation, &rank, &ticket, &value],
    )?;
    Ok(())
}

/// `pg_advisory_xact_lock` key of the queue's places (8 ASCII bytes).
const QUEUE_LOCK: i64 = i64::from_be_bytes(*b"fd-queue");

/// Puts a queue entry a node made (an append's `Wait`, a mend at start).
/// Each node numbers its entries itself, so two nodes may give the same
/// place to two conversations at the same moment: the later one then
/// takes the next free place of its rank rather than replace the other's
/// entry (`put_waiting` keeps one entry per place, as sled does), under a
/// lock that serialises these puts across nodes until their commit.
fn put_waiting_node<C: GenericClient>(q: &mut Q<'_, C>, w: &Waiting) -> Result<()> {
    q.exec("SELECT pg_advisory_xact_lock($1)", &[&QUEUE_LOCK])?;
    let rank: i16 = if w.priority { 0 } else { 1 };
    let ticket = big(w.ticket, "ticket")?;
    let taken = q
        .opt(
            "SELECT 1 FROM queue WHERE rank = $1 AND ticket = $2 AND conversation <> $3",
            &[&rank, &ticket, &w.conversation],
        )?
        .is_some();
    if !taken {
        return put_waiting(q, w, &json(w));
    }
    let next = q
        .opt(
            "SELECT COALESCE(MAX(ticket), 0) + 1 FROM queue WHERE rank = $1",
            &[&rank],
        )?
        .map_or(ticket + 1, |r| r.get::<_, i64>(0));
    let moved = Waiting {
        ticket: next as u64,
        ..w.clone()
    };
    put_waiting(q, &moved, &json(&moved))
}

fn put_held<C: GenericClient>(q: &mut Q<'_, C>, conversation: &str, agent: &str) -> Result<()> {
    q.exec(
        "INSERT INTO held (conversation, agent) VALUES ($1, $2)
         ON CONFLICT (conversation) DO UPDATE SET agent = EXCLUDED.agent",
        &[&conversation, &agent],
    )
    .map(drop)
}

fn put_setting<C: GenericClient>(q: &mut Q<'_, C>, key: &str, value: &[u8]) -> Result<()> {
    q.exec(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&key, &value],
    )
    .map(drop)
}

fn put_outbox<C: GenericClient>(q: &mut Q<'_, C>, id: &str, value: &[u8]) -> Result<()> {
    q.exec(
        "INSERT INTO outbox (id, value) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value",
        &[&id, &value],
    )
    .map(drop)
}

/// A conversation's records after `after_seq`, in order.
fn records_after<C: GenericClient>(
    q: &mut Q<'_, C>,
    id: &str,
    after_seq: u64,
) -> Result<Vec<Record>> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    q.rows(
        "SELECT seq, record FROM events WHERE conversation = $1 AND seq > $2 ORDER BY seq",
        &[&id, &after],
    )?
    .iter()
    .map(|r| record_of(id, r))
    .collect()
}

impl Store for PgStore {
    fn create(&self, id: &str, at_ms: i64, visitor: Visitor) -> Result<Record> {
        check_id(id)?;
        let record = Record {
            seq: 1,
            at_ms,
            event: Event::Started { visitor },
        };
        let meta = json(&serde_json::json!({ "created_ms": at_ms }));
        let value = json(&record);
        self.tx(|q| {
            let made = q.exec(
                "INSERT INTO conversations (id, created_ms, meta, last_seq) VALUES ($1, $2, $3, 1)
                 ON CONFLICT (id) DO NOTHING",
                &[&id, &at_ms, &meta],
            )?;
            if made == 0 {
                return Err(StoreError::Exists(id.to_string()));
            }
            q.exec(
                "INSERT INTO events (conversation, seq, at_ms, record) VALUES ($1, 1, $2, $3)",
                &[&id, &at_ms, &value],
            )?;
            q.exec(
                "INSERT INTO activity (minute, conversation) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&minute_of(at_ms), &id],
            )
        })?;
        self.announce(&listen::appended(1, 1, id));
        Ok(record)
    }

    fn append_batch(&self, id: &str, batch: Batch) -> Result<Appended> {
        if !batch.check(id)? {
            return Ok(Appended {
                records: Vec::new(),
                duplicate: false,
            });
        }
        let Batch {
            at_ms,
            events,
            after_seq,
            outbox,
            index,
        } = batch;
        let appended = self.tx(|q| {
            // The lock every writer of this conversation, on any node,
            // queues on: the seq is assigned under it.
            let Some(row) = q.opt(
                "SELECT last_seq FROM conversations WHERE id = $1 FOR UPDATE",
                &[&id],
            )?
            else {
                return Err(StoreError::NotFound(id.to_string()));
            };
            let last_seq = row.get::<_, i64>(0) as u64;
            if let Some(expected) = after_seq {
                if expected != last_seq {
                    return Err(StoreError::Conflict {
                        id: id.to_string(),
                        expected,
                        found: last_seq,
                    });
                }
            }
            let mut client_id = None;
            if let Event::VisitorMessage { client_id: c, .. } = &events[0] {
                // Only a stored message that really is this one makes a
                // duplicate (an imported sled store may hold an id whose
                // message a crash lost).
                let found = q.opt(
                    "SELECT e.seq, e.record FROM client_ids c
                     JOIN events e ON e.conversation = c.conversation AND e.seq = c.seq
                     WHERE c.conversation = $1 AND c.client_id = $2",
                    &[&id, &c.as_bytes()],
                )?;
                if let Some(row) = found {
                    let r = record_of(id, &row)?;
                    if matches!(&r.event, Event::VisitorMessage { client_id: s, .. } if s == c) {
                        return Ok(Appended {
                            records: with_replies(&records_after(q, id, r.seq.saturating_sub(1))?),
                            duplicate: true,
                        });
                    }
                }
                client_id = Some(c.clone());
            }
            let mut records = Vec::with_capacity(events.len());
            for (i, event) in events.into_iter().enumerate() {
                records.push(Record {
                    seq: last_seq + 1 + i as u64,
                    at_ms,
                    event,
                });
            }
            for (k, v) in &outbox {
                put_outbox(q, k, v)?;
            }
            for op in &index {
                match op {
                    IndexOp::Wait(w) => put_waiting_node(q, w)?,
                    IndexOp::Hold { agent } => put_held(q, id, agent)?,
                    IndexOp::Unwait => {
                        q.exec("DELETE FROM queue WHERE conversation = $1", &[&id])?;
                    }
                    IndexOp::Unhold => {
                        q.exec("DELETE FROM held WHERE conversation = $1", &[&id])?;
                    }
                }
            }
            q.exec(
                "INSERT INTO activity (minute, conversation) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&minute_of(at_ms), &id],
            )?;
            if let Some(c) = client_id {
                q.exec(
                    "INSERT INTO client_ids (conversation, client_id, seq) VALUES ($1, $2, $3)
                     ON CONFLICT (conversation, client_id) DO UPDATE SET seq = EXCLUDED.seq",
                    &[&id, &c.as_bytes(), &big(last_seq + 1, "seq")?],
                )?;
            }
            let mut seqs = Vec::with_capacity(records.len());
            let mut values = Vec::with_capacity(records.len());
            for r in &records {
                seqs.push(big(r.seq, "seq")?);
                values.push(json(r));
                if let Event::Rating { score, comment } = &r.event {
                    let rating = RatingRecord {
                        conversation: id.to_string(),
                        seq: r.seq,
                        at_ms,
                        score: *score,
                        comment: comment.clone(),
                    };
                    q.exec(
                        "INSERT INTO ratings (conversation, seq, value) VALUES ($1, $2, $3)",
                        &[&id, &big(r.seq, "seq")?, &json(&rating)],
                    )?;
                }
            }
            q.exec(
                "INSERT INTO events (conversation, seq, at_ms, record)
                 SELECT $1, s, $2, r FROM unnest($3::bigint[], $4::bytea[]) AS u (s, r)",
                &[&id, &at_ms, &seqs, &values],
            )?;
            let last = *seqs.last().expect("a batch with events");
            q.exec(
                "UPDATE conversations SET last_seq = $2 WHERE id = $1",
                &[&id, &last],
            )?;
            Ok(Appended {
                records,
                duplicate: false,
            })
        })?;
        // A duplicate too: the first attempt's notification may be lost
        // (its connection cut at the commit, its node killed).
        if let (Some(first), Some(last)) = (appended.records.first(), appended.records.last()) {
            self.announce(&listen::appended(first.seq, last.seq, id));
        }
        Ok(appended)
    }

    fn read(&self, id: &str, after_seq: u64) -> Result<Vec<Record>> {
        check_id(id)?;
        self.auto(|q| {
            let records = records_after(q, id, after_seq)?;
            // Every conversation has its `Started`: an empty answer is
            // either past its end or no conversation at all.
            if records.is_empty()
                && q.opt("SELECT 1 FROM conversations WHERE id = $1", &[&id])?
                    .is_none()
            {
                return Err(StoreError::NotFound(id.to_string()));
            }
            Ok(records)
        })
    }

    fn conversations(&self) -> Result<Vec<String>> {
        self.auto(|q| {
            Ok(q.rows("SELECT id FROM conversations ORDER BY id", &[])?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn last_seqs(&self, ids: &[String]) -> Result<Vec<(String, u64)>> {
        self.auto(|q| {
            Ok(q.rows(
                "SELECT id, last_seq FROM conversations WHERE id = ANY($1)",
                &[&ids],
            )?
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
        })
    }

    fn delete(&self, id: &str) -> Result<()> {
        check_id(id)?;
        self.tx(|q| {
            // Its events, client ids, ratings, time index entries and
            // attachments go with it (ON DELETE CASCADE).
            if q.exec("DELETE FROM conversations WHERE id = $1", &[&id])? == 0 {
                return Err(StoreError::NotFound(id.to_string()));
            }
            q.exec("DELETE FROM held WHERE conversation = $1", &[&id])?;
            q.exec("DELETE FROM queue WHERE conversation = $1", &[&id])?;
            q.exec("DELETE FROM report_facts WHERE conversation = $1", &[&id])
                .map(drop)
        })?;
        self.announce(&listen::deleted(id));
        Ok(())
    }

    fn put_waiting(&self, w: &Waiting) -> Result<()> {
        check_id(&w.conversation)?;
        self.tx(|q| put_waiting_node(q, w))
    }

    fn remove_waiting(&self, conversation: &str) -> Result<()> {
        self.auto(|q| {
            q.exec(
                "DELETE FROM queue WHERE conversation = $1",
                &[&conversation],
            )
            .map(drop)
        })
    }

    fn waiting(&self) -> Result<Vec<Waiting>> {
        self.auto(|q| {
            q.rows(
                "SELECT conversation, value FROM queue ORDER BY rank, ticket",
                &[],
            )?
            .iter()
            .map(|r| decode(&format!("queue/{}", r.get::<_, &str>(0)), r.get(1)))
            .collect()
        })
    }

    fn put_agent(&self, name: &str, agent: &AgentRecord) -> Result<()> {
        self.tx(|q| {
            q.exec(
                "INSERT INTO agents (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&name, &json(agent)],
            )
        })?;
        self.announce(listen::AGENTS);
        Ok(())
    }

    fn agents(&self) -> Result<Vec<(String, AgentRecord)>> {
        self.auto(|q| {
            q.rows("SELECT name, value FROM agents ORDER BY name", &[])?
                .iter()
                .map(|r| {
                    let name: String = r.get(0);
                    let a = decode(&format!("agents/{name}"), r.get(1))?;
                    Ok((name, a))
                })
                .collect()
        })
    }

    fn remove_agent(&self, name: &str) -> Result<()> {
        self.tx(|q| q.exec("DELETE FROM agents WHERE name = $1", &[&name]))?;
        self.announce(listen::AGENTS);
        Ok(())
    }

    fn typing(&self, conversation: &str, agent: bool) {
        // An id with a space would read as another payload's fields.
        if check_id(conversation).is_ok() {
            self.announce(&listen::typing(conversation, agent));
        }
    }

    fn sessions_revoked(&self) {
        self.announce(listen::SESSIONS);
    }

    /// One listening session per store, on a thread of its own
    /// (`listen`); a second call gets `None`.
    fn changes(&self) -> Option<std::sync::mpsc::Receiver<Change>> {
        if self.listening.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(off_executor(|| {
            listen::start(
                self.config.clone(),
                self.node.clone(),
                Arc::clone(&self.stop),
            )
        }))
    }

    fn ratings(&self) -> Result<Vec<RatingRecord>> {
        self.auto(|q| {
            q.rows(
                "SELECT conversation, seq, value FROM ratings
                 ORDER BY octet_length(conversation), conversation, seq",
                &[],
            )?
            .iter()
            .map(|r| {
                let key = format!("ratings/{}/{}", r.get::<_, &str>(0), r.get::<_, i64>(1));
                decode(&key, r.get(2))
            })
            .collect()
        })
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.auto(|q| {
            Ok(q.opt("SELECT value FROM settings WHERE key = $1", &[&key])?
                .map(|r| r.get(0)))
        })
    }

    fn put_setting(&self, key: &str, value: &[u8]) -> Result<()> {
        self.auto(|q| put_setting(q, key, value))
    }

    /// Two nodes that start at once: the second insert waits for the
    /// first's commit and does nothing; both read the first's value.
    fn setting_or_put(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        self.tx(|q| {
            q.exec(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )?;
            Ok(q.opt("SELECT value FROM settings WHERE key = $1", &[&key])?
                .map_or_else(|| value.to_vec(), |r| r.get(0)))
        })
    }

    fn remove_setting(&self, key: &str) -> Result<()> {
        self.auto(|q| {
            q.exec("DELETE FROM settings WHERE key = $1", &[&key])
                .map(drop)
        })
    }

    fn put_outbox(&self, id: &str, value: &[u8]) -> Result<()> {
        self.auto(|q| put_outbox(q, id, value))
    }

    fn remove_outbox(&self, id: &str) -> Result<()> {
        self.auto(|q| q.exec("DELETE FROM outbox WHERE id = $1", &[&id]).map(drop))
    }

    fn outbox(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.auto(|q| {
            Ok(q.rows("SELECT id, value FROM outbox ORDER BY id", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    /// A session-level advisory lock on a session of its own: one node
    /// at a time holds it, and the server frees it when that session ends.
    fn outbox_lease(&self) -> Result<Lease> {
        off_executor(|| self.lease_now())
    }

    /// One transaction: this node's rows replaced and stamped with the
    /// database's clock (so nodes' clocks need not agree), its handle
    /// times added, rows of nodes silent for an hour deleted, the others'
    /// fresh rows and the latest handle times read.
    fn beat(
        &self,
        node: &str,
        rows: &[PresenceRow],
        handled: &[u64],
        fresh_ms: i64,
    ) -> Result<Option<Shared>> {
        let agents: Vec<&str> = rows.iter().map(|r| r.agent.as_str()).collect();
        let presence: Vec<&str> = rows.iter().map(|r| presence_name(r.presence)).collect();
        let capacity: Vec<i32> = rows
            .iter()
            .map(|r| i32::try_from(r.capacity).unwrap_or(i32::MAX))
            .collect();
        let consoles: Vec<i32> = rows
            .iter()
            .map(|r| i32::try_from(r.consoles).unwrap_or(i32::MAX))
            .collect();
        let changed: Vec<i64> = rows.iter().map(|r| r.changed_ms).collect();
        let handled: Vec<i64> = handled
            .iter()
            .map(|&s| i64::try_from(s).unwrap_or(i64::MAX))
            .collect();
        let keep = HANDLE_TIMES_SHARED as i64;
        self.tx(|q| {
            let now: i64 = q
                .rows(
                    "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                    &[],
                )?
                .first()
                .map(|r| r.get(0))
                .unwrap_or_default();
            q.exec("DELETE FROM presence WHERE node = $1", &[&node])?;
            q.exec(
                "INSERT INTO presence (node, agent, presence, capacity, consoles, changed_ms, beat_ms)
                 SELECT $1, a, p, c, k, ch, $2
                 FROM unnest($3::text[], $4::text[], $5::int[], $6::int[], $7::bigint[])
                     AS u (a, p, c, k, ch)",
                &[&node, &now, &agents, &presence, &capacity, &consoles, &changed],
            )?;
            q.exec(
                "DELETE FROM presence WHERE beat_ms < $1",
                &[&(now - PRESENCE_FORGET_MS)],
            )?;
            let others = q
                .rows(
                    "SELECT node, agent, presence, capacity, consoles, changed_ms FROM presence
                     WHERE node <> $1 AND beat_ms >= $2 ORDER BY node, agent",
                    &[&node, &(now - fresh_ms)],
                )?
                .iter()
                .filter_map(|r| {
                    Some(PresenceRow {
                        node: r.get(0),
                        agent: r.get(1),
                        presence: presence_of(r.get(2))?,
                        capacity: u32::try_from(r.get::<_, i32>(3)).unwrap_or(0),
                        consoles: u32::try_from(r.get::<_, i32>(4)).unwrap_or(0),
                        changed_ms: r.get(5),
                    })
                })
                .collect();
            if !handled.is_empty() {
                q.exec(
                    "INSERT INTO handle_times (secs) SELECT unnest($1::bigint[])",
                    &[&handled],
                )?;
                q.exec(
                    "DELETE FROM handle_times WHERE id <= (
                         SELECT id FROM handle_times ORDER BY id DESC OFFSET $1 LIMIT 1)",
                    &[&keep],
                )?;
            }
            let mut handle_secs: Vec<u64> = q
                .rows(
                    "SELECT secs FROM handle_times ORDER BY id DESC LIMIT $1",
                    &[&keep],
                )?
                .iter()
                .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))
                .collect();
            handle_secs.reverse();
            Ok(Some(Shared {
                presence: others,
                handle_secs,
            }))
        })
    }

    /// One snapshot (REPEATABLE READ, read only), tree by tree in sled's
    /// key order, in sled's shape. Report facts stay out (derived).
    fn export(&self, f: &mut ExportFn<'_>) -> Result<()> {
        off_executor(|| self.export_now(f))
    }

    fn put_held(&self, conversation: &str, agent: &str) -> Result<()> {
        check_id(conversation)?;
        self.auto(|q| put_held(q, conversation, agent))
    }

    fn remove_held(&self, conversation: &str) -> Result<()> {
        self.auto(|q| {
            q.exec("DELETE FROM held WHERE conversation = $1", &[&conversation])
                .map(drop)
        })
    }

    fn held(&self) -> Result<Vec<(String, String)>> {
        self.auto(|q| {
            Ok(q.rows(
                "SELECT conversation, agent FROM held ORDER BY conversation",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn minutes(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, String)>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let (first, last) = (minute_of(from_ms), minute_of(to_ms - 1));
        self.auto(|q| {
            Ok(q.rows(
                "SELECT minute, conversation FROM activity
                     WHERE minute >= $1 AND minute <= $2 ORDER BY minute, conversation",
                &[&first, &last],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    /// Not waiting for the WAL flush: derived data, made durable by the
    /// mark's synchronous commit (`put_facts_mark`), which flushes the
    /// WAL up to itself.
    fn put_facts(&self, rows: &[FactsRow]) -> Result<()> {
        for r in rows {
            check_id(&r.conversation)?;
        }
        self.tx(|q| {
            q.exec("SET LOCAL synchronous_commit = off", &[])?;
            for r in rows {
                q.exec(
                    "INSERT INTO report_facts (conversation, started_ms, visitor, data)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (conversation) DO UPDATE SET started_ms = EXCLUDED.started_ms,
                         visitor = EXCLUDED.visitor, data = EXCLUDED.data",
                    &[
                        &r.conversation,
                        &r.started_ms,
                        &r.visitor.as_deref().map(str::as_bytes),
                        &r.data,
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<FactsRow>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        self.auto(|q| {
            Ok(q.rows(
                "SELECT conversation, started_ms, visitor, data FROM report_facts
                     WHERE started_ms >= $1 AND started_ms < $2 ORDER BY started_ms, conversation",
                &[&from_ms, &to_ms],
            )?
            .iter()
            .map(|r| FactsRow {
                conversation: r.get(0),
                started_ms: r.get(1),
                visitor: r
                    .get::<_, Option<&[u8]>>(2)
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                data: r.get(3),
            })
            .collect())
        })
    }

    fn visitor_starts(
        &self,
        visitor: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, String)>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        self.auto(|q| {
            Ok(q.rows(
                "SELECT started_ms, conversation FROM report_facts
                     WHERE visitor = $1 AND started_ms >= $2 AND started_ms < $3
                     ORDER BY started_ms, conversation",
                &[&visitor.as_bytes(), &from_ms, &to_ms],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn facts_mark(&self) -> Result<Option<Vec<u8>>> {
        self.auto(|q| {
            Ok(q.opt("SELECT mark FROM report_mark", &[])?
                .map(|r| r.get(0)))
        })
    }

    fn put_facts_mark(&self, mark: &[u8]) -> Result<()> {
        self.auto(|q| {
            q.exec(
                "INSERT INTO report_mark (mark) VALUES ($1)
                 ON CONFLICT (one) DO UPDATE SET mark = EXCLUDED.mark",
                &[&mark],
            )
            .map(drop)
        })
    }

    fn clear_facts(&self) -> Result<()> {
        self.tx(|q| {
            q.exec("DELETE FROM report_facts", &[])?;
            q.exec("DELETE FROM report_mark", &[])?;
            Ok(())
        })
    }

    fn drop_facts(&self, id: &str) -> Result<()> {
        check_id(id)?;
        self.auto(|q| {
            q.exec("DELETE FROM report_facts WHERE conversation = $1", &[&id])
                .map(drop)
        })
    }

    /// In parts of `ATTACHMENT_CHUNK` bytes, one row each, in one
    /// transaction (replacing any file under that id).
    fn put_attachment(&self, conversation: &str, attachment: &str, bytes: &[u8]) -> Result<()> {
        check_id(conversation)?;
        check_attachment_id(attachment)?;
        self.tx(|q| {
            // Locks the conversation against a delete until the commit.
            if q.opt(
                "SELECT 1 FROM conversations WHERE id = $1 FOR KEY SHARE",
                &[&conversation],
            )?
            .is_none()
            {
                return Err(StoreError::NotFound(conversation.to_string()));
            }
            q.exec(
                "DELETE FROM attachments WHERE conversation = $1 AND attachment = $2",
                &[&conversation, &attachment],
            )?;
            for (i, part) in bytes.chunks(ATTACHMENT_CHUNK).enumerate() {
                let i = i32::try_from(i)
                    .map_err(|_| StoreError::Db("an attachment of over 2^31 parts".into()))?;
                q.exec(
                    "INSERT INTO attachments (conversation, attachment, part, bytes)
                     VALUES ($1, $2, $3, $4)",
                    &[&conversation, &attachment, &i, &part],
                )?;
            }
            Ok(())
        })
    }

    fn attachment(&self, conversation: &str, attachment: &str) -> Result<Option<Vec<u8>>> {
        check_id(conversation)?;
        check_attachment_id(attachment)?;
        self.auto(|q| {
            let rows = q.rows(
                "SELECT bytes FROM attachments WHERE conversation = $1 AND attachment = $2
                 ORDER BY part",
                &[&conversation, &attachment],
            )?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut all = Vec::new();
            for r in &rows {
                all.extend_from_slice(r.get::<_, &[u8]>(0));
            }
            Ok(Some(all))
        })
    }

    fn attachment_chunk(
        &self,
        conversation: &str,
        attachment: &str,
        index: u64,
    ) -> Result<Option<Vec<u8>>> {
        check_id(conversation)?;
        check_attachment_id(attachment)?;
        let Ok(part) = i32::try_from(index) else {
            return Ok(None);
        };
        self.auto(|q| {
            Ok(q.opt(
                "SELECT bytes FROM attachments
                     WHERE conversation = $1 AND attachment = $2 AND part = $3",
                &[&conversation, &attachment, &part],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn delete_attachment(&self, conversation: &str, attachment: &str) -> Result<()> {
        check_id(conversation)?;
        check_attachment_id(attachment)?;
        self.auto(|q| {
            q.exec(
                "DELETE FROM attachments WHERE conversation = $1 AND attachment = $2",
                &[&conversation, &attachment],
            )
            .map(drop)
        })
    }

    fn attachment_bytes(&self) -> Result<u64> {
        self.auto(|q| {
            let row = q.opt(
                "SELECT COALESCE(SUM(octet_length(bytes)), 0)::bigint FROM attachments",
                &[],
            )?;
            Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
        })
    }
}

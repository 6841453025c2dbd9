//! Fan-out across nodes (issue 20): every write that other nodes keep
//! something of in memory is announced on `CHANNEL` after it commits, and
//! each node has one session that `LISTEN`s, on a thread of its own, and
//! hands the other nodes' notifications to the app as `store::Change`s.
//!
//! **Sent after the commit, not inside it.** A `NOTIFY` inside a write's
//! transaction would be delivered exactly on commit, but PostgreSQL holds
//! one lock for every notifying transaction of the database from its
//! pre-commit to its end, WAL flush included: notifying commits cannot
//! share a flush, which capped a whole cluster at about one write per
//! fsync (BENCHMARKS.md, "Several nodes": 576 against 3,070 commits/s).
//! So a committed write hands its notification to this node's `Notifier`,
//! whose thread sends everything pending in one statement on a session of
//! its own with `synchronous_commit = off` (a notifying transaction gets a
//! transaction id and would otherwise wait for its own flush, lock held):
//! one short notifying transaction per batch per node. The price: a node
//! killed between a commit and its notification loses the hint. The app
//! covers that with a periodic sweep (`app::cluster`), so such a write
//! reaches the other nodes' sockets within the sweep's interval.
//!
//! A notification is a hint to read the store again, never the data: the
//! app reads the records by seq, so a notification lost (the listening
//! session cut, PostgreSQL's queue full, the sender killed) or merged
//! costs latency, not data. When the listening session is cut the thread
//! connects again with backoff (100 ms doubling to 5 s) and then sends
//! `Change::Resync`, after which the app reads everything it keeps in
//! memory again. While the database cannot be reached the notifier keeps
//! up to `PENDING_MAX` notifications and sends them when it is back; past
//! that it drops the newest and, once it can send, asks the other nodes
//! to read everything again, as it does when the node starts (the node
//! may have been killed with notifications unsent).
//!
//! Payload: `<node> a <first> <last> <conversation>` (records stored),
//! `<node> d <conversation>` (deleted), `<node> g` (agents changed),
//! `<node> t a|v <conversation>` (the agent or the visitor typing: only
//! a notification, nothing stored), `<node> s` (visitor sessions
//! revoked), `<node> r` (read everything again: the node started, or it
//! dropped notifications). A
//! conversation id is letters, digits, `-` and `_` (`check_id`), so
//! spaces separate the fields; the node id is random per store opened,
//! and a node skips its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, Config, NoTls, Statement};

use super::pg_err;
use crate::store::{Change, Result};

/// The one channel every node listens on.
pub(super) const CHANNEL: &str = "frontdesk_changes";

/// The listening session's `application_name`.
const LISTENER_NAME: &str = "frontdesk-listen";
/// The notifying session's.
const NOTIFIER_NAME: &str = "frontdesk-notify";

/// Notifications kept at most while they cannot be sent (beside the batch
/// being tried); past this the newest are dropped, and once sending works
/// again the other nodes are asked to read everything again (`RESYNC`).
const PENDING_MAX: usize = 10_000;

/// How long a dropped store waits for its last notifications to go out.
const LAST_SEND: Duration = Duration::from_secs(1);

/// What asks the other nodes to read everything again: sent when a node
/// starts (a node killed before may have lost notifications) and after
/// notifications were dropped.
pub(super) const RESYNC: &str = "r";

/// How often the listening thread looks up from its wait (to notice that
/// its store was dropped).
const TICK: Duration = Duration::from_millis(250);
/// A listening session idle this long is checked with a round trip (a
/// server gone without a word is otherwise noticed only by keepalives).
const CHECK_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// This node's notifications on their way out: a write hands its own
/// over after its commit (`send`, which never blocks on the database),
/// and one thread sends what is pending, all at once.
pub(super) struct Notifier {
    node: String,
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    payloads: Vec<String>,
    /// Some were dropped (`PENDING_MAX`): a `RESYNC` goes with the next.
    dropped: bool,
    /// The store is gone: send what is pending once more, and end.
    stop: bool,
    /// The thread has ended.
    done: bool,
}

impl Notifier {
    /// A notifier for `node` and its thread, which connects when it first
    /// has something to send.
    pub(super) fn start(config: Config, node: String) -> Arc<Notifier> {
        let n = Arc::new(Notifier {
            node,
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        n.send(RESYNC);
        let on = Arc::clone(&n);
        let spawned = std::thread::Builder::new()
            .name("frontdesk-notify".into())
            .spawn(move || on.run(&config));
        if let Err(e) = spawned {
            // The others then learn this node's writes from their sweep.
            tracing::error!(error = %e, "no thread to notify other nodes of this node's writes");
        }
        n
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Announces `payload` (after this node's id) to the other nodes: a
    /// write calls it once committed.
    pub(super) fn send(&self, payload: &str) {
        let mut p = self.lock();
        if p.payloads.len() < PENDING_MAX {
            p.payloads.push(format!("{} {payload}", self.node));
            self.wake.notify_all();
        } else if !p.dropped {
            p.dropped = true;
            tracing::warn!(
                "{PENDING_MAX} notifications to other nodes wait: dropping the newest; \
                 they will be asked to read everything again"
            );
        }
    }

    /// The store is dropped: what is pending goes out once more, then the
    /// thread ends, waited for at most `LAST_SEND`.
    pub(super) fn stop(&self) {
        let mut p = self.lock();
        p.stop = true;
        self.wake.notify_all();
        let _ = self
            .wake
            .wait_timeout_while(p, LAST_SEND, |p| !p.done)
            .unwrap_or_else(|e| e.into_inner());
    }

    fn run(&self, config: &Config) {
        self.send_all(config);
        self.lock().done = true;
        self.wake.notify_all();
    }

    fn send_all(&self, config: &Config) {
        let mut session: Option<(Client, Statement)> = None;
        let mut backoff = BACKOFF_FIRST;
        loop {
            let (batch, mut stop) = {
                let mut p = self.lock();
                while p.payloads.is_empty() && !p.stop {
                    p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                let mut batch = std::mem::take(&mut p.payloads);
                if std::mem::take(&mut p.dropped) {
                    batch.push(format!("{} {RESYNC}", self.node));
                }
                (batch, p.stop)
            };
            if batch.is_empty() {
                return;
            }
            loop {
                match notify(&mut session, config, &batch) {
                    Ok(()) => {
                        backoff = BACKOFF_FIRST;
                        break;
                    }
                    Err(e) => {
                        session = None;
                        if stop {
                            return;
                        }
                        if backoff == BACKOFF_MAX {
                            tracing::warn!(error = %e, "other nodes not notified yet; retrying");
                        } else {
                            tracing::debug!(error = %e, "other nodes not notified yet; retrying");
                        }
                        // Waits out the backoff, or until the store goes
                        // (then one more try).
                        let p = self.lock();
                        let (p, _) = self
                            .wake
                            .wait_timeout_while(p, backoff, |p| !p.stop)
                            .unwrap_or_else(|e| e.into_inner());
                        stop = p.stop;
                        drop(p);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
            if stop {
                return;
            }
        }
    }
}

/// Sends `batch` in one autocommit statement on the notifying session
/// (made first if there is none).
fn notify(
    session: &mut Option<(Client, Statement)>,
    config: &Config,
    batch: &[String],
) -> Result<()> {
    let (c, stmt) = match session {
        Some(s) => s,
        None => {
            let mut config = config.clone();
            config.application_name(NOTIFIER_NAME);
            let mut c = config.connect(NoTls).map_err(pg_err)?;
            // Its transactions write nothing but the notifications:
            // none waits for a WAL flush, holding the notify lock.
            c.batch_execute("SET synchronous_commit = off")
                .map_err(pg_err)?;
            let stmt = c
                .prepare("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                .map_err(pg_err)?;
            session.insert((c, stmt))
        }
    };
    c.execute(&*stmt, &[&CHANNEL, &batch])
        .map(drop)
        .map_err(pg_err)
}

/// The payload of `first..=last` stored in `id`.
pub(super) fn appended(first: u64, last: u64, id: &str) -> String {
    format!("a {first} {last} {id}")
}

pub(super) fn deleted(id: &str) -> String {
    format!("d {id}")
}

pub(super) const AGENTS: &str = "g";

pub(super) const SESSIONS: &str = "s";

pub(super) fn typing(id: &str, agent: bool) -> String {
    format!("t {} {id}", if agent { "a" } else { "v" })
}

/// What another node's payload says; `None` for this node's own, and for
/// what does not parse (a newer node's kind: read as a resync would be
/// safer, but an unknown kind names nothing this node keeps).
fn parse(payload: &str, node: &str) -> Option<Change> {
    let mut f = payload.split(' ');
    let from = f.next()?;
    if from == node {
        return None;
    }
    match f.next()? {
        "a" => {
            let first = f.next()?.parse().ok()?;
            let last = f.next()?.parse().ok()?;
            let conversation = f.next()?.to_string();
            Some(Change::Appended {
                conversation,
                first,
                last,
            })
        }
        "d" => Some(Change::Deleted {
            conversation: f.next()?.to_string(),
        }),
        "g" => Some(Change::Agents),
        "r" => Some(Change::Resync),
        "s" => Some(Change::Sessions),
        "t" => {
            let agent = match f.next()? {
                "a" => true,
                "v" => false,
                _ => return None,
            };
            Some(Change::Typing {
                conversation: f.next()?.to_string(),
                agent,
            })
        }
        _ => None,
    }
}

/// A session that listens on `CHANNEL`.
fn listener(config: &Config) -> Result<Client> {
    let mut config = config.clone();
    // Named, so an operator sees it in `pg_stat_activity`.
    config.application_name(LISTENER_NAME);
    let mut c = config.connect(NoTls).map_err(pg_err)?;
    c.batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(pg_err)?;
    Ok(c)
}

/// Starts listening: the first session is made here, before this returns
/// (so a change committed after it is heard), and a thread carries on
/// until `stop` is set or the receiver is dropped. A database that cannot
/// be reached now is tried again by the thread, which then sends a
/// `Resync`.
pub(super) fn start(config: Config, node: String, stop: Arc<AtomicBool>) -> Receiver<Change> {
    let (tx, rx) = std::sync::mpsc::channel();
    let first = match listener(&config) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for other nodes' changes yet; retrying");
            None
        }
    };
    let spawned = std::thread::Builder::new()
        .name("frontdesk-listen".into())
        .spawn(move || run(&config, &node, &stop, &tx, first));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "no thread to listen for other nodes' changes");
    }
    rx
}

fn run(
    config: &Config,
    node: &str,
    stop: &AtomicBool,
    tx: &Sender<Change>,
    mut session: Option<Client>,
) {
    let mut backoff = BACKOFF_FIRST;
    // A session made after the first start (or after none) may have
    // missed changes.
    let mut missed = session.is_none();
    while !stop.load(Ordering::Relaxed) {
        let mut c = match session.take() {
            Some(c) => c,
            None => match listener(config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "listening session not made; retrying");
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK.min(until - Instant::now()));
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        if missed {
            tracing::info!("listening for other nodes' changes again: reading everything anew");
            if tx.send(Change::Resync).is_err() {
                return;
            }
        }
        backoff = BACKOFF_FIRST;
        missed = true;
        if !listen(&mut c, node, stop, tx) {
            return;
        }
        tracing::warn!("the session listening for other nodes' changes was cut; reconnecting");
    }
}

/// Hands on notifications until the session breaks (`true`: make a new
/// one) or the store or the app is gone (`false`).
fn listen(c: &mut Client, node: &str, stop: &AtomicBool, tx: &Sender<Change>) -> bool {
    let mut checked = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let next = c.notifications().timeout_iter(TICK).next();
        match next {
            Ok(Some(n)) => {
                if let Some(change) = parse(n.payload(), node) {
                    if tx.send(change).is_err() {
                        return false;
                    }
                }
                checked = Instant::now();
            }
            Ok(None) => {
                if c.is_closed() {
                    return true;
                }
                if checked.elapsed() >= CHECK_EVERY {
                    if c.is_valid(CHECK_EVERY).is_err() {
                        return true;
                    }
                    checked = Instant::now();
                }
            }
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_a_node_skips_its_own() {
        let a = format!("n1 {}", appended(3, 5, "c-1_x"));
        assert_eq!(
            parse(&a, "n2"),
            Some(Change::Appended {
                conversation: "c-1_x".into(),
                first: 3,
                last: 5
            })
        );
        assert_eq!(parse(&a, "n1"), None);
        assert_eq!(
            parse(&format!("n1 {}", deleted("c")), "n2"),
            Some(Change::Deleted {
                conversation: "c".into()
            })
        );
        assert_eq!(parse(&format!("n1 {AGENTS}"), "n2"), Some(Change::Agents));
        assert_eq!(parse(&format!("n1 {RESYNC}"), "n2"), Some(Change::Resync));
        assert_eq!(
            parse(&format!("n1 {SESSIONS}"), "n2"),
            Some(Change::Sessions)
        );
        assert_eq!(
            parse(&format!("n1 {}", typing("c", true)), "n2"),
            Some(Change::Typing {
                conversation: "c".into(),
                agent: true
            })
        );
        assert_eq!(
            parse(&format!("n1 {}", typing("c", false)), "n2"),
            Some(Change::Typing {
                conversation: "c".into(),
                agent: false
            })
        );
        for bad in [
            "",
            "n1",
            "n1 a 1",
            "n1 a x 2 c",
            "n1 z c",
            "n1 t x c",
            "n1 t a",
        ] {
            assert_eq!(parse(bad, "n2"), None, "{bad:?}");
        }
    }
}

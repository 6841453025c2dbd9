//! Fan-out across nodes (issue 20): every write that other nodes keep
//! something of in memory sends a `NOTIFY` on `CHANNEL` inside its own
//! transaction, so PostgreSQL delivers it when, and only if, the write
//! commits; each node has one session that `LISTEN`s, on a thread of its
//! own, and hands the other nodes' notifications to the app as
//! `store::Change`s.
//!
//! A notification is a hint to read the store again, never the data: the
//! app reads the records by seq, so a notification lost (the listening
//! session cut, PostgreSQL's queue full) or merged costs latency, not
//! data. When the session is cut the thread connects again with backoff
//! (100 ms doubling to 5 s) and then sends `Change::Resync`, after which
//! the app reads everything it keeps in memory again.
//!
//! Payload: `<node> a <first> <last> <conversation>` (records stored),
//! `<node> d <conversation>` (deleted), `<node> g` (agents changed). A
//! conversation id is letters, digits, `-` and `_` (`check_id`), so
//! spaces separate the fields; the node id is random per store opened,
//! and a node skips its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, Config, GenericClient, NoTls};

use super::{pg_err, Q};
use crate::store::{Change, Result};

/// The one channel every node listens on.
pub(super) const CHANNEL: &str = "frontdesk_changes";

/// The listening session's `application_name`.
const LISTENER_NAME: &str = "frontdesk-listen";

/// How often the listening thread looks up from its wait (to notice that
/// its store was dropped).
const TICK: Duration = Duration::from_millis(250);
/// A listening session idle this long is checked with a round trip (a
/// server gone without a word is otherwise noticed only by keepalives).
const CHECK_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Sends `payload` (after this node's id) to the other nodes, on commit of
/// the transaction `q` is in.
pub(super) fn notify<C: GenericClient>(q: &mut Q<'_, C>, node: &str, payload: &str) -> Result<()> {
    let message = format!("{node} {payload}");
    q.exec("SELECT pg_notify($1, $2)", &[&CHANNEL, &message])
        .map(drop)
}

/// The payload of `first..=last` stored in `id`.
pub(super) fn appended(first: u64, last: u64, id: &str) -> String {
    format!("a {first} {last} {id}")
}

pub(super) fn deleted(id: &str) -> String {
    format!("d {id}")
}

pub(super) const AGENTS: &str = "g";

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
        for bad in ["", "n1", "n1 a 1", "n1 a x 2 c", "n1 z c"] {
            assert_eq!(parse(bad, "n2"), None, "{bad:?}");
        }
    }
}

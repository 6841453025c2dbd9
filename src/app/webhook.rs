//! Webhooks: on a handoff and on a close, a versioned JSON packet (the
//! conversation, its summary, the transcript) is POSTed to each configured
//! URL, signed with HMAC-SHA256 (`X-Frontdesk-Signature: sha256=<hex>` of
//! the body). A packet is written to the store's outbox just before its
//! event (one `Store::append_batch`), before the client gets its answer,
//! and leaves it only when the receiver answers 2xx, so neither a restart
//! nor a crash at any moment drops one (delivery is at least once; the
//! `delivery` id is stable across retries). A crash can leave a packet
//! whose event was lost: the sender checks the event is stored before
//! sending, and drops such a packet. Failures are retried with
//! exponential backoff (1 s, 2 s, 4 s, … at most an hour apart) and given
//! up after `MAX_ATTEMPTS`, with an error in the log. Packets to one URL
//! arrive in the order they were made: a later one waits while an earlier
//! one is being retried. A (re)start retries everything at once.
//!
//! Several nodes on one shared store (PostgreSQL): only the node holding
//! the outbox lease (`Store::outbox_lease`) sends, webhooks and emails
//! alike; the others ask again every `LEASE_RETRY`, and the holder looks
//! for entries the others wrote every `SHARED_POLL`. The lease is checked
//! again before each send, so while nodes run, every delivery id is sent
//! by one node once. When the holder dies (or loses its database session)
//! after a receiver took a packet and before the entry was removed,
//! the next holder sends it again with the same `delivery` id: receivers
//! must drop a `delivery` they have seen (at least once, as after a
//! crash of a single node).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use super::metrics::Count;
use super::{auth, now_ms, App};
use crate::conversation::{Conversation, Record, Visitor};
use crate::handoff::Summary;
use crate::store::Lease;

/// Version of the packet's shape; receivers should check it.
pub const PACKET_VERSION: u32 = 1;
/// Attempts before a delivery is given up (about a day of backoff).
pub const MAX_ATTEMPTS: u32 = 30;
const TIMEOUT: Duration = Duration::from_secs(10);

/// What receivers get.
#[derive(Debug, Serialize, Deserialize)]
pub struct Packet {
    pub version: u32,
    /// Unique per event and URL; the same on every retry, so receivers can
    /// drop duplicates.
    pub delivery: String,
    /// `handoff` or `closed`.
    pub event: String,
    pub at_ms: i64,
    pub conversation: PacketConversation,
    pub summary: Summary,
    pub transcript: Vec<Record>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PacketConversation {
    pub id: String,
    pub phase: String,
    pub visitor: Visitor,
}

/// An outbox entry.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    url: String,
    event: String,
    body: String,
    attempts: u32,
    next_at_ms: i64,
    /// The record the packet announces: the sender checks it is stored
    /// before sending (the entry is written before its event, so a crash
    /// can leave one whose event was lost). Absent in older entries.
    #[serde(default)]
    conversation: String,
    #[serde(default)]
    seq: u64,
    /// That record's time: a seq a crash freed can be taken by a later
    /// event of the same kind, which this entry does not announce.
    #[serde(default)]
    event_at_ms: i64,
}

/// How often a node without the outbox lease asks for it again.
pub const LEASE_RETRY: Duration = Duration::from_secs(2);
/// How often the lease holder on a shared store looks for entries other
/// nodes wrote (their writes do not wake it).
pub const SHARED_POLL: Duration = Duration::from_secs(1);

/// This node's turn at the outbox; a store error counts as not holding
/// the lease (nothing is sent that another node may send too).
pub(super) async fn lease(app: &App) -> Lease {
    let a = app.clone();
    match tokio::task::spawn_blocking(move || a.store().outbox_lease()).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the outbox lease cannot be checked; not sending");
            Lease::Elsewhere
        }
        Err(_) => Lease::Elsewhere,
    }
}

/// How long the sender waits for an entry's event to be stored before it
/// takes the event for lost (it is stored right after its entry).
const EVENT_GRACE_MS: i64 = 10_000;

/// The outbox entries (key, value) for `event` of conversation `id`, one
/// per webhook that wants it, built from `log`: the conversation's log
/// including the records about to be stored. They are stored in the same
/// atomic write as those records (`Store::append_batch`).
pub fn packets(
    app: &App,
    id: &str,
    log: &[Record],
    event: &str,
    seq: u64,
) -> Vec<(String, Vec<u8>)> {
    let event_at_ms = log.iter().find(|r| r.seq == seq).map_or(0, |r| r.at_ms);
    let hooks: Vec<_> = app
        .inner
        .config
        .webhooks
        .iter()
        .filter(|w| w.events.iter().any(|e| e == event))
        .collect();
    if hooks.is_empty() {
        return Vec::new();
    }
    let conv = Conversation::from_log(log);
    let now = now_ms();
    let mut out = Vec::with_capacity(hooks.len());
    for hook in hooks {
        let key = format!("{now:020}-{}", auth::hex(&auth::random_bytes::<6>()));
        let packet = Packet {
            version: PACKET_VERSION,
            delivery: key.clone(),
            event: event.to_string(),
            at_ms: now,
            conversation: PacketConversation {
                id: id.to_string(),
                phase: conv.phase.as_str().to_string(),
                visitor: conv.visitor.clone(),
            },
            summary: Summary::of(&conv, now),
            transcript: log.to_vec(),
        };
        let pending = Pending {
            url: hook.url.clone(),
            event: event.to_string(),
            body: serde_json::to_string(&packet).unwrap_or_default(),
            attempts: 0,
            next_at_ms: now,
            conversation: id.to_string(),
            seq,
            event_at_ms,
        };
        out.push((key, serde_json::to_vec(&pending).unwrap_or_default()));
    }
    out
}

/// The webhook event a stored event causes, if any.
pub fn kind_of(e: &crate::conversation::Event) -> Option<&'static str> {
    match e {
        crate::conversation::Event::Handoff { .. } => Some("handoff"),
        crate::conversation::Event::Closed { .. } => Some("closed"),
        _ => None,
    }
}

/// Whether the record an outbox entry announces is stored.
enum Announced {
    Stored,
    /// Not yet: its append is under way.
    NotYet,
    /// Never will be: a crash took it (or its seq holds another event).
    Lost,
}

async fn announced(app: &App, key: &str, p: &Pending) -> Announced {
    if p.seq == 0 {
        return Announced::Stored;
    }
    let (app2, id, seq) = (app.clone(), p.conversation.clone(), p.seq);
    let record = tokio::task::spawn_blocking(move || app2.store().read(&id, seq - 1))
        .await
        .ok()
        .and_then(|r| r.ok())
        .and_then(|log| log.into_iter().next());
    match record {
        Some(r)
            if r.seq == p.seq
                && kind_of(&r.event) == Some(p.event.as_str())
                && (p.event_at_ms == 0 || r.at_ms == p.event_at_ms) =>
        {
            Announced::Stored
        }
        Some(r) if r.seq == p.seq => Announced::Lost,
        _ => {
            // The key starts with its creation time in ms.
            let made: i64 = key.get(..20).and_then(|t| t.parse().ok()).unwrap_or(0);
            if now_ms() - made < EVENT_GRACE_MS {
                Announced::NotYet
            } else {
                Announced::Lost
            }
        }
    }
}

/// Delivers the outbox until `shutdown` resolves.
pub async fn run(app: App, shutdown: impl std::future::Future<Output = ()>) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    tokio::pin!(shutdown);
    let mut first_pass = true;
    let mut held = false;
    loop {
        let turn = lease(&app).await;
        if turn == Lease::Held && !held {
            // Assignment goes with the lease (`App::auto_assign`): the
            // visitors who waited while its last holder went are given out.
            let a = app.clone();
            let _ = tokio::task::spawn_blocking(move || a.auto_assign()).await;
        }
        held = turn == Lease::Held;
        if turn == Lease::Elsewhere {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(LEASE_RETRY) => {}
            }
            continue;
        }
        let entries = {
            let app = app.clone();
            tokio::task::spawn_blocking(move || app.store().outbox())
                .await
                .ok()
                .and_then(|r| {
                    r.map_err(|e| tracing::error!(error = %e, "outbox unreadable"))
                        .ok()
                })
                .unwrap_or_default()
        };
        let mut wake = now_ms() + 60_000;
        // URLs with an earlier packet still pending this pass.
        let mut blocked: Vec<String> = Vec::new();
        for (key, value) in entries {
            // Emails share the outbox; `email::run` sends those.
            if key.starts_with(super::email::PREFIX) {
                continue;
            }
            let Ok(mut p) = serde_json::from_slice::<Pending>(&value) else {
                tracing::error!(delivery = %key, "outbox entry unreadable; dropped");
                let _ = remove(&app, key).await;
                continue;
            };
            let now = now_ms();
            if blocked.contains(&p.url) {
                continue;
            }
            if p.next_at_ms > now && !first_pass {
                wake = wake.min(p.next_at_ms);
                blocked.push(p.url.clone());
                continue;
            }
            match announced(&app, &key, &p).await {
                Announced::Stored => {}
                Announced::NotYet => {
                    wake = wake.min(now + 500);
                    blocked.push(p.url.clone());
                    continue;
                }
                Announced::Lost => {
                    tracing::warn!(delivery = %key, conversation = %p.conversation, seq = p.seq,
                        "the event this delivery announces was lost in a crash; dropped");
                    let _ = remove(&app, key).await;
                    continue;
                }
            }
            let Some(hook) = app.inner.config.webhooks.iter().find(|w| w.url == p.url) else {
                tracing::warn!(delivery = %key, url = %p.url, "webhook no longer configured; dropped");
                let _ = remove(&app, key).await;
                continue;
            };
            // The lease may have gone since the pass began (its session
            // broke): then another node sends.
            if turn == Lease::Held && lease(&app).await != Lease::Held {
                break;
            }
            let signature = auth::sign(hook.secret.0.as_bytes(), p.body.as_bytes());
            let result = post(&client, &p, &key, &signature).await;
            match result {
                Ok(()) => {
                    app.inner.metrics.inc(Count::WebhookDelivery("ok"));
                    let _ = remove(&app, key).await;
                }
                Err(why) => {
                    p.attempts += 1;
                    app.inner.metrics.inc(Count::WebhookDelivery("failed"));
                    if p.attempts >= MAX_ATTEMPTS {
                        tracing::error!(delivery = %key, url = %p.url, %why, "webhook given up");
                        let _ = remove(&app, key).await;
                        continue;
                    }
                    let backoff = 1000i64 << (p.attempts - 1).min(12);
                    p.next_at_ms = now_ms() + backoff.min(3_600_000);
                    wake = wake.min(p.next_at_ms);
                    blocked.push(p.url.clone());
                    tracing::warn!(delivery = %key, url = %p.url, attempts = p.attempts, %why, "webhook failed; will retry");
                    let value = serde_json::to_vec(&p).unwrap_or_default();
                    let app2 = app.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || app2.store().put_outbox(&key, &value))
                            .await;
                }
            }
        }
        first_pass = false;
        let mut nap = Duration::from_millis((wake - now_ms()).clamp(0, 60_000) as u64);
        if turn == Lease::Held {
            nap = nap.min(SHARED_POLL);
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = app.inner.outbox.notified() => {}
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

async fn remove(app: &App, key: String) -> Result<(), ()> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || app.store().remove_outbox(&key))
        .await
        .map_err(|_| ())?
        .map_err(|e| tracing::error!(error = %e, "outbox entry not removed"))
}

async fn post(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    p: &Pending,
    key: &str,
    signature: &str,
) -> Result<(), String> {
    let req = hyper::Request::post(&p.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("frontdesk/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-frontdesk-event", &p.event)
        .header("x-frontdesk-delivery", key)
        .header("x-frontdesk-signature", format!("sha256={signature}"))
        .body(Full::new(Bytes::from(p.body.clone())))
        .map_err(|e| e.to_string())?;
    let res = tokio::time::timeout(TIMEOUT, client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = res.status();
    // Read the body so the connection can be reused.
    let _ = tokio::time::timeout(TIMEOUT, res.into_body().collect()).await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

//! Emails (README, "Email"): when each is made, the durable outbox they
//! wait in, the sender that delivers them, and the resume link.
//!
//! - **Replies**: an agent's message to a visitor who left an email
//!   address and has no socket open on the conversation makes an entry
//!   in the same atomic write as the message. It is sent `batch_secs`
//!   later with every agent message since (one email for a burst of
//!   replies), unless the visitor has come back by then (they read it in
//!   the widget).
//! - **Transcripts**: a visitor asks at the close (`POST
//!   /conversations/{id}/transcript`); the email holds what the visitor's
//!   own view of the log holds (`for_visitor`: no internal notes), read
//!   when it is sent.
//! - **Waiting**: a handoff while no agent is online makes one entry per
//!   address of `[email] notify`.
//!
//! Entries live in the store's outbox under keys starting with `PREFIX`
//! (the webhook sender skips them), named by their creation time, and
//! carry the conversation (so deleting a conversation deletes its
//! emails). An entry leaves the outbox only when the SMTP server accepted
//! the email or refused it for good, so a restart sends a queued email
//! once (a crash between the server's acceptance and the removal sends it
//! again: delivery is at least once; the Message-ID is the entry's key,
//! the same on every try). Failures are retried with the webhooks'
//! backoff (1 s, 2 s, 4 s, … at most an hour apart, `MAX_ATTEMPTS`).
//!
//! The link: `public_url#frontdesk=<id>.<expires>.<nonce><signature>`, a
//! fresh random nonce per email and a signature (HMAC-SHA256 under the
//! visitor secret) of the conversation, the expiry (`[email] link_hours`
//! on, 72 by default) and the nonce. The widget on that page trades it
//! (`POST /conversations/{id}/resume`) for a session token of its own
//! (`fdr_…`), never the visitor's token: a link works once (the nonce is
//! kept as used until the link's expiry), the session opens that one
//! conversation for `SESSION_DAYS`, and `DELETE
//! /conversations/{id}/resume` ends every session of the conversation
//! while the visitor's own token keeps working. So a forwarded or leaked
//! email is no standing key. The link is in the fragment, which browsers
//! send to no server and in no Referer.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::metrics::Count;
use super::{auth, now_ms, ApiError, App};
use crate::conversation::{Conversation, Event, HandoffReason, Phase, Record};
use crate::email::{Mail, SendError, Smtp};
use crate::store::Lease;

/// Outbox keys of emails start with this.
pub const PREFIX: &str = "mail-";
/// Tries before an email is given up (about a day of backoff).
pub const MAX_ATTEMPTS: u32 = 30;
/// Settings key of the hourly transcript count (`[hour, count]`).
const CAP_KEY: &str = "email-transcripts-hour";
/// Settings keys marking a conversation whose transcript was queued.
const SENT_PREFIX: &str = "email-transcript-sent:";
/// Settings keys of what each conversation's email links did
/// (`Resumes`).
const RESUME_PREFIX: &str = "email-resume:";
/// How long a session bought with an email link lasts.
pub const SESSION_DAYS: i64 = 30;
/// Live sessions kept per conversation (the oldest ends first).
const MAX_SESSIONS: usize = 20;

/// Per conversation: the nonces of its links that were used (with their
/// expiry, Unix seconds, kept only until then) and the sessions they
/// bought (SHA-256 of the token, expiry in ms).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Resumes {
    used: Vec<(String, i64)>,
    sessions: Vec<(String, i64)>,
}

/// What an entry sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Kind {
    /// The agent messages after `after_seq`.
    Reply { after_seq: u64 },
    /// The visitor's view of the log.
    Transcript,
    /// A notice to the team that the visitor waits.
    Waiting,
}

/// An outbox entry.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The conversation (named `conversation` like the webhooks', so a
    /// conversation's deletion finds it).
    conversation: String,
    to: String,
    #[serde(flatten)]
    kind: Kind,
    attempts: u32,
    next_at_ms: i64,
}

fn key(now: i64) -> String {
    format!(
        "{PREFIX}{now:020}-{}",
        auth::hex(&auth::random_bytes::<6>())
    )
}

fn entry(conversation: &str, to: &str, kind: Kind, due_ms: i64) -> (String, Vec<u8>) {
    let p = Pending {
        conversation: conversation.to_string(),
        to: to.to_string(),
        kind,
        attempts: 0,
        next_at_ms: due_ms,
    };
    (key(now_ms()), serde_json::to_vec(&p).unwrap_or_default())
}

impl App {
    /// Whether emails can be sent (`[email]` has a server): the widget and
    /// the queue notices promise an email reply only then.
    pub fn email_on(&self) -> bool {
        self.inner.config.email.is_some()
    }

    /// The outbox entries `events` (about to be stored after `conv`'s
    /// log) cause, stored in the same atomic write.
    pub(super) fn email_entries(
        &self,
        id: &str,
        conv: &Conversation,
        events: &[Event],
    ) -> Vec<(String, Vec<u8>)> {
        let Some(cfg) = &self.inner.config.email else {
            return Vec::new();
        };
        let now = now_ms();
        let mut out = Vec::new();
        let mut address = conv.visitor.email.clone();
        // One reply entry per write: it carries every message after it.
        let mut replied = false;
        for e in events {
            match e {
                Event::EmailLeft { email } => address = Some(email.clone()),
                // An agent's file is a reply too (the email names it).
                Event::AgentMessage { .. } | Event::Attachment { agent: Some(_), .. } => {
                    if let Some(to) = &address {
                        if !replied && !self.inner.hub.watched(id) {
                            replied = true;
                            let due = now + cfg.batch_secs as i64 * 1000;
                            out.push(entry(
                                id,
                                to,
                                Kind::Reply {
                                    after_seq: conv.last_seq,
                                },
                                due,
                            ));
                        }
                    }
                }
                Event::Handoff { reason, .. }
                    if *reason != HandoffReason::AgentTookOver
                        && !cfg.notify.is_empty()
                        && self.queue().online() == 0 =>
                {
                    for to in &cfg.notify {
                        out.push(entry(id, to, Kind::Waiting, now));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Queues the transcript of `id` for the address the visitor left in
    /// the conversation (the pre-chat form, `identify` or "leave my
    /// email"): a transcript goes nowhere else, so the shop's sender
    /// cannot be made to mail visitor-written text to strangers. `to`, when
    /// given, must be that address (422 `email_mismatch`); none left is 422
    /// `no_email`. The conversation must be closed (the transcript is asked
    /// for at the close); one transcript per conversation (409
    /// `transcript_sent`), and at most `[email] transcripts_per_hour` in
    /// all (429).
    pub fn email_transcript(&self, id: &str, to: Option<String>) -> Result<String, ApiError> {
        let Some(cfg) = &self.inner.config.email else {
            return Err(ApiError::conflict(
                "email_off",
                "this server sends no email (no [email] host is configured)",
            ));
        };
        let left = self.transcript_check(id, to)?;
        // The hourly cap over every conversation, kept in the store so a
        // restart does not reset it.
        {
            let _cap = self.stripe(CAP_KEY);
            let hour = now_ms() / 3_600_000;
            let (at, used) = self
                .inner
                .store
                .setting(CAP_KEY)?
                .and_then(|v| serde_json::from_slice::<(i64, u32)>(&v).ok())
                .filter(|(at, _)| *at == hour)
                .unwrap_or((hour, 0));
            if used >= cfg.transcripts_per_hour {
                let wait = ((at + 1) * 3_600_000 - now_ms()) / 1000;
                return Err(ApiError::rate_limited(
                    "transcript emails",
                    wait.max(1) as u64,
                ));
            }
            let v = serde_json::to_vec(&(at, used + 1)).unwrap_or_default();
            self.inner.store.put_setting(CAP_KEY, &v)?;
        }
        let _g = self.stripe(id);
        // Checked again under the conversation's lock: two requests at
        // once make one transcript.
        let left = self.transcript_check_locked(id, Some(left))?;
        let (key, value) = entry(id, &left, Kind::Transcript, now_ms());
        self.inner
            .store
            .put_setting(&format!("{SENT_PREFIX}{id}"), key.as_bytes())?;
        self.inner.store.put_outbox(&key, &value)?;
        self.inner.mail.notify_one();
        Ok(left)
    }

    fn transcript_check(&self, id: &str, to: Option<String>) -> Result<String, ApiError> {
        let _g = self.stripe(id);
        self.transcript_check_locked(id, to)
    }

    /// The address a transcript of `id` goes to, or why none may go (the
    /// caller holds the conversation's stripe).
    fn transcript_check_locked(&self, id: &str, to: Option<String>) -> Result<String, ApiError> {
        let conv = self.state(id)?;
        let phase = conv.phase.clone();
        let left = conv.visitor.email.clone();
        self.keep(id, conv);
        if phase != Phase::Closed {
            return Err(ApiError::conflict(
                "not_closed",
                "a transcript is sent once the conversation is closed",
            ));
        }
        if self
            .inner
            .store
            .setting(&format!("{SENT_PREFIX}{id}"))?
            .is_some()
        {
            return Err(ApiError::conflict(
                "transcript_sent",
                "the transcript of this conversation was already sent",
            ));
        }
        let Some(left) = left else {
            return Err(ApiError::invalid(
                "no_email",
                "leave your email in the conversation first: a transcript goes only to the address left there",
            ));
        };
        if let Some(t) = to.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
            if !t.eq_ignore_ascii_case(left.trim()) {
                return Err(ApiError::invalid(
                    "email_mismatch",
                    "a transcript goes only to the address left in the conversation",
                ));
            }
        }
        Ok(left)
    }

    /// Wakes the email sender (after a write that stored entries).
    pub(super) fn mail_notify(&self) {
        self.inner.mail.notify_one();
    }

    /// The email link into conversation `id`: a fresh nonce, an expiry
    /// `[email] link_hours` on, and their signature. It works once
    /// (`resume`).
    pub fn resume_link(&self, id: &str) -> Option<String> {
        let cfg = self.inner.config.email.as_ref()?;
        let expires = self.now_ms() / 1000 + cfg.link_hours as i64 * 3600;
        let nonce = auth::hex(&auth::random_bytes::<16>());
        Some(format!(
            "{}#frontdesk={id}.{expires}.{nonce}{}",
            cfg.public_url,
            self.resume_signature(id, expires, &nonce)
        ))
    }

    fn resume_signature(&self, id: &str, expires: i64, nonce: &str) -> String {
        auth::sign(
            &self.inner.secret,
            format!("resume:{id}:{expires}:{nonce}").as_bytes(),
        )
    }

    /// What links of `id` were used and what sessions they bought.
    fn resumes(&self, id: &str) -> Result<Resumes, ApiError> {
        Ok(self
            .inner
            .store
            .setting(&format!("{RESUME_PREFIX}{id}"))?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default())
    }

    fn put_resumes(&self, id: &str, r: &Resumes) -> Result<(), ApiError> {
        let v = serde_json::to_vec(r).unwrap_or_default();
        Ok(self
            .inner
            .store
            .put_setting(&format!("{RESUME_PREFIX}{id}"), &v)?)
    }

    /// Forgets the links and sessions of `id` (when it is deleted). The
    /// caller holds the conversation's stripe; this takes the links' one.
    pub(super) fn forget_resumes(&self, id: &str) -> Result<(), ApiError> {
        let key = format!("{RESUME_PREFIX}{id}");
        let _g = self.stripe(&key);
        self.inner.store.remove_setting(&key)?;
        Ok(())
    }

    /// A session token of `id` for the `<expires>.<nonce><signature>` of
    /// an email link: 403 `bad_resume_key` when it was not signed so (or
    /// for another conversation), `resume_link_expired` past its expiry,
    /// `resume_link_used` the second time. The session opens that one
    /// conversation (as the visitor's own token does) for `SESSION_DAYS`
    /// or until `revoke_resumed`; the visitor's own token is not given
    /// out.
    pub fn resume(&self, id: &str, key: &str) -> Result<String, ApiError> {
        let refuse = |code: &'static str, message: &'static str| {
            ApiError::new(super::ErrorKind::Forbidden, code, message)
        };
        let bad = || refuse("bad_resume_key", "this link is not valid");
        let (expires, rest) = key.split_once('.').ok_or_else(bad)?;
        let expires: i64 = expires.parse().map_err(|_| bad())?;
        if rest.len() != 96 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let (nonce, sig) = rest.split_at(32);
        if !auth::same(&self.resume_signature(id, expires, nonce), sig) {
            return Err(bad());
        }
        let now = self.now_ms();
        if expires < now / 1000 {
            return Err(refuse(
                "resume_link_expired",
                "this link has expired: the newest email from us has a fresh one",
            ));
        }
        if self.inner.store.read(id, 0)?.is_empty() {
            return Err(ApiError::not_found("conversation"));
        }
        let _g = self.stripe(&format!("{RESUME_PREFIX}{id}"));
        let mut r = self.resumes(id)?;
        r.used.retain(|(_, exp)| *exp >= now / 1000);
        r.sessions.retain(|(_, exp)| *exp > now);
        if r.used.iter().any(|(n, _)| n == nonce) {
            return Err(refuse(
                "resume_link_used",
                "this link was used already: open the chat where you used it, \
                 or the link in a newer email from us",
            ));
        }
        r.used.push((nonce.to_string(), expires));
        let token = format!("{SESSION_PREFIX}{}", auth::hex(&auth::random_bytes::<24>()));
        r.sessions
            .push((auth::token_hash(&token), now + SESSION_DAYS * 86_400_000));
        let extra = r.sessions.len().saturating_sub(MAX_SESSIONS);
        r.sessions.drain(..extra);
        self.put_resumes(id, &r)?;
        Ok(token)
    }

    /// Whether `token` is a live session bought with an email link of
    /// `id` (`resume`).
    pub fn resumed_may(&self, id: &str, token: &str) -> bool {
        if !is_session(token) || crate::store::check_id(id).is_err() {
            return false;
        }
        let hash = auth::token_hash(token);
        let now = self.now_ms();
        self.resumes(id).is_ok_and(|r| {
            r.sessions
                .iter()
                .any(|(h, exp)| *exp > now && auth::same(h, &hash))
        })
    }

    /// Ends every session email links of `id` bought; the visitor's own
    /// token keeps working. Returns how many there were.
    pub fn revoke_resumed(&self, id: &str) -> Result<usize, ApiError> {
        let _g = self.stripe(&format!("{RESUME_PREFIX}{id}"));
        let mut r = self.resumes(id)?;
        let now = self.now_ms();
        let n = r.sessions.iter().filter(|(_, exp)| *exp > now).count();
        r.sessions.clear();
        self.put_resumes(id, &r)?;
        // Open sockets of an ended session close (`http::ws`), on every
        // node.
        self.inner
            .tokens_changed
            .send_modify(|generation| *generation += 1);
        self.inner.store.sessions_revoked();
        Ok(n)
    }
}

/// What starts a session bought with an email's link (`App::resume`).
const SESSION_PREFIX: &str = "fdr_";

/// Whether `token` is a session bought with an email's link rather than
/// the visitor's own token: it may read and write its conversation, but
/// not move its email address elsewhere, and it ends when revoked.
pub fn is_session(token: &str) -> bool {
    token.starts_with(SESSION_PREFIX)
}

/// Delivers the emails of the outbox until `shutdown` resolves; with no
/// `[email]` host it only waits.
pub async fn run(app: App, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let smtp = match app.inner.config.email.as_ref().map(Smtp::new) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::error!(error = %e, "email off");
            return shutdown.await;
        }
        None => return shutdown.await,
    };
    // A (re)start sends what is due, each entry at its own time: a reply
    // still waits out `batch_secs`, a retry its backoff. On a shared store
    // only the node holding the outbox lease sends (`webhook`'s doc).
    loop {
        let turn = super::webhook::lease(&app).await;
        if turn == Lease::Elsewhere {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(super::webhook::LEASE_RETRY) => {}
            }
            continue;
        }
        let entries: Vec<(String, Pending)> = blocking(&app, |app| app.store().outbox())
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with(PREFIX))
            .filter_map(|(k, v)| match serde_json::from_slice::<Pending>(&v) {
                Ok(p) => Some((k, p)),
                Err(_) => {
                    tracing::error!(email = %k, "outbox email unreadable; dropped");
                    let app = app.clone();
                    tokio::task::spawn_blocking(move || app.store().remove_outbox(&k));
                    None
                }
            })
            .collect();
        let mut wake = now_ms() + 60_000;
        let mut done: Vec<String> = Vec::new();
        for (key, p) in &entries {
            if done.contains(key) {
                continue;
            }
            let now = now_ms();
            if p.next_at_ms > now {
                wake = wake.min(p.next_at_ms);
                continue;
            }
            // Every reply entry of this conversation goes into one email.
            let batch: Vec<&(String, Pending)> = match p.kind {
                Kind::Reply { .. } => entries
                    .iter()
                    .filter(|(_, o)| {
                        o.conversation == p.conversation && matches!(o.kind, Kind::Reply { .. })
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let keys: Vec<String> = if batch.is_empty() {
                vec![key.clone()]
            } else {
                batch.iter().map(|(k, _)| k.clone()).collect()
            };
            done.extend(keys.iter().cloned());
            let after_seq = batch
                .iter()
                .filter_map(|(_, o)| match o.kind {
                    Kind::Reply { after_seq } => Some(after_seq),
                    _ => None,
                })
                .min();
            let mail = match compose(&app, p, after_seq).await {
                Ok(Some(m)) => m,
                Ok(None) => {
                    remove(&app, &keys).await;
                    continue;
                }
                Err(why) => {
                    tracing::warn!(email = %key, %why, "email not composed; will retry");
                    wake = wake.min(now + 5_000);
                    continue;
                }
            };
            if turn == Lease::Held && super::webhook::lease(&app).await != Lease::Held {
                break;
            }
            match smtp.send(key, &mail).await {
                Ok(()) => {
                    app.inner.metrics.inc(Count::Email("sent"));
                    tracing::info!(email = %key, conversation = %p.conversation, "email sent");
                    remove(&app, &keys).await;
                }
                Err(SendError::Permanent(why)) => {
                    app.inner.metrics.inc(Count::Email("failed"));
                    tracing::error!(email = %key, %why, "email refused for good; dropped");
                    remove(&app, &keys).await;
                }
                Err(SendError::Transient(why)) => {
                    app.inner.metrics.inc(Count::Email("failed"));
                    let attempts = p.attempts + 1;
                    if attempts >= MAX_ATTEMPTS {
                        tracing::error!(email = %key, %why, "email given up");
                        remove(&app, &keys).await;
                        continue;
                    }
                    let backoff = (1000i64 << (attempts - 1).min(12)).min(3_600_000);
                    let next = now_ms() + backoff;
                    wake = wake.min(next);
                    tracing::warn!(email = %key, attempts, %why, "email failed; will retry");
                    let retry = Pending {
                        conversation: p.conversation.clone(),
                        to: p.to.clone(),
                        kind: match (&p.kind, after_seq) {
                            (Kind::Reply { .. }, Some(a)) => Kind::Reply { after_seq: a },
                            (k, _) => k.clone(),
                        },
                        attempts,
                        next_at_ms: next,
                    };
                    // The batch now rides on this one entry.
                    remove(&app, &keys[1.min(keys.len())..]).await;
                    let first = keys[0].clone();
                    let value = serde_json::to_vec(&retry).unwrap_or_default();
                    let _ = blocking(&app, move |app| app.store().put_outbox(&first, &value)).await;
                }
            }
        }
        let mut nap = Duration::from_millis((wake - now_ms()).clamp(0, 60_000) as u64);
        if turn == Lease::Held {
            nap = nap.min(super::webhook::SHARED_POLL);
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = app.inner.mail.notified() => {}
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// The email an entry sends, from the log as it is now; `None` when there
/// is nothing to send any more (the visitor came back and read the
/// replies, or the conversation is gone).
async fn compose(app: &App, p: &Pending, after_seq: Option<u64>) -> Result<Option<Mail>, String> {
    let id = p.conversation.clone();
    let log: Vec<Record> = blocking(app, move |app| app.store().read(&id, 0))
        .await
        .ok_or("the log is unreadable")?;
    if log.is_empty() {
        return Ok(None);
    }
    let texts = &app.inner.config.texts;
    let link = app.resume_link(&p.conversation).unwrap_or_default();
    Ok(match p.kind {
        Kind::Reply { .. } => {
            if app.inner.hub.watched(&p.conversation) {
                None
            } else {
                // Agents by their display names, as the widget shows them.
                let log: Vec<Record> = log
                    .into_iter()
                    .map(|mut r| {
                        if let Event::AgentMessage { agent, .. }
                        | Event::Attachment {
                            agent: Some(agent), ..
                        } = &mut r.event
                        {
                            *agent = app.display_of(agent);
                        }
                        r
                    })
                    .collect();
                crate::email::reply(&log, after_seq.unwrap_or(0), &p.to, &link, texts)
            }
        }
        Kind::Transcript => {
            // The visitor's view: no notes, agents by display name.
            let seen: Vec<Record> = log
                .into_iter()
                .filter_map(|r| app.visitor_record(r))
                .collect();
            Some(crate::email::transcript(&seen, &p.to, &link, texts))
        }
        Kind::Waiting => {
            // Taken meanwhile: nobody needs telling any more.
            let conv = Conversation::from_log(&log);
            matches!(conv.phase, Phase::Queued { .. })
                .then(|| crate::email::waiting(&log, &p.to, &p.conversation))
        }
    })
}

async fn remove(app: &App, keys: &[String]) {
    for k in keys {
        let k = k.clone();
        if blocking(app, move |app| app.store().remove_outbox(&k))
            .await
            .is_none()
        {
            tracing::error!("outbox email not removed");
        }
    }
}

/// Store work off the executor; `None` on an error (logged).
async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&App) -> crate::store::Result<T> + Send + 'static,
) -> Option<T> {
    let app = app.clone();
    match tokio::task::spawn_blocking(move || f(&app)).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "store error in the email sender");
            None
        }
        Err(_) => None,
    }
}

/// The resume key of a link (`<expires>.<signature>`), as the widget sends
/// it, split from `frontdesk=<id>.<key>`; for tests and the README.
pub fn split_link(fragment: &str) -> Option<(&str, &str)> {
    let rest = fragment.split_once("frontdesk=")?.1;
    rest.split_once('.')
}

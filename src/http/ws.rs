//! WebSockets: one per conversation for the visitor, one per agent. The
//! server pushes JSON `ServerMessage`s; a visitor socket opened with
//! `?after=N` first receives every record after N, then live ones, and if
//! it falls behind the channel it reads the gap back from the store, so
//! nothing is skipped. Sockets are authenticated before the upgrade, their
//! origin is checked, their number is capped per IP and in all, a client
//! message over the size limit closes with 1009, too many with 1008, and a
//! peer that stops answering pings is closed.
//!
//! Each socket is one task with one `select!` over the channel, the socket
//! and a ping timer: with a single writer there is nothing to join.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::api::{ClientMessage, ServerMessage, Wire};
use super::error::HttpError;
use crate::app::hub::{AgentPush, ConvPush};
use crate::app::limits::ConnectionGuard;
use crate::app::{Agent, ApiError, App, Events};
use crate::conversation::Event;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// The conversation's (or agent's) token: browsers cannot set headers
    /// on a WebSocket.
    pub token: Option<String>,
    /// Records after this sequence number are sent first.
    pub after: Option<u64>,
}

/// Whether a browser page on `Origin` may open a socket: the server's own
/// origin and the configured widget origins may; non-browser clients send
/// no origin.
pub(super) fn origin_allowed(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if app
        .config()
        .server
        .allowed_origins
        .iter()
        .any(|o| o == origin)
    {
        return true;
    }
    let host = headers.get("host").and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    host.is_some() && origin_host == host
}

/// What both kinds of socket check once their token is good: a real
/// upgrade request, an allowed origin, a free slot. Returns the upgrade with
/// its message limits set, and the slot.
fn accept(
    app: &App,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<(WebSocketUpgrade, ConnectionGuard), HttpError> {
    let ws = ws.map_err(|r| {
        HttpError::new(
            400,
            "websocket_expected",
            format!("a WebSocket upgrade is expected: {}", r.body_text()),
        )
    })?;
    if !origin_allowed(app, headers) {
        return Err(HttpError::new(
            403,
            "origin_not_allowed",
            "this origin may not open a socket",
        ));
    }
    let l = &app.config().limits;
    let slot = app
        .sockets()
        .acquire(
            &peer.ip().to_string(),
            l.websockets_per_ip,
            l.websockets_total,
        )
        .ok_or_else(|| HttpError::from(ApiError::rate_limited("open sockets", 30)))?;
    Ok((configure(ws, l.websocket_message_bytes), slot))
}

/// The read buffer each socket starts with. tungstenite allocates and
/// zeroes all of it when a socket opens, and its default, 128 KiB, made
/// 10,000 idle visitors cost 1.4 GB (issue 15). Clients send short
/// messages (typing notices); a longer frame grows the buffer as needed.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The protocol layer's settings for a socket whose messages may be
/// `message_bytes` long.
fn configure(ws: WebSocketUpgrade, message_bytes: usize) -> WebSocketUpgrade {
    // Frames are cut at twice the limit by the protocol layer; between the
    // limit and that, we close with 1009 ourselves.
    let max = message_bytes * 2;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        // Every message is flushed as it is sent: nothing to gather.
        .write_buffer_size(0)
}

/// Live events of one conversation (visitor token).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/ws", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id"), WsQuery),
    responses((status = 101, description = "Switching to a WebSocket carrying `ServerMessage`s")))]
pub async fn visitor(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<WsQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, HttpError> {
    let Some(token) = q.token.as_deref() else {
        return Err(ApiError::unauthorized("a conversation token is required (?token=…)").into());
    };
    // A session from an email's link ends its socket when revoked: watched
    // from before the check, so a revoke between the two is still seen.
    let session =
        crate::app::email::is_session(token).then(|| (app.tokens_changed(), token.to_string()));
    if !app.visitor_may(&id, token) {
        return Err(ApiError::not_found("conversation").into());
    }
    // The slot is held from now: the guard moves into the socket's task.
    let (ws, slot) = accept(&app, ws, &headers, peer)?;
    let after = q.after.unwrap_or(0);
    Ok(ws.on_upgrade(move |socket| async move {
        visitor_loop(app, id, after, session, socket).await;
        drop(slot);
    }))
}

/// Queue changes and the records of the agent's conversations.
#[utoipa::path(get, path = "/api/v1/agent/ws", tag = "agent", params(WsQuery),
    responses((status = 101, description = "Switching to a WebSocket carrying `ServerMessage`s")))]
pub async fn agent(
    State(app): State<App>,
    Query(q): Query<WsQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, HttpError> {
    let Some(token) = q.token.as_deref() else {
        return Err(ApiError::unauthorized("an agent token is required (?token=…)").into());
    };
    // Watch for rotations before the token is checked: one that lands
    // between the check and the socket's loop is still seen.
    let tokens = app.tokens_changed();
    let Some(who) = app.agent_for(token) else {
        return Err(ApiError::unauthorized("unknown token").into());
    };
    let token = token.to_string();
    let (ws, slot) = accept(&app, ws, &headers, peer)?;
    Ok(ws.on_upgrade(move |socket| async move {
        // Counted as a console of the agent while it is open (presence
        // follows the consoles: `app::agents`).
        let (a, name) = (app.clone(), who.name.clone());
        let Ok(console) = tokio::task::spawn_blocking(move || a.console_opened(&name)).await else {
            return;
        };
        agent_loop(app, who, token, tokens, socket).await;
        drop(console);
        drop(slot);
    }))
}

/// How long a socket we close keeps reading for the client's answering
/// Close: a round trip on a slow link, with room to spare.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The socket's bookkeeping shared by both kinds.
struct Peer {
    socket: WebSocket,
    heard: Instant,
    window: (Instant, u32),
    idle: Duration,
}

enum Incoming {
    Typing(Option<String>),
    Nothing,
    Gone,
}

impl Peer {
    fn new(app: &App, socket: WebSocket) -> Peer {
        Peer {
            socket,
            heard: Instant::now(),
            window: (Instant::now(), 0),
            idle: Duration::from_secs(app.config().limits.websocket_idle_secs),
        }
    }

    async fn send(&mut self, m: &ServerMessage) -> bool {
        let text = serde_json::to_string(m).unwrap_or_default();
        self.socket.send(Message::Text(text.into())).await.is_ok()
    }

    /// Sends our Close and waits, for [`CLOSE_GRACE`] at most, for the
    /// client's answering Close, reading and dropping what it still sends.
    /// Dropping the connection at once would leave the client's frames
    /// unread, and closing a TCP socket with unread data sends a reset
    /// instead of the end of the stream: the client's sends fail and a
    /// browser reports 1006 rather than our code (issue 15). After an error
    /// from the protocol layer the stream has ended and this returns at once.
    async fn close(&mut self, code: u16, reason: &str) {
        let sent = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
        if sent.is_err() {
            return;
        }
        // Messages after our Close are not acted on; the stream ends after
        // the client's Close (the server then closes the TCP connection
        // first, as RFC 6455 asks) or when the client goes.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(_)) = self.socket.recv().await {}
        })
        .await;
    }

    /// Handles what the client sent.
    async fn incoming(&mut self, app: &App, msg: Option<Result<Message, axum::Error>>) -> Incoming {
        let limit = app.config().limits.websocket_message_bytes;
        let msg = match msg {
            None => return Incoming::Gone,
            Some(Err(e)) => {
                // The protocol layer refuses what is far over the limit.
                if e.to_string().to_lowercase().contains("too long")
                    || e.to_string().to_lowercase().contains("size")
                {
                    self.close(1009, "message too big").await;
                }
                return Incoming::Gone;
            }
            Some(Ok(m)) => m,
        };
        self.heard = Instant::now();
        let len = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            Message::Close(_) => return Incoming::Gone,
            _ => return Incoming::Nothing,
        };
        if len > limit {
            self.close(1009, "message too big").await;
            return Incoming::Gone;
        }
        if self.window.0.elapsed() > Duration::from_secs(60) {
            self.window = (Instant::now(), 0);
        }
        self.window.1 += 1;
        if self.window.1 > app.config().limits.websocket_messages_per_minute {
            self.close(1008, "too many messages").await;
            return Incoming::Gone;
        }
        let Message::Text(t) = msg else {
            self.close(1003, "text messages only").await;
            return Incoming::Gone;
        };
        match serde_json::from_str::<ClientMessage>(&t) {
            Ok(ClientMessage::Typing { conversation }) => Incoming::Typing(conversation),
            Err(_) => {
                self.close(1007, "not a client message").await;
                Incoming::Gone
            }
        }
    }

    /// Pings; false when the peer has been silent too long.
    async fn ping(&mut self) -> bool {
        if self.heard.elapsed() > self.idle {
            self.close(1001, "no answer to pings").await;
            return false;
        }
        self.socket
            .send(Message::Ping(Vec::new().into()))
            .await
            .is_ok()
    }
}

/// The visitor's view of the log after `after`, read off the executor.
async fn events(app: &App, id: &str, after: u64) -> Result<Events, ApiError> {
    let app = app.clone();
    let id = id.to_string();
    tokio::task::spawn_blocking(move || app.events(&id, after, false))
        .await
        .map_err(|_| ApiError::internal())?
}

async fn visitor_loop(
    app: App,
    id: String,
    after: u64,
    mut session: Option<(tokio::sync::watch::Receiver<u64>, String)>,
    socket: WebSocket,
) {
    let mut watch = app.hub().watch(&id);
    let mut peer = Peer::new(&app, socket);
    let mut last = after;
    // Catch up: everything after `after`, then live records, deduplicated
    // by sequence number.
    if !catch_up(&app, &id, &mut last, &mut peer).await {
        return;
    }
    let mut ping = tokio::time::interval(peer.idle / 3);
    ping.tick().await;
    loop {
        tokio::select! {
            push = watch.rx.recv() => match push {
                Ok(ConvPush::Record(r)) => {
                    if r.seq <= last {
                        continue;
                    }
                    if r.seq > last + 1 {
                        // Records hidden from visitors (notes) also advance
                        // seq: read the gap from the store to be sure.
                        if !catch_up(&app, &id, &mut last, &mut peer).await {
                            return;
                        }
                        continue;
                    }
                    last = r.seq;
                    if let Some(r) = app.visitor_record((*r).clone()) {
                        if !peer.send(&ServerMessage::Record { conversation: None, record: r.wire(), suggestions: vec![] }).await {
                            return;
                        }
                    }
                }
                Ok(ConvPush::Typing { from }) if from != "visitor" => {
                    if !peer.send(&ServerMessage::Typing { from: from.to_string(), conversation: None }).await {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    if !catch_up(&app, &id, &mut last, &mut peer).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            msg = peer.socket.recv() => match peer.incoming(&app, msg).await {
                Incoming::Typing(_) => app.typing(&id, false),
                Incoming::Nothing => {}
                Incoming::Gone => return,
            },
            _ = ping.tick() => if !peer.ping().await { return },
            Some(token) = revoked(&mut session) => {
                let (a, i) = (app.clone(), id.clone());
                let ended = tokio::task::spawn_blocking(move || !a.visitor_may(&i, &token))
                    .await
                    .unwrap_or(true);
                if ended {
                    peer.close(1008, "session ended").await;
                    return;
                }
            },
        }
    }
}

/// The session's token once tokens or sessions changed; never for a
/// visitor's own token (pending for ever).
async fn revoked(
    session: &mut Option<(tokio::sync::watch::Receiver<u64>, String)>,
) -> Option<String> {
    match session {
        Some((changed, token)) => match changed.changed().await {
            Ok(()) => Some(token.clone()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Sends what the store has after `last`; false when the socket is done.
/// `last` moves to the newest seq of that same read (past records hidden
/// from visitors), never further: a record stored after the read arrives
/// live, or by the next catch-up.
async fn catch_up(app: &App, id: &str, last: &mut u64, peer: &mut Peer) -> bool {
    match events(app, id, *last).await {
        Ok(page) => {
            for r in page.events {
                if !peer
                    .send(&ServerMessage::Record {
                        conversation: None,
                        record: r.wire(),
                        suggestions: vec![],
                    })
                    .await
                {
                    return false;
                }
            }
            *last = (*last).max(page.last_seq);
            true
        }
        Err(e) if e.code == "resync" => {
            let last_seq = events(app, id, 0).await.map(|p| p.last_seq).unwrap_or(0);
            peer.send(&ServerMessage::Resync { last_seq }).await;
            peer.close(4409, "resync").await;
            false
        }
        Err(_) => {
            peer.close(1011, "internal error").await;
            false
        }
    }
}

/// Closed conversations an agent socket keeps following for their rating.
const CLOSED_KEPT: usize = 200;

/// `tokens` was subscribed before the token was checked: a rotated (or
/// otherwise replaced) token ends the socket at once, as it must not keep
/// streaming what the token no longer may see.
async fn agent_loop(
    app: App,
    who: Agent,
    token: String,
    mut tokens: tokio::sync::watch::Receiver<u64>,
    socket: WebSocket,
) {
    let mut rx = app.hub().agents();
    let mut peer = Peer::new(&app, socket);
    // Conversations this socket has forwarded: a close is sent even though
    // the agent no longer holds the conversation when it arrives.
    let mut mine: HashSet<String> = app.agent_info(&who).active.into_iter().collect();
    // Conversations this socket saw closed, with the order of their
    // close: the visitor's rating comes after the close and belongs on
    // the closing agent's screen. Looked up for every record, so a map;
    // bounded (the oldest close goes), as a console stays open all day.
    let mut closed: HashMap<String, u64> = HashMap::new();
    let mut closes = 0u64;
    if !send_queue(&app, &mut peer).await {
        return;
    }
    let mut ping = tokio::time::interval(peer.idle / 3);
    ping.tick().await;
    loop {
        tokio::select! {
            push = rx.recv() => match push {
                Ok(AgentPush::Record { conversation, record, suggestions, holder }) => {
                    // Its rating is forwarded once; anything else (the
                    // visitor back, another agent) ends the following.
                    let was_closed = closed.remove(&conversation).is_some();
                    let rating_of_closed =
                        matches!(record.event, Event::Rating { .. }) && was_closed;
                    let held = holder.as_deref() == Some(who.name.as_str());
                    if held {
                        mine.insert(conversation.clone());
                    } else if !mine.contains(&conversation) && !rating_of_closed {
                        continue;
                    }
                    if matches!(record.event, Event::Closed { .. } | Event::Transfer { .. } | Event::ReturnedToBot { .. })
                        && !held
                    {
                        mine.remove(&conversation);
                        if matches!(record.event, Event::Closed { .. }) {
                            if closed.len() == CLOSED_KEPT {
                                let oldest = closed.iter().min_by_key(|(_, n)| **n).map(|(c, _)| c.clone());
                                if let Some(c) = oldest {
                                    closed.remove(&c);
                                }
                            }
                            closes += 1;
                            closed.insert(conversation.clone(), closes);
                        }
                    }
                    let m = ServerMessage::Record { conversation: Some(conversation), record: (*record).clone().wire(), suggestions: suggestions.to_vec().wire() };
                    if !peer.send(&m).await {
                        return;
                    }
                }
                Ok(AgentPush::Queue) => {
                    if !send_queue(&app, &mut peer).await {
                        return;
                    }
                }
                Ok(AgentPush::Typing { conversation }) => {
                    if mine.contains(&conversation) && !peer.send(&ServerMessage::Typing { from: "visitor".into(), conversation: Some(conversation) }).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Too far behind to know what was missed: the client
                    // fetches its transcripts and the queue again, and
                    // this socket starts again from what its agent holds
                    // (a close it missed would keep a conversation here).
                    mine = app.agent_info(&who).active.into_iter().collect();
                    closed.clear();
                    if !peer.send(&ServerMessage::Resync { last_seq: 0 }).await || !send_queue(&app, &mut peer).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            msg = peer.socket.recv() => match peer.incoming(&app, msg).await {
                Incoming::Typing(Some(c)) if app.holds(&who.name, &c) => app.typing(&c, true),
                Incoming::Typing(_) | Incoming::Nothing => {}
                Incoming::Gone => return,
            },
            _ = ping.tick() => if !peer.ping().await { return },
            _ = tokens.changed() => if app.agent_for(&token).is_none() {
                peer.close(1008, "token revoked").await;
                return;
            },
        }
    }
}

async fn send_queue(app: &App, peer: &mut Peer) -> bool {
    let app2 = app.clone();
    let Ok(queue) = tokio::task::spawn_blocking(move || app2.queue_view()).await else {
        return false;
    };
    peer.send(&ServerMessage::Queue {
        queue: queue.into(),
    })
    .await
}

#[cfg(test)]
mod tests {
    use axum::extract::FromRequestParts;

    use super::*;

    /// Issue 15, defect 6: with tungstenite's default 128 KiB read buffer,
    /// 10,000 idle sockets held 1.4 GB (`cargo bench --bench sockets`).
    #[tokio::test]
    async fn sockets_start_with_a_small_read_buffer() {
        let mut req = axum::http::Request::get("/ws")
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .expect("request");
        let on_upgrade = hyper::upgrade::on(&mut req);
        req.extensions_mut().insert(on_upgrade);
        let (mut parts, ()) = req.into_parts();
        let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .expect("an upgrade request");
        // The settings are private to axum; its Debug shows them.
        let shown = format!("{:?}", configure(ws, 16 * 1024));
        for want in [
            "read_buffer_size: 4096,",
            "write_buffer_size: 0,",
            "max_message_size: Some(32768)",
            "max_frame_size: Some(32768)",
        ] {
            assert!(shown.contains(want), "{want} in {shown}");
        }
    }
}

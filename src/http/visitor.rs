//! The visitor API: start a conversation, send, ask for a person, rate,
//! leave an email, read the log. A conversation's token authorises that
//! conversation only; a token for another one gets the same 404 as a
//! conversation that does not exist, so ids do not leak.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

use super::api::{
    CreatedConversation, ErrorBody, Events, EventsQuery, Feedback, LeaveEmail, NewConversation,
    Rate, SendMessage, Stored,
};
use super::error::{Body, HttpError};
use super::{bearer, blocking};
use crate::app::{self, now_ms, ApiError, App};

/// What the visitor may see of stored records (no notes, no traces).
fn visible(app: &App, mut s: app::Stored) -> Stored {
    s.records = s
        .records
        .into_iter()
        .filter_map(|r| app.visitor_record(r))
        .collect();
    s.into()
}

/// The conversation `id` if `headers` carry its token.
pub(crate) fn authorize(app: &App, id: &str, headers: &HeaderMap) -> Result<(), HttpError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::unauthorized(
            "a conversation token is required (Authorization: Bearer …)",
        )
        .into());
    };
    if app.visitor_may(id, token) {
        Ok(())
    } else if app::email::is_session(token) {
        Err(ApiError::new(
            app::ErrorKind::NotFound,
            "session_ended",
            "this link's session has ended or was revoked: the newest email from us has a fresh link",
        )
        .into())
    } else {
        Err(ApiError::not_found("conversation").into())
    }
}

/// The conversation of the path, once the request's token is found to be
/// its own. Listed before a `Body`, it runs first: a request without the
/// token is told so, not what is wrong with its body.
pub struct Authorized(pub String);

impl FromRequestParts<App> for Authorized {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, HttpError> {
        let Path(id) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(|r| HttpError::new(400, "bad_request", r.body_text()))?;
        authorize(app, &id, &parts.headers)?;
        Ok(Authorized(id))
    }
}

/// Start a conversation.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "visitor",
    request_body = NewConversation,
    responses((status = 201, description = "Created; keep the token", body = CreatedConversation),
        (status = 401, description = "`identity_unverified`: `[identity] enforce` is on and a `visitor_id` came without `identity_hash`", body = ErrorBody),
        (status = 403, description = "`identity_unverified`: `[identity] enforce` is on and `identity_hash` does not prove `visitor_id`", body = ErrorBody)))]
pub async fn create(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(new): Body<NewConversation>,
) -> Result<(StatusCode, Json<CreatedConversation>), HttpError> {
    let limit = app.config().limits.conversations_per_ip_per_minute;
    if let Err(wait) = app
        .rates()
        .hit(&format!("new:{}", peer.ip()), limit, now_ms())
    {
        return Err(ApiError::rate_limited("new conversations from this address", wait).into());
    }
    let created = blocking(&app, move |app| app.create_conversation(new.into())).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The log after a sequence number (internal notes and traces left out).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/events", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id"), EventsQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Records after `after`", body = Events)))]
pub async fn events(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Json<Events>, HttpError> {
    authorize(&app, &id, &headers)?;
    let after = q.after.unwrap_or(0);
    Ok(Json(
        blocking(&app, move |app| app.events(&id, after, false))
            .await?
            .into(),
    ))
}

/// Send a message; the bot's reply (if it has the conversation) comes back
/// in the same response and on the WebSocket.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = SendMessage, security(("bearer" = [])),
    responses((status = 200, description = "Stored (or the original, for a retried client_id)", body = Stored)))]
pub async fn send(
    State(app): State<App>,
    Authorized(id): Authorized,
    Body(msg): Body<SendMessage>,
) -> Result<Json<Stored>, HttpError> {
    Ok(Json(visible(
        &app,
        blocking(&app, move |app| app.send(&id, msg.into())).await?,
    )))
}

/// Ask for a person ("Talk to a person").
#[utoipa::path(post, path = "/api/v1/conversations/{id}/handoff", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Queued (no records if already waiting)", body = Stored)))]
pub async fn handoff(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Stored>, HttpError> {
    authorize(&app, &id, &headers)?;
    Ok(Json(visible(
        &app,
        blocking(&app, move |app| app.ask_for_person(&id)).await?,
    )))
}

/// Rate a closed conversation, once.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/rating", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = Rate, security(("bearer" = [])),
    responses((status = 200, description = "Stored", body = Stored)))]
pub async fn rate(
    State(app): State<App>,
    Authorized(id): Authorized,
    Body(rate): Body<Rate>,
) -> Result<Json<Stored>, HttpError> {
    Ok(Json(visible(
        &app,
        blocking(&app, move |app| app.rate(&id, rate.into())).await?,
    )))
}

/// Say whether one answer of the bot helped. "Not helpful" while the bot
/// has the conversation (or after the close) comes back with an offer of a
/// person (`handoff_offered`); an `about` that is not a `bot_reply` of this
/// conversation is refused with `not_a_bot_reply`.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/feedback", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = Feedback, security(("bearer" = [])),
    responses((status = 200, description = "Stored (no records when it repeats the current choice)", body = Stored)))]
pub async fn feedback(
    State(app): State<App>,
    Authorized(id): Authorized,
    Body(f): Body<Feedback>,
) -> Result<Json<Stored>, HttpError> {
    Ok(Json(visible(
        &app,
        blocking(&app, move |app| app.feedback(&id, f.into())).await?,
    )))
}

/// Leave an email address for the reply (outside hours, nobody online).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/email", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = LeaveEmail, security(("bearer" = [])),
    responses((status = 200, description = "Stored", body = Stored),
        (status = 403, description = "`session_may_not_change_email`: the token is a session from an email's link", body = ErrorBody)))]
pub async fn email(
    State(app): State<App>,
    Authorized(id): Authorized,
    headers: HeaderMap,
    Body(e): Body<LeaveEmail>,
) -> Result<Json<Stored>, HttpError> {
    // A session from an email's link must not send the next emails, and
    // their links, to another address.
    if bearer(&headers).is_some_and(app::email::is_session) {
        return Err(ApiError::new(
            app::ErrorKind::Forbidden,
            "session_may_not_change_email",
            "a link from an email cannot change the address: use the chat where it began",
        )
        .into());
    }
    Ok(Json(visible(
        &app,
        blocking(&app, move |app| app.leave_email(&id, e.into())).await?,
    )))
}

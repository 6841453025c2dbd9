//! The visitor's email routes (README, "Email"): the transcript at the
//! close, the resume of an email link, and what the widget may promise.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::blocking;
use super::error::{Body, HttpError};
use super::visitor::Authorized;
use crate::app::{now_ms, ApiError, App};

/// Where to send the transcript.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscriptRequest {
    /// Absent, or the address the visitor left (nothing else is
    /// accepted).
    #[schema(max_length = 254)]
    pub email: Option<String>,
}

/// The transcript is queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct TranscriptQueued {
    /// The address it goes to.
    pub email: String,
}

/// The key of an email link (what follows the id in `#frontdesk=<id>.`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    #[schema(max_length = 200)]
    pub key: String,
}

/// The conversation an email link leads back to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resumed {
    pub id: String,
    /// A session token for this conversation only (`fdr_…`, used like the
    /// visitor's token), good for 30 days or until revoked; not the
    /// visitor's own token.
    pub token: String,
}

/// How many sessions email links had bought that are now ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: usize,
}

/// What the widget offers, from the server's configuration.
#[derive(Debug, Serialize, ToSchema)]
pub struct WidgetConfig {
    /// Whether emails are sent (`[email]` has a server): only then does the
    /// widget offer to leave an email or to send the transcript.
    pub email: bool,
    /// Whether the pre-chat form (name, email) comes before the first
    /// message (`[widget] prechat`).
    pub prechat: bool,
}

/// The widget's configuration for `app` (also filled into `/widget.js`).
pub fn widget_config(app: &App) -> WidgetConfig {
    WidgetConfig {
        email: app.email_on(),
        prechat: app.config().widget.prechat,
    }
}

/// Email the transcript of a closed conversation: every message the
/// visitor saw, no internal notes, to the address the visitor left in the
/// conversation and nowhere else. 409 `email_off` when the server sends no
/// email, 409 `not_closed` before the close, 409 `transcript_sent` for a
/// second one, 422 `no_email` when no address was left, 422
/// `email_mismatch` when `email` is not that address, 429 past `[email]
/// transcripts_per_hour`.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/transcript", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = TranscriptRequest, security(("bearer" = [])),
    responses((status = 202, description = "Queued in the outbox", body = TranscriptQueued)))]
pub async fn transcript(
    State(app): State<App>,
    Authorized(id): Authorized,
    Body(req): Body<TranscriptRequest>,
) -> Result<(StatusCode, Json<TranscriptQueued>), HttpError> {
    // A few tries a minute (one transcript is sent at most): enough for
    // a typo, not a hammer.
    if let Err(wait) = app.rates().hit(&format!("transcript:{id}"), 5, now_ms()) {
        return Err(ApiError::rate_limited("transcripts of this conversation", wait).into());
    }
    if req.email.as_ref().is_some_and(|e| e.chars().count() > 254) {
        return Err(
            ApiError::invalid("bad_email", "an email address is at most 254 characters").into(),
        );
    }
    let email = blocking(&app, move |app| app.email_transcript(&id, req.email)).await?;
    Ok((StatusCode::ACCEPTED, Json(TranscriptQueued { email })))
}

/// Trade the key of an email link for a session of that conversation
/// (the link works once, for `[email] link_hours`): 403 `bad_resume_key`
/// when it is altered or for another conversation, `resume_link_expired`
/// past its time, `resume_link_used` the second time.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/resume", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = ResumeRequest,
    responses((status = 200, description = "The conversation's token", body = Resumed)))]
pub async fn resume(
    State(app): State<App>,
    Path(id): Path<String>,
    Body(req): Body<ResumeRequest>,
) -> Result<Json<Resumed>, HttpError> {
    if crate::store::check_id(&id).is_err() {
        return Err(ApiError::not_found("conversation").into());
    }
    let id2 = id.clone();
    let token = blocking(&app, move |app| app.resume(&id2, &req.key)).await?;
    Ok(Json(Resumed { id, token }))
}

/// What the widget offers: email (only with an SMTP server) and the
/// pre-chat form.
#[utoipa::path(get, path = "/api/v1/widget", tag = "visitor",
    responses((status = 200, description = "The widget's configuration", body = WidgetConfig)))]
pub async fn widget(State(app): State<App>) -> Json<WidgetConfig> {
    Json(widget_config(&app))
}

/// End every session that email links of this conversation bought (with
/// the conversation's token or one of those sessions); the visitor's own
/// token keeps working.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/resume", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The sessions are ended", body = Revoked)))]
pub async fn revoke(
    State(app): State<App>,
    Authorized(id): Authorized,
) -> Result<Json<Revoked>, HttpError> {
    let revoked = blocking(&app, move |app| app.revoke_resumed(&id)).await?;
    Ok(Json(Revoked { revoked }))
}

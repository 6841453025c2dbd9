//! Canned replies over HTTP (README, "Canned replies"): agents read them
//! with `{name}` filled in for a conversation; admins read and replace the
//! file (`canned.toml` beside the intents), validated first.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{Body, HttpError};
use super::{blocking, AdminAuth, AgentAuth};
use crate::app::canned::{CannedReply as AppReply, CannedView};
use crate::app::App;

/// One saved reply.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CannedReply {
    pub title: String,
    /// Typed after `/` to find it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortcut: Option<String>,
    /// The text (for a conversation: `{name}` filled in).
    pub text: String,
}

impl From<AppReply> for CannedReply {
    fn from(r: AppReply) -> CannedReply {
        CannedReply {
            title: r.title,
            shortcut: r.shortcut,
            text: r.text,
        }
    }
}

/// The canned replies for one conversation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CannedList {
    pub replies: Vec<CannedReply>,
}

/// The canned replies' file, what serves, and what is wrong with it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CannedFile {
    /// Where the file is (beside the intents directory).
    pub file: String,
    /// The file as written (empty when there is none).
    pub toml: String,
    /// The replies being served.
    pub replies: Vec<CannedReply>,
    /// Problems of the file on disk, each `path:line:col: message`; while
    /// there are any, the last good set serves.
    pub errors: Vec<String>,
}

impl From<CannedView> for CannedFile {
    fn from(v: CannedView) -> CannedFile {
        CannedFile {
            file: v.file,
            toml: v.toml,
            replies: v.replies.into_iter().map(Into::into).collect(),
            errors: v.errors,
        }
    }
}

/// A new canned-replies file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveCanned {
    /// The whole file, TOML: `[[reply]]` tables with `title`, `text` and
    /// an optional `shortcut`. The request is at most `[limits]
    /// body_bytes`.
    pub toml: String,
}

/// The team's canned replies with `{name}` filled in for this
/// conversation's visitor.
#[utoipa::path(get, path = "/api/v1/agent/conversations/{id}/canned", tag = "agent",
    params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
    responses((status = 200, description = "The replies", body = CannedList)))]
pub async fn for_conversation(
    State(app): State<App>,
    _: AgentAuth,
    Path(id): Path<String>,
) -> Result<Json<CannedList>, HttpError> {
    let replies = blocking(&app, move |app| app.canned_for(&id)).await?;
    Ok(Json(CannedList {
        replies: replies.into_iter().map(Into::into).collect(),
    }))
}

/// The canned replies' file.
#[utoipa::path(get, path = "/api/v1/admin/canned", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The file and its state", body = CannedFile)))]
pub async fn read(State(app): State<App>, _: AdminAuth) -> Result<Json<CannedFile>, HttpError> {
    Ok(Json(
        blocking(&app, |app| Ok(app.canned_view())).await?.into(),
    ))
}

/// Replace the canned replies' file. Checked first: a file with problems
/// is refused (422 `invalid_canned`, every problem as `path:line:col:
/// message`, one a line) and the old one stays.
#[utoipa::path(put, path = "/api/v1/admin/canned", tag = "admin", security(("bearer" = [])),
    request_body = SaveCanned,
    responses((status = 200, description = "Saved; the file and its state", body = CannedFile)))]
pub async fn write(
    State(app): State<App>,
    _: AdminAuth,
    Body(save): Body<SaveCanned>,
) -> Result<Json<CannedFile>, HttpError> {
    Ok(Json(
        blocking(&app, move |app| app.save_canned(&save.toml))
            .await?
            .into(),
    ))
}

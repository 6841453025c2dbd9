//! The admin's privacy routes (admin token): export everything stored
//! about one visitor, delete one conversation, delete all of a visitor's.
//! What counts as a visitor's, and why an open conversation is refused, is
//! `app::privacy`'s.

use axum::extract::{Path, Query, State};
use axum::Json;

use super::api::{Deleted, VisitorExport, VisitorQuery};
use super::error::HttpError;
use super::{blocking, AdminAuth};
use crate::app::privacy::VisitorKey;
use crate::app::App;

/// Everything stored about one visitor (by `visitor_id` or `email`, exactly
/// one): each of their conversations with its full log. Nobody else's.
#[utoipa::path(get, path = "/api/v1/admin/visitors/export", tag = "admin",
    params(VisitorQuery), security(("bearer" = [])),
    responses((status = 200, description = "The visitor's conversations (none found: an empty list)", body = VisitorExport)))]
pub async fn export(
    State(app): State<App>,
    _: AdminAuth,
    Query(q): Query<VisitorQuery>,
) -> Result<Json<VisitorExport>, HttpError> {
    let who = VisitorKey::parse(q.visitor_id, q.email)?;
    Ok(Json(
        blocking(&app, move |app| app.export_visitor(&who))
            .await?
            .into(),
    ))
}

/// Delete one conversation with everything stored about it. Refused with
/// `conversation_open` (409) while it is queued or with an agent: the
/// agent closes it first.
#[utoipa::path(delete, path = "/api/v1/admin/conversations/{id}", tag = "admin",
    params(("id" = String, Path, description = "Conversation id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Deleted)))]
pub async fn delete_conversation(
    State(app): State<App>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, HttpError> {
    let deleted = blocking(&app, move |app| {
        app.delete_conversation(&id)?;
        Ok(crate::app::privacy::Deleted {
            conversations: vec![id],
        })
    })
    .await?;
    Ok(Json(deleted.into()))
}

/// Delete every conversation of one visitor (by `visitor_id` or `email`,
/// exactly one). Nothing is deleted if one of them is queued or with an
/// agent (`conversation_open`, 409, naming it).
#[utoipa::path(delete, path = "/api/v1/admin/visitors", tag = "admin",
    params(VisitorQuery), security(("bearer" = [])),
    responses((status = 200, description = "The conversations deleted (none found: an empty list)", body = Deleted)))]
pub async fn delete_visitor(
    State(app): State<App>,
    _: AdminAuth,
    Query(q): Query<VisitorQuery>,
) -> Result<Json<Deleted>, HttpError> {
    let who = VisitorKey::parse(q.visitor_id, q.email)?;
    Ok(Json(
        blocking(&app, move |app| app.delete_visitor(&who))
            .await?
            .into(),
    ))
}

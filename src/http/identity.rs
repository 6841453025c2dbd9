//! `POST /api/v1/conversations/{id}/identity`: the page tells who the
//! visitor is after the chat began (`FrontDesk.identify` called late, or
//! again after a reload). The check itself is `app::identity`'s; at the
//! start of a chat the same fields ride on `POST /api/v1/conversations`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::api::{ErrorBody, Stored};
use super::blocking;
use super::error::{Body, HttpError};
use super::visitor::Authorized;
use crate::app::identity::Identify as AppIdentify;
use crate::app::App;

/// Who the visitor is, as the shop's page knows it: `visitor_id` with
/// `identity_hash`, the hex HMAC-SHA256 of the id made by the shop's
/// server with `[identity] secret`. Only the id is proven; the name and
/// email shown beside it are as passed. The hash is never stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Identify {
    /// The shop's own id for the visitor.
    #[schema(min_length = 1, max_length = 200)]
    pub visitor_id: String,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[schema(max_length = 128)]
    pub identity_hash: Option<String>,
}

impl From<Identify> for AppIdentify {
    fn from(x: Identify) -> AppIdentify {
        AppIdentify {
            visitor_id: Some(x.visitor_id),
            name: x.name,
            email: x.email,
            identity_hash: x.identity_hash,
        }
    }
}

/// Identify the visitor of a conversation under way. Stores an
/// `identified` record (none when it repeats what is known). A verified
/// identity is never replaced by an unverified one, nor by another
/// verified id.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/identity", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id")),
    request_body = Identify, security(("bearer" = [])),
    responses((status = 200, description = "Stored (no records when nothing changed)", body = Stored),
        (status = 401, description = "`identity_unverified`: `[identity] enforce` is on and no `identity_hash` came", body = ErrorBody),
        (status = 403, description = "`identity_unverified`: `[identity] enforce` is on and the hash does not prove the id", body = ErrorBody),
        (status = 409, description = "`identity_already_verified` or `identity_conflict`: the visitor is verified already", body = ErrorBody)))]
pub async fn identify(
    State(app): State<App>,
    Authorized(id): Authorized,
    Body(claim): Body<Identify>,
) -> Result<Json<Stored>, HttpError> {
    let stored = blocking(&app, move |app| app.identify(&id, claim.into())).await?;
    Ok(Json(stored.into()))
}

//! The admin API (admin token): the intents and their validation status,
//! a decision trace for any text, reloads, agents.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

use super::error::{Body, HttpError};
use super::{admin_of, blocking, AdminAuth};
use crate::app::{
    App, Classified, ClassifyRequest, CreatedAgent, IntentsView, NewAgent, ReloadStatus,
};

/// The intents being served and the status of the last reload.
#[utoipa::path(get, path = "/api/v1/admin/intents", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Intents and reload status", body = IntentsView)))]
pub async fn intents(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<IntentsView>, HttpError> {
    admin_of(&app, &headers)?;
    Ok(Json(app.intents_view()))
}

/// Classify a text: the decision with its full trace.
#[utoipa::path(post, path = "/api/v1/admin/classify", tag = "admin", security(("bearer" = [])),
    request_body = ClassifyRequest,
    responses((status = 200, description = "The decision and why", body = Classified)))]
pub async fn classify(
    State(app): State<App>,
    _: AdminAuth,
    Body(req): Body<ClassifyRequest>,
) -> Result<Json<Classified>, HttpError> {
    Ok(Json(
        blocking(&app, move |app| app.classify(&req.text)).await?,
    ))
}

/// Reload the intents now (edits are also picked up by themselves). A set
/// that fails validation is not swapped in; the errors are returned.
#[utoipa::path(post, path = "/api/v1/admin/reload", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The reload status (`ok` false: the old set serves)", body = ReloadStatus)))]
pub async fn reload(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<ReloadStatus>, HttpError> {
    admin_of(&app, &headers)?;
    Ok(Json(blocking(&app, |app| Ok(app.reload_now())).await?))
}

/// Create an agent (or give one a new token); the token is shown once.
#[utoipa::path(post, path = "/api/v1/admin/agents", tag = "admin", security(("bearer" = [])),
    request_body = NewAgent,
    responses((status = 201, description = "Created", body = CreatedAgent)))]
pub async fn add_agent(
    State(app): State<App>,
    _: AdminAuth,
    Body(new): Body<NewAgent>,
) -> Result<(StatusCode, Json<CreatedAgent>), HttpError> {
    let created = blocking(&app, move |app| app.add_agent(new)).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

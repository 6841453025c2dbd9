//! Agents as people: the list of colleagues an agent transfers to, and the
//! admins' management of agents (list, rename, make admin or not, rotate a
//! token, disable, remove). Creating an agent stays `POST
//! /api/v1/admin/agents` (`admin.rs`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

use super::api::{AgentChange, AgentListItem, CreatedAgent, Wire};
use super::error::{Body, HttpError};
use super::{admin_of, agent_of, blocking, AdminAuth};
use crate::app::App;

/// Every agent who can log in, with presence and load: whom a
/// conversation can be transferred to (online, with room).
#[utoipa::path(get, path = "/api/v1/agent/agents", tag = "agent", security(("bearer" = [])),
    responses((status = 200, description = "Agents by login name", body = Vec<AgentListItem>)))]
pub async fn colleagues(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<Vec<AgentListItem>>, HttpError> {
    agent_of(&app, &headers)?;
    let list = blocking(&app, |app| app.agents_list()).await?;
    Ok(Json(
        list.into_iter()
            .filter(|a| !a.disabled)
            .collect::<Vec<_>>()
            .wire(),
    ))
}

/// Every agent, disabled ones too, for the admin page.
#[utoipa::path(get, path = "/api/v1/admin/agents", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Agents by login name", body = Vec<AgentListItem>)))]
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<Vec<AgentListItem>>, HttpError> {
    admin_of(&app, &headers)?;
    Ok(Json(blocking(&app, |app| app.agents_list()).await?.wire()))
}

/// Change an agent: display name, admin or not, disabled or not. A disable
/// revokes the agent's token; an enable gives a new one, in the answer's
/// `token` (shown this once: the old token never works again). The last
/// admin who can log in can be neither demoted nor disabled (409
/// `last_admin`); nobody demotes or disables themselves (409
/// `own_account`); an agent holding conversations is not disabled (409
/// `agent_busy`); a display name that is, case and spaces aside, another
/// agent's login or display name is refused (409 `display_name_taken`).
#[utoipa::path(patch, path = "/api/v1/admin/agents/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The agent's login name", example = "sam")),
    request_body = AgentChange,
    responses((status = 200, description = "The agent as changed", body = AgentListItem)))]
pub async fn change(
    State(app): State<App>,
    Path(name): Path<String>,
    AdminAuth(by): AdminAuth,
    Body(change): Body<AgentChange>,
) -> Result<Json<AgentListItem>, HttpError> {
    Ok(Json(
        blocking(&app, move |app| app.change_agent(&by, &name, change.into()))
            .await?
            .into(),
    ))
}

/// Remove an agent. Not the last admin (409 `last_admin`), not oneself
/// (409 `own_account`), not an agent holding conversations (409
/// `agent_busy`). Conversations keep the name of who took part.
#[utoipa::path(delete, path = "/api/v1/admin/agents/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The agent's login name", example = "sam")),
    responses((status = 204, description = "Removed")))]
pub async fn remove(
    State(app): State<App>,
    Path(name): Path<String>,
    AdminAuth(by): AdminAuth,
) -> Result<StatusCode, HttpError> {
    blocking(&app, move |app| app.remove_agent(&by, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give an agent a new token, shown this once; the old one is refused from
/// now on and its sockets close. A disabled agent has none (409
/// `agent_disabled`): enabling them gives one.
#[utoipa::path(post, path = "/api/v1/admin/agents/{name}/token", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "The agent's login name", example = "sam")),
    responses((status = 201, description = "The new token", body = CreatedAgent)))]
pub async fn rotate(
    State(app): State<App>,
    Path(name): Path<String>,
    AdminAuth(by): AdminAuth,
) -> Result<(StatusCode, Json<CreatedAgent>), HttpError> {
    let created = blocking(&app, move |app| app.rotate_token(&by, &name)).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

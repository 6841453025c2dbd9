//! The agent API (bearer token of an agent or admin): presence, the queue,
//! live bot conversations to take over, transcripts with traces and
//! suggested replies, and the agent's actions on a conversation.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;

use super::api::{
    AgentInfo, AgentText, LiveItem, QueueView, SetPresence, Stored, Transcript, TransferTo, Wire,
};
use super::error::{Body, HttpError};
use super::{agent_of, blocking, AgentAuth};
use crate::app::App;

/// Who the token belongs to, with presence and held conversations.
#[utoipa::path(get, path = "/api/v1/agent/me", tag = "agent", security(("bearer" = [])),
    responses((status = 200, description = "The agent", body = AgentInfo)))]
pub async fn me(State(app): State<App>, headers: HeaderMap) -> Result<Json<AgentInfo>, HttpError> {
    let agent = agent_of(&app, &headers)?;
    Ok(Json(app.agent_info(&agent).into()))
}

/// Set presence (online, away, offline) and capacity.
#[utoipa::path(put, path = "/api/v1/agent/presence", tag = "agent", security(("bearer" = [])),
    request_body = SetPresence,
    responses((status = 200, description = "The agent", body = AgentInfo)))]
pub async fn presence(
    State(app): State<App>,
    AgentAuth(agent): AgentAuth,
    Body(p): Body<SetPresence>,
) -> Result<Json<AgentInfo>, HttpError> {
    Ok(Json(
        blocking(&app, move |app| app.set_presence(&agent, p.into()))
            .await?
            .into(),
    ))
}

/// The live queue: reason, time waited and summary of each waiting visitor.
#[utoipa::path(get, path = "/api/v1/agent/queue", tag = "agent", security(("bearer" = [])),
    responses((status = 200, description = "The queue, in order", body = QueueView)))]
pub async fn queue(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<QueueView>, HttpError> {
    agent_of(&app, &headers)?;
    Ok(Json(
        blocking(&app, |app| Ok(app.queue_view())).await?.into(),
    ))
}

/// Conversations the bot has now, newest first, to take over.
#[utoipa::path(get, path = "/api/v1/agent/live", tag = "agent", security(("bearer" = [])),
    responses((status = 200, description = "Live bot conversations", body = Vec<LiveItem>)))]
pub async fn live(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<Vec<LiveItem>>, HttpError> {
    agent_of(&app, &headers)?;
    Ok(Json(blocking(&app, |app| Ok(app.live())).await?.wire()))
}

/// A conversation's full transcript: summary, every record with the bot's
/// decision traces and the internal notes, and suggested replies.
#[utoipa::path(get, path = "/api/v1/agent/conversations/{id}", tag = "agent",
    params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
    responses((status = 200, description = "The transcript", body = Transcript)))]
pub async fn transcript(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Transcript>, HttpError> {
    agent_of(&app, &headers)?;
    Ok(Json(
        blocking(&app, move |app| app.transcript(&id)).await?.into(),
    ))
}

macro_rules! action {
    ($name:ident, $path:literal, $doc:literal, |$app:ident, $agent:ident, $id:ident| $call:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "agent",
            params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
            responses((status = 200, description = "The stored records", body = Stored)))]
        pub async fn $name(
            State(app): State<App>,
            Path($id): Path<String>,
            headers: HeaderMap,
        ) -> Result<Json<Stored>, HttpError> {
            let $agent = agent_of(&app, &headers)?;
            Ok(Json(blocking(&app, move |$app| $call).await?.into()))
        }
    };
    ($name:ident, $path:literal, $doc:literal, $body:ty, |$app:ident, $agent:ident, $id:ident, $b:ident| $call:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "agent", request_body = $body,
            params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
            responses((status = 200, description = "The stored records", body = Stored)))]
        pub async fn $name(
            State(app): State<App>,
            Path($id): Path<String>,
            AgentAuth($agent): AgentAuth,
            Body($b): Body<$body>,
        ) -> Result<Json<Stored>, HttpError> {
            Ok(Json(blocking(&app, move |$app| $call).await?.into()))
        }
    };
}

action!(
    claim,
    "/api/v1/agent/conversations/{id}/claim",
    "Claim a waiting conversation, or take over one the bot has.",
    |app, agent, id| app.claim(&agent, &id)
);
action!(
    close,
    "/api/v1/agent/conversations/{id}/close",
    "Close the conversation.",
    |app, agent, id| app.close(&agent, &id)
);
action!(
    give_back,
    "/api/v1/agent/conversations/{id}/return",
    "Give the conversation back to the bot.",
    |app, agent, id| app.return_to_bot(&agent, &id)
);
action!(
    reply,
    "/api/v1/agent/conversations/{id}/messages",
    "Reply to the visitor.",
    AgentText,
    |app, agent, id, t| app.agent_message(&agent, &id, t.into())
);
action!(
    note,
    "/api/v1/agent/conversations/{id}/notes",
    "An internal note, never shown to the visitor.",
    AgentText,
    |app, agent, id, t| app.note(&agent, &id, t.into())
);
action!(
    transfer,
    "/api/v1/agent/conversations/{id}/transfer",
    "Hand the conversation to another agent.",
    TransferTo,
    |app, agent, id, t| app.transfer(&agent, &id, t.into())
);

//! The agents' inbox (agent token): every conversation, newest activity
//! first, with search, filters and cursor paging (`crate::inbox`; README,
//! "Inbox"), and the reopening of a closed conversation. A bad parameter
//! is a 400 with a stable code; while the index is still being built
//! after a start the answer is a 503 `inbox_building` with `Retry-After`.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::api::{ApiHandoffReason, ErrorBody, Stored, Wire};
use super::error::HttpError;
use super::{agent_of, blocking};
use crate::app::App;
use crate::inbox::{self, InboxError, RawQuery};

/// Seconds a client waits before asking again while the index is built.
const RETRY_SECS: u64 = 2;

/// The inbox's search, filters and page (every parameter optional).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Words that must all occur (any part of a word, case-blind) in the
    /// visitor's name or email, an intent the bot recognised, or the text
    /// of the visitor's or agents' messages. At most 200 characters.
    pub q: Option<String>,
    /// `bot`, `queued`, `with_agent` or `closed`.
    pub state: Option<String>,
    /// Who has the conversation (or had it last), by login name.
    pub agent: Option<String>,
    /// The latest handoff's reason: `asked`, `intent_action`,
    /// `negative_sentiment`, `low_confidence`, `repeated_fallback`,
    /// `agent_took_over`.
    pub reason: Option<String>,
    /// The latest rating, 1 to 5.
    pub rating: Option<String>,
    /// Last activity at or after this time (ms since 1970).
    pub from: Option<String>,
    /// Last activity before this time (ms since 1970).
    pub to: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Rows per page, 1 to 200 (default 50).
    pub limit: Option<String>,
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// The bot answers.
    Bot,
    /// Waiting for an agent.
    Queued,
    /// An agent has it.
    WithAgent,
    Closed,
}

impl From<inbox::State> for InboxState {
    fn from(s: inbox::State) -> InboxState {
        match s {
            inbox::State::Bot => InboxState::Bot,
            inbox::State::Queued => InboxState::Queued,
            inbox::State::WithAgent => InboxState::WithAgent,
            inbox::State::Closed => InboxState::Closed,
        }
    }
}

/// One line of the inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboxItem {
    pub id: String,
    /// What a person reads: the visitor's name, else their email, else
    /// their first question, else "New conversation".
    pub title: String,
    /// The visitor's first question, when the title is something else.
    pub preview: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub state: InboxState,
    /// Who has it, or who had it last.
    pub agent: Option<String>,
    /// The latest handoff's reason.
    pub reason: Option<ApiHandoffReason>,
    /// The latest rating, 1 to 5.
    pub rating: Option<u8>,
    pub started_ms: i64,
    pub last_activity_ms: i64,
}

impl From<inbox::Item> for InboxItem {
    fn from(i: inbox::Item) -> InboxItem {
        InboxItem {
            id: i.id,
            title: i.title,
            preview: i.preview,
            name: i.name,
            email: i.email,
            state: i.state.into(),
            agent: i.agent,
            reason: i.reason.wire(),
            rating: i.rating,
            started_ms: i.started_ms,
            last_activity_ms: i.last_activity_ms,
        }
    }
}

/// `GET /api/v1/agent/inbox`: a page of conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    /// Conversations matching the search and filters (on this and the
    /// following pages of this paging).
    pub total: u64,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Every conversation (with the bot, waiting, with an agent, closed),
/// newest activity first, searched and filtered, a page at a time. The
/// order of a paging is fixed when its first page is made: conversations
/// written to meanwhile are neither repeated nor skipped.
#[utoipa::path(get, path = "/api/v1/agent/inbox", tag = "agent", security(("bearer" = [])),
    params(InboxQuery),
    responses(
        (status = 200, description = "A page of conversations", body = InboxPage),
        (status = 400, description = "`bad_state`, `bad_reason`, `bad_rating`, `bad_date`, `bad_limit`, `bad_cursor`, `query_too_long`, or `cursor_expired` (start again from the first page)", body = ErrorBody),
        (status = 503, description = "`inbox_building`: the index is built after a start; retry after `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> Result<Json<InboxPage>, HttpError> {
    agent_of(&app, &headers)?;
    let query = inbox::Query::parse(&RawQuery {
        q: q.q.as_deref(),
        state: q.state.as_deref(),
        agent: q.agent.as_deref(),
        reason: q.reason.as_deref(),
        rating: q.rating.as_deref(),
        from: q.from.as_deref(),
        to: q.to.as_deref(),
        cursor: q.cursor.as_deref(),
        limit: q.limit.as_deref(),
    })
    .map_err(|e| HttpError::new(400, e.code, e.message))?;
    let page = blocking(&app, move |app| Ok(app.inbox().search(&query))).await?;
    match page {
        Ok(p) => Ok(Json(InboxPage {
            items: p.items.into_iter().map(Into::into).collect(),
            total: p.total as u64,
            next_cursor: p.next_cursor,
        })),
        Err(e @ InboxError::Building) => Err(HttpError {
            retry_after: Some(RETRY_SECS),
            ..HttpError::new(503, "inbox_building", e.to_string())
        }),
        Err(e @ InboxError::CursorExpired) => {
            Err(HttpError::new(400, "cursor_expired", e.to_string()))
        }
    }
}

/// Reopen a closed conversation: it goes to the agent who reopens it (who
/// must be online with room), recorded as a handoff that agent took over.
#[utoipa::path(post, path = "/api/v1/agent/conversations/{id}/reopen", tag = "agent",
    params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "The stored records", body = Stored),
        (status = 409, description = "`not_reopenable` (not closed), `not_online`, `at_capacity`", body = ErrorBody),
    ))]
pub async fn reopen(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Stored>, HttpError> {
    let agent = agent_of(&app, &headers)?;
    Ok(Json(
        blocking(&app, move |app| app.reopen(&agent, &id))
            .await?
            .into(),
    ))
}

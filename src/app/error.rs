//! The one error every operation returns: a kind (what went wrong, which
//! `http/` maps to a status), a stable snake_case `code` clients can
//! branch on, and a message for people. Internal causes (storage) are
//! logged where they happen and reach the client only as a generic
//! `internal_error`.

use crate::conversation::StepError;
use crate::handoff::QueueError;
use crate::store::StoreError;

/// What kind of failure: the edge decides how to say it (`http/error.rs`
/// maps each to a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such conversation (or other named thing).
    NotFound,
    /// No valid credentials.
    Unauthorized,
    /// Valid credentials that may not do this.
    Forbidden,
    /// The request is well-formed but the state does not allow it.
    Conflict,
    /// A value is out of its allowed range or shape.
    Invalid,
    /// Too many requests; `retry_after` says when to retry.
    RateLimited,
    /// Something on our side failed; it has been logged.
    Internal,
    /// A body (an attachment) over its size limit.
    TooLarge,
    /// A body (an attachment) of a type we do not take.
    UnsupportedType,
    /// The server's storage for it (attachments) is full.
    StorageFull,
    /// The store cannot be reached (a stopped database): nothing was
    /// done, and the same request may succeed later (`retry_after`).
    Unavailable,
}

/// An operation that failed, as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before retrying (429 and 503): the `Retry-After`
    /// header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            ErrorKind::NotFound,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unauthorized, "unauthorized", message)
    }

    pub fn rate_limited(what: &str, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..ApiError::new(
                ErrorKind::RateLimited,
                "rate_limited",
                format!("too many {what}; retry in {} s", retry_after.max(1)),
            )
        }
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            ErrorKind::Internal,
            "internal_error",
            "internal error; it has been logged",
        )
    }

    /// The store cannot be reached: 503 `store_unavailable`, to be retried.
    pub fn store_unavailable() -> ApiError {
        ApiError {
            retry_after: Some(STORE_RETRY_SECS),
            ..ApiError::new(
                ErrorKind::Unavailable,
                "store_unavailable",
                format!("the store cannot be reached; retry in {STORE_RETRY_SECS} s"),
            )
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Forbidden, "forbidden", message)
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, code, message)
    }
}

/// The `Retry-After` of a 503 `store_unavailable`: a database restart
/// takes seconds, and clients that come back sooner only add load.
pub const STORE_RETRY_SECS: u64 = 5;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::not_found("conversation"),
            StoreError::BadId(_) => ApiError::not_found("conversation"),
            StoreError::Exists(id) => {
                ApiError::conflict("conflict", format!("conversation `{id}` exists already"))
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "the store is unavailable");
                ApiError::store_unavailable()
            }
            other => {
                tracing::error!(error = %other, "storage failed");
                ApiError::internal()
            }
        }
    }
}

impl From<StepError> for ApiError {
    fn from(e: StepError) -> ApiError {
        let code = match &e {
            StepError::NotYourConversation { .. } => "not_your_conversation",
            StepError::NotClaimable(_) => "not_claimable",
            StepError::NotClosed(_) => "not_closed",
            StepError::AlreadyRated => "already_rated",
            StepError::BadScore(_) => return ApiError::invalid("bad_score", e.to_string()),
            StepError::AlreadyClosed => "already_closed",
            StepError::NotWithAgent => "not_with_agent",
            StepError::BadEmail(_) => return ApiError::invalid("bad_email", e.to_string()),
            StepError::NotABotReply(_) => {
                return ApiError::invalid("not_a_bot_reply", e.to_string())
            }
            StepError::ClosedForFiles => "conversation_closed",
            StepError::NotReopenable(_) => "not_reopenable",
        };
        ApiError::conflict(code, e.to_string())
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> ApiError {
        let code = match &e {
            QueueError::UnknownAgent(_) => "unknown_agent",
            QueueError::NotOnline(_) => "not_online",
            QueueError::AtCapacity(_) => "at_capacity",
            QueueError::NotWaiting(_) => "not_waiting",
            QueueError::NotHeld { .. } => "not_your_conversation",
        };
        ApiError::conflict(code, e.to_string())
    }
}

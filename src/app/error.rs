//! The one error every API operation returns: an HTTP status, a stable
//! snake_case `code` clients can branch on, and a message for people.
//! Internal causes (storage) are logged where they happen and reach the
//! client only as a generic `internal_error`.

use crate::conversation::StepError;
use crate::handoff::QueueError;
use crate::store::StoreError;

/// An operation that failed, as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before retrying (429 only): the `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(404, "not_found", format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(401, "unauthorized", message)
    }

    pub fn rate_limited(what: &str, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..ApiError::new(
                429,
                "rate_limited",
                format!("too many {what}; retry in {} s", retry_after.max(1)),
            )
        }
    }

    pub fn internal() -> ApiError {
        ApiError::new(500, "internal_error", "internal error; it has been logged")
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(422, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::not_found("conversation"),
            StoreError::BadId(_) => ApiError::not_found("conversation"),
            StoreError::Exists(id) => ApiError::new(
                409,
                "conflict",
                format!("conversation `{id}` exists already"),
            ),
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
        };
        ApiError::new(409, code, e.to_string())
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
        ApiError::new(409, code, e.to_string())
    }
}

//! Errors at the HTTP edge. `ApiError` becomes `{"error": {"code",
//! "message"}}` with its status (and `Retry-After` on 429). Everything else
//! that can fail before a handler runs (axum's own rejections, a body over
//! the limit, an unknown route, a panic) is turned into the same shape by
//! `json_errors`, so no client ever sees a plain-text error or a trace.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::app::{ApiError, ErrorBody, ErrorDetail};

/// Newtype so the library's `ApiError` can be a response here.
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> HttpError {
        HttpError(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

pub fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody {
        error: ErrorDetail {
            code: e.code.to_string(),
            message: e.message.clone(),
        },
    };
    let mut res = (status, axum::Json(body)).into_response();
    if let Some(secs) = e.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    res
}

/// A JSON request body whose rejections are `ApiError`s with clear codes.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r) => {
                let (status, code) = match &r {
                    JsonRejection::JsonSyntaxError(_) => (400, "invalid_json"),
                    JsonRejection::JsonDataError(_) => (422, "invalid_body"),
                    JsonRejection::MissingJsonContentType(_) => (415, "unsupported_media_type"),
                    _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => (413, "payload_too_large"),
                    _ => (400, "bad_request"),
                };
                Err(HttpError(ApiError::new(status, code, r.body_text())))
            }
        }
    }
}

/// Turns any error response that is not JSON yet into the one error shape.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if status.as_u16() < 400 {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return res;
    }
    let retry = res.headers().get(header::RETRY_AFTER).cloned();
    let allow = res.headers().get(header::ALLOW).cloned();
    let text = match res.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes())
            .chars()
            .take(500)
            .collect(),
        Err(_) => String::new(),
    };
    let code = match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_body",
        429 => "rate_limited",
        s if s >= 500 => "internal_error",
        _ => "error",
    };
    let message = if status.is_server_error() {
        tracing::error!(status = %status, detail = %text, "internal error");
        "internal error; it has been logged".to_string()
    } else if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut out = error_response(&ApiError::new(status.as_u16(), code, message));
    if let Some(v) = retry {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if let Some(v) = allow {
        out.headers_mut().insert(header::ALLOW, v);
    }
    out
}

pub async fn not_found() -> HttpError {
    HttpError(ApiError::new(404, "not_found", "no such route"))
}

//! Errors at the HTTP edge. An operation's `ApiError` gets its status
//! here, from its kind (the one place that maps them), and becomes
//! `{"error": {"code", "message"}}` (with `Retry-After` on 429 and 503). Everything else
//! that can fail before a handler runs (axum's own rejections, a body over
//! the limit, an unknown route, a panic) is turned into the same shape by
//! `json_errors`, so no client ever sees a plain-text error or a trace;
//! what hyper refuses before any service runs gets the shape from
//! `JsonParseErrors` around the connection.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::api::{ErrorBody, ErrorDetail};
use crate::app::{ApiError, ErrorKind};

/// An error as a response: a status, a stable code and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before retrying: the `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl HttpError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// The status of each kind of failure.
pub fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound => 404,
        ErrorKind::Unauthorized => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::Conflict => 409,
        ErrorKind::Invalid => 422,
        ErrorKind::RateLimited => 429,
        ErrorKind::Internal => 500,
        ErrorKind::TooLarge => 413,
        ErrorKind::UnsupportedType => 415,
        ErrorKind::StorageFull => 507,
        ErrorKind::Unavailable => 503,
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> HttpError {
        HttpError {
            status: status_of(e.kind),
            code: e.code,
            message: e.message,
            retry_after: e.retry_after,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

pub fn error_response(e: &HttpError) -> Response {
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
                Err(HttpError::new(status, code, r.body_text()))
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
    let mut out = error_response(&HttpError::new(status.as_u16(), code, message));
    if let Some(v) = retry {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if let Some(v) = allow {
        out.headers_mut().insert(header::ALLOW, v);
    }
    out
}

pub async fn not_found() -> HttpError {
    HttpError::new(404, "not_found", "no such route")
}

/// The JSON error shape for what hyper answers itself. Requests its parser
/// refuses (a garbage request line, a bad header, headers too large, a URL
/// too long) are answered by hyper before any service runs, with the status
/// and an empty body, and hyper has no hook to change that body. This
/// wrapper around a connection's stream replaces such an answer as it is
/// written: a write that is exactly one response head with a 400, 414 or
/// 431 status and `content-length: 0` gets the JSON body. Our own error
/// responses always carry a body (`json_errors`), so only hyper's match.
/// hyper writes a response head as one buffer (the first of a vectored
/// write); anything else passes through untouched.
pub struct JsonParseErrors<S> {
    inner: S,
    /// A rewritten answer still to be written, and how much of it is.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonParseErrors<S> {
    pub fn new(inner: S) -> JsonParseErrors<S> {
        JsonParseErrors {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// hyper's answer in `buf` with the JSON body, if `buf` is one.
fn with_json_body(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    if head.find("\r\n\r\n")? + 4 != head.len() {
        return None;
    }
    let (code, message) = match head.get(9..12)? {
        "400" => ("bad_request", "the request is not valid HTTP/1.1"),
        "414" => ("uri_too_long", "the URL is too long"),
        "431" => (
            "request_header_fields_too_large",
            "the request's headers are too large or too many",
        ),
        _ => return None,
    };
    const EMPTY: &str = "\r\ncontent-length: 0\r\n";
    let at = head.to_ascii_lowercase().find(EMPTY)?;
    let body = serde_json::to_string(&ErrorBody {
        error: ErrorDetail {
            code: code.into(),
            message: message.into(),
        },
    })
    .ok()?;
    Some(
        format!(
            "{}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}{body}",
            &head[..at],
            body.len(),
            &head[at + EMPTY.len()..],
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> JsonParseErrors<S> {
    /// Writes what is pending; ready once nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// If `head` is one of hyper's empty-bodied error answers, takes it
    /// whole, to go out with a JSON body instead (now, as far as the
    /// stream allows; the rest on the next write or flush).
    fn substitute(
        &mut self,
        cx: &mut Context<'_>,
        head: &[u8],
    ) -> Option<Poll<std::io::Result<usize>>> {
        self.pending = with_json_body(head)?;
        if let Poll::Ready(Err(e)) = self.drain(cx) {
            return Some(Poll::Ready(Err(e)));
        }
        Some(Poll::Ready(Ok(head.len())))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParseErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(taken) = self.substitute(cx, buf) {
            return taken;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.drain(cx))?;
        // A head alone: one non-empty buffer, the rest (if any) empty.
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            if let Some(taken) = self.substitute(cx, only) {
                return taken;
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_answers_get_a_body() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 06:20:16 GMT\r\n\r\n";
        let out = String::from_utf8(with_json_body(hyper_431).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(
            head.ends_with("date: Mon, 30 Nov 2026 06:20:16 GMT"),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "request_header_fields_too_large");
        for untouched in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"{\"HTTP/1.1 400\"}",
        ] {
            assert!(with_json_body(untouched).is_none(), "{untouched:?}");
        }
    }
}

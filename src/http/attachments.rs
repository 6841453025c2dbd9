//! Attachments over HTTP (README, "Attachments"). An upload is the file's
//! raw bytes as the request body (any `Content-Type`: it is ignored, the
//! type is read from the content) with its name in the `name` query
//! parameter: no multipart parser, and a client sends a `File` as it is.
//! The body limit for these two routes is `[attachments] max_bytes`
//! (`read_body` in `http/mod.rs`): an announced length over it is refused
//! before a byte is read, a longer body is cut off once it passes it.
//!
//! A file is served only to its conversation's visitor (the conversation
//! token as a bearer, or as `?token=` for an `<img src>`, which cannot
//! send headers) and to agents (their bearer token; the console fetches it
//! and shows a `blob:` URL, so an agent token never sits in a URL). Any
//! other token gets the 404 of a conversation that does not exist. It is
//! served so that a browser cannot run it: the sniffed content type,
//! `nosniff`, a CSP of `default-src 'none'; sandbox`, and a
//! `Content-Disposition` (inline for images, a download for PDFs).

use axum::body::Body as RawBody;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::api::Stored;
use super::error::HttpError;
use super::visitor::Authorized;
use super::{agent_of, bearer, blocking, AgentAuth};
use crate::app::attachments::{too_large, AttachmentFile};
use crate::app::{self, for_visitor, ApiError, App};

/// Where an upload's file name comes from.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name as the sender knows it (sanitised before it is
    /// stored; its extension follows the content). At most 1000
    /// characters.
    pub name: Option<String>,
}

/// The credential an `<img src>` can carry.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// The conversation's visitor token, for clients that cannot send an
    /// `Authorization` header (an `<img src>`). It opens this
    /// conversation's files only.
    pub token: Option<String>,
}

/// The body's bytes, at most `max` (the limit layer cut it off already; a
/// body longer than that here is refused all the same).
async fn bytes_of(body: RawBody, max: usize) -> Result<Vec<u8>, HttpError> {
    axum::body::to_bytes(body, max.saturating_add(1))
        .await
        .map(|b| b.to_vec())
        .map_err(|_| HttpError::from(too_large(max)))
}

fn visible(mut s: app::Stored) -> Stored {
    s.records = s.records.into_iter().filter_map(for_visitor).collect();
    s.into()
}

/// Send a file (the visitor): an image (PNG, JPEG, GIF, WebP) or a PDF as
/// the raw request body, recognised by its content. Counts against the
/// conversation's messages per minute.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/attachments", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes, at most `[attachments] max_bytes`"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored: the `attachment` record", body = Stored),
        (status = 413, description = "Over `[attachments] max_bytes` (`attachment_too_large`)", body = super::api::ErrorBody),
        (status = 415, description = "Not an image or PDF by its content (`unsupported_attachment_type`)", body = super::api::ErrorBody)))]
pub async fn upload(
    State(app): State<App>,
    Authorized(id): Authorized,
    Query(q): Query<UploadQuery>,
    body: RawBody,
) -> Result<Json<Stored>, HttpError> {
    let bytes = bytes_of(body, app.config().attachments.max_bytes).await?;
    Ok(Json(visible(
        blocking(&app, move |app| {
            app.attach(&id, None, q.name.as_deref(), bytes)
        })
        .await?,
    )))
}

/// Send a file (an agent holding the conversation), as the visitor does.
#[utoipa::path(post, path = "/api/v1/agent/conversations/{id}/attachments", tag = "agent",
    params(("id" = String, Path, description = "Conversation id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes, at most `[attachments] max_bytes`"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored: the `attachment` record", body = Stored),
        (status = 413, description = "Over `[attachments] max_bytes` (`attachment_too_large`)", body = super::api::ErrorBody),
        (status = 415, description = "Not an image or PDF by its content (`unsupported_attachment_type`)", body = super::api::ErrorBody)))]
pub async fn agent_upload(
    State(app): State<App>,
    AgentAuth(agent): AgentAuth,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    body: RawBody,
) -> Result<Json<Stored>, HttpError> {
    let bytes = bytes_of(body, app.config().attachments.max_bytes).await?;
    Ok(Json(
        blocking(&app, move |app| {
            app.attach(&id, Some(&agent), q.name.as_deref(), bytes)
        })
        .await?
        .into(),
    ))
}

/// Fetch a file: for the conversation's visitor (bearer or `?token=`) and
/// agents (bearer). Served with its sniffed type, `nosniff`, a sandboxing
/// CSP and a `Content-Disposition` (inline for images, attachment for
/// PDFs).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/attachments/{attachment}", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id"),
           ("attachment" = String, Path, description = "Attachment id (from its `attachment` record)"),
           FileQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The file, typed by its content",
        content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/gif"),
                (Vec<u8> = "image/webp"), (Vec<u8> = "application/pdf")))))]
pub async fn fetch(
    State(app): State<App>,
    Path((id, attachment)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let allowed = match (bearer(&headers), q.token.as_deref()) {
        (Some(t), _) if app.agent_for(t).is_some() => true,
        (Some(t), _) => app.visitor_may(&id, t),
        (None, Some(t)) => app.visitor_may(&id, t),
        (None, None) => {
            // Neither: say what is missing (as the other routes do).
            agent_of(&app, &headers)?;
            false
        }
    };
    if !allowed {
        return Err(ApiError::not_found("conversation").into());
    }
    let file = blocking(&app, move |app| app.attachment_file(&id, &attachment)).await?;
    Ok(serve(file))
}

/// The response that shows a file and never runs it.
fn serve(file: AttachmentFile) -> Response {
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if file.kind.is_image() {
            "inline"
        } else {
            "attachment"
        },
        ascii_name(&file.name),
        percent(&file.name)
    );
    let mut res = file.bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.kind.mime()),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The name in plain ASCII for the old `filename=` parameter (safe_name
/// left no quote or backslash; other characters become `_`).
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 5987 percent-encoding for `filename*`.
fn percent(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_header_are_escaped() {
        assert_eq!(ascii_name("Größe kaputt.png"), "Gr__e kaputt.png");
        assert_eq!(percent("Größe kaputt.png"), "Gr%C3%B6%C3%9Fe%20kaputt.png");
    }
}

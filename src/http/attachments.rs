//! Attachments over HTTP (README, "Attachments"). An upload is the file's
//! raw bytes as the request body (any `Content-Type`: it is ignored, the
//! type is read from the content) with its name in the `name` query
//! parameter: no multipart parser, and a client sends a `File` as it is.
//! The body limit for these two routes is `[attachments] max_bytes`: an
//! announced length over it is refused before a byte is read (`read_body`
//! in `http/mod.rs`, which matches these two routes exactly); the token is
//! checked before the body is read (`read_upload`), and a longer body is
//! cut off once it passes the limit.
//!
//! A file is served only to its conversation's visitor (the conversation
//! token as a bearer, or for an `<img src>`, which cannot send headers, a
//! signed link to that one file valid 24 hours: `link`; the visitor's
//! token itself is never put in a URL) and to agents (their bearer token; the console fetches it
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
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::api::Stored;
use super::error::HttpError;
use super::visitor::Authorized;
use super::{agent_of, bearer, blocking, collect_body, AgentAuth};
use crate::app::attachments::{too_large, AttachmentFile};
use crate::app::{self, ApiError, App};
use std::time::Duration;

/// Where an upload's file name comes from.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name as the sender knows it (sanitised before it is
    /// stored; its extension follows the content). At most 1000
    /// characters.
    pub name: Option<String>,
}

/// The credential an `<img src>` can carry: a file link's expiry and
/// signature (`link`), which open that one file until then.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// The link's expiry, Unix seconds.
    pub exp: Option<i64>,
    /// The link's signature.
    pub sig: Option<String>,
}

/// A link that opens one file without a token, until `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileLink {
    /// The file's path with `exp` and `sig` (relative to the server).
    pub url: String,
    /// Unix seconds after which the link no longer opens the file.
    pub expires_at: i64,
}

/// An upload's bytes, read only now that its sender is known (the
/// extractors before the body checked the token): at most `[attachments]
/// max_bytes` (a longer body is cut off there, 413), within
/// `body_read_timeout_secs` plus a second per 64 KiB of that limit (a
/// client sending at least that fast always finishes; 408 otherwise).
async fn read_upload(app: &App, body: RawBody) -> Result<axum::body::Bytes, Response> {
    let max = app.config().attachments.max_bytes;
    let deadline =
        Duration::from_secs(app.config().limits.body_read_timeout_secs + (max / 65536) as u64);
    // Handed on as it was collected: no copy of the file here (review A5).
    collect_body(body, max, deadline, || too_large(max).into()).await
}

/// What the visitor may see of a write: no internals, agents by their
/// display names (`App::visitor_record`).
fn visible(app: &App, mut s: app::Stored) -> Stored {
    s.records = s
        .records
        .into_iter()
        .filter_map(|r| app.visitor_record(r))
        .collect();
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
) -> Result<Json<Stored>, Response> {
    let bytes = read_upload(&app, body).await?;
    let stored = blocking(&app, move |app| {
        app.attach(&id, None, q.name.as_deref(), &bytes)
    })
    .await
    .map_err(IntoResponse::into_response)?;
    Ok(Json(visible(&app, stored)))
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
) -> Result<Json<Stored>, Response> {
    let bytes = read_upload(&app, body).await?;
    let stored = blocking(&app, move |app| {
        app.attach(&id, Some(&agent), q.name.as_deref(), &bytes)
    })
    .await
    .map_err(IntoResponse::into_response)?;
    Ok(Json(stored.into()))
}

/// Fetch a file: for the conversation's visitor (bearer, or a signed link
/// from `.../link`: `?exp=&sig=`) and
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
    let allowed = match (bearer(&headers), q.exp, q.sig.as_deref()) {
        (Some(t), _, _) if app.agent_for(t).is_some() => true,
        (Some(t), _, _) => app.visitor_may(&id, t),
        (None, Some(exp), Some(sig)) => app.file_link_valid(&id, &attachment, exp, sig),
        (None, _, _) => {
            // Neither: say what is missing (as the other routes do).
            agent_of(&app, &headers)?;
            false
        }
    };
    if !allowed {
        return Err(ApiError::not_found("conversation").into());
    }
    let (id2, att2) = (id.clone(), attachment.clone());
    let file = blocking(&app, move |app| app.attachment_file(&id2, &att2)).await?;
    Ok(serve(&app, &id, &attachment, file))
}

/// The file's bytes as a stream: its first part, then each next one read
/// from the store only when the client has taken the one before (review
/// A5: 64 downloads of a 32 MiB file held 2 GiB when each read the whole
/// file). A store error ends the body early; the client sees a short
/// download (the `Content-Length` says what was due).
fn body_of(app: &App, id: &str, attachment: &str, first: Vec<u8>) -> RawBody {
    let (app, id, attachment) = (app.clone(), id.to_string(), attachment.to_string());
    let rest = futures_util::stream::unfold(Some(1u64), move |next| {
        let (app, id, attachment) = (app.clone(), id.clone(), attachment.clone());
        async move {
            let index = next?;
            let part = blocking(&app, move |app| {
                app.attachment_part(&id, &attachment, index)
            })
            .await;
            match part {
                Ok(Some(bytes)) => Some((Ok(axum::body::Bytes::from(bytes)), Some(index + 1))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(std::io::Error::other("the file could not be read")),
                    None,
                )),
            }
        }
    });
    let first = futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(axum::body::Bytes::from(first))
    });
    RawBody::from_stream(futures_util::StreamExt::chain(first, rest))
}

/// A link to one file for the conversation's visitor, for an `<img src>`
/// or a link that opens in a new tab: it carries no token, only an expiry
/// 24 hours away and a signature for this one file (another file, another
/// conversation or a later time does not open with it).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/attachments/{attachment}/link", tag = "visitor",
    params(("id" = String, Path, description = "Conversation id"),
           ("attachment" = String, Path, description = "Attachment id (from its `attachment` record)")),
    security(("bearer" = [])),
    responses((status = 200, description = "The link", body = FileLink)))]
pub async fn link(
    State(app): State<App>,
    Path((id, attachment)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<FileLink>, HttpError> {
    super::visitor::authorize(&app, &id, &headers)?;
    if crate::store::check_attachment_id(&attachment).is_err() {
        return Err(ApiError::not_found("attachment").into());
    }
    let (exp, sig) = app.file_link(&id, &attachment);
    Ok(Json(FileLink {
        url: format!("/api/v1/conversations/{id}/attachments/{attachment}?exp={exp}&sig={sig}"),
        expires_at: exp,
    }))
}

/// The response that shows a file and never runs it.
fn serve(app: &App, id: &str, attachment: &str, file: AttachmentFile) -> Response {
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
    let mut res = body_of(app, id, attachment, file.first).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
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
        HeaderValue::from_static("private, no-store"),
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

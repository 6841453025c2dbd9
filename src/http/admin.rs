//! The admin API (admin token): the intents and their validation status,
//! a decision trace for any text, reloads, agents, online backups.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyper::body::Bytes;

use super::api::{
    Classified, ClassifyRequest, CreatedAgent, ErrorBody, IntentsView, NewAgent, ReloadStatus,
};
use super::error::{Body, HttpError};
use super::{admin_of, blocking, AdminAuth};
use crate::app::App;
use crate::store::StoreError;

/// The intents being served and the status of the last reload.
#[utoipa::path(get, path = "/api/v1/admin/intents", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Intents and reload status", body = IntentsView)))]
pub async fn intents(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<IntentsView>, HttpError> {
    admin_of(&app, &headers)?;
    Ok(Json(app.intents_view().into()))
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
        blocking(&app, move |app| app.classify(&req.text))
            .await?
            .into(),
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
    Ok(Json(
        blocking(&app, |app| Ok(app.reload_now())).await?.into(),
    ))
}

/// Create an agent; the token is shown once. An existing name is 409
/// `agent_exists` and changes nothing: change an agent with `PATCH
/// /api/v1/admin/agents/{name}`, give it a new token with `POST
/// /api/v1/admin/agents/{name}/token`.
#[utoipa::path(post, path = "/api/v1/admin/agents", tag = "admin", security(("bearer" = [])),
    request_body = NewAgent,
    responses((status = 201, description = "Created", body = CreatedAgent),
        (status = 409, description = "An agent of this name exists (`agent_exists`), or visitors would take the name for a colleague's (`display_name_taken`); nothing changed", body = ErrorBody)))]
pub async fn add_agent(
    State(app): State<App>,
    AdminAuth(by): AdminAuth,
    Body(new): Body<NewAgent>,
) -> Result<(StatusCode, Json<CreatedAgent>), HttpError> {
    let created = blocking(&app, move |app| app.add_agent_as(Some(&by), new.into())).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// A consistent copy of the store, streamed while the server serves
/// (`frontdesk store backup DIR --token …` writes it into DIR). The body is
/// a sequence of entries, each `[n: u8][tree: n bytes][u32 BE][key][u32
/// BE][value]`, closed by one zero byte; a body without it is incomplete.
#[utoipa::path(get, path = "/api/v1/admin/backup", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The store's entries", content_type = "application/octet-stream")))]
pub async fn backup(State(app): State<App>, headers: HeaderMap) -> Result<Response, HttpError> {
    admin_of(&app, &headers)?;
    const CHUNK: usize = 256 * 1024;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(CHUNK);
        let result = app.store().export(&mut |tree, k, v| {
            crate::store::backup_frame(&mut buf, tree, k, v);
            if buf.len() >= CHUNK {
                let chunk = Bytes::from(std::mem::take(&mut buf));
                tx.blocking_send(Ok(chunk))
                    .map_err(|_| StoreError::Db("the backup's client went away".into()))?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                buf.push(0);
                let _ = tx.blocking_send(Ok(Bytes::from(buf)));
            }
            Err(e) => {
                tracing::error!(error = %e, "backup failed");
                // Ends the body without its closing byte: the client knows.
                let _ = tx.blocking_send(Err(std::io::Error::other("backup failed")));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

//! The admin API of `improve` (admin token): the failures inbox and its
//! dismissals, and intent files edited from the admin page. Every write
//! is validated like `frontdesk check` on the whole set with the change
//! applied (422 `invalid_intents` with each error's `path:line:col`, and
//! nothing written), written atomically, then reloaded; the response
//! carries the reload status.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::api::{ErrorDetail, ReloadStatus};
use super::error::{Body, HttpError};
use super::{blocking, AdminAuth};
use crate::app::{ApiError, App};
use crate::classify::Model;
use crate::improve::{self, edit, EditError};

/// The inbox's window when none is given: the last 7 days.
const DEFAULT_WINDOW_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// The longest window the failures inbox reads.
const MAX_WINDOW_MS: i64 = 90 * 24 * 60 * 60 * 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailuresQuery {
    /// Start of the window, ms since the epoch (default: `to` − 7 days).
    pub from: Option<i64>,
    /// End of the window (exclusive), ms since the epoch (default: now).
    pub to: Option<i64>,
}

/// One failed visitor message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FailedMessage {
    pub conversation: String,
    pub seq: u64,
    pub at_ms: i64,
    pub text: String,
    /// `fallback`, `clarified`, `not_helpful`, `handoff` (every one that applies).
    pub why: Vec<String>,
    /// For `handoff`: the bot's reason (`asked`, `negative_sentiment`,
    /// `low_confidence`, `repeated_fallback`, `intent_action`).
    pub handoff_reason: Option<String>,
    /// The intent the current classifier ranks first.
    pub nearest_intent: Option<String>,
    pub nearest_score: Option<f32>,
    /// What agents replied after it in its conversation.
    pub agent_replies: Vec<String>,
}

/// Similar failed messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FailureCluster {
    pub count: usize,
    /// In time order.
    pub messages: Vec<FailedMessage>,
    /// The intent most members rank first, with their mean score for it.
    pub nearest_intent: Option<String>,
    pub nearest_score: Option<f32>,
    /// The agents' replies to these messages, most frequent first: a
    /// proposed answer for a new intent.
    pub proposed_answers: Vec<String>,
}

/// The failures inbox of a window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Failures {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Failed messages not dismissed.
    pub total: usize,
    /// How many of them were clustered: the newest, at most 2,000 (the
    /// rest are counted in `total` only; a shorter window shows them).
    pub clustered: usize,
    /// `meaning` when clustered on the semantic layer's embeddings,
    /// `words` on TF-IDF vectors of words and character n-grams.
    pub clustered_by: String,
    /// Largest first.
    pub clusters: Vec<FailureCluster>,
}

fn failed_wire(f: improve::Failed) -> FailedMessage {
    FailedMessage {
        conversation: f.conversation,
        seq: f.seq,
        at_ms: f.at_ms,
        text: f.text,
        why: f.why.iter().map(|w| w.as_str().to_string()).collect(),
        handoff_reason: f.handoff_reason.map(|r| r.as_str().to_string()),
        nearest_intent: f.nearest.as_ref().map(|n| n.0.clone()),
        nearest_score: f.nearest.map(|n| n.1),
        agent_replies: f.agent_replies,
    }
}

impl From<improve::Inbox> for Failures {
    fn from(i: improve::Inbox) -> Failures {
        Failures {
            from_ms: i.from_ms,
            to_ms: i.to_ms,
            total: i.total,
            clustered: i.clustered,
            clustered_by: if i.by_meaning { "meaning" } else { "words" }.into(),
            clusters: i
                .clusters
                .into_iter()
                .map(|c| FailureCluster {
                    count: c.messages.len(),
                    nearest_intent: c.nearest.as_ref().map(|n| n.0.clone()),
                    nearest_score: c.nearest.map(|n| n.1),
                    messages: c.messages.into_iter().map(failed_wire).collect(),
                    proposed_answers: c.proposed_answers,
                })
                .collect(),
        }
    }
}

/// The failures inbox: visitor messages the bot fell back on, clarified,
/// was rated not helpful on, or handed off, in clusters.
#[utoipa::path(get, path = "/api/v1/admin/failures", tag = "admin", security(("bearer" = [])),
    params(FailuresQuery),
    responses((status = 200, description = "The inbox", body = Failures)))]
pub async fn failures(
    State(app): State<App>,
    _: AdminAuth,
    Query(q): Query<FailuresQuery>,
) -> Result<Json<Failures>, HttpError> {
    let to = q.to.unwrap_or_else(|| app.now_ms());
    let from = q.from.unwrap_or(to.saturating_sub(DEFAULT_WINDOW_MS));
    if from > to {
        return Err(ApiError::invalid("invalid_window", "`from` is after `to`").into());
    }
    // Every conversation of the window is read and its failed messages
    // clustered: one request must not read all of time.
    if to.saturating_sub(from) > MAX_WINDOW_MS {
        return Err(ApiError::invalid("invalid_window", "a window of at most 90 days").into());
    }
    let inbox = blocking(&app, move |app| {
        let c = app.classifier();
        Ok(improve::failures::inbox(
            app.store().as_ref(),
            &c,
            from,
            to,
        )?)
    })
    .await?;
    Ok(Json(inbox.into()))
}

/// A message, by its place in its conversation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRef {
    #[schema(min_length = 1, max_length = 64)]
    pub conversation: String,
    pub seq: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dismiss {
    /// The messages to dismiss (a cluster's: all of its messages).
    #[schema(max_items = 10000)]
    pub messages: Vec<MessageRef>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Dismissed {
    /// How many were not dismissed before.
    pub dismissed: usize,
}

/// Dismiss messages: they leave the inbox for good.
#[utoipa::path(post, path = "/api/v1/admin/failures/dismiss", tag = "admin", security(("bearer" = [])),
    request_body = Dismiss,
    responses((status = 200, description = "Dismissed", body = Dismissed)))]
pub async fn dismiss(
    State(app): State<App>,
    _: AdminAuth,
    Body(req): Body<Dismiss>,
) -> Result<Json<Dismissed>, HttpError> {
    let messages: Vec<(String, u64)> = req
        .messages
        .into_iter()
        .map(|m| (m.conversation, m.seq))
        .collect();
    for (c, _) in &messages {
        crate::store::check_id(c)
            .map_err(|_| ApiError::invalid("invalid_conversation", "invalid conversation id"))?;
    }
    let dismissed = blocking(&app, move |app| {
        Ok(improve::failures::dismiss(app.store().as_ref(), &messages)?)
    })
    .await?;
    Ok(Json(Dismissed { dismissed }))
}

// ---- intent files ---------------------------------------------------------

/// A listed intent file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentFileEntry {
    pub name: String,
    /// `sha256:<hex>` of its bytes.
    pub version: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentFiles {
    pub files: Vec<IntentFileEntry>,
}

/// One intent file, raw.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentFileText {
    pub name: String,
    pub toml: String,
    /// Pass it back as `base_version` when saving.
    pub version: String,
    /// The form's fields, read from the TOML (absent when it does not parse).
    pub fields: Option<IntentFields>,
}

/// An intent file's fields as the form shows them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentFields {
    pub description: Option<String>,
    pub examples: Vec<String>,
    pub keywords: Vec<String>,
    pub answers: Vec<String>,
    pub quick_replies: Vec<String>,
    pub threshold: Option<f64>,
}

/// One validation error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentError {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// `path:line:col: message`, as `frontdesk check` prints it.
    pub text: String,
}

/// An error; for `invalid_intents`, `errors` lists every problem.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EditFailed {
    pub error: ErrorDetail,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<IntentError>,
}

/// What a write did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Saved {
    pub name: String,
    /// The new version: the base of the next write.
    pub version: String,
    /// Examples added (structured additions; 0 otherwise).
    pub added: usize,
    /// The reload after the write (`ok` false: the old set still serves).
    pub reload: ReloadStatus,
}

/// A raw write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFile {
    #[schema(max_length = 1000000)]
    pub toml: String,
    /// The version the editor loaded; absent or null: a new file.
    pub base_version: Option<String>,
}

/// A form edit: each field given replaces that field (an empty list
/// removes it); the rest of the file stays as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditFields {
    pub base_version: String,
    pub description: Option<String>,
    pub examples: Option<Vec<String>>,
    pub keywords: Option<Vec<String>>,
    /// One answer, or several rotated between.
    pub answers: Option<Vec<String>>,
    pub quick_replies: Option<Vec<String>>,
    /// The intent's own answer threshold in (0, 1].
    pub threshold: Option<f64>,
    /// True: remove the intent's own threshold.
    #[serde(default)]
    pub clear_threshold: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddExamples {
    #[schema(min_items = 1, max_items = 1000)]
    pub examples: Vec<String>,
    /// The version of the intent's file the admin saw; absent: the current one.
    pub base_version: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntent {
    /// The intent id, also the file name (`<id>.toml`).
    #[schema(min_length = 1, max_length = 64)]
    pub id: String,
    /// What the intent is for (default: the id in words).
    pub description: Option<String>,
    #[schema(min_items = 1)]
    pub examples: Vec<String>,
    #[schema(min_items = 1)]
    pub answers: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub quick_replies: Vec<String>,
    pub threshold: Option<f64>,
}

/// An edit's failure as a response (`EditFailed`).
pub struct EditResponse(EditError);

impl From<EditError> for EditResponse {
    fn from(e: EditError) -> Self {
        EditResponse(e)
    }
}

impl IntoResponse for EditResponse {
    fn into_response(self) -> Response {
        let (status, code, errors): (u16, &str, Vec<IntentError>) = match &self.0 {
            EditError::BadName(_) => (422, "invalid_file_name", vec![]),
            EditError::BadId(_) => (422, "invalid_intent_id", vec![]),
            EditError::NotFound(_) => (404, "intent_file_not_found", vec![]),
            EditError::NoIntent(_) => (404, "intent_not_found", vec![]),
            EditError::Exists(_) => (409, "intent_exists", vec![]),
            EditError::Stale { .. } => (409, "stale_base", vec![]),
            EditError::Request(_) => (422, "invalid_request", vec![]),
            EditError::Invalid(errs) => (
                422,
                "invalid_intents",
                errs.0
                    .iter()
                    .map(|e| IntentError {
                        path: e.path.display().to_string(),
                        line: e.line,
                        col: e.col,
                        message: e.kind.to_string(),
                        text: e.to_string(),
                    })
                    .collect(),
            ),
            EditError::Io { .. } => {
                tracing::error!(error = %self.0, "intent file write failed");
                return HttpError::from(ApiError::internal()).into_response();
            }
        };
        let message = match &self.0 {
            EditError::Invalid(errs) => {
                format!("the change does not validate; nothing was written:\n{errs}")
            }
            e => e.to_string(),
        };
        let body = EditFailed {
            error: ErrorDetail {
                code: code.to_string(),
                message,
            },
            errors,
        };
        (status_code(status), Json(body)).into_response()
    }
}

fn status_code(s: u16) -> StatusCode {
    StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Runs an edit off the executor (validated with the app's model), then
/// serves the set it validated: the directory is not loaded again, and
/// the watcher sees files that hold exactly that set and leaves them.
async fn edit_then_reload(
    app: &App,
    f: impl FnOnce(&std::path::Path, &Model) -> Result<(String, edit::Written, usize), EditError>
        + Send
        + 'static,
) -> Result<Saved, EditResponse> {
    let app = app.clone();
    let r = tokio::task::spawn_blocking(move || {
        let dir = app.intents_dir();
        let (name, written, added) = f(&dir, app.model())?;
        // A save that changed nothing reports the running set's status.
        let reload = match written.built {
            Some(built) => app.install(built.classifier, built.digest),
            None => app.reload_status(),
        };
        Ok::<_, EditError>(Saved {
            name,
            version: written.version,
            added,
            reload: reload.into(),
        })
    })
    .await;
    match r {
        Ok(r) => r.map_err(EditResponse),
        Err(e) => {
            tracing::error!(error = %e, "intent edit panicked");
            Err(EditResponse(EditError::Io {
                path: String::new(),
                message: "panicked".into(),
            }))
        }
    }
}

async fn on_dir<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&std::path::Path) -> Result<T, EditError> + Send + 'static,
) -> Result<T, EditResponse> {
    let dir = app.intents_dir();
    match tokio::task::spawn_blocking(move || f(&dir)).await {
        Ok(r) => r.map_err(EditResponse),
        Err(_) => Err(EditResponse(EditError::Io {
            path: String::new(),
            message: "panicked".into(),
        })),
    }
}

/// The intent files (`[a-z0-9_-]+.toml` in the intents directory).
#[utoipa::path(get, path = "/api/v1/admin/intent-files", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The files", body = IntentFiles)))]
pub async fn list_files(
    State(app): State<App>,
    _: AdminAuth,
) -> Result<Json<IntentFiles>, EditResponse> {
    let files = on_dir(&app, edit::list).await?;
    Ok(Json(IntentFiles {
        files: files
            .into_iter()
            .map(|f| IntentFileEntry {
                name: f.name,
                version: f.version,
                bytes: f.bytes,
            })
            .collect(),
    }))
}

/// One intent file as written, with its version.
#[utoipa::path(get, path = "/api/v1/admin/intent-files/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "File name, e.g. `shipping_cost.toml`")),
    responses((status = 200, description = "The file", body = IntentFileText)))]
pub async fn read_file(
    State(app): State<App>,
    _: AdminAuth,
    Path(name): Path<String>,
) -> Result<Json<IntentFileText>, EditResponse> {
    let f = on_dir(&app, move |dir| edit::read(dir, &name)).await?;
    let fields = edit::fields_of(&f.toml).map(|x| IntentFields {
        description: x.description,
        examples: x.examples.unwrap_or_default(),
        keywords: x.keywords.unwrap_or_default(),
        answers: x.answers.unwrap_or_default(),
        quick_replies: x.quick_replies.unwrap_or_default(),
        threshold: x.threshold.flatten(),
    });
    Ok(Json(IntentFileText {
        name: f.name,
        toml: f.toml,
        version: f.version,
        fields,
    }))
}

/// Write an intent file (raw TOML). Validated like `frontdesk check` with
/// the change applied; refused if the file changed since `base_version`.
#[utoipa::path(put, path = "/api/v1/admin/intent-files/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "File name, e.g. `shipping_cost.toml`")),
    request_body = WriteFile,
    responses((status = 200, description = "Written and reloaded", body = Saved),
        (status = 409, description = "`stale_base` or `intent_exists`", body = EditFailed),
        (status = 422, description = "`invalid_intents` (with `errors`), `invalid_file_name`", body = EditFailed)))]
pub async fn write_file(
    State(app): State<App>,
    _: AdminAuth,
    Path(name): Path<String>,
    Body(req): Body<WriteFile>,
) -> Result<Json<Saved>, EditResponse> {
    let saved = edit_then_reload(&app, move |dir, model| {
        let version = edit::write(dir, &name, &req.toml, req.base_version.as_deref(), model)?;
        Ok((name, version, 0))
    })
    .await?;
    Ok(Json(saved))
}

/// Edit an intent file's fields (the admin page's form), keeping the rest
/// of the file (comments, order) as written.
#[utoipa::path(put, path = "/api/v1/admin/intent-files/{name}/fields", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "File name, e.g. `shipping_cost.toml`")),
    request_body = EditFields,
    responses((status = 200, description = "Written and reloaded", body = Saved),
        (status = 409, description = "`stale_base`", body = EditFailed),
        (status = 422, description = "`invalid_intents` (with `errors`)", body = EditFailed)))]
pub async fn edit_fields(
    State(app): State<App>,
    _: AdminAuth,
    Path(name): Path<String>,
    Body(req): Body<EditFields>,
) -> Result<Json<Saved>, EditResponse> {
    let saved = edit_then_reload(&app, move |dir, model| {
        let text = form_text(dir, &name, req)?;
        let version = edit::write(dir, &name, &text.toml, Some(&text.base_version), model)?;
        Ok((name, version, 0))
    })
    .await?;
    Ok(Json(saved))
}

/// The text a form save of `name` would write: the fields applied to the
/// file as it is, refused (`stale_base`) when it is no longer at the
/// version the form was opened at. Shared by the save and its preview, so
/// a preview replays exactly what a save would write.
fn form_text(dir: &std::path::Path, name: &str, req: EditFields) -> Result<FormText, EditError> {
    let current = edit::read(dir, name)?;
    if current.version != req.base_version {
        return Err(EditError::Stale {
            name: name.into(),
            base: req.base_version,
            now: current.version,
        });
    }
    let fields = improve::Fields {
        description: req.description,
        examples: req.examples,
        keywords: req.keywords,
        answers: req.answers,
        quick_replies: req.quick_replies,
        threshold: if req.clear_threshold {
            Some(None)
        } else {
            req.threshold.map(Some)
        },
    };
    let toml = edit::apply(name, &current.toml, &fields)?;
    Ok(FormText {
        name: name.into(),
        changed: toml != current.toml,
        toml,
        base_version: current.version,
    })
}

/// What a form save would write, not written.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FormText {
    pub name: String,
    /// The whole file as a save of these fields would write it.
    pub toml: String,
    /// The version it is based on (the file on disk now).
    pub base_version: String,
    /// False when the fields are the file's already.
    pub changed: bool,
}

/// The text a form save (`PUT …/fields`) of these fields would write,
/// without writing or validating it: the editor's "Preview on recent
/// traffic" replays it (`POST /api/v1/admin/replay`), so unsaved form
/// edits are what is previewed.
#[utoipa::path(post, path = "/api/v1/admin/intent-files/{name}/fields/text", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "File name, e.g. `shipping_cost.toml`")),
    request_body = EditFields,
    responses((status = 200, description = "The text a save would write", body = FormText),
        (status = 409, description = "`stale_base`", body = EditFailed),
        (status = 422, description = "`invalid_file_name`, `invalid_request`", body = EditFailed)))]
pub async fn form_preview(
    State(app): State<App>,
    _: AdminAuth,
    Path(name): Path<String>,
    Body(req): Body<EditFields>,
) -> Result<Json<FormText>, EditResponse> {
    Ok(Json(
        on_dir(&app, move |dir| form_text(dir, &name, req)).await?,
    ))
}

/// Add examples to an intent (from the failures inbox); ones it already
/// has are skipped.
#[utoipa::path(post, path = "/api/v1/admin/intents/{id}/examples", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Intent id")),
    request_body = AddExamples,
    responses((status = 200, description = "Written and reloaded", body = Saved),
        (status = 409, description = "`stale_base`", body = EditFailed),
        (status = 422, description = "`invalid_intents` (with `errors`)", body = EditFailed)))]
pub async fn add_examples(
    State(app): State<App>,
    _: AdminAuth,
    Path(id): Path<String>,
    Body(req): Body<AddExamples>,
) -> Result<Json<Saved>, EditResponse> {
    let saved = edit_then_reload(&app, move |dir, model| {
        let name = edit::file_of(dir, &id)?;
        let current = edit::read(dir, &name)?;
        let base = req.base_version.unwrap_or(current.version);
        let (text, added) = edit::add_examples(&name, &current.toml, &req.examples)?;
        let version = edit::write(dir, &name, &text, Some(&base), model)?;
        Ok((name, version, added))
    })
    .await?;
    Ok(Json(saved))
}

/// Create an intent (a new file `<id>.toml`) from examples and an answer.
#[utoipa::path(post, path = "/api/v1/admin/intent-files", tag = "admin", security(("bearer" = [])),
    request_body = CreateIntent,
    responses((status = 201, description = "Created and reloaded", body = Saved),
        (status = 409, description = "`intent_exists`", body = EditFailed),
        (status = 422, description = "`invalid_intents` (with `errors`), `invalid_intent_id`", body = EditFailed)))]
pub async fn create_intent(
    State(app): State<App>,
    _: AdminAuth,
    Body(req): Body<CreateIntent>,
) -> Result<(StatusCode, Json<Saved>), EditResponse> {
    let saved = edit_then_reload(&app, move |dir, model| {
        let new = improve::NewIntent {
            id: req.id,
            description: req.description,
            examples: req.examples,
            answers: req.answers,
            keywords: req.keywords,
            quick_replies: req.quick_replies,
            threshold: req.threshold,
        };
        let text = edit::new_intent_text(&new)?;
        let name = format!("{}.toml", new.id);
        let version = edit::write(dir, &name, &text, None, model)?;
        Ok((name, version, new.examples.len()))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

//! Replay before deploy (admin token): an edit of the intent files replayed
//! over recent traffic, and the threshold what-if. Nothing is written: the
//! edited files live in memory for the one request (`crate::replay`).

use axum::extract::{Query, State};
use axum::Json;

use super::api::{ReplayReport, ReplayRequest, ThresholdCurve, ThresholdsQuery, Wire};
use super::error::{Body, HttpError};
use super::{blocking, AdminAuth};
use crate::app::{ApiError, App, ErrorKind};
use crate::replay::{self, ReplayError, Window};

/// At most this many differences in one answer (all are counted).
const MAX_DIFFERENCES: usize = 500;

fn window(app: &App, since_days: u32) -> Result<Window, HttpError> {
    if !(1..=90).contains(&since_days) {
        return Err(HttpError::new(
            422,
            "invalid_since_days",
            format!("since_days is 1 to 90, not {since_days}"),
        ));
    }
    Ok(Window {
        max_differences: MAX_DIFFERENCES,
        ..Window::last_days(app.now_ms(), since_days)
    })
}

fn replay_error(e: ReplayError) -> ApiError {
    match e {
        ReplayError::TooLarge { .. } => {
            ApiError::new(ErrorKind::Invalid, "window_too_large", e.to_string())
        }
        // Logged there; a stopped database is a 503 like anywhere else.
        ReplayError::Store(e) => ApiError::from(e),
    }
}

/// Decide the window's visitor messages again with the intent files
/// replaced or added by `files` (validated like `frontdesk check`; 422
/// `invalid_intents` with `path:line:col` errors) and show what would
/// change. Nothing is written to disk.
#[utoipa::path(post, path = "/api/v1/admin/replay", tag = "admin", security(("bearer" = [])),
    request_body = ReplayRequest,
    responses((status = 200, description = "The predicted differences", body = ReplayReport)))]
pub async fn replay(
    State(app): State<App>,
    _: AdminAuth,
    Body(req): Body<ReplayRequest>,
) -> Result<Json<ReplayReport>, HttpError> {
    let window = window(&app, req.since_days)?;
    let report = blocking(&app, move |app| {
        let edited = replay::edited_classifier(&app.intents_dir(), &req.files, app.model())
            .map_err(|errors| {
                let lines: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
                ApiError::new(ErrorKind::Invalid, "invalid_intents", lines.join("\n"))
            })?;
        let config = app.config();
        let rules = crate::conversation::Rules {
            escalation: &config.escalation,
            texts: &config.texts,
        };
        replay::replay(app.store().as_ref(), &window, &edited, &rules).map_err(replay_error)
    })
    .await?;
    Ok(Json(report.wire()))
}

/// Containment against the share of bad answers (rated not helpful or
/// followed by a handoff) for answer thresholds 0.05 to 0.95, for the
/// current intent set over the window's traffic.
#[utoipa::path(get, path = "/api/v1/admin/replay/thresholds", tag = "admin", security(("bearer" = [])),
    params(ThresholdsQuery),
    responses((status = 200, description = "The what-if curve", body = ThresholdCurve)))]
pub async fn thresholds(
    State(app): State<App>,
    _: AdminAuth,
    Query(q): Query<ThresholdsQuery>,
) -> Result<Json<ThresholdCurve>, HttpError> {
    let window = window(&app, q.since_days)?;
    let curve = blocking(&app, move |app| {
        let classifier = app.classifier();
        replay::thresholds(
            app.store().as_ref(),
            &window,
            &classifier,
            &app.config().escalation,
            &replay::threshold_grid(),
        )
        .map_err(replay_error)
    })
    .await?;
    Ok(Json(curve.wire()))
}

//! The reports of the admin API (admin token): the summary, the
//! conversations behind any of its numbers, and one CSV row per
//! conversation. The numbers are `crate::report`'s (README, "Reports");
//! a bad window or filter is a 400 with a stable code.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api::{
    ApiReport, ApiReportConversationPage, ReportConversationsQuery, ReportCsvQuery, ReportQuery,
    Wire,
};
use super::error::HttpError;
use super::{admin_of, blocking};
use crate::app::{ApiError, App};
use crate::report::{self, Filter, Period, Zone};

/// Rows of a drill-down page unless `limit` says otherwise, and at most.
const PAGE: u64 = 50;
const MAX_PAGE: u64 = 500;

fn zone(app: &App) -> Zone {
    Zone::of(app.config().business_hours.as_ref())
}

fn period(
    app: &App,
    zone: &Zone,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Period, HttpError> {
    Period::parse(from, to, zone.today(app.now_ms()))
        .map_err(|e| HttpError::new(400, "bad_report_window", e.to_string()))
}

/// `period` narrowed to one `day` of it (`day=YYYY-MM-DD`): a day with
/// any filter, as one day's segment of the volume chart (contained,
/// handed off, abandoned on that day). A conversation's day is its start
/// in the shop's time zone, as for `day:` filters; durable and FCR are
/// judged as in the whole window (they look past it either way).
fn on_day(period: Period, day: Option<&str>) -> Result<Period, HttpError> {
    let Some(day) = day else {
        return Ok(period);
    };
    let bad = |m: String| HttpError::new(400, "bad_report_window", m);
    let date: jiff::civil::Date = day.trim().parse().map_err(|_| {
        bad(format!(
            "day `{}` is not a date (YYYY-MM-DD)",
            day.chars().take(40).collect::<String>()
        ))
    })?;
    if date < period.from || date > period.to {
        return Err(bad(format!(
            "day {date} is outside the window {} to {}",
            period.from, period.to
        )));
    }
    Ok(Period {
        from: date,
        to: date,
    })
}

fn bad_filter(filter: &str) -> Result<(), HttpError> {
    Filter::parse(filter)
        .map(|_| ())
        .map_err(|e| HttpError::new(400, "bad_report_filter", e.to_string()))
}

/// A store error says what it is (a stopped database: 503); the rest is
/// ours.
fn report_failed(e: report::refresh::ReportError) -> ApiError {
    match e {
        report::refresh::ReportError::Store(e) => ApiError::from(e),
        other => internal(other),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "report failed");
    ApiError::internal()
}

/// The summary of a window: outcomes (contained, handed off, abandoned:
/// together the cohort), handoff reasons, fallback and clarify rates,
/// waits, first responses and resolutions (clock and business hours),
/// FCR, CSAT, intents, failures, per-day series and histograms. Every
/// rate carries its numerator and denominator.
#[utoipa::path(get, path = "/api/v1/admin/reports/summary", tag = "admin", security(("bearer" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "The report", body = ApiReport),
        (status = 400, description = "`bad_report_window`: a date that is not YYYY-MM-DD, `from` after `to`, or over 366 days"),
    ))]
pub async fn summary(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Json<ApiReport>, HttpError> {
    admin_of(&app, &headers)?;
    let zone = zone(&app);
    let period = period(&app, &zone, q.from.as_deref(), q.to.as_deref())?;
    let r = blocking(&app, move |app| {
        report::report_with(
            app.store().as_ref(),
            Some(app.report_cache()),
            &period,
            &zone,
            app.config().reports,
            app.now_ms(),
        )
        .map_err(ApiError::from)
    })
    .await?;
    Ok(Json(r.wire()))
}

/// The conversations behind a number of the summary, in start order,
/// paged: `filter` names the number (`contained_confirmed`,
/// `handoff:asked`, `fcr`, `csat_positive`, `never_answered`,
/// `intent:order_status`, `day:2026-06-01`, …; README, "Reports").
#[utoipa::path(get, path = "/api/v1/admin/reports/conversations", tag = "admin", security(("bearer" = [])),
    params(ReportConversationsQuery),
    responses(
        (status = 200, description = "A page of conversations", body = ApiReportConversationPage),
        (status = 400, description = "`bad_report_window`, `bad_report_filter` or `bad_report_page`"),
    ))]
pub async fn conversations(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<ReportConversationsQuery>,
) -> Result<Json<ApiReportConversationPage>, HttpError> {
    admin_of(&app, &headers)?;
    let zone = zone(&app);
    let period = period(&app, &zone, q.from.as_deref(), q.to.as_deref())?;
    let period = on_day(period, q.day.as_deref())?;
    let filter = q.filter.unwrap_or_else(|| "cohort".into());
    bad_filter(&filter)?;
    let limit = q.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(HttpError::new(
            400,
            "bad_report_page",
            format!("limit {limit} is out of range: 1 to {MAX_PAGE}"),
        ));
    }
    let offset = usize::try_from(q.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let page = blocking(&app, move |app| {
        report::refresh::conversations(
            app.store().as_ref(),
            Some(app.report_cache()),
            &period,
            &zone,
            app.config().reports,
            app.now_ms(),
            &filter,
            offset,
            limit as usize,
        )
        .map_err(report_failed)
    })
    .await?;
    Ok(Json(page.wire()))
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 11] = [
    "id",
    "started",
    "visitor",
    "first_question",
    "outcome",
    "reason",
    "wait_ms",
    "first_response_ms",
    "resolution_ms",
    "rating",
    "intents",
];

/// A cell a visitor wrote, safe to open in a spreadsheet: one starting
/// with `=`, `+`, `-`, `@`, tab or carriage return would be read as a
/// formula, so it gets a leading `'` (OWASP's advice on CSV injection).
fn text_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// One row per conversation of the window (the cohort, or those behind
/// `filter` and `day` as a drill-down takes them), in start order:
/// id, start (RFC 3339 in the shop's time zone), visitor, first question,
/// outcome, reason, wait, first response and resolution in ms, latest
/// rating, intents answered (`;`-separated). Quoted by the `csv` crate.
#[utoipa::path(get, path = "/api/v1/admin/reports/conversations.csv", tag = "admin", security(("bearer" = [])),
    params(ReportCsvQuery),
    responses(
        (status = 200, description = "One row per conversation", content_type = "text/csv"),
        (status = 400, description = "`bad_report_window` or `bad_report_filter`"),
    ))]
pub async fn conversations_csv(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<ReportCsvQuery>,
) -> Result<Response, HttpError> {
    admin_of(&app, &headers)?;
    let zone = zone(&app);
    let period = period(&app, &zone, q.from.as_deref(), q.to.as_deref())?;
    let period = on_day(period, q.day.as_deref())?;
    let filter = q.filter.unwrap_or_else(|| "cohort".into());
    bad_filter(&filter)?;
    let mut name = format!("conversations-{}-{}", period.from, period.to);
    if filter != "cohort" {
        name.push('-');
        name.extend(filter.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        }));
    }
    name.push_str(".csv");
    let body = blocking(&app, move |app| {
        let rows = report::refresh::conversations(
            app.store().as_ref(),
            Some(app.report_cache()),
            &period,
            &zone,
            app.config().reports,
            app.now_ms(),
            &filter,
            0,
            usize::MAX,
        )
        .map_err(report_failed)?
        .conversations;
        // Every field quoted: a spreadsheet whose separator is `;` (a
        // German locale) would otherwise split `hi;=cmd()` into a cell
        // that starts with `=`.
        let mut w = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Always)
            .from_writer(Vec::new());
        w.write_record(CSV_COLUMNS).map_err(internal)?;
        let num = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        for r in rows {
            let started = jiff::Timestamp::from_millisecond(r.started_ms)
                .map(|t| {
                    t.to_zoned(zone.tz.clone())
                        .strftime("%Y-%m-%dT%H:%M:%S%:z")
                        .to_string()
                })
                .unwrap_or_default();
            w.write_record([
                r.id,
                started,
                text_cell(&r.visitor),
                text_cell(&r.first_question),
                r.outcome,
                r.reason,
                num(r.wait_ms),
                num(r.first_response_ms),
                num(r.resolution_ms),
                r.rating.map(|s| s.to_string()).unwrap_or_default(),
                r.intents.join(";"),
            ])
            .map_err(internal)?;
        }
        w.into_inner().map_err(internal)
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

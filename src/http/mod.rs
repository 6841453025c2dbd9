//! The HTTP face of the bot: routers by audience (`visitor`, `agent`,
//! `admin`, `ws`), the OpenAPI document generated from the handlers'
//! annotations and types, operations endpoints, and `run`, the one place
//! the server starts: our own accept loop over hyper, for the header-read
//! timeout against slow clients and the peer address of each connection.

pub mod admin;
pub mod agent;
pub mod assets;
pub mod error;
pub mod visitor;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::error::HttpError;
use crate::app::{now_ms, Agent, ApiError, App, Health};

/// The bearer token of a request.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    // The scheme is case-insensitive (RFC 7235).
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The agent (or admin) behind the request's token.
pub(crate) fn agent_of(app: &App, headers: &HeaderMap) -> Result<Agent, HttpError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized("an agent token is required (Authorization: Bearer …)")
    })?;
    app.agent_for(token)
        .ok_or_else(|| ApiError::unauthorized("unknown token").into())
}

pub(crate) fn admin_of(app: &App, headers: &HeaderMap) -> Result<Agent, HttpError> {
    let agent = agent_of(app, headers)?;
    if agent.admin {
        Ok(agent)
    } else {
        Err(ApiError::new(403, "forbidden", "this needs an admin token").into())
    }
}

/// Runs a synchronous operation (durable writes, classification) off the
/// async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, HttpError> {
    let app = app.clone();
    match tokio::task::spawn_blocking(move || f(app)).await {
        Ok(r) => r.map_err(HttpError),
        Err(e) => {
            tracing::error!(error = %e, "operation panicked");
            Err(HttpError(ApiError::internal()))
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "frontdesk", description = "The visitor, agent and admin API of frontdesk. Every error is `{\"error\": {\"code\", \"message\"}}`; a 429 carries `Retry-After`."),
    components(schemas(crate::app::ServerMessage, crate::app::ClientMessage, crate::app::webhook::Packet)),
    tags((name = "visitor", description = "The chat widget's API; a conversation's token authorises that conversation only."),
         (name = "agent", description = "The agent console's API (agent token)."),
         (name = "admin", description = "Intents, reloads and agents (admin token)."))
)]
struct ApiDoc;

/// Statuses any operation may answer with the error body.
const ERRORS: &[(&str, &str)] = &[
    ("400", "Malformed request (bad JSON, bad parameter)"),
    ("401", "No token, or an unknown one"),
    (
        "403",
        "The token may not do this, or the origin is not allowed",
    ),
    (
        "404",
        "No such conversation for this token, or no such route",
    ),
    ("409", "The conversation's state does not allow this now"),
    ("413", "Body over the size limit"),
    ("415", "Body is not JSON"),
    (
        "422",
        "Well-formed but invalid (too long, out of range, unknown field)",
    ),
    (
        "429",
        "Over a rate limit; retry after `Retry-After` seconds",
    ),
    ("500", "Internal error (logged)"),
];

/// The router and the OpenAPI document of every `/api/v1` route.
pub fn router(app: App) -> Router {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(visitor::create))
        .routes(routes!(visitor::events))
        .routes(routes!(visitor::send))
        .routes(routes!(visitor::handoff))
        .routes(routes!(visitor::rate))
        .routes(routes!(visitor::email))
        .routes(routes!(ws::visitor))
        .routes(routes!(agent::me))
        .routes(routes!(agent::presence))
        .routes(routes!(agent::queue))
        .routes(routes!(agent::live))
        .routes(routes!(agent::transcript))
        .routes(routes!(agent::claim))
        .routes(routes!(agent::close))
        .routes(routes!(agent::give_back))
        .routes(routes!(agent::reply))
        .routes(routes!(agent::note))
        .routes(routes!(agent::transfer))
        .routes(routes!(ws::agent))
        .routes(routes!(admin::intents))
        .routes(routes!(admin::classify))
        .routes(routes!(admin::reload))
        .routes(routes!(admin::add_agent))
        .routes(routes!(admin::backup))
        .split_for_parts();
    finish_document(&mut doc);
    let doc = serde_json::to_value(&doc).unwrap_or_default();
    let limits = &app.config.limits;
    let api = api
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            per_ip_limit,
        ))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc) }
            }),
        );
    Router::new()
        .merge(api)
        .merge(assets::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(limits.body_bytes))
        // Inside the JSON-error layer, so a panic's 500 gets the error shape
        // (and is counted) like any other.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(cors(&app))
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(app)
}

/// Adds the shared error responses and the bearer scheme to every
/// operation of the generated document.
fn finish_document(doc: &mut Document) {
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::ResponseBuilder;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    let error_body = || {
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "ErrorBody",
            ))))
            .build()
    };
    components.schemas.insert(
        "ErrorBody".into(),
        <crate::app::ErrorBody as utoipa::PartialSchema>::schema(),
    );
    components.schemas.insert(
        "ErrorDetail".into(),
        <crate::app::ErrorDetail as utoipa::PartialSchema>::schema(),
    );
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post, &mut item.put]
            .into_iter()
            .flatten()
        {
            for (status, description) in ERRORS {
                let mut r = ResponseBuilder::new()
                    .description(*description)
                    .content("application/json", error_body());
                if *status == "429" {
                    r = r.header(
                        "Retry-After",
                        HeaderBuilder::new()
                            .schema(<u64 as utoipa::PartialSchema>::schema())
                            .description(Some("Seconds to wait"))
                            .build(),
                    );
                }
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(r.build()));
            }
        }
    }
}

fn cors(app: &App) -> CorsLayer {
    let origins: Vec<HeaderValue> = app
        .config
        .server
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

/// Requests per IP per minute, on the API routes.
async fn per_ip_limit(State(app): State<App>, req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        let limit = app.config.limits.requests_per_ip_per_minute;
        if let Err(wait) = app.rates.hit(&format!("ip:{}", peer.ip()), limit, now_ms()) {
            return HttpError(ApiError::rate_limited("requests from this address", wait))
                .into_response();
        }
    }
    next.run(req).await
}

/// A span per request named by its route, and the request counter.
async fn observe(State(app): State<App>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!("request", method = %req.method(), route = %route);
    let quiet = route == "/healthz" || route == "/metrics";
    let started = std::time::Instant::now();
    let res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    app.metrics.inc(
        "frontdesk_http_requests_total",
        format!(
            "route=\"{}\",status=\"{status}\"",
            crate::app::metrics::label(&route)
        ),
    );
    if !quiet {
        span.in_scope(|| {
            tracing::debug!(
                status,
                micros = started.elapsed().as_micros() as u64,
                "done"
            )
        });
    }
    res
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
async fn healthz(State(app): State<App>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        intents: app.classifier().intents().intents.len(),
    })
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.render_metrics(),
    )
        .into_response()
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops taking
/// connections, asks the open ones to finish their request and close, and
/// waits for them (up to 10 s). Also runs the intents watcher and the
/// webhook sender. HTTP/1.1 only, so the header-read timeout holds from the
/// moment a connection opens (hyper's auto-detection of HTTP/2 would wait
/// for the first bytes without a timer).
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = router(app.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let watcher = tokio::spawn(crate::app::reload::watch(
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    let sender = tokio::spawn(crate::app::webhook::run(
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    // Every connection task holds a clone; when all are gone, recv() ends.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let timeout = Duration::from_secs(app.config.limits.header_read_timeout_secs);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut req: Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let alive = alive_tx.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopping => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(alive);
        });
    }
    drop(listener);
    drop(alive_tx);
    let _ = stop_tx.send(true);
    tokio::select! {
        _ = alive_rx.recv() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing them");
        }
    }
    let _ = watcher.await;
    let _ = sender.await;
}

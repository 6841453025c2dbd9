//! The HTTP face of the bot: routers by audience (`visitor`, `agent`,
//! `admin`, `ws`), the OpenAPI document generated from the handlers'
//! annotations and types, operations endpoints, and `run`, the one place
//! the server starts: our own accept loop over hyper, for the header-read
//! timeout against slow clients, a cap on connections per address, and
//! the client address of each request (the TCP peer, or what a trusted
//! proxy says).

pub mod admin;
pub mod agent;
pub mod api;
pub mod assets;
pub mod attachments;
pub mod canned;
pub mod email;
pub mod error;
pub mod identity;
pub mod improve;
pub mod inbox;
pub mod people;
pub mod privacy;
pub mod replay;
pub mod reports;
pub mod visitor;
pub mod ws;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
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

use self::api::Health;
use self::error::{HttpError, JsonParseErrors};
use crate::app::limits::ConnectionCount;
use crate::app::metrics::Count;
use crate::app::{now_ms, Agent, ApiError, App};
use crate::config::{ForwardedHeader, IpNet};

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
        Err(ApiError::forbidden("this needs an admin token").into())
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
        Ok(r) => r.map_err(HttpError::from),
        Err(e) => {
            tracing::error!(error = %e, "operation panicked");
            Err(HttpError::from(ApiError::internal()))
        }
    }
}

/// The agent (or admin) behind the token, as an extractor. Listed before a
/// `Body`, it runs first: a request without a good token is told so, not
/// what is wrong with its body.
pub struct AgentAuth(pub Agent);

impl FromRequestParts<App> for AgentAuth {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, HttpError> {
        agent_of(app, &parts.headers).map(AgentAuth)
    }
}

/// An admin behind the token, as an extractor (see `AgentAuth`).
pub struct AdminAuth(pub Agent);

impl FromRequestParts<App> for AdminAuth {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, HttpError> {
        admin_of(app, &parts.headers).map(AdminAuth)
    }
}

/// The client behind a request from `peer`: `peer` itself unless it is one
/// of `trusted`; then the rightmost address of the forwarding header that is
/// not itself trusted (each proxy appends the address it was reached from,
/// so everything left of the first untrusted hop is the client's word). An
/// entry that is not an address (`unknown`, an obfuscated name, garbage)
/// stops the walk at the hop that wrote it.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    let hop = |element: &str| match header {
        ForwardedHeader::XForwardedFor => node_ip(element),
        ForwardedHeader::Forwarded => element
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
            .and_then(|(_, v)| node_ip(v)),
    };
    // Repeated header lines are one list, in order (RFC 9110 5.3): walk
    // it from the right.
    let mut client = peer;
    for value in headers.get_all(name).iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for element in value.rsplit(',') {
            match hop(element) {
                Some(ip) if is_trusted(ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
    }
    client
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]:4711`, quoted or not.
fn node_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "frontdesk", description = "The visitor, agent and admin API of frontdesk. Every error is `{\"error\": {\"code\", \"message\"}}`; a 429, and a 503 `store_unavailable` (the database is down), carry `Retry-After`."),
    components(schemas(api::ServerMessage, api::ClientMessage, api::WebhookPacket)),
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
    ("408", "The body did not arrive in time"),
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
    (
        "503",
        "`store_unavailable`: the store (the database) cannot be reached; nothing was done, retry after `Retry-After` seconds",
    ),
];

/// The router and the OpenAPI document of every `/api/v1` route.
pub fn router(app: App) -> Router {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(visitor::create))
        .routes(routes!(visitor::events))
        .routes(routes!(visitor::send))
        .routes(routes!(visitor::handoff))
        .routes(routes!(visitor::rate))
        .routes(routes!(visitor::feedback))
        .routes(routes!(visitor::email))
        .routes(routes!(identity::identify))
        .routes(routes!(email::transcript))
        .routes(routes!(email::resume, email::revoke))
        .routes(routes!(email::widget))
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
        .routes(routes!(inbox::list))
        .routes(routes!(inbox::reopen))
        .routes(routes!(ws::agent))
        .routes(routes!(admin::intents))
        .routes(routes!(admin::classify))
        .routes(routes!(admin::reload))
        .routes(routes!(people::list, admin::add_agent))
        .routes(routes!(admin::backup))
        .routes(routes!(privacy::export))
        .routes(routes!(privacy::delete_conversation))
        .routes(routes!(privacy::delete_visitor))
        .routes(routes!(improve::failures))
        .routes(routes!(improve::dismiss))
        .routes(routes!(improve::list_files, improve::create_intent))
        .routes(routes!(improve::read_file, improve::write_file))
        .routes(routes!(improve::edit_fields))
        .routes(routes!(improve::form_preview))
        .routes(routes!(improve::add_examples))
        .routes(routes!(replay::replay))
        .routes(routes!(replay::thresholds))
        .routes(routes!(reports::summary))
        .routes(routes!(reports::conversations))
        .routes(routes!(reports::conversations_csv))
        .routes(routes!(people::colleagues))
        .routes(routes!(people::change, people::remove))
        .routes(routes!(people::rotate))
        .routes(routes!(attachments::upload))
        .routes(routes!(attachments::agent_upload))
        .routes(routes!(attachments::fetch))
        .routes(routes!(attachments::link))
        .routes(routes!(canned::for_conversation))
        .routes(routes!(canned::read, canned::write))
        .split_for_parts();
    finish_document(&mut doc);
    let doc = serde_json::to_value(&doc).unwrap_or_default();
    let limits = &app.config().limits;
    // The body is read inside the rate limit: a limited client is refused
    // before its body is read.
    let api = api
        .layer(axum::middleware::from_fn_with_state(app.clone(), read_body))
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
        <api::ErrorBody as utoipa::PartialSchema>::schema(),
    );
    components.schemas.insert(
        "ErrorDetail".into(),
        <api::ErrorDetail as utoipa::PartialSchema>::schema(),
    );
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            for (status, description) in ERRORS {
                let mut r = ResponseBuilder::new()
                    .description(*description)
                    .content("application/json", error_body());
                if *status == "429" || *status == "503" {
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
        .config()
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
        let limit = app.config().limits.requests_per_ip_per_minute;
        if let Err(wait) = app
            .rates()
            .hit(&format!("ip:{}", peer.ip()), limit, now_ms())
        {
            return HttpError::from(ApiError::rate_limited("requests from this address", wait))
                .into_response();
        }
    }
    next.run(req).await
}

/// Whether a request is one of the two attachment uploads
/// (`http/attachments.rs`): exactly `POST /api/v1/conversations/{id}/attachments`
/// or `POST /api/v1/agent/conversations/{id}/attachments`, nothing else
/// that merely ends the same way.
pub(crate) fn is_upload(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let segments: Vec<&str> = path.split('/').collect();
    matches!(
        segments.as_slice(),
        ["", "api", "v1", "conversations", id, "attachments"]
            | ["", "api", "v1", "agent", "conversations", id, "attachments"]
            if !id.is_empty()
    )
}

/// A response that also closes the connection (the rest of a body that
/// was not read is not waited for).
pub(crate) fn closing(e: HttpError) -> Response {
    let mut res = e.into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Reads a body of at most `max` bytes within `deadline`: a body that grows
/// past `max` is cut off there (`too_large`: at most `max` is ever held),
/// one that does not arrive in time is answered 408; both close the
/// connection.
pub(crate) async fn collect_body(
    body: axum::body::Body,
    max: usize,
    deadline: Duration,
    too_large: impl Fn() -> HttpError,
) -> Result<axum::body::Bytes, Response> {
    match tokio::time::timeout(deadline, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(closing(too_large())),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "reading a body failed");
            Err(closing(HttpError::new(
                400,
                "bad_request",
                "the request body could not be read",
            )))
        }
        Err(_) => Err(closing(HttpError::new(
            408,
            "request_timeout",
            format!("the body did not arrive within {} s", deadline.as_secs()),
        ))),
    }
}

/// Reads an API request's whole body before its handler runs, inside the
/// per-address rate limit (so a limited client is refused before it sends
/// a byte of body): an announced length over the limit is refused at once
/// (413), a body that grows past it is cut off there, one that does not
/// arrive within `body_read_timeout_secs` is answered 408 (`collect_body`).
/// The bodies are small JSON documents. The two attachment uploads
/// (`is_upload`) only get their announced length checked against
/// `[attachments] max_bytes` here: their handlers check the token first
/// and read the body after (`attachments::read_upload`), so no one without
/// a token makes the server hold a file-sized body.
async fn read_body(State(app): State<App>, req: Request, next: Next) -> Response {
    let limits = &app.config().limits;
    let upload = is_upload(req.method(), req.uri().path());
    let max = if upload {
        app.config().attachments.max_bytes
    } else {
        limits.body_bytes
    };
    let too_large = move || {
        if upload {
            crate::app::attachments::too_large(max).into()
        } else {
            HttpError::new(
                413,
                "payload_too_large",
                format!("the body is over {max} bytes"),
            )
        }
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return closing(too_large());
    }
    if upload || req.body().is_end_stream() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let deadline = Duration::from_secs(limits.body_read_timeout_secs);
    match collect_body(body, max, deadline, too_large).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(res) => res,
    }
}

/// A span per request named by its route, and the request counter.
async fn observe(State(app): State<App>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let span =
        tracing::info_span!("request", method = %req.method(), route = %route, client = %client);
    let quiet = route == "/healthz" || route == "/metrics";
    let started = std::time::Instant::now();
    let res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    app.metrics().inc(Count::HttpRequest {
        route: &route,
        status,
    });
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

/// 200 `ok`, or 503 `store_unavailable` while the store cannot be read
/// (a stopped database): what a load balancer or a probe takes a node out
/// of rotation on. The probe is one small read, off the executor.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn healthz(State(app): State<App>) -> Response {
    let probe = app.clone();
    let store = tokio::task::spawn_blocking(move || probe.store().setting("visitor_secret")).await;
    let up = match store {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the store cannot be read");
            false
        }
        Err(_) => false,
    };
    let health = Json(Health {
        status: if up { "ok" } else { "store_unavailable" }.into(),
        intents: app.classifier().intents().intents.len(),
    });
    if up {
        health.into_response()
    } else {
        let mut res = (axum::http::StatusCode::SERVICE_UNAVAILABLE, health).into_response();
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::app::error::STORE_RETRY_SECS),
        );
        res
    }
}

/// Rendered off the executor: it reads the store (the outbox's length).
async fn metrics(State(app): State<App>) -> Response {
    match tokio::task::spawn_blocking(move || app.render_metrics()).await {
        Ok(text) => (
            [(header::CONTENT_TYPE, crate::app::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => HttpError::from(ApiError::internal()).into_response(),
    }
}

/// Raises this process's soft limit of open files to its hard limit, so
/// the stock soft 1,024 of many systems does not cap the server's
/// connections (each holds a descriptor). Returns the limit before and
/// after.
#[cfg(unix)]
pub fn raise_open_files_limit() -> std::io::Result<(Option<u64>, Option<u64>)> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok((before, getrlimit(Resource::Nofile).current))
}

/// Elsewhere there is no such limit to raise.
#[cfg(not(unix))]
pub fn raise_open_files_limit() -> std::io::Result<(Option<u64>, Option<u64>)> {
    Ok((None, None))
}

/// Listen backlog: connections the kernel completes before we accept them.
/// std and tokio listen with 128, which a burst of connections (a flood
/// from one client) fills; the kernel then drops new SYNs, and everyone
/// else's connection waits a second for its retry. 1,024 rides out such a
/// burst (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 1024;

/// Listens on `addr` (`host:port`; port 0 picks a free one) with a deep
/// backlog and, as std does on Unix, `SO_REUSEADDR`, so a restart does not
/// wait for the old connections' TIME_WAIT.
pub async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket.bind(a) {
            Ok(()) => return socket.listen(BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr} names no address"),
        )
    }))
}

/// What a connection over `connections_per_ip` gets before it is closed:
/// written whole without reading the request (nothing to wait for), so a
/// client that already sent its request may see a reset instead.
fn too_many_connections() -> Vec<u8> {
    let body = serde_json::json!({"error": {
        "code": "rate_limited",
        "message": "too many open connections from this address",
    }})
    .to_string();
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops taking
/// connections, asks the open ones to finish their request and close, and
/// waits for them (up to 10 s). Also runs the intents watcher, the
/// webhook sender and the retention sweep. HTTP/1.1 only, so the header-read timeout holds from the
/// moment a connection opens (hyper's auto-detection of HTTP/2 would wait
/// for the first bytes without a timer). Raises the process's soft limit
/// of open files first (`raise_open_files_limit`): one descriptor per
/// connection. Bind `listener` with `listen` for a backlog that rides out
/// bursts.
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
    let mailer = tokio::spawn(crate::app::email::run(
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    let sweeper = tokio::spawn(crate::app::retention::run(
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    let facts = tokio::spawn(crate::app::report_cache::run(
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    let presence = tokio::spawn(crate::app::run_presence(
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    let inbox = tokio::spawn(crate::app::inbox::run(
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    let heartbeat = tokio::spawn(crate::app::run_heartbeat(
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    // Every connection task holds a clone; when all are gone, recv() ends.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let timeout = Duration::from_secs(app.config().limits.header_read_timeout_secs);
    match raise_open_files_limit() {
        Ok((before, after)) if before != after => {
            tracing::info!(?before, ?after, "raised the soft limit of open files")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the soft limit of open files"),
    }
    let server = &app.config().server;
    let trusted: Arc<[IpNet]> = server.trusted_proxies.clone().into();
    let forwarded = server.forwarded_header;
    let per_ip = app.config().limits.connections_per_ip;
    let connections = Arc::new(ConnectionCount::default());
    let refusal = too_many_connections();
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
        let peer_ip = peer.ip().to_canonical();
        // A proxy carries many clients, so it is not capped here; the
        // per-IP limits below the accept loop see its clients.
        let slot = if trusted.iter().any(|n| n.contains(peer_ip)) {
            None
        } else {
            match connections.acquire(&peer_ip.to_string(), per_ip, u32::MAX) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(%peer, "too many connections from this address");
                    // The socket's send buffer is empty: this never blocks.
                    let _ = stream.try_write(&refusal);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let trusted = trusted.clone();
        let service = router.clone().map_request(move |mut req: Request<_>| {
            // Per request: a proxy's connection carries many clients.
            let client = client_ip(peer.ip(), req.headers(), &trusted, forwarded);
            let port = if client == peer.ip().to_canonical() {
                peer.port()
            } else {
                0
            };
            // What handlers and per-IP limits know as the peer: the client.
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, port)));
            req
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let alive = alive_tx.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(JsonParseErrors::new(stream)), service)
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
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
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
    let _ = mailer.await;
    let _ = sweeper.await;
    let _ = facts.await;
    let _ = presence.await;
    let _ = inbox.await;
    let _ = heartbeat.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (peer, header lines, expected client) with 127.0.0.1 and 10.0.0.0/8
    /// trusted.
    fn t(header: ForwardedHeader, peer: &str, lines: &[&str], expected: &str) {
        let trusted = [
            IpNet::parse("127.0.0.1").unwrap(),
            IpNet::parse("10.0.0.0/8").unwrap(),
        ];
        let name = match header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let mut headers = HeaderMap::new();
        for l in lines {
            headers.append(name, HeaderValue::from_str(l).unwrap());
        }
        let got = client_ip(peer.parse().unwrap(), &headers, &trusted, header);
        assert_eq!(got.to_string(), expected, "{peer} {lines:?}");
    }

    #[test]
    fn the_client_behind_trusted_proxies() {
        use ForwardedHeader::{Forwarded as F, XForwardedFor as X};
        // An untrusted peer's header is its own word: ignored.
        t(X, "192.0.2.1", &["203.0.113.7"], "192.0.2.1");
        t(F, "192.0.2.1", &["for=203.0.113.7"], "192.0.2.1");
        // A trusted one names the client; the rightmost untrusted wins.
        t(X, "127.0.0.1", &["203.0.113.7"], "203.0.113.7");
        t(
            X,
            "127.0.0.1",
            &["198.51.100.1, 203.0.113.7"],
            "203.0.113.7",
        );
        t(X, "127.0.0.1", &["203.0.113.7, 10.1.2.3"], "203.0.113.7");
        t(
            X,
            "127.0.0.1",
            &["198.51.100.1", "203.0.113.7"],
            "203.0.113.7",
        );
        t(X, "::ffff:127.0.0.1", &["203.0.113.7"], "203.0.113.7");
        t(X, "127.0.0.1", &["203.0.113.7:5555"], "203.0.113.7");
        t(X, "127.0.0.1", &["[2001:db8::1]:5555"], "2001:db8::1");
        t(X, "127.0.0.1", &["2001:db8::1"], "2001:db8::1");
        // Only proxies in the chain: the first of them.
        t(X, "127.0.0.1", &["10.0.0.9, 10.1.2.3"], "10.0.0.9");
        // No header, or garbage where the client should be: the last hop
        // that is known.
        t(X, "127.0.0.1", &[], "127.0.0.1");
        t(X, "127.0.0.1", &["garbage"], "127.0.0.1");
        t(
            X,
            "127.0.0.1",
            &["203.0.113.7, garbage, 10.1.2.3"],
            "10.1.2.3",
        );
        // RFC 7239.
        t(
            F,
            "127.0.0.1",
            &["for=192.0.2.60;proto=http;by=203.0.113.43"],
            "192.0.2.60",
        );
        t(
            F,
            "127.0.0.1",
            &["for=\"[2001:db8:cafe::17]:4711\""],
            "2001:db8:cafe::17",
        );
        t(
            F,
            "127.0.0.1",
            &["For=198.51.100.1, for=203.0.113.7"],
            "203.0.113.7",
        );
        t(F, "127.0.0.1", &["for=unknown"], "127.0.0.1");
        t(F, "127.0.0.1", &["proto=https"], "127.0.0.1");
        // The header not configured is not read.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        let trusted = [IpNet::parse("127.0.0.1").unwrap()];
        let peer = "127.0.0.1".parse().unwrap();
        assert_eq!(client_ip(peer, &h, &trusted, F), peer);
    }
}

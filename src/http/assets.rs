//! The web pages and the widget, compiled into the binary (`web-widget/`):
//! `/` a sample shop page with the widget on it, `/widget.js` for host
//! pages, `/agent` the agent console, `/admin` the admin page. Our own
//! pages are served with a strict Content-Security-Policy: they have no
//! inline script or style, so they need none of the `unsafe-` sources.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::App;

const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(body: &'static str, content_type: &'static str, page: bool) -> Response {
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    let h = res.headers_mut();
    if page {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(PAGE_CSP),
        );
    } else {
        // The widget and the stylesheets are loaded by pages of other
        // origins.
        h.insert(
            "cross-origin-resource-policy",
            header::HeaderValue::from_static("cross-origin"),
        );
    }
    res
}

macro_rules! serve {
    ($file:literal, $type:expr, $page:expr) => {
        get(|| async {
            asset(
                include_str!(concat!("../../web-widget/", $file)),
                $type,
                $page,
            )
        })
    };
}

/// The widget's source, for size checks.
pub const WIDGET_JS: &str = include_str!("../../web-widget/widget.js");

pub fn router() -> Router<App> {
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    const HTML: &str = "text/html; charset=utf-8";
    Router::new()
        .route("/", serve!("index.html", HTML, true))
        .route("/demo.css", serve!("demo.css", CSS, false))
        .route("/widget.js", serve!("widget.js", JS, false))
        .route("/agent", serve!("agent.html", HTML, true))
        .route("/agent.js", serve!("agent.js", JS, false))
        .route("/admin", serve!("admin.html", HTML, true))
        .route("/admin.js", serve!("admin.js", JS, false))
        .route("/app.css", serve!("app.css", CSS, false))
        .route(
            "/favicon.ico",
            serve!("favicon.svg", "image/svg+xml", false),
        )
}

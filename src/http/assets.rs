//! The web pages and the widget, compiled into the binary (`web-widget/`):
//! `/` a sample shop page with the widget on it, `/widget.js` for host
//! pages, `/agent` the agent console, `/admin` the admin page, `/reports`
//! the reports page (both on `/admin-common.js`, their shared helper). Our own
//! pages are served with a strict Content-Security-Policy: they have no
//! inline script or style, so they need none of the `unsafe-` sources.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::App;
use crate::conversation::Texts;

const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(body: impl Into<axum::body::Body>, content_type: &'static str, page: bool) -> Response {
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.into(),
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

/// Where the served widget gets its strings (`[texts]` in its language).
const WIDGET_TEXTS: &str = "var SERVED = {};";

/// The widget with the texts filled in: `{"lang": "de", "strings": {…}}`.
pub fn widget_js(texts: &Texts) -> String {
    widget_js_with(texts, None)
}

/// `widget_js` with what the server's configuration lets the widget offer
/// (`"config": {"email": …, "prechat": …}`, as `GET /api/v1/widget`).
pub fn widget_js_with(texts: &Texts, config: Option<&super::email::WidgetConfig>) -> String {
    let strings: serde_json::Map<String, serde_json::Value> = texts
        .widget()
        .into_iter()
        .map(|(name, text)| (name.to_string(), text.into()))
        .collect();
    let mut served = serde_json::json!({ "lang": texts.language.code(), "strings": strings });
    if let Some(c) = config {
        served["config"] = serde_json::to_value(c).unwrap_or_default();
    }
    let served = served
        .to_string()
        // JSON allows these two in strings, older JavaScript does not.
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    WIDGET_JS.replacen(WIDGET_TEXTS, &format!("var SERVED = {served};"), 1)
}

async fn widget(State(app): State<App>) -> Response {
    asset(
        widget_js_with(
            &app.config().texts,
            Some(&super::email::widget_config(&app)),
        ),
        "text/javascript; charset=utf-8",
        false,
    )
}

pub fn router() -> Router<App> {
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    const HTML: &str = "text/html; charset=utf-8";
    Router::new()
        .route("/", serve!("index.html", HTML, true))
        .route("/demo.css", serve!("demo.css", CSS, false))
        .route("/widget.js", get(widget))
        .route("/agent", serve!("agent.html", HTML, true))
        .route("/agent.js", serve!("agent.js", JS, false))
        .route("/agent-people.js", serve!("agent-people.js", JS, false))
        .route("/admin-agents.js", serve!("admin-agents.js", JS, false))
        .route("/agent-attach.js", serve!("agent-attach.js", JS, false))
        .route("/agent-canned.js", serve!("agent-canned.js", JS, false))
        .route("/agent-inbox.js", serve!("agent-inbox.js", JS, false))
        .route("/admin", serve!("admin.html", HTML, true))
        .route("/admin-common.js", serve!("admin-common.js", JS, false))
        .route("/admin.js", serve!("admin.js", JS, false))
        .route("/improve.js", serve!("improve.js", JS, false))
        .route("/replay.js", serve!("replay.js", JS, false))
        .route("/admin-canned.js", serve!("admin-canned.js", JS, false))
        .route("/reports", serve!("reports.html", HTML, true))
        .route("/reports.js", serve!("reports.js", JS, false))
        .route("/app.css", serve!("app.css", CSS, false))
        .route(
            "/favicon.ico",
            serve!("favicon.svg", "image/svg+xml", false),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Language;

    /// The admin pages share one helper script (token, API calls,
    /// elements, the log-in form): loaded before each page's own scripts,
    /// and no page script carries a copy of it.
    #[test]
    fn the_admin_pages_share_one_helper_script() {
        let pages = [
            (
                include_str!("../../web-widget/admin.html"),
                &[
                    "/admin.js",
                    "/improve.js",
                    "/replay.js",
                    "/admin-agents.js",
                    "/admin-canned.js",
                ][..],
            ),
            (
                include_str!("../../web-widget/reports.html"),
                &["/reports.js"][..],
            ),
        ];
        for (html, scripts) in pages {
            let common = html
                .find("src=\"/admin-common.js\"")
                .expect("loads the helper");
            for s in scripts {
                let at = html.find(&format!("src=\"{s}\"")).expect(s);
                assert!(common < at, "{s} is loaded after the helper");
            }
            assert!(
                !html.contains("id=\"login-form\""),
                "the helper draws the log-in"
            );
        }
        for (name, js) in [
            ("admin.js", include_str!("../../web-widget/admin.js")),
            ("improve.js", include_str!("../../web-widget/improve.js")),
            ("replay.js", include_str!("../../web-widget/replay.js")),
            (
                "admin-agents.js",
                include_str!("../../web-widget/admin-agents.js"),
            ),
            (
                "admin-canned.js",
                include_str!("../../web-widget/admin-canned.js"),
            ),
            ("reports.js", include_str!("../../web-widget/reports.js")),
        ] {
            for copy in [
                "function api(",
                "function el(",
                "function svg(",
                "localStorage",
            ] {
                assert!(!js.contains(copy), "{name} has its own `{copy}`");
            }
        }
    }

    #[test]
    fn the_widget_is_served_with_the_texts_of_its_language() {
        assert_eq!(WIDGET_JS.matches(WIDGET_TEXTS).count(), 1, "one marker");
        let mut de = Texts::builtin(Language::De);
        de.widget_send = "Los \u{2028} </script>".into();
        let js = widget_js(&de);
        assert!(!js.contains(WIDGET_TEXTS));
        let line = js.lines().find(|l| l.contains("var SERVED = ")).unwrap();
        let json = line
            .trim()
            .trim_start_matches("var SERVED = ")
            .trim_end_matches(';');
        let served: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(served["lang"], "de");
        assert_eq!(served["strings"]["person"], "Mit einem Menschen sprechen");
        assert_eq!(served["strings"]["send"], "Los \u{2028} </script>");
        assert!(!line.contains('\u{2028}'));
        // Every string the widget reads is served.
        for name in WIDGET_JS
            .split("S.")
            .skip(1)
            .map(|r| r.split(|c: char| !c.is_alphanumeric()).next().unwrap_or(""))
            .filter(|n| !n.is_empty())
        {
            assert!(served["strings"].get(name).is_some(), "S.{name}");
        }
        let calls = WIDGET_JS.match_indices("t('").filter(|(i, _)| {
            !WIDGET_JS[..*i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric())
        });
        for (i, _) in calls {
            let name = WIDGET_JS[i + 3..].split('\'').next().unwrap();
            assert!(served["strings"].get(name).is_some(), "t('{name}')");
        }
    }
}

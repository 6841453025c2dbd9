//! Calls to the shop's backend (README, "Actions"): the I/O half of an
//! action. `conversation::planned_call` decides that a visitor's message
//! needs a call (and with which slots); this file makes it, signed and
//! under the action's deadline, and hands the outcome to the pure step
//! (`conversation::step_with`), which renders the answer or fails as the
//! action says.
//!
//! It runs on the request's blocking thread (`http::blocking`), never on
//! the async executor: the visitor's send waits for it, and other
//! conversations do not. Each call opens its own connection (no pool): a
//! pooled connection would outlive the runtime it was made on in tests,
//! and one connection per answered order question is cheap.
//!
//! Secrets (header values, the signing secret) are read here from the
//! config and go only into the request: nothing here logs a header, and
//! what is kept of a call (`ActionRecord`, the failure line shown to the
//! agent) holds the action's name, outcome and latency, never a value.

use std::time::Instant;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{auth, App};
use crate::action::{parse_reply, signed_payload, Called, HeaderValue, Outcome, Plan};
use crate::conversation::{planned_call, Conversation, Input, Rules};

impl App {
    /// The call `input` needs on `conv`, made; `None` when actions are off
    /// or the input needs none.
    pub(super) fn call_for(&self, conv: &Conversation, input: &Input) -> Option<Called> {
        let actions = &self.inner.config.actions;
        actions.signing_secret.as_ref()?;
        let classifier = self.classifier();
        let rules = Rules {
            escalation: &self.inner.config.escalation,
            texts: &self.inner.config.texts,
        };
        let plan = planned_call(conv, input, &classifier, &rules)?;
        Some(self.call_action(&plan))
    }

    /// Makes the call `plan` asks for, within its deadline.
    pub(super) fn call_action(&self, plan: &Plan) -> Called {
        let started = Instant::now();
        let outcome = match self.request(plan) {
            Ok(req) => {
                let deadline = plan.call.timeout;
                let fut = async move {
                    match tokio::time::timeout(deadline, send(req)).await {
                        Err(_) => Outcome::Timeout,
                        Ok(o) => o,
                    }
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(h) => h.block_on(fut),
                    Err(_) => match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(fut),
                        Err(e) => Outcome::Unreachable(format!("no runtime: {e}")),
                    },
                }
            }
            Err(why) => Outcome::Unreachable(why),
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        let name = plan.call.name.as_str();
        match &outcome {
            Outcome::Reply(_) | Outcome::NotFound => {
                tracing::info!(action = name, latency_ms, "action called")
            }
            other => tracing::warn!(
                action = name,
                latency_ms,
                outcome = %describe(other),
                "action failed"
            ),
        }
        Called {
            action: plan.call.name.clone(),
            slots: plan.slots.clone(),
            outcome,
            latency_ms,
        }
    }

    /// The signed request; an error names what is missing (never a value).
    fn request(&self, plan: &Plan) -> Result<hyper::Request<Full<Bytes>>, String> {
        let actions = &self.inner.config.actions;
        let Some(signing) = &actions.signing_secret else {
            return Err("actions are off (no [actions] signing_secret)".into());
        };
        let url = plan.url(actions.base_url.as_deref().unwrap_or(""));
        if url.starts_with('/') {
            return Err("the action's url is a path and [actions] base_url is not set".into());
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("bad url for action `{}`: {e}", plan.call.name))?;
        if uri.scheme_str() != Some("http") {
            return Err("only http:// backends are called (README, \"Actions\")".into());
        }
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let body = plan.body();
        let timestamp = super::now_ms() / 1000;
        let method = plan.call.method;
        let signature = auth::sign(
            signing.0.as_bytes(),
            &signed_payload(timestamp, method, &path_and_query, &body),
        );
        let mut req = hyper::Request::builder()
            .method(method.as_str())
            .uri(uri)
            .header("accept", "application/json")
            .header(
                "user-agent",
                concat!("frontdesk/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-frontdesk-action", plan.call.name.as_str())
            .header("x-frontdesk-timestamp", timestamp.to_string())
            .header("x-frontdesk-signature", format!("sha256={signature}"));
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        for (name, value) in &plan.call.headers {
            let v = match value {
                HeaderValue::Literal(s) => s.clone(),
                HeaderValue::Secret(n) => match actions.secrets.get(n) {
                    Some(s) => s.0.clone(),
                    None => {
                        return Err(format!(
                        "secret `{n}` is not configured ([actions.secrets] or FRONTDESK_SECRET_{})",
                        n.to_uppercase()
                    ))
                    }
                },
            };
            let mut hv = hyper::header::HeaderValue::from_str(&v)
                .map_err(|_| format!("header `{name}` has a value HTTP cannot carry"))?;
            if matches!(value, HeaderValue::Secret(_)) {
                hv.set_sensitive(true);
            }
            req = req.header(name.as_str(), hv);
        }
        req.body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request for action `{}`: {e}", plan.call.name))
    }
}

/// Sends `req` and reads at most `MAX_REPLY_BYTES` of the reply.
async fn send(req: hyper::Request<Full<Bytes>>) -> Outcome {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let res = match client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            // The error's chain, without the request (no header is in it).
            let mut why = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                why.push_str(": ");
                why.push_str(&s.to_string());
                src = s.source();
            }
            return Outcome::Unreachable(why);
        }
    };
    let status = res.status().as_u16();
    let body = Limited::new(res.into_body(), crate::action::MAX_REPLY_BYTES);
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Outcome::TooLarge;
            }
            return Outcome::Unreachable(format!("reading the reply: {e}"));
        }
    };
    match status {
        200..=299 => parse_reply(&bytes),
        404 => Outcome::NotFound,
        s => Outcome::Status(s),
    }
}

/// An outcome for the log: its kind, and the cause of an unreachable
/// backend (never the reply).
fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Reply(_) => "ok".into(),
        Outcome::NotFound => "not_found".into(),
        Outcome::Status(s) => format!("status {s}"),
        Outcome::Timeout => "timeout".into(),
        Outcome::BadJson => "bad_json".into(),
        Outcome::TooLarge => "too_large".into(),
        Outcome::Unreachable(why) => format!("unreachable: {why}"),
        Outcome::NotCalled => "not_called".into(),
    }
}

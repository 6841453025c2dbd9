//! Actions: an intent that answers from the shop's own backend (README,
//! "Actions"). This module owns the `[call]` table of an intent file (raw
//! and validated), the reply template language (`template`), and the pure
//! halves of a call: the request's URL and body from the slots, and the
//! answer (or the failure) from what came back (`respond`). It does no I/O:
//! the HTTP request is `app::action`'s, the decision to call is
//! `conversation::machine`'s. It depends on `util` only, so `intents`,
//! `conversation` and `app` may all use it.
//!
//! Secrets never live here: a header whose value is secret is a reference
//! (`{ secret = "shop_api_key" }`) that the app resolves from
//! `frontdesk.toml`'s `[actions.secrets]` or the environment at call time,
//! and a literal that looks like a secret is a load error.

pub mod template;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toml::Spanned;

pub use template::{Template, TemplateError};

/// The most bytes of a reply body read; a longer reply is a failure
/// (`too_large`), never parsed.
pub const MAX_REPLY_BYTES: usize = 256 * 1024;
/// The longest deadline an action may ask for: a visitor is waiting.
pub const MAX_TIMEOUT_MS: u64 = 10_000;
/// The deadline when the intent names none.
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;

/// `[call]` in an intent file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCall {
    /// Stable name for logs and decisions; the intent's id when absent.
    pub name: Option<Spanned<String>>,
    /// `GET` (default) or `POST` (the slots as a JSON object).
    pub method: Option<Spanned<String>>,
    /// `http://…`, or a path (`/orders/{order_id}`) joined to
    /// `[actions] base_url`; `{slot}` placeholders are percent-encoded.
    pub url: Spanned<String>,
    pub timeout_ms: Option<Spanned<u64>>,
    /// Header name → a literal (`"application/json"`) or a secret
    /// reference (`{ secret = "shop_api_key" }`).
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<RawHeader>>,
    /// The answer, a template over the JSON reply (see `template`).
    pub reply: Spanned<String>,
    /// The name the reply goes by in the template (`order` for
    /// `{{order.status}}`); `reply` when absent.
    pub reply_as: Option<Spanned<String>>,
    /// A sample reply (JSON): when given, fields the template reads that
    /// the sample lacks are load errors.
    pub sample: Option<Spanned<String>>,
    /// On a timeout, an error status or a malformed reply: `answer` (say
    /// `error_answer`) or `handoff` (say `error_answer` if given, then hand
    /// off with the reason `backend_error`).
    pub on_error: Option<Spanned<String>>,
    pub error_answer: Option<Spanned<String>>,
    /// Said on a 404, and when the second fact does not match (the same
    /// words, so a wrong guess learns nothing).
    pub not_found_answer: Option<Spanned<String>>,
    /// A fact the visitor must give before the call unless their identity
    /// is verified: a slot of the intent, compared with a field of the reply.
    pub second_fact: Option<Spanned<RawFact>>,
    /// The reply's field that holds the shop's own customer id: a visitor
    /// the shop verified (`identify()`, README "Identity verification") is
    /// answered without a second fact when it equals their proven id. With
    /// no `second_fact`, only verified visitors are answered.
    pub verified_field: Option<Spanned<String>>,
    /// Said instead of calling to a visitor who is not verified, when the
    /// action has `verified_field` and no `second_fact`.
    pub unverified_answer: Option<Spanned<String>>,
}

/// A header value: a literal or a reference to a secret.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawHeader {
    Literal(String),
    Secret { secret: String },
}

/// `second_fact = { slot = "order_email", field = "billing.email" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFact {
    pub slot: String,
    pub field: String,
}

/// `GET` or `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A header's value as the intent names it.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Literal(String),
    /// The name of a secret, resolved by the app when calling.
    Secret(String),
}

/// What a failed call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Answer,
    Handoff,
}

/// The second fact: `slot`'s value must equal the reply's `field`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub slot: String,
    pub field: Vec<String>,
}

/// A validated `[call]`.
#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub method: Method,
    pub url: String,
    pub timeout: Duration,
    pub headers: Vec<(String, HeaderValue)>,
    pub reply: Template,
    pub reply_as: String,
    pub on_error: OnError,
    pub error_answer: Option<String>,
    pub not_found_answer: String,
    pub second_fact: Option<Fact>,
    /// The reply's field a verified visitor's id must equal.
    pub verified_field: Option<Vec<String>>,
    pub unverified_answer: String,
}

/// What a visitor who is not verified hears from an action that answers
/// verified visitors only, when the intent gives no `unverified_answer`.
pub const UNVERIFIED_ANSWER: &str =
    "For your privacy I can only look that up when you're signed in to your account. Please sign in and ask me again.";

/// The answer on a 404 or a wrong second fact when the intent gives none.
pub const NOT_FOUND_ANSWER: &str =
    "I couldn't find an order with those details. Please check them and try again.";

/// A problem in a `[call]` table, at a byte range of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub span: Range<usize>,
    pub message: String,
}

fn problem(span: Range<usize>, message: impl Into<String>) -> Problem {
    Problem {
        span,
        message: message.into(),
    }
}

/// Byte offset in the file of the first character of the string value at
/// `span` (past its opening quotes; a newline right after `'''` or `"""` is
/// not part of the value). Exact unless the string has escapes before the
/// place meant.
fn content_start(source: &str, span: &Range<usize>) -> usize {
    let raw = source.get(span.clone()).unwrap_or("");
    let q = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        3
    } else {
        1
    };
    let mut at = span.start + q;
    if q == 3 {
        if source[at.min(source.len())..].starts_with("\r\n") {
            at += 2;
        } else if source[at.min(source.len())..].starts_with('\n') {
            at += 1;
        }
    }
    at
}

/// Words in a header or query name that mark its value as a credential.
const SECRET_NAMES: [&str; 8] = [
    "authorization",
    "cookie",
    "key",
    "token",
    "secret",
    "password",
    "signature",
    "auth",
];

/// Whether a literal value looks like a credential: an auth scheme, a
/// known key prefix, or a long run of letters and digits.
pub fn looks_secret(name: &str, value: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if SECRET_NAMES.iter().any(|w| name.contains(w)) && !value.trim().is_empty() {
        return true;
    }
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if ["bearer ", "basic ", "token "]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return true;
    }
    if ["ck_", "cs_", "sk_", "pk_live", "ghp_", "xox"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return true;
    }
    let longest_run = v
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    longest_run >= 32
}

/// Checks a `[call]` against the intent's slot names; `source` is the
/// file's text (for template positions).
pub fn compile(
    raw: &RawCall,
    intent_id: &str,
    slots: &[String],
    source: &str,
) -> Result<Call, Vec<Problem>> {
    let mut errors = Vec::new();
    let name = raw
        .name
        .as_ref()
        .map(|n| n.get_ref().trim().to_string())
        .unwrap_or_else(|| intent_id.to_string());
    if let Some(n) = &raw.name {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            errors.push(problem(
                n.span(),
                format!("bad action name `{name}`: use lowercase letters, digits and `_`"),
            ));
        }
    }
    let method = match raw
        .method
        .as_ref()
        .map(|m| m.get_ref().to_ascii_uppercase())
    {
        None => Method::Get,
        Some(m) if m == "GET" => Method::Get,
        Some(m) if m == "POST" => Method::Post,
        Some(m) => {
            let span = raw.method.as_ref().map(|s| s.span()).unwrap_or_default();
            errors.push(problem(
                span,
                format!("unknown method `{m}`: expected GET or POST"),
            ));
            Method::Get
        }
    };
    let url = raw.url.get_ref().trim().to_string();
    let url_span = raw.url.span();
    if url.starts_with("https://") {
        errors.push(problem(
            url_span.clone(),
            "https:// is not supported by this build: call the backend over http:// on a private network, or through a local TLS relay (README, \"Actions\")",
        ));
    } else if !(url.starts_with("http://") || url.starts_with('/')) {
        errors.push(problem(
            url_span.clone(),
            format!(
                "url `{url}` must start with http:// or with `/` (joined to [actions] base_url)"
            ),
        ));
    }
    match crate::action::placeholders_of(&url) {
        None => errors.push(problem(url_span.clone(), "unclosed `{` in url")),
        Some(names) => {
            for n in names {
                if !slots.iter().any(|s| s == n) {
                    errors.push(problem(
                        url_span.clone(),
                        format!("url placeholder `{{{n}}}` is provided by no slot (declare it in [[slots]])"),
                    ));
                }
            }
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !v.starts_with('{') && looks_secret(k, v) {
                errors.push(problem(
                    url_span.clone(),
                    format!("url parameter `{k}` looks like a secret: secrets go in a header as `{{ secret = \"name\" }}`, with the value in frontdesk.toml [actions.secrets]"),
                ));
            }
        }
    }
    let timeout_ms = match &raw.timeout_ms {
        None => DEFAULT_TIMEOUT_MS,
        Some(t) => {
            let v = *t.get_ref();
            if v == 0 || v > MAX_TIMEOUT_MS {
                errors.push(problem(
                    t.span(),
                    format!("timeout_ms {v} is outside 1..={MAX_TIMEOUT_MS}"),
                ));
            }
            v
        }
    };
    let mut headers = Vec::new();
    for (k, v) in &raw.headers {
        let valid_name = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            errors.push(problem(v.span(), format!("bad header name `{k}`")));
            continue;
        }
        if k.to_ascii_lowercase().starts_with("x-frontdesk-") {
            errors.push(problem(
                v.span(),
                format!("header `{k}` is frontdesk's own (the signature)"),
            ));
            continue;
        }
        match v.get_ref() {
            RawHeader::Literal(s) => {
                if looks_secret(k, s) {
                    errors.push(problem(
                        v.span(),
                        format!("header `{k}` looks like a secret: write `{k} = {{ secret = \"name\" }}` and put the value in frontdesk.toml [actions.secrets] or FRONTDESK_SECRET_NAME"),
                    ));
                } else if s.chars().any(|c| c.is_control()) {
                    errors.push(problem(
                        v.span(),
                        format!("header `{k}` has a control character"),
                    ));
                } else {
                    headers.push((k.clone(), HeaderValue::Literal(s.clone())));
                }
            }
            RawHeader::Secret { secret } => {
                if !crate::action::secret_name_ok(secret) {
                    errors.push(problem(
                        v.span(),
                        format!(
                            "bad secret name `{secret}`: use lowercase letters, digits and `_`"
                        ),
                    ));
                } else {
                    headers.push((k.clone(), HeaderValue::Secret(secret.clone())));
                }
            }
        }
    }
    let reply_as = raw
        .reply_as
        .as_ref()
        .map(|r| r.get_ref().clone())
        .unwrap_or_else(|| "reply".to_string());
    if let Some(r) = &raw.reply_as {
        if !secret_name_ok(&reply_as) || reply_as == "slot" {
            errors.push(problem(
                r.span(),
                format!("bad reply_as `{reply_as}`: lowercase letters, digits and `_`, not `slot`"),
            ));
        }
    }
    let reply_start = content_start(source, &raw.reply.span());
    let reply = match Template::parse(raw.reply.get_ref()) {
        Ok(t) => Some(t),
        Err(e) => {
            let at = reply_start + e.offset;
            errors.push(problem(at..at, format!("in `reply`: {}", e.message)));
            None
        }
    };
    if let (Some(t), Some(sample)) = (&reply, &raw.sample) {
        match serde_json::from_str::<Value>(sample.get_ref()) {
            Err(e) => errors.push(problem(sample.span(), format!("`sample` is not JSON: {e}"))),
            Ok(v) => {
                let data = template_data(&reply_as, v, slots.iter().map(|s| (s.as_str(), "x")));
                for e in t.unknown_fields(&data) {
                    let at = reply_start + e.offset;
                    errors.push(problem(at..at, format!("in `reply`: {}", e.message)));
                }
            }
        }
    }
    let on_error = match raw.on_error.as_ref().map(|o| o.get_ref().as_str()) {
        None | Some("handoff") => OnError::Handoff,
        Some("answer") => OnError::Answer,
        Some(other) => {
            let span = raw.on_error.as_ref().map(|s| s.span()).unwrap_or_default();
            errors.push(problem(
                span,
                format!("unknown on_error `{other}`: expected answer or handoff"),
            ));
            OnError::Handoff
        }
    };
    let error_answer = raw
        .error_answer
        .as_ref()
        .map(|a| a.get_ref().trim().to_string())
        .filter(|a| !a.is_empty());
    if on_error == OnError::Answer && error_answer.is_none() {
        let span = raw.on_error.as_ref().map(|s| s.span()).unwrap_or_default();
        errors.push(problem(
            span,
            "on_error = \"answer\" needs `error_answer` (what the bot says when the backend fails)",
        ));
    }
    let second_fact = raw.second_fact.as_ref().and_then(|f| {
        let r = f.get_ref();
        if !slots.contains(&r.slot) {
            errors.push(problem(
                f.span(),
                format!("second_fact slot `{}` is not declared in [[slots]]", r.slot),
            ));
            return None;
        }
        if url.contains(&format!("{{{}}}", r.slot)) {
            errors.push(problem(
                f.span(),
                format!("second_fact slot `{}` must not be sent in the url: it is checked here, against the reply", r.slot),
            ));
        }
        let field: Vec<String> = r.field.split('.').map(str::to_string).collect();
        if field.iter().any(String::is_empty) {
            errors.push(problem(f.span(), format!("bad field `{}`", r.field)));
            return None;
        }
        Some(Fact {
            slot: r.slot.clone(),
            field,
        })
    });
    let verified_field = raw.verified_field.as_ref().and_then(|f| {
        let field: Vec<String> = f.get_ref().split('.').map(str::to_string).collect();
        if field.iter().any(String::is_empty) {
            errors.push(problem(f.span(), format!("bad field `{}`", f.get_ref())));
            return None;
        }
        Some(field)
    });
    if let (Some(a), None) = (&raw.unverified_answer, &raw.verified_field) {
        errors.push(problem(
            a.span(),
            "unverified_answer needs `verified_field` (the reply's customer id a verified visitor must match)",
        ));
    }
    match (errors.is_empty(), reply) {
        (true, Some(reply)) => Ok(Call {
            name,
            method,
            url,
            timeout: Duration::from_millis(timeout_ms),
            headers,
            reply,
            reply_as,
            on_error,
            error_answer,
            not_found_answer: raw
                .not_found_answer
                .as_ref()
                .map(|a| a.get_ref().trim().to_string())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| NOT_FOUND_ANSWER.to_string()),
            second_fact,
            verified_field,
            unverified_answer: raw
                .unverified_answer
                .as_ref()
                .map(|a| a.get_ref().trim().to_string())
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| UNVERIFIED_ANSWER.to_string()),
        }),
        _ => Err(errors),
    }
}

/// A secret's (or `reply_as`'s) name: lowercase letters, digits, `_`.
pub fn secret_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The `{name}` placeholders of a URL; `None` when a `{` is unclosed.
pub fn placeholders_of(url: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = url;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let j = after.find('}')?;
        out.push(&after[..j]);
        rest = &after[j + 1..];
    }
    Some(out)
}

/// The data a reply template sees: the reply under `reply_as`, the slots
/// under `slot`.
pub fn template_data<'a>(
    reply_as: &str,
    reply: Value,
    slots: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Value {
    let slots: serde_json::Map<String, Value> = slots
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let mut root = serde_json::Map::new();
    root.insert("slot".into(), Value::Object(slots));
    root.insert(reply_as.to_string(), reply);
    Value::Object(root)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What to call: the action, and the slot values it was decided with.
#[derive(Debug, Clone)]
pub struct Plan {
    pub intent: String,
    pub call: Arc<Call>,
    /// Every slot value the answer has (the second fact included).
    pub slots: Vec<(String, String)>,
}

impl Plan {
    /// The URL with the slots filled in (percent-encoded), joined to
    /// `base` when it is a path.
    pub fn url(&self, base: &str) -> String {
        let mut url = self.call.url.clone();
        for (k, v) in &self.slots {
            url = url.replace(&format!("{{{k}}}"), &encode(v));
        }
        if url.starts_with('/') {
            format!("{}{url}", base.trim_end_matches('/'))
        } else {
            url
        }
    }

    /// The POST body: the slots the call sends (all but the second fact),
    /// as a JSON object. Empty for GET.
    pub fn body(&self) -> Vec<u8> {
        if self.call.method == Method::Get {
            return Vec::new();
        }
        let fact = self.call.second_fact.as_ref().map(|f| f.slot.as_str());
        let m: serde_json::Map<String, Value> = self
            .slots
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != fact)
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
    }
}

/// What the backend did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx with a JSON body.
    Reply(Value),
    /// A 404: no such order.
    NotFound,
    /// Another status.
    Status(u16),
    /// No answer before the deadline.
    Timeout,
    /// A 2xx whose body is not JSON (or not UTF-8).
    BadJson,
    /// A body over `MAX_REPLY_BYTES`.
    TooLarge,
    /// No connection, or the request could not be made; the cause is for
    /// the agent and the log (it never holds a secret).
    Unreachable(String),
    /// The call was not made: the conversation was decided again after a
    /// concurrent write and no longer matched the call that was made.
    NotCalled,
}

/// A call made, handed to the pure step.
#[derive(Debug, Clone, PartialEq)]
pub struct Called {
    pub action: String,
    /// The slots the call was made with (must match the step's).
    pub slots: Vec<(String, String)>,
    pub outcome: Outcome,
    pub latency_ms: u64,
}

/// A call as a bot turn's decision keeps it: never the reply, never a
/// secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// The action's name.
    pub name: String,
    /// `ok`, `not_found`, `fact_mismatch`, `not_owner` (a verified visitor's
    /// id is not the reply's `verified_field`), `unverified` (not called: the
    /// action answers verified visitors only), `status`, `timeout`,
    /// `bad_json`, `too_large`, `unreachable`, `not_called`.
    pub outcome: String,
    /// The HTTP status, when the outcome is `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
}

/// What the bot does with a call's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// The rendered reply.
    Answer(String),
    /// No such order, or the second fact does not match: the same words.
    NotFound(String),
    /// The backend failed: say `answer` (if any), hand off if `handoff`;
    /// `failure` is for the agent.
    Failed {
        answer: Option<String>,
        handoff: bool,
        failure: String,
    },
}

/// Lowercase, without blanks: how a second fact is compared.
fn fact_form(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// What the reply must show before it is rendered (`conversation::may_call`
/// decides which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof<'a> {
    /// Nothing: the action declares no check.
    None,
    /// The second fact, among the slots, equals the reply's `second_fact.field`.
    Fact,
    /// The reply's `verified_field` equals this verified visitor id.
    Owner(&'a str),
}

/// The value at `path` in `v`, as text (a number's digits too: customer
/// ids are often numbers in JSON).
fn field_text(v: &Value, path: &[String]) -> Option<String> {
    let mut at = v;
    for seg in path {
        at = at.get(seg)?;
    }
    match at {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The answer to a call made: pure, from the call, the outcome, the slots
/// (the second fact among them when `proof` is `Fact`) and the proof the
/// reply must show.
pub fn respond(
    call: &Call,
    called: &Called,
    slots: &[(String, String)],
    proof: Proof<'_>,
) -> (Response, ActionRecord) {
    let record = |outcome: &str, status: Option<u16>| ActionRecord {
        name: call.name.clone(),
        outcome: outcome.to_string(),
        status,
        latency_ms: called.latency_ms,
    };
    let failed = |failure: String| Response::Failed {
        answer: call.error_answer.clone(),
        handoff: call.on_error == OnError::Handoff,
        failure: format!("action `{}`: {failure}", call.name),
    };
    match &called.outcome {
        Outcome::Reply(v) => {
            let proven = match (proof, &call.second_fact, &call.verified_field) {
                (Proof::Fact, Some(fact), _) => {
                    let given = slots.iter().find(|(k, _)| *k == fact.slot).map(|(_, v)| v);
                    match (given, field_text(v, &fact.field)) {
                        (Some(g), Some(want)) => {
                            !want.trim().is_empty() && fact_form(g) == fact_form(&want)
                        }
                        _ => false,
                    }
                }
                (Proof::Owner(id), _, Some(field)) => {
                    // The id is the shop's own, proven: compared exactly.
                    field_text(v, field).is_some_and(|want| !want.is_empty() && want == id)
                }
                (Proof::None, _, _) => true,
                // A proof the action cannot check: nothing is revealed.
                _ => false,
            };
            if !proven {
                let outcome = match proof {
                    Proof::Owner(_) => "not_owner",
                    _ => "fact_mismatch",
                };
                return (
                    Response::NotFound(call.not_found_answer.clone()),
                    record(outcome, None),
                );
            }
            let fact = call.second_fact.as_ref().map(|f| f.slot.as_str());
            let data = template_data(
                &call.reply_as,
                v.clone(),
                slots
                    .iter()
                    .filter(|(k, _)| Some(k.as_str()) != fact)
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let text = call.reply.render(&data);
            if text.trim().is_empty() {
                return (
                    failed("the reply rendered as nothing".into()),
                    record("bad_json", None),
                );
            }
            (Response::Answer(text), record("ok", None))
        }
        Outcome::NotFound => (
            Response::NotFound(call.not_found_answer.clone()),
            record("not_found", None),
        ),
        Outcome::Status(s) => (
            failed(format!("the backend answered status {s}")),
            record("status", Some(*s)),
        ),
        Outcome::Timeout => (
            failed(format!("no answer within {} ms", call.timeout.as_millis())),
            record("timeout", None),
        ),
        Outcome::BadJson => (
            failed("the reply is not JSON".into()),
            record("bad_json", None),
        ),
        Outcome::TooLarge => (
            failed(format!("the reply is over {MAX_REPLY_BYTES} bytes")),
            record("too_large", None),
        ),
        Outcome::Unreachable(why) => (
            failed(format!("backend unreachable: {why}")),
            record("unreachable", None),
        ),
        Outcome::NotCalled => (
            failed("not called (the conversation changed meanwhile)".into()),
            record("not_called", None),
        ),
    }
}

/// Parses a reply body: bounded, UTF-8, JSON. Never panics.
pub fn parse_reply(body: &[u8]) -> Outcome {
    if body.len() > MAX_REPLY_BYTES {
        return Outcome::TooLarge;
    }
    match std::str::from_utf8(body)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        Some(v) => Outcome::Reply(v),
        None => Outcome::BadJson,
    }
}

/// The string a request's signature covers:
/// `{timestamp}\n{METHOD}\n{path and query}\n{body}`. The backend
/// recomputes it and compares HMAC-SHA256 with the shared secret
/// (`X-Frontdesk-Signature: sha256=<hex>`), and refuses a timestamp far
/// from its clock (a replayed request).
pub fn signed_payload(
    timestamp: i64,
    method: Method,
    path_and_query: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{timestamp}\n{}\n{path_and_query}\n", method.as_str()).into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(extra: &str) -> (String, RawCall) {
        let src = format!("url = \"/orders/{{order_id}}\"\nreply = \"Order {{{{order.status}}}}\"\nreply_as = \"order\"\n{extra}");
        let r: RawCall = toml::from_str(&src).expect("toml");
        (src, r)
    }

    fn slots() -> Vec<String> {
        vec!["order_id".into(), "email".into()]
    }

    #[test]
    fn secrets_in_intent_files_are_refused() {
        for extra in [
            "headers = { Authorization = \"Bearer abc\" }",
            "headers = { X-Api-Key = \"hello\" }",
            "headers = { X-Thing = \"ck_1234\" }",
            "headers = { X-Thing = \"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z\" }",
        ] {
            let (src, r) = raw(extra);
            let errs = compile(&r, "order_status", &slots(), &src).expect_err(extra);
            assert!(
                errs[0].message.contains("looks like a secret"),
                "{extra}: {errs:?}"
            );
        }
        let (src, r) = raw(
            "headers = { Accept = \"application/json\", X-Api-Key = { secret = \"shop_key\" } }",
        );
        let c = compile(&r, "order_status", &slots(), &src).expect("compiles");
        assert!(c
            .headers
            .contains(&("X-Api-Key".into(), HeaderValue::Secret("shop_key".into()))));
        let src = "url = \"/o/{order_id}?consumer_key=ck_abc\"\nreply = \"x\"\n";
        let r: RawCall = toml::from_str(src).unwrap();
        assert!(compile(&r, "o", &slots(), src).is_err());
    }

    #[test]
    fn reply_errors_point_into_the_file() {
        let src = "url = \"/orders/{order_id}\"\nreply_as = \"order\"\nsample = '{\"status\": \"x\"}'\nreply = \"Order {{order.stauts}}\"\n";
        let r: RawCall = toml::from_str(src).unwrap();
        let errs = compile(&r, "o", &slots(), src).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let at = errs[0].span.start;
        assert!(src[at..].starts_with("{{order.stauts}}"), "{}", &src[at..]);
    }

    #[test]
    fn respond_renders_checks_the_fact_and_fails_as_configured() {
        let src = "url = \"/orders/{order_id}\"\nreply_as = \"order\"\nreply = \"Order {{slot.order_id}} is {{order.status}}.\"\nsecond_fact = { slot = \"email\", field = \"billing.email\" }\non_error = \"answer\"\nerror_answer = \"Sorry, try later.\"\n";
        let r: RawCall = toml::from_str(src).unwrap();
        let c = compile(&r, "o", &slots(), src).unwrap();
        let reply = json!({"status": "shipped", "billing": {"email": "Ann@Example.com"}});
        let called = |o: Outcome| Called {
            action: "o".into(),
            slots: vec![],
            outcome: o,
            latency_ms: 5,
        };
        let s = |email: &str| {
            vec![
                ("order_id".to_string(), "123456".to_string()),
                ("email".to_string(), email.to_string()),
            ]
        };
        let (resp, rec) = respond(
            &c,
            &called(Outcome::Reply(reply.clone())),
            &s(" ann@example.com"),
            Proof::Fact,
        );
        assert_eq!(resp, Response::Answer("Order 123456 is shipped.".into()));
        assert_eq!(rec.outcome, "ok");
        let (resp, rec) = respond(
            &c,
            &called(Outcome::Reply(reply.clone())),
            &s("bob@example.com"),
            Proof::Fact,
        );
        assert_eq!(resp, Response::NotFound(NOT_FOUND_ANSWER.into()));
        assert_eq!(rec.outcome, "fact_mismatch");
        let (resp404, _) = respond(&c, &called(Outcome::NotFound), &s("x"), Proof::Fact);
        assert_eq!(resp404, resp, "a wrong fact reads as no such order");
        let (resp, rec) = respond(&c, &called(Outcome::Status(500)), &s("x"), Proof::Fact);
        assert!(
            matches!(resp, Response::Failed { handoff: false, answer: Some(ref a), .. } if a == "Sorry, try later.")
        );
        assert_eq!((rec.outcome.as_str(), rec.status), ("status", Some(500)));
    }

    #[test]
    fn replies_are_bounded_and_parsed_safely() {
        assert_eq!(parse_reply(b"\xff\xfe"), Outcome::BadJson);
        assert_eq!(parse_reply(b"{\"a\":"), Outcome::BadJson);
        assert_eq!(
            parse_reply(&vec![b' '; MAX_REPLY_BYTES + 1]),
            Outcome::TooLarge
        );
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(parse_reply(deep.as_bytes()), Outcome::BadJson);
        assert_eq!(parse_reply(b"{\"a\":1}"), Outcome::Reply(json!({"a": 1})));
    }

    #[test]
    fn urls_encode_slot_values() {
        let (src, r) = raw("");
        let c = compile(&r, "o", &slots(), &src).unwrap();
        let p = Plan {
            intent: "o".into(),
            call: Arc::new(c),
            slots: vec![("order_id".into(), "1/2?x=y".into())],
        };
        assert_eq!(p.url("http://h:1/"), "http://h:1/orders/1%2F2%3Fx%3Dy");
    }
}

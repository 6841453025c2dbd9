//! The API's JSON bodies: arbitrary JSON values, near-valid bodies with
//! fields of the wrong type, and arbitrary bytes POSTed (and PUT) to every
//! endpoint that reads a body, and to the body-less actions (the two log
//! reads get fuzzed `?after=` queries too), on the real server started
//! in-process on port 0 and reached over real HTTP. One
//! server for all cases; each case is a short run of requests on a fresh
//! conversation, so the state-changing endpoints see every phase.
//! Invariants: no 5xx; every 4xx is `{"error": {"code", "message"}}` and
//! nothing else; every 2xx is JSON; the server is alive at the end.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};

const DEFAULT_CASES: u32 = 600;

/// Bodies larger than this go on a connection of their own (`Connection:
/// close`): the server answers an oversized or unread body early and then
/// closes the connection without saying so, and a pooled connection reused
/// after that fails on the client's side, not the server's.
const BIG: usize = 16 * 1024;

/// How long one request may take before the case fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Whose token an endpoint wants.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Nobody,
    Visitor,
    Agent,
    Admin,
}

/// An endpoint: method, path (`{id}`: a conversation), role, and the
/// fields of its body (none: it reads no body).
struct Endpoint {
    method: &'static str,
    path: &'static str,
    role: Role,
    fields: &'static [&'static str],
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "POST",
        path: "/api/v1/conversations",
        role: Role::Nobody,
        fields: &["name", "visitor_id", "email", "page_url"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/conversations/{id}/messages",
        role: Role::Visitor,
        fields: &["text", "client_id"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/conversations/{id}/rating",
        role: Role::Visitor,
        fields: &["score", "comment"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/conversations/{id}/email",
        role: Role::Visitor,
        fields: &["email"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/conversations/{id}/handoff",
        role: Role::Visitor,
        fields: &[],
    },
    Endpoint {
        method: "PUT",
        path: "/api/v1/agent/presence",
        role: Role::Agent,
        fields: &["presence", "capacity"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/agent/conversations/{id}/claim",
        role: Role::Agent,
        fields: &[],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/agent/conversations/{id}/messages",
        role: Role::Agent,
        fields: &["text"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/agent/conversations/{id}/notes",
        role: Role::Agent,
        fields: &["text"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/agent/conversations/{id}/transfer",
        role: Role::Agent,
        fields: &["to"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/agent/conversations/{id}/return",
        role: Role::Agent,
        fields: &[],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/agent/conversations/{id}/close",
        role: Role::Agent,
        fields: &[],
    },
    // Reads no body but a query (`after`), and every visitor write lands
    // in its log: fuzzed for the query and to read back what was stored.
    Endpoint {
        method: "GET",
        path: "/api/v1/conversations/{id}/events",
        role: Role::Visitor,
        fields: &[],
    },
    Endpoint {
        method: "GET",
        path: "/api/v1/agent/conversations/{id}",
        role: Role::Agent,
        fields: &[],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/admin/classify",
        role: Role::Admin,
        fields: &["text"],
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/admin/agents",
        role: Role::Admin,
        fields: &["name", "admin", "token"],
    },
];

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::collection::vec(any::<char>(), 0..40)
            .prop_map(|c| Value::String(String::from_iter(c))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value of the right type for the field `name` (still arbitrary
/// within it), so the handlers behind the JSON parser get reached.
fn plausible(name: &str) -> BoxedStrategy<Value> {
    // Never the fixture's own agent or the admin: a new token for either
    // would lock the rest of the run out.
    let agent = prop_oneof![
        select(&["ann", "kim", "zed"][..]).prop_map(str::to_string),
        "[a-z]{1,8}".prop_filter("not the admin", |n| n != "admin"),
    ];
    match name {
        "text" | "comment" => crate::classify::message().prop_map(Value::String).boxed(),
        "client_id" => "[a-z0-9]{1,8}".prop_map(Value::String).boxed(),
        "name" | "visitor_id" | "to" => agent.prop_map(Value::String).boxed(),
        "email" => select(&["ada@example.com", "a@b", "@", " x@y.z ", ""][..])
            .prop_map(|s| json!(s))
            .boxed(),
        "page_url" => "https://shop\\.example/[a-z/]{0,20}"
            .prop_map(Value::String)
            .boxed(),
        "score" => (0u8..8).prop_map(|n| json!(n)).boxed(),
        "presence" => select(&["online", "away", "offline"][..])
            .prop_map(|s| json!(s))
            .boxed(),
        "capacity" => (0u32..120).prop_map(|n| json!(n)).boxed(),
        "admin" => any::<bool>().prop_map(|b| json!(b)).boxed(),
        "token" => "[A-Za-z0-9_]{0,40}".prop_map(Value::String).boxed(),
        _ => Just(Value::Null).boxed(),
    }
}

/// A value any field might get: the wrong type, out of range, too long.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => crate::classify::message().prop_map(Value::String),
        1 => select(&["online", "ONLINE", "", "ann"][..]).prop_map(|s| json!(s)),
        2 => prop_oneof![Just(-1i64), Just(0), Just(1), Just(5), Just(6), Just(101), Just(256), Just(i64::MAX)]
            .prop_map(|n| json!(n)),
        1 => any::<bool>().prop_map(|b| json!(b)),
        1 => Just(json!("x".repeat(2001))),
        3 => json_value(),
    ]
}

/// A near-valid body: the endpoint's fields (most present, some extra),
/// most with a value of their type, some with anything.
fn structured(fields: &'static [&'static str]) -> BoxedStrategy<Value> {
    let present = prop::collection::vec(prop::bool::weighted(0.9), fields.len());
    let values: Vec<BoxedStrategy<Value>> = fields
        .iter()
        .map(|f| prop_oneof![4 => plausible(f), 1 => field_value()].boxed())
        .collect();
    let extra = prop::option::weighted(0.1, ("[a-z_]{1,8}", json_value()));
    (present, values, extra)
        .prop_map(move |(present, values, extra)| {
            let mut m = Map::new();
            for ((f, keep), v) in fields.iter().zip(present).zip(values) {
                if keep {
                    m.insert(f.to_string(), v);
                }
            }
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        })
        .boxed()
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
    /// Over `[limits] body_bytes` (64 KiB).
    Huge,
}

#[derive(Debug, Clone, Copy)]
enum Auth {
    Own,
    Missing,
    Unknown,
    /// A token of another role (the visitor's for an agent route, …).
    Other,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    /// The case's conversation.
    Own,
    Unknown,
    Odd,
}

/// One request of a case.
#[derive(Debug, Clone)]
struct Call {
    endpoint: usize,
    /// A query string (`after=…`), percent-encoded.
    query: Option<String>,
    body: Body,
    content_type: Option<&'static str>,
    auth: Auth,
    target: Target,
}

fn call() -> impl Strategy<Value = Call> {
    (0..ENDPOINTS.len()).prop_flat_map(|endpoint| {
        let fields = ENDPOINTS[endpoint].fields;
        let body = prop_oneof![
            9 => structured(fields).prop_map(Body::Json),
            3 => json_value().prop_map(Body::Json),
            2 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Body::Bytes),
            1 => crate::classify::message().prop_map(|s| Body::Bytes(s.into_bytes())),
            1 => Just(Body::Huge),
        ];
        let content_type = prop_oneof![
            10 => Just(Some("application/json")),
            1 => Just(Some("application/json; charset=utf-8")),
            1 => Just(Some("text/plain")),
            1 => Just(None),
        ];
        let auth = prop_oneof![
            12 => Just(Auth::Own),
            1 => Just(Auth::Missing),
            1 => Just(Auth::Unknown),
            1 => Just(Auth::Other),
        ];
        let target = prop_oneof![
            12 => Just(Target::Own),
            1 => Just(Target::Unknown),
            1 => Just(Target::Odd),
        ];
        let query = prop::option::weighted(0.3, query());
        (query, body, content_type, auth, target).prop_map(
            move |(query, body, content_type, auth, target)| Call {
                endpoint,
                query,
                body,
                content_type,
                auth,
                target,
            },
        )
    })
}

/// `after=` with numbers in and out of range, and anything else.
fn query() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        (0u64..40).prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just(String::new()),
        prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| { b.iter().map(|c| format!("%{c:02X}")).collect::<String>() }),
    ];
    (value, any::<bool>()).prop_map(|(v, twice)| {
        if twice {
            format!("after={v}&after=1&x=%00")
        } else {
            format!("after={v}")
        }
    })
}

/// A well-formed call of the walk that precedes a case's fuzzed calls.
fn valid_call(step: usize) -> Call {
    let (path, body) = match step {
        0 => (
            "/api/v1/conversations/{id}/messages",
            json!({"text": "where is my order", "client_id": format!("walk{}", next_walk_id())}),
        ),
        1 => ("/api/v1/conversations/{id}/handoff", json!({})),
        2 => ("/api/v1/agent/conversations/{id}/claim", json!({})),
        _ => ("/api/v1/agent/conversations/{id}/close", json!({})),
    };
    Call {
        endpoint: ENDPOINTS
            .iter()
            .position(|e| e.path == path)
            .expect("a known endpoint"),
        query: None,
        body: Body::Json(body),
        content_type: Some("application/json"),
        auth: Auth::Own,
        target: Target::Own,
    }
}

/// A distinct client id per walk message (a repeat would be a retry).
fn next_walk_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The server under test and its credentials.
struct Server {
    rt: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    admin: String,
    agent: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Kept so the data directory lives as long as the server.
    _tmp: tempfile::TempDir,
}

/// A response: status, whether it said JSON, and its body.
struct Res {
    status: u16,
    json_type: bool,
    body: Vec<u8>,
}

impl Server {
    fn start() -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let config_path = tmp.path().join("frontdesk.toml");
        // Limits high enough that the fuzzer reaches the handlers instead
        // of the rate limiter (whose 429s are covered elsewhere).
        let body = format!(
            "[server]\nbind = \"127.0.0.1:0\"\nintents_dir = {:?}\ndata_dir = {:?}\n\
             [limits]\nmessages_per_minute = 1000000\nconversations_per_ip_per_minute = 1000000\n\
             requests_per_ip_per_minute = 1000000\n",
            crate::shipped_dir(),
            tmp.path().join("data")
        );
        std::fs::write(&config_path, body).expect("write config");
        let config = frontdesk::config::Config::load(Some(&config_path), std::iter::empty())
            .expect("the fuzz config loads");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (base, admin, task) = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind port 0");
            let addr = listener.local_addr().expect("local addr");
            let (app, started) = tokio::task::spawn_blocking(move || {
                let store = frontdesk::store::SledStore::open(&config.server.data_dir)?;
                frontdesk::app::App::with_store(config, std::sync::Arc::new(store))
            })
            .await
            .expect("open joins")
            .expect("the app opens");
            let task = tokio::spawn(frontdesk::http::run(listener, app, async move {
                let _ = stopped.await;
            }));
            let admin = started.first_admin_token.expect("a first admin");
            (format!("http://{addr}"), admin, task)
        });
        let client = rt.block_on(async { Client::builder(TokioExecutor::new()).build_http() });
        let mut server = Server {
            rt,
            client,
            base,
            admin,
            agent: String::new(),
            stop: Some(stop),
            task: Some(task),
            _tmp: tmp,
        };
        let r = server.json(
            "POST",
            "/api/v1/admin/agents",
            Some(&server.admin.clone()),
            json!({"name": "fuzz-agent"}),
        );
        server.agent = r["token"].as_str().expect("agent token").to_string();
        server.json(
            "PUT",
            "/api/v1/agent/presence",
            Some(&server.agent.clone()),
            json!({"presence": "online", "capacity": 100}),
        );
        server
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Res, String> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if body.len() > BIG {
            req = req.header("connection", "close");
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        self.rt.block_on(async {
            let res = tokio::time::timeout(PATIENCE, self.client.request(req))
                .await
                .map_err(|_| "no answer in time".to_string())?
                .map_err(|e| format!("no response: {e:?}"))?;
            let status = res.status().as_u16();
            let json_type = res
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body cut short: {e:?}"))?
                .to_bytes();
            Ok(Res {
                status,
                json_type,
                body: body.to_vec(),
            })
        })
    }

    /// A setup request that must succeed; its JSON body.
    fn json(&self, method: &str, path: &str, token: Option<&str>, body: Value) -> Value {
        let r = self
            .send(
                method,
                path,
                token,
                Some("application/json"),
                body.to_string().into_bytes(),
            )
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        serde_json::from_slice(&r.body).expect("JSON body")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(PATIENCE, task).await });
        }
    }
}

/// The one error shape, exactly.
fn check_error_shape(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(body);
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{status} body is not JSON ({e}): {text}")))?;
    let shape = v
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("error"));
    let detail = shape.and_then(Value::as_object);
    let ok = detail.is_some_and(|d| {
        d.len() == 2
            && d.get("code")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.is_empty())
            && d.get("message").is_some_and(Value::is_string)
    });
    prop_assert!(
        ok,
        "{} body is not {{\"error\":{{code,message}}}}: {}",
        status,
        text
    );
    Ok(())
}

#[test]
fn api_arbitrary_bodies() {
    let server = Server::start();
    // Statuses by endpoint, shown with TEST_LOG=1: what the run reached.
    type Seen<'a> = std::collections::BTreeMap<(&'a str, u16, String), u32>;
    let seen = std::sync::Mutex::new(Seen::new());
    // Each case first walks its conversation into some phase with valid
    // calls (a message, a handoff, the fixture agent's claim, a close),
    // so the fuzzed calls after them meet every state.
    let strategy = (
        prop::collection::vec(select(&[0usize, 1, 2, 3][..]), 0..4),
        prop::collection::vec(call(), 1..6),
    );
    let mut runner = TestRunner::new(crate::config(
        DEFAULT_CASES,
        "tests/fuzz/regressions/api.txt",
    ));
    runner
        .run(&strategy, |(walk, fuzzed)| {
            // Fuzzed presence calls may have sent the agent away or to a
            // capacity of 1: each case starts with it ready to claim.
            server.json(
                "PUT",
                "/api/v1/agent/presence",
                Some(&server.agent),
                json!({"presence": "online", "capacity": 100}),
            );
            let created = server.json("POST", "/api/v1/conversations", None, json!({}));
            let id = created["id"].as_str().expect("id").to_string();
            let visitor = created["token"].as_str().expect("token").to_string();
            let calls = walk.iter().map(|&w| valid_call(w)).chain(fuzzed);
            for c in calls {
                let e = &ENDPOINTS[c.endpoint];
                let own = match e.role {
                    Role::Nobody => None,
                    Role::Visitor => Some(visitor.as_str()),
                    Role::Agent => Some(server.agent.as_str()),
                    Role::Admin => Some(server.admin.as_str()),
                };
                let other = match e.role {
                    Role::Visitor => server.agent.as_str(),
                    Role::Admin => server.agent.as_str(),
                    Role::Agent | Role::Nobody => visitor.as_str(),
                };
                let token = match c.auth {
                    Auth::Own => own,
                    Auth::Missing => None,
                    Auth::Unknown => Some("fd_0000000000000000"),
                    Auth::Other => Some(other),
                };
                let target = match c.target {
                    Target::Own => id.clone(),
                    Target::Unknown => "c_doesnotexist".to_string(),
                    Target::Odd => "%2e%2e%2F..%00%F0%9F%92%A9".to_string(),
                };
                let mut path = e.path.replace("{id}", &target);
                if let Some(q) = &c.query {
                    path = format!("{path}?{q}");
                }
                let body = match &c.body {
                    Body::Json(v) => v.to_string().into_bytes(),
                    Body::Bytes(b) => b.clone(),
                    Body::Huge => vec![b' '; 70 * 1024],
                };
                let size = body.len();
                let r = match server.send(e.method, &path, token, c.content_type, body) {
                    Ok(r) => r,
                    Err(why) => {
                        return Err(TestCaseError::fail(format!(
                            "{} {} ({size} bytes): {why}",
                            e.method, path
                        )))
                    }
                };
                let code = serde_json::from_slice::<Value>(&r.body).ok().and_then(|v| {
                    v.pointer("/error/code")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                *seen
                    .lock()
                    .unwrap()
                    .entry((e.path, r.status, code.unwrap_or_default()))
                    .or_default() += 1;
                let text = String::from_utf8_lossy(&r.body);
                prop_assert!(
                    r.status < 500,
                    "{} {} answered {}: {}",
                    e.method,
                    path,
                    r.status,
                    text
                );
                if r.status >= 400 {
                    prop_assert!(
                        r.json_type,
                        "{} without a JSON content type: {}",
                        r.status,
                        text
                    );
                    check_error_shape(r.status, &r.body)?;
                } else {
                    prop_assert!(
                        serde_json::from_slice::<Value>(&r.body).is_ok(),
                        "{} {} answered {} with a body that is not JSON: {}",
                        e.method,
                        path,
                        r.status,
                        text
                    );
                }
            }
            // Let go of the conversation (whoever holds it, if anyone), so
            // the agent's capacity lasts the run; a refusal is fine here.
            let _ = server.send(
                "POST",
                &format!("/api/v1/agent/conversations/{id}/close"),
                Some(&server.agent),
                None,
                Vec::new(),
            );
            Ok(())
        })
        .unwrap();
    if std::env::var("TEST_LOG").is_ok() {
        for ((path, status, code), n) in seen.lock().unwrap().iter() {
            eprintln!("{status} {code:<24} {n:>6}  {path}");
        }
    }
    let health = server.send("GET", "/healthz", None, None, Vec::new());
    assert_eq!(
        health.map(|r| r.status),
        Ok(200),
        "the server is alive after the run"
    );
}

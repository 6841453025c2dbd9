//! `frontdesk.toml`: the settings of a deployment, as layers: defaults, then
//! the file, then `FRONTDESK_SECTION__KEY` environment variables (e.g.
//! `FRONTDESK_ESCALATION__MAX_FALLBACKS=3`). The raw form (what was written)
//! is kept apart from the compiled `Config` (what runs). Sections:
//! `[server]`, `[limits]`, `[escalation]`, `[queue]`, `[business_hours]`,
//! `[texts]`, `[retention]`, `[reports]`, `[assignment]`, `[attachments]`,
//! `[[webhooks]]`, `[email]`, `[widget]`, `[identity]`, `[store]`. `frontdesk default-config` prints
//! `DEFAULT_CONFIG`, every
//! setting with its default and a comment; a test keeps the two in step.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::classify::Precision;
use crate::conversation::texts::TextError;
use crate::conversation::{EscalationPolicy, Language, Texts};
use crate::handoff::{BusinessHours, HoursError, RawHours};

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    #[serde(default)]
    pub model: RawModel,
    #[serde(default)]
    pub escalation: RawEscalation,
    #[serde(default)]
    pub queue: RawQueue,
    pub business_hours: Option<RawHours>,
    #[serde(default)]
    pub retention: RawRetention,
    /// `[texts]`: `language` and per-key overrides, checked against the
    /// table in `conversation::texts` (so unknown keys are found there, with
    /// their line).
    #[serde(default)]
    pub texts: BTreeMap<String, String>,
    #[serde(default)]
    pub reports: RawReports,
    #[serde(default)]
    pub assignment: RawAssignment,
    #[serde(default)]
    pub attachments: RawAttachments,
    #[serde(default)]
    pub email: RawEmail,
    #[serde(default)]
    pub widget: RawWidget,
    #[serde(default)]
    pub identity: RawIdentity,
    #[serde(default)]
    pub actions: RawActions,
    #[serde(default)]
    pub store: RawStore,
}

/// `[store]`: which backend keeps conversations (README, "PostgreSQL").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sled` (default: files in `[server] data_dir`) or `postgres`.
    pub backend: Option<String>,
    /// The PostgreSQL connection string; better given as
    /// `FRONTDESK_STORE__URL` when it holds a password.
    pub url: Option<String>,
    /// Connections to PostgreSQL one node keeps open at most.
    pub pool_size: Option<usize>,
}

/// `[store]` compiled: the backend `main` opens.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StoreConfig {
    /// sled, in `[server] data_dir` (one process at a time).
    #[default]
    Sled,
    Postgres(Postgres),
}

/// A PostgreSQL store's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Postgres {
    /// The connection string: a `Secret`, as it may carry a password
    /// (`shown` is what logs and messages print).
    pub url: Secret,
    pub pool_size: usize,
}

impl Postgres {
    /// The url without its password: what a log or an error may print.
    pub fn shown(&self) -> String {
        redact_url(&self.url.0)
    }
}

/// The default `[store] pool_size`. A store call holds a connection only
/// for its own statements (requests run their store calls on blocking
/// threads, one call at a time each), so 16 serve many more concurrent
/// requests than 16; and PostgreSQL's stock `max_connections` is 100, which
/// leaves room for several nodes, migrations and `psql` beside one node.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The most connections `[store] pool_size` may ask for.
pub const MAX_POOL_SIZE: usize = 1000;

/// A PostgreSQL connection string with its password replaced by `***`:
/// the URL form (`postgres://user:pw@host/db`, and a `password=` query
/// parameter) and the key-value form (`host=… password=pw`, quoted or
/// not). Everything else is kept, so a log still says which database.
pub fn redact_url(url: &str) -> String {
    let trimmed = url.trim_start();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        let (head, rest) = url.split_at(scheme_end);
        // The authority ends at the first `/`, `?` or `#`; its userinfo at
        // its last `@`.
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (auth, tail) = rest.split_at(auth_end);
        let auth = match auth.rfind('@') {
            Some(at) => {
                let (info, host) = auth.split_at(at);
                match info.split_once(':') {
                    Some((user, _)) => format!("{user}:***{host}"),
                    None => format!("{info}{host}"),
                }
            }
            None => auth.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => kv.to_string(),
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_string(),
        };
        return format!("{head}{auth}{tail}");
    }
    // Key-value form: `key = value` pairs, a value quoted in '…' with \
    // escapes or running to the next space.
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        let key = key.rsplit(char::is_whitespace).next().unwrap_or(key);
        out.push_str(&rest[..=eq]);
        let after = &rest[eq + 1..];
        let spaces = after.len() - after.trim_start().len();
        out.push_str(&after[..spaces]);
        let value = &after[spaces..];
        let len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            let close = quoted.char_indices().find_map(|(i, c)| {
                let end = !escaped && c == '\'';
                escaped = !escaped && c == '\\';
                end.then_some(i)
            });
            close.map_or(value.len(), |i| i + 2)
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        if key == "password" {
            out.push_str("***");
        } else {
            out.push_str(&value[..len]);
        }
        rest = &value[len..];
    }
    out.push_str(rest);
    out
}

/// `[actions]`: calls to the shop's backend (README, "Actions").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActions {
    /// Where an action's `url = "/…"` is joined (`http://…`).
    pub base_url: Option<String>,
    /// Signs every request; without it actions are off.
    pub signing_secret: Option<String>,
    /// Values of the secrets intents name (`{ secret = "name" }`).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// `[identity]`: identity verification (README, "Identity verification").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// The key of the HMAC-SHA256 the shop's server makes of a visitor's
    /// id; better given as `FRONTDESK_IDENTITY__SECRET`.
    pub secret: Option<String>,
    /// Refuse a visitor id that comes without a valid hash.
    pub enforce: Option<bool>,
}

/// `[email]`: the SMTP server replies, transcripts and agent notices go
/// through (README, "Email"). No `host`: no email at all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    pub tls: Option<String>,
    pub username: Option<String>,
    /// Better given as `FRONTDESK_EMAIL__PASSWORD` than written here.
    pub password: Option<String>,
    pub from: Option<String>,
    /// The shop's page the widget is on: links in emails lead there.
    pub public_url: Option<String>,
    /// Addresses told when a visitor waits and no agent is online.
    pub notify: Option<Vec<String>>,
    /// Agent replies within this many seconds go out as one email.
    pub batch_secs: Option<u64>,
    /// Transcript emails at most per hour, over all conversations.
    pub transcripts_per_hour: Option<u32>,
    /// Hours an email's link into the conversation works (once).
    pub link_hours: Option<u32>,
}

/// `[widget]`: what the embeddable widget does beyond its texts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWidget {
    /// Ask for a name and an email before the first message.
    pub prechat: Option<bool>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain text (a relay on the same host or a test server).
    None,
    /// Plain, upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[email]` compiled: present only when a server is configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: EmailTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The `From:` mailbox (`Shop <help@shop.example>` or a bare address).
    pub from: String,
    /// Links in emails: this page, with the widget's resume fragment.
    pub public_url: String,
    pub notify: Vec<String>,
    pub batch_secs: u64,
    /// Transcript emails at most per hour, over all conversations (each
    /// goes only to the address its visitor left, once).
    pub transcripts_per_hour: u32,
    /// Hours an email's link into the conversation works (it works once).
    pub link_hours: u32,
}

/// `[widget]` compiled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Widget {
    pub prechat: bool,
}

/// `[identity]` compiled: how a visitor id the page passes is trusted
/// (`app::identity`). Never serialised anywhere: no API view, webhook or
/// log shows the secret (`Secret`'s `Debug` is a placeholder).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The shared key; `None`: no id can be verified (each is *claimed*).
    pub secret: Option<Secret>,
    /// A visitor id without a valid hash is refused (`identity_unverified`)
    /// instead of kept as claimed. Needs `secret`.
    pub enforce: bool,
}

/// Whether `s` looks like one email address (the same test the widget's
/// "leave my email" gets): something@host.tld, no spaces, at most 254.
pub fn plausible_email(s: &str) -> bool {
    s.len() <= 254
        && s.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty()
                && !host.contains('@')
                && host.contains('.')
                && !host.starts_with('.')
                && !host.ends_with('.')
        })
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `[assignment]`: who gets a waiting visitor, and when an agent counts as
/// there (README, "Assignment and presence").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssignment {
    /// Give waiting visitors to online agents with free capacity by
    /// themselves. Default false (agents claim from the queue).
    pub auto_assign: Option<bool>,
    /// An agent who chose `online` and whose last console socket closed
    /// becomes away after this many seconds (0: never). Default 120.
    pub away_after_secs: Option<u64>,
}

/// `[assignment]` compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    pub auto_assign: bool,
    /// 0: presence is only what the agent set.
    pub away_after_secs: u64,
}

impl Default for Assignment {
    fn default() -> Assignment {
        Assignment {
            auto_assign: false,
            away_after_secs: 120,
        }
    }
}

/// `[attachments]`: files visitors and agents send (README,
/// "Attachments").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttachments {
    /// The largest file taken, in bytes. Default 10 MiB.
    pub max_bytes: Option<u64>,
    /// Files one conversation may hold. Default 20.
    pub max_files_per_conversation: Option<u32>,
    /// Bytes of files one conversation may hold. Default 50 MiB.
    pub max_bytes_per_conversation: Option<u64>,
    /// Bytes of files all conversations together may hold; 0: no such
    /// cap. Default 5 GiB.
    pub max_total_bytes: Option<u64>,
}

/// `[attachments]` compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attachments {
    pub max_bytes: usize,
    pub max_files_per_conversation: u32,
    pub max_bytes_per_conversation: u64,
    /// 0: no global cap.
    pub max_total_bytes: u64,
}

impl Default for Attachments {
    fn default() -> Attachments {
        Attachments {
            max_bytes: 10 * 1024 * 1024,
            max_files_per_conversation: 20,
            max_bytes_per_conversation: 50 * 1024 * 1024,
            max_total_bytes: 5 * 1024 * 1024 * 1024,
        }
    }
}

/// The largest attachment any configuration may allow (the store's
/// backups carry one value of at most 64 MiB).
pub const MAX_ATTACHMENT_BYTES: u64 = 32 * 1024 * 1024;

/// `[reports]`: the look-ahead of the metrics that depend on what a
/// visitor did next (README, "Reports").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    /// Days a contained conversation's visitor must stay away for it to
    /// count as durable. Default 7.
    pub durable_days: Option<u32>,
    /// Days after its close a conversation must not be reopened for first
    /// contact resolution. Default 7.
    pub fcr_days: Option<u32>,
}

/// `[reports]` compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reports {
    pub durable_days: u32,
    pub fcr_days: u32,
}

impl Default for Reports {
    fn default() -> Reports {
        Reports {
            durable_days: 7,
            fcr_days: 7,
        }
    }
}

/// Only where `[texts]` keys and values sit in the file, to point errors at
/// them.
#[derive(Deserialize)]
struct TextSpans {
    #[serde(default)]
    texts: BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>,
}

/// `[escalation]`: when the bot gets a person.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    /// Fallbacks in a row before a handoff (0: never). Default 2.
    pub max_fallbacks: Option<u32>,
    /// Hand off when a message reads as upset. Default true.
    pub on_negative_sentiment: Option<bool>,
    /// Ask "Shall I get a person?" first. Default true.
    pub offer_first: Option<bool>,
}

/// `[queue]`: how waiting visitors are ordered and told.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// Upset visitors go first. Default true.
    pub priority_for_upset: Option<bool>,
    /// Handle time assumed before any was measured, in seconds. Default 300.
    pub default_handle_secs: Option<u64>,
}

/// `[retention]`: how long ended conversations (closed, or idle with the
/// bot) are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Delete conversations closed or with the bot (not queued, not with an
    /// agent) whose last event is older than this many days. Absent or 0:
    /// keep forever.
    pub closed_after_days: Option<u32>,
}

/// `[retention]` compiled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// 0: keep forever.
    pub closed_after_days: u32,
}

/// `[server]`: where the bot listens, reads and writes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub bind: Option<String>,
    pub intents_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub allowed_origins: Option<Vec<String>>,
    pub reload_poll_ms: Option<u64>,
    pub compact_on_start: Option<bool>,
    pub trusted_proxies: Option<Vec<String>>,
    pub forwarded_header: Option<String>,
}

/// `[limits]`: what one client may ask of the server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub body_bytes: Option<usize>,
    pub message_chars: Option<usize>,
    pub messages_per_minute: Option<u32>,
    pub conversations_per_ip_per_minute: Option<u32>,
    pub requests_per_ip_per_minute: Option<u32>,
    pub websockets_per_ip: Option<u32>,
    pub websockets_total: Option<u32>,
    pub websocket_message_bytes: Option<usize>,
    pub websocket_messages_per_minute: Option<u32>,
    pub header_read_timeout_secs: Option<u64>,
    pub body_read_timeout_secs: Option<u64>,
    pub connections_per_ip: Option<u32>,
    pub websocket_idle_secs: Option<u64>,
}

/// `[model]`: the optional semantic layer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub model_dir: Option<PathBuf>,
    pub precision: Option<String>,
}

/// `[[webhooks]]`: where handoffs and closes are posted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub secret: String,
    pub events: Option<Vec<String>>,
}

/// A value that must not show up in logs: `Debug` prints a placeholder.
#[derive(Clone, PartialEq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Where the server listens and keeps its files.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub bind: String,
    pub intents_dir: PathBuf,
    pub data_dir: PathBuf,
    /// Origins (`https://shop.example`) whose pages may embed the widget:
    /// CORS and WebSocket origin checks. The server's own origin is always
    /// allowed.
    pub allowed_origins: Vec<String>,
    /// How often the intents directory is checked for edits.
    pub reload_poll_ms: u64,
    /// Rewrite the store with only its live data before serving (sled
    /// never gives back the space of deleted conversations).
    pub compact_on_start: bool,
    /// Peers (a reverse proxy) whose forwarding header names the client;
    /// from any other peer the header is ignored, so it cannot be forged.
    pub trusted_proxies: Vec<IpNet>,
    /// Which header those proxies write.
    pub forwarded_header: ForwardedHeader,
}

/// The header a trusted proxy names the client in. One, not both: a proxy
/// that appends to one passes the other through as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx, HAProxy, most load
    /// balancers).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// An IP network, `10.0.0.0/8` or a single address (`127.0.0.1`, a /32 or
/// /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ip` or `ip/prefix`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<IpNet, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| format!("{ip:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("prefix /{p} is not 0 to {max}")),
            },
        };
        let net = IpNet { addr, prefix };
        if net.masked(addr) != addr {
            return Err(format!(
                "{s} has host bits set (the network is {}/{prefix})",
                net.masked(addr)
            ));
        }
        Ok(net)
    }

    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts
    /// as the IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == self.addr
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

/// Bounds on what clients may ask (see `DEFAULT_CONFIG` for each one).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub body_bytes: usize,
    pub message_chars: usize,
    pub messages_per_minute: u32,
    pub conversations_per_ip_per_minute: u32,
    pub requests_per_ip_per_minute: u32,
    pub websockets_per_ip: u32,
    pub websockets_total: u32,
    pub websocket_message_bytes: usize,
    pub websocket_messages_per_minute: u32,
    pub header_read_timeout_secs: u64,
    /// A request's body must arrive within this many seconds of its
    /// headers (408 after).
    pub body_read_timeout_secs: u64,
    /// Open TCP connections one peer address may hold (trusted proxies are
    /// not capped: they speak for many clients).
    pub connections_per_ip: u32,
    pub websocket_idle_secs: u64,
}

/// The largest WebSocket message any configuration may allow.
pub const MAX_WEBSOCKET_MESSAGE_BYTES: usize = 64 * 1024;

/// Events a webhook can be sent for.
pub const WEBHOOK_EVENTS: &[&str] = &["handoff", "closed"];

/// One webhook target.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    /// Key of the HMAC-SHA256 signature the receiver checks.
    pub secret: Secret,
    /// A subset of `WEBHOOK_EVENTS`.
    pub events: Vec<String>,
}

/// What runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    /// The sentence-embedding model (feature `semantic` or `transformer`), if configured.
    pub model_dir: Option<PathBuf>,
    /// What the model computes in (`auto` unless set).
    pub model_precision: Precision,
    pub limits: Limits,
    pub webhooks: Vec<Webhook>,
    pub escalation: EscalationPolicy,
    pub priority_for_upset: bool,
    pub default_handle_secs: u64,
    /// `None`: always open (only agents' presence decides).
    pub business_hours: Option<BusinessHours>,
    /// Every sentence a visitor sees (`[texts]`); shared by every step.
    pub texts: Arc<Texts>,
    /// What the retention sweep deletes (`app::retention`).
    pub retention: Retention,
    /// `[reports]`.
    pub reports: Reports,
    /// `[assignment]`.
    pub assignment: Assignment,
    /// `[attachments]`.
    pub attachments: Attachments,
    /// `[email]`: `None` when no SMTP server is configured (nothing is
    /// sent and the widget promises no email).
    pub email: Option<Email>,
    /// `[widget]`.
    pub widget: Widget,
    /// `[identity]`.
    pub identity: Identity,
    /// `[actions]`.
    pub actions: Actions,
    /// `[store]`: the backend `main` opens.
    pub store: StoreConfig,
}

/// `[actions]` checked: calls to the shop's backend are on only with a
/// signing secret (every request is signed; README, "Actions").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actions {
    /// `None`: actions are off, and intents with a `[call]` say their
    /// plain `answer`.
    pub signing_secret: Option<Secret>,
    /// Joined to an action's `url` that is a path.
    pub base_url: Option<String>,
    /// The named secrets: `[actions.secrets]`, then `FRONTDESK_SECRET_<NAME>`
    /// from the environment (which wins).
    pub secrets: BTreeMap<String, Secret>,
}

impl Actions {
    pub fn enabled(&self) -> bool {
        self.signing_secret.is_some()
    }
}

/// A configuration that cannot run, naming where to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}:{line}:{col}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{path}: [business_hours]: {0}", path = .1.display())]
    Hours(HoursError, PathBuf),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Loads `path` (absent: defaults) with `env` overrides applied on top.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let shown = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("frontdesk.toml"));
        let source = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| ConfigError::Io {
                path: p.to_path_buf(),
                message: e.to_string(),
            })?,
            None => String::new(),
        };
        // First as written, so that errors point at the file's lines.
        let parse_err = |e: toml::de::Error, source: &str| {
            let (line, col) =
                crate::intents::error::line_col(source, e.span().map_or(0, |s| s.start));
            ConfigError::Parse {
                path: shown.clone(),
                line,
                col,
                message: e.message().trim().to_string(),
            }
        };
        toml::from_str::<RawConfig>(&source).map_err(|e| parse_err(e, &source))?;
        let env: Vec<(String, String)> = env.into_iter().collect();
        // `FRONTDESK_SECRET_<NAME>`: a secret an action names, kept out of
        // files (and out of the section overrides below).
        let env_secrets: BTreeMap<String, Secret> = env
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("FRONTDESK_SECRET_")
                    .map(|n| (n.to_lowercase(), Secret(v.clone())))
            })
            .collect();
        let mut table: toml::Table = toml::from_str(&source).map_err(|e| parse_err(e, &source))?;
        let store_env: Vec<String> = env
            .iter()
            .filter(|(k, _)| k.to_lowercase().starts_with("frontdesk_store__"))
            .map(|(k, _)| k.clone())
            .collect();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix("FRONTDESK_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_lowercase(), key.to_lowercase());
            // A TOML array (`["https://a.example"]`) for list settings.
            let array = value
                .trim_start()
                .starts_with('[')
                .then(|| toml::from_str::<toml::Table>(&format!("v = {value}")).ok())
                .flatten()
                .and_then(|mut t| t.remove("v"));
            let parsed = match array {
                // A text is a text, even "5" or "[sic]".
                _ if section == "texts" => toml::Value::String(value.clone()),
                Some(a) => a,
                None => value
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .or_else(|_| value.parse::<bool>().map(toml::Value::Boolean))
                    .unwrap_or_else(|_| toml::Value::String(value.clone())),
            };
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => {
                    t.insert(key, parsed);
                }
                _ => {
                    return Err(ConfigError::Env {
                        var,
                        message: format!("`{section}` is not a section"),
                    })
                }
            }
            // Check each override on its own, so the error names it.
            if let Err(e) = toml::Table::try_into::<RawConfig>(table.clone()) {
                return Err(ConfigError::Env {
                    var,
                    message: e.message().trim().to_string(),
                });
            }
        }
        let raw: RawConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Env {
                var: "FRONTDESK_*".into(),
                message: e.message().to_string(),
            })?;
        let defaults = EscalationPolicy::default();
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.clone(),
            message,
        };
        let l = &raw.limits;
        let limits = Limits {
            body_bytes: l.body_bytes.unwrap_or(64 * 1024),
            message_chars: l.message_chars.unwrap_or(2000),
            messages_per_minute: l.messages_per_minute.unwrap_or(20),
            conversations_per_ip_per_minute: l.conversations_per_ip_per_minute.unwrap_or(10),
            requests_per_ip_per_minute: l.requests_per_ip_per_minute.unwrap_or(600),
            websockets_per_ip: l.websockets_per_ip.unwrap_or(20),
            websockets_total: l.websockets_total.unwrap_or(10_000),
            websocket_message_bytes: l.websocket_message_bytes.unwrap_or(16 * 1024),
            websocket_messages_per_minute: l.websocket_messages_per_minute.unwrap_or(120),
            header_read_timeout_secs: l.header_read_timeout_secs.unwrap_or(10),
            body_read_timeout_secs: l.body_read_timeout_secs.unwrap_or(10),
            connections_per_ip: l.connections_per_ip.unwrap_or(64),
            websocket_idle_secs: l.websocket_idle_secs.unwrap_or(60),
        };
        if limits.websocket_message_bytes > MAX_WEBSOCKET_MESSAGE_BYTES {
            return Err(invalid(format!(
                "[limits] websocket_message_bytes = {} is over the most allowed, {MAX_WEBSOCKET_MESSAGE_BYTES}",
                limits.websocket_message_bytes
            )));
        }
        for (name, v) in [
            ("body_bytes", limits.body_bytes as u64),
            ("message_chars", limits.message_chars as u64),
            ("messages_per_minute", limits.messages_per_minute as u64),
            (
                "conversations_per_ip_per_minute",
                limits.conversations_per_ip_per_minute as u64,
            ),
            (
                "requests_per_ip_per_minute",
                limits.requests_per_ip_per_minute as u64,
            ),
            (
                "websocket_message_bytes",
                limits.websocket_message_bytes as u64,
            ),
            (
                "websocket_messages_per_minute",
                limits.websocket_messages_per_minute as u64,
            ),
            ("header_read_timeout_secs", limits.header_read_timeout_secs),
            ("body_read_timeout_secs", limits.body_read_timeout_secs),
            ("connections_per_ip", limits.connections_per_ip as u64),
            ("websocket_idle_secs", limits.websocket_idle_secs),
        ] {
            if v == 0 {
                return Err(invalid(format!("[limits] {name} must be above 0")));
            }
        }
        let mut webhooks = Vec::new();
        for (i, w) in raw.webhooks.iter().enumerate() {
            if !w.url.starts_with("http://") {
                return Err(invalid(format!(
                    "[[webhooks]] #{}: url {:?} must start with http:// (this build posts plain HTTP; put a TLS relay in front for https)",
                    i + 1,
                    w.url
                )));
            }
            if w.secret.len() < 16 {
                return Err(invalid(format!(
                    "[[webhooks]] #{}: secret must be at least 16 characters",
                    i + 1
                )));
            }
            let events = w
                .events
                .clone()
                .unwrap_or_else(|| WEBHOOK_EVENTS.iter().map(|e| e.to_string()).collect());
            if let Some(bad) = events
                .iter()
                .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
            {
                return Err(invalid(format!(
                    "[[webhooks]] #{}: unknown event {bad:?} (known: {})",
                    i + 1,
                    WEBHOOK_EVENTS.join(", ")
                )));
            }
            webhooks.push(Webhook {
                url: w.url.clone(),
                secret: Secret(w.secret.clone()),
                events,
            });
        }
        let origins = raw.server.allowed_origins.clone().unwrap_or_default();
        if let Some(bad) = origins
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/'))
        {
            return Err(invalid(format!(
                "[server] allowed_origins: {bad:?} is not an origin like \"https://shop.example\""
            )));
        }
        let trusted_proxies = raw
            .server
            .trusted_proxies
            .iter()
            .flatten()
            .map(|p| {
                IpNet::parse(p).map_err(|e| {
                    invalid(format!(
                        "[server] trusted_proxies: {e} (write an address like \"10.0.0.5\" or a network like \"10.0.0.0/8\")"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let forwarded_header = match raw.server.forwarded_header.as_deref() {
            None | Some("x-forwarded-for") => ForwardedHeader::XForwardedFor,
            Some("forwarded") => ForwardedHeader::Forwarded,
            Some(other) => {
                return Err(invalid(format!(
                "[server] forwarded_header: {other:?} is not \"x-forwarded-for\" or \"forwarded\""
            )))
            }
        };
        let actions =
            actions(&raw.actions, env_secrets).map_err(|m| invalid(format!("[actions] {m}")))?;
        let texts = texts(&raw.texts, &source, &shown)?;
        let email = email(&raw.email).map_err(|m| invalid(format!("[email] {m}")))?;
        let store = store(&raw.store, &source, &shown, &store_env)?;
        let model_precision = match &raw.model.precision {
            Some(p) => p
                .parse::<Precision>()
                .map_err(|e| invalid(format!("[model] {e}")))?,
            None => Precision::Auto,
        };
        Ok(Config {
            model_dir: raw.model.model_dir.clone(),
            model_precision,
            server: Server {
                bind: raw
                    .server
                    .bind
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:8080".into()),
                intents_dir: raw
                    .server
                    .intents_dir
                    .clone()
                    .unwrap_or_else(|| "intents".into()),
                data_dir: raw.server.data_dir.clone().unwrap_or_else(|| "data".into()),
                allowed_origins: origins,
                reload_poll_ms: raw.server.reload_poll_ms.unwrap_or(250).max(10),
                compact_on_start: raw.server.compact_on_start.unwrap_or(false),
                trusted_proxies,
                forwarded_header,
            },
            limits,
            webhooks,
            escalation: EscalationPolicy {
                max_fallbacks: raw
                    .escalation
                    .max_fallbacks
                    .unwrap_or(defaults.max_fallbacks),
                on_negative_sentiment: raw
                    .escalation
                    .on_negative_sentiment
                    .unwrap_or(defaults.on_negative_sentiment),
                offer_first: raw.escalation.offer_first.unwrap_or(defaults.offer_first),
            },
            priority_for_upset: raw.queue.priority_for_upset.unwrap_or(true),
            default_handle_secs: raw.queue.default_handle_secs.unwrap_or(300),
            business_hours: match &raw.business_hours {
                None => None,
                Some(h) => {
                    Some(BusinessHours::new(h).map_err(|e| ConfigError::Hours(e, shown.clone()))?)
                }
            },
            texts: Arc::new(texts),
            retention: Retention {
                closed_after_days: raw.retention.closed_after_days.unwrap_or(0),
            },
            reports: Reports {
                durable_days: raw
                    .reports
                    .durable_days
                    .unwrap_or(Reports::default().durable_days),
                fcr_days: raw.reports.fcr_days.unwrap_or(Reports::default().fcr_days),
            },
            assignment: Assignment {
                auto_assign: raw
                    .assignment
                    .auto_assign
                    .unwrap_or(Assignment::default().auto_assign),
                away_after_secs: raw
                    .assignment
                    .away_after_secs
                    .unwrap_or(Assignment::default().away_after_secs),
            },
            attachments: Attachments {
                max_bytes: match raw.attachments.max_bytes {
                    None => Attachments::default().max_bytes,
                    Some(n) if (1..=MAX_ATTACHMENT_BYTES).contains(&n) => n as usize,
                    Some(n) => {
                        return Err(invalid(format!(
                            "[attachments] max_bytes = {n} is not 1 to {MAX_ATTACHMENT_BYTES}"
                        )))
                    }
                },
                max_files_per_conversation: match raw.attachments.max_files_per_conversation {
                    None => Attachments::default().max_files_per_conversation,
                    Some(n) if n >= 1 => n,
                    Some(n) => {
                        return Err(invalid(format!(
                            "[attachments] max_files_per_conversation = {n} is not at least 1"
                        )))
                    }
                },
                max_bytes_per_conversation: match raw.attachments.max_bytes_per_conversation {
                    None => Attachments::default().max_bytes_per_conversation,
                    Some(n) if n >= 1 => n,
                    Some(n) => {
                        return Err(invalid(format!(
                            "[attachments] max_bytes_per_conversation = {n} is not at least 1"
                        )))
                    }
                },
                max_total_bytes: raw
                    .attachments
                    .max_total_bytes
                    .unwrap_or(Attachments::default().max_total_bytes),
            },
            email,
            widget: Widget {
                prechat: raw.widget.prechat.unwrap_or(false),
            },
            identity: identity(&raw.identity).map_err(|m| invalid(format!("[identity] {m}")))?,
            actions,
            store,
        })
    }
}

/// Only where `[store]` keys sit in the file, to point errors at them.
#[derive(Deserialize)]
struct StoreSpans {
    #[serde(default)]
    store: BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>,
}

/// `[store]` compiled. An error points at the key it is about: its
/// `path:line:col` in the file, or the variable that set it (`env` holds
/// the `FRONTDESK_STORE__*` names given).
fn store(
    raw: &RawStore,
    source: &str,
    path: &Path,
    env: &[String],
) -> Result<StoreConfig, ConfigError> {
    let at = |key: &str, message: String| {
        let message = format!("[store] {message}");
        if let Some(var) = env
            .iter()
            .find(|v| v.eq_ignore_ascii_case(&format!("FRONTDESK_STORE__{key}")))
        {
            return ConfigError::Env {
                var: var.clone(),
                message,
            };
        }
        let spans = toml::from_str::<StoreSpans>(source)
            .map(|s| s.store)
            .unwrap_or_default();
        match spans.iter().find(|(k, _)| k.get_ref() == key) {
            Some((_, v)) => {
                let (line, col) = crate::intents::error::line_col(source, v.span().start);
                ConfigError::Parse {
                    path: path.to_path_buf(),
                    line,
                    col,
                    message,
                }
            }
            None => ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            },
        }
    };
    let pool_size = match raw.pool_size {
        None => DEFAULT_POOL_SIZE,
        Some(n) if (1..=MAX_POOL_SIZE).contains(&n) => n,
        Some(n) => {
            return Err(at(
                "pool_size",
                format!("pool_size = {n} is not 1 to {MAX_POOL_SIZE}"),
            ))
        }
    };
    match raw.backend.as_deref().unwrap_or("sled") {
        "sled" => Ok(StoreConfig::Sled),
        "postgres" => match raw.url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Ok(StoreConfig::Postgres(Postgres {
                url: Secret(url.to_string()),
                pool_size,
            })),
            _ => Err(at(
                "backend",
                "backend = \"postgres\" needs a url: `url = \"postgres://user@host/db\"`, \
                 or FRONTDESK_STORE__URL (better when it holds a password)"
                    .into(),
            )),
        },
        other => Err(at(
            "backend",
            format!("backend {other:?} is not \"sled\" or \"postgres\""),
        )),
    }
}

/// `[actions]` checked.
fn actions(raw: &RawActions, env: BTreeMap<String, Secret>) -> Result<Actions, String> {
    let signing_secret = raw
        .signing_secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.len() < 16 {
                Err("signing_secret must be at least 16 characters".to_string())
            } else {
                Ok(Secret(s.to_string()))
            }
        })
        .transpose()?;
    let base_url = raw
        .base_url
        .as_deref()
        .map(|b| b.trim().trim_end_matches('/').to_string())
        .filter(|b| !b.is_empty());
    if let Some(b) = &base_url {
        if !b.starts_with("http://") {
            return Err(format!(
                "base_url {b:?} must start with http:// (this build calls plain HTTP; put a TLS relay beside frontdesk for an https backend, README \"Actions\")"
            ));
        }
    }
    let mut secrets: BTreeMap<String, Secret> = raw
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), Secret(v.clone())))
        .collect();
    secrets.extend(env);
    Ok(Actions {
        signing_secret,
        base_url,
        secrets,
    })
}

/// `[email]` checked: a host needs a sender and the page links lead to.
fn email(raw: &RawEmail) -> Result<Option<Email>, String> {
    let Some(host) = raw.host.as_deref().map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let tls = match raw.tls.as_deref().unwrap_or("starttls") {
        "none" => EmailTls::None,
        "starttls" => EmailTls::Starttls,
        "tls" => EmailTls::Tls,
        other => {
            return Err(format!(
                "tls: {other:?} is not \"none\", \"starttls\" or \"tls\""
            ))
        }
    };
    let port = raw.port.unwrap_or(match tls {
        EmailTls::None => 25,
        EmailTls::Starttls => 587,
        EmailTls::Tls => 465,
    });
    let from = raw.from.clone().unwrap_or_default();
    // Parsed as the sender will (lettre's `Mailbox`), so a value the
    // sender would refuse stops the start instead of silently turning
    // email off while the widget still promises it.
    let plausible = from
        .rsplit_once('<')
        .map_or(from.as_str(), |(_, a)| a.trim_end_matches('>'));
    if !plausible_email(plausible.trim()) || from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(format!(
            "from: {from:?} is not an address like \"Shop <help@shop.example>\" (required with a host; quote a name with a comma: \"\\\"Shop, Inc.\\\" <help@shop.example>\")"
        ));
    }
    if tls != EmailTls::None {
        if let Err(e) = lettre::transport::smtp::client::TlsParameters::new(host.to_string()) {
            return Err(format!("host: {host:?} cannot be used with tls: {e}"));
        }
    }
    let public_url = raw.public_url.clone().unwrap_or_default();
    if !(public_url.starts_with("http://") || public_url.starts_with("https://"))
        || public_url.contains('#')
    {
        return Err(format!(
            "public_url: {public_url:?} is not the page the widget is on, like \"https://shop.example/help\" (required with a host; no #fragment)"
        ));
    }
    let notify = raw.notify.clone().unwrap_or_default();
    if let Some(bad) = notify.iter().find(|a| !plausible_email(a)) {
        return Err(format!("notify: {bad:?} is not an email address"));
    }
    if raw.password.is_some() && raw.username.is_none() {
        return Err("password without a username".into());
    }
    Ok(Some(Email {
        host: host.to_string(),
        port,
        tls,
        username: raw.username.clone(),
        password: raw.password.clone().map(Secret),
        from,
        public_url,
        notify,
        batch_secs: raw.batch_secs.unwrap_or(60),
        transcripts_per_hour: raw.transcripts_per_hour.unwrap_or(100),
        link_hours: match raw.link_hours.unwrap_or(72) {
            0 => return Err("link_hours: must be at least 1".into()),
            h => h,
        },
    }))
}

/// `[identity]` checked: a short key is easy to guess, and enforcing
/// without a key would refuse every visitor id.
fn identity(raw: &RawIdentity) -> Result<Identity, String> {
    let secret = raw.secret.clone().filter(|s| !s.is_empty());
    if secret.as_ref().is_some_and(|s| s.chars().count() < 16) {
        return Err("secret must be at least 16 characters".into());
    }
    let enforce = raw.enforce.unwrap_or(false);
    if enforce && secret.is_none() {
        return Err(
            "enforce = true needs a secret (or FRONTDESK_IDENTITY__SECRET) to verify with".into(),
        );
    }
    Ok(Identity {
        secret: secret.map(Secret),
        enforce,
    })
}

/// `[texts]` compiled: the language's set with the overrides. A bad key or
/// text points at its place in the file, or names the variable it came
/// from.
fn texts(raw: &BTreeMap<String, String>, source: &str, path: &Path) -> Result<Texts, ConfigError> {
    let fail = |key: &str, e: TextError| {
        let spans = toml::from_str::<TextSpans>(source)
            .map(|s| s.texts)
            .unwrap_or_default();
        let in_file = spans.iter().find(|(k, v)| {
            k.get_ref() == key && v.get_ref().as_str() == raw.get(key).map(String::as_str)
        });
        match in_file {
            Some((k, v)) => {
                let at = if matches!(e, TextError::UnknownKey(_)) {
                    k.span().start
                } else {
                    v.span().start
                };
                let (line, col) = crate::intents::error::line_col(source, at);
                ConfigError::Parse {
                    path: path.to_path_buf(),
                    line,
                    col,
                    message: format!("[texts] {e}"),
                }
            }
            None => ConfigError::Env {
                var: format!("FRONTDESK_TEXTS__{}", key.to_uppercase()),
                message: e.to_string(),
            },
        }
    };
    let language = match raw.get("language") {
        None => Language::En,
        Some(code) => Language::parse(code)
            .ok_or_else(|| fail("language", TextError::Language(code.clone())))?,
    };
    let overrides = raw
        .iter()
        .filter(|(k, _)| *k != "language")
        .map(|(k, v)| (k.as_str(), v.as_str()));
    Texts::try_new(language, overrides).map_err(|e| fail(e.key(), e.clone()))
}

/// `frontdesk default-config`: every setting, its default, and why.
pub const DEFAULT_CONFIG: &str = r#"# frontdesk.toml — every setting with its default. Delete what you keep as
# is. Any setting can be overridden by an environment variable named
# FRONTDESK_<SECTION>__<KEY>, e.g. FRONTDESK_SERVER__BIND=0.0.0.0:8080 or
# FRONTDESK_SERVER__ALLOWED_ORIGINS='["https://shop.example"]'.

[server]
# Address to listen on. Port 0 picks a free port (the log says which).
bind = "127.0.0.1:8080"
# The intent files; edits are picked up while the server runs.
intents_dir = "intents"
# Conversations, the queue, agents and the webhook outbox (sled; with
# [store] backend = "postgres" they are in the database instead).
data_dir = "data"
# Pages on these origins may embed the widget (CORS and WebSocket checks).
# The server's own origin is always allowed.
allowed_origins = []
# How often intents_dir is checked for edits, in milliseconds.
reload_poll_ms = 250
# Rewrite data_dir with only its live data before serving: sled never gives
# back the space of deleted conversations. Takes about 13 s per million
# messages (BENCHMARKS.md), so it is off unless you delete data.
compact_on_start = false
# Reverse proxies (addresses or networks, e.g. ["127.0.0.1", "10.0.0.0/8"])
# whose forwarding header names the client. Only from these peers is the
# header believed: the client is the rightmost address in it that is not
# itself a trusted proxy, and per-IP limits and logs use it. Empty: the TCP
# peer is the client, and a client's own X-Forwarded-For is ignored.
trusted_proxies = []
# The header those proxies write: "x-forwarded-for" or "forwarded" (RFC 7239).
forwarded_header = "x-forwarded-for"

[limits]
# Largest request body, in bytes (413 above it).
body_bytes = 65536
# Longest visitor or agent message, in characters (422 above it).
message_chars = 2000
# Messages one visitor may send per minute (429 with Retry-After above it).
messages_per_minute = 20
# New conversations one IP address may start per minute.
conversations_per_ip_per_minute = 10
# Requests of any kind from one IP address per minute.
requests_per_ip_per_minute = 600
# Open WebSockets per IP address, and in all.
websockets_per_ip = 20
websockets_total = 10000
# Largest WebSocket message a client may send, in bytes (at most 65536);
# a larger one closes the socket with code 1009.
websocket_message_bytes = 16384
# Messages a client may send on one WebSocket per minute (close 1008 above).
websocket_messages_per_minute = 120
# A client must send its request headers within this many seconds.
header_read_timeout_secs = 10
# And a request's body within this many seconds of its headers (408 after).
body_read_timeout_secs = 10
# Open connections one address may hold; one more is answered 429 and
# closed. Trusted proxies are not capped (they carry many clients). Keep it
# above websockets_per_ip: each socket holds a connection.
connections_per_ip = 64
# A WebSocket that answers no ping for this long is closed.
websocket_idle_secs = 60

[escalation]
# Hand off after this many fallbacks in a row (0: never).
max_fallbacks = 2
# Hand off at once when a message reads as upset.
on_negative_sentiment = true
# Ask "Shall I get a person?" before a handoff the visitor did not ask for.
offer_first = true

[queue]
# Upset visitors go first.
priority_for_upset = true
# Handle time assumed for wait estimates before any was measured, seconds.
default_handle_secs = 300

# Opening hours of the team; without this section, agents' presence alone
# decides. Times are HH:MM-HH:MM in the shop's time zone.
# [business_hours]
# timezone = "Europe/Berlin"
# monday = ["09:00-17:00"]
# tuesday = ["09:00-17:00"]
# wednesday = ["09:00-17:00"]
# thursday = ["09:00-17:00"]
# friday = ["09:00-13:00", "14:00-17:00"]
# saturday = []
# sunday = []
# closed = ["2026-12-25"]

# Everything the bot and the widget say to visitors, in one language: "en"
# or "de". (The intents' answers are yours and stay as written.)
[texts]
language = "en"
# Any sentence can be replaced, whatever the language. A key that does not
# exist, or a {placeholder} the sentence does not support, stops the server
# at start with the line to fix. The keys, with their English text; the
# {placeholders} each one shows are the ones it supports:
# fallback = "Sorry, I didn't get that. Could you put it another way, or shall I get a person?"
# offer = "I'm not sure I can help with that. Shall I get a person?"
# declined = "All right. Ask me anything else, or tap \"{person}\" at any time."
# not_helpful = "Sorry that didn't help. Shall I get a person?"
# lookup_locked = "I can't look up more orders in this chat. Shall I get a person to help you?"
# talk_to_person = "Talk to a person"
# offer_yes = "Yes please"
# offer_no = "No thanks"
# clarify = "Did you mean: {options}?"
# clarify_option = "\"{label}\""
# clarify_or = ", or "
# no_name = "there"
# queue_closed_until = "We're closed right now. A person will reply when we open, {opens}. Your message is saved."
# queue_closed = "We're closed right now. Your message is saved and a person will reply as soon as we can."
# queue_nobody = "Nobody from the team is available at this moment. Your message is saved and a person will reply as soon as someone is back."
# queue_email_offer = "Leave your email if you'd like the answer there too."
# leave_email = "Leave my email"
# opens_at = "{weekday} {time} ({timezone})"
# monday = "Monday"
# tuesday = "Tuesday"
# wednesday = "Wednesday"
# thursday = "Thursday"
# friday = "Friday"
# saturday = "Saturday"
# sunday = "Sunday"
# widget_title = "Chat with us"
# widget_open = "Open chat"
# widget_close = "Close chat"
# widget_welcome = "Hi! Ask me about orders, shipping, returns and more."
# widget_placeholder = "Type your message…"
# widget_send = "Send"
# widget_typing = "Typing…"
# widget_you = "You"
# widget_bot = "Assistant"
# widget_joined = "{agent} joined the conversation"
# widget_queued = "You are number {position} in the queue."
# widget_wait = "Estimated wait: about {minutes} min."
# widget_handoff = "Getting a person for you…"
# widget_transfer = "You are now talking with {agent}."
# widget_back = "You are back with the assistant."
# widget_closed = "The conversation was closed."
# widget_rate = "How did we do?"
# widget_star = "{n} of 5"
# widget_thanks = "Thank you for your rating!"
# widget_helpful = "Was this helpful?"
# widget_helpful_yes = "Yes"
# widget_helpful_no = "No"
# widget_helpful_thanks = "Thanks for telling us."
# widget_email = "Your email"
# widget_email_send = "Send"
# widget_email_left = "We will also reply to {email}."
# widget_limited = "You are sending messages too fast. Please wait {seconds} s."
# widget_down = "We cannot reach the chat right now. Reconnecting…"
# widget_failed = "Something went wrong. Please try again."
# widget_comment = "Anything to add? (optional)"
# widget_unread = "Open chat, {n} new"
# widget_attach = "Attach a photo or PDF"
# widget_attaching = "Sending the file…"
# widget_attach_too_large = "That file is too large."
# widget_attach_type = "Only photos (PNG, JPEG, GIF, WebP) and PDF files can be sent."
# widget_attach_closed = "This conversation was closed: send a message first, then the file."
# widget_transcript = "Email me this conversation"
# widget_transcript_sent = "The conversation will be sent to {email}."
# widget_prechat = "Before we start, tell us who you are."
# widget_prechat_name = "Your name (optional)"
# widget_prechat_start = "Start chat"
# widget_prechat_bad_email = "Please enter an email address like name@example.com."
# widget_link_spent = "This link from our email has been used or has expired. The newest email from us has a fresh one; or start a new chat here."
# email_reply_subject = "{agent} replied to your question"
# email_reply_intro = "Hello {name}, you have a reply in your chat with us:"
# email_link = "Continue the conversation: {link}"
# email_transcript_subject = "Your conversation with us"
# email_transcript_intro = "Here is your conversation with us, as you saw it:"
# email_file = "Sent a file: {name} ({size})"
# widget_identity_refused = "We could not confirm your account, so this chat is not linked to it."
# menu = "I can help with these. Pick one, or tell me a little more:"

# The optional semantic layer (a build with `--features semantic`, int8
# only and no libtorch, or `transformer`): the model directory that
# models/fetch.sh prints. A model that is set but
# missing or broken stops the server at start, naming the script.
# `precision` is what the model computes in: "int8" (our own pass with
# 8-bit weights) is several times faster than "f32" on CPUs with int8 dot
# products (AVX512-VNNI), "bf16" about twice as fast on CPUs with bfloat16
# ones (AVX512-BF16), "f32" is rust-bert's reference; "auto" picks int8,
# else bf16, else f32, by what the CPU has (int8 in a `semantic` build).
# [model]
# model_dir = "models/all-MiniLM-L6-v2"
# precision = "auto"

[retention]
# Delete conversations whose last event is older than this many days and
# that no person is involved in (closed, or idle with the bot: nobody
# touched it, it has ended), with everything stored about them (log,
# rating, indexes, undelivered webhooks); checked at start and then every
# hour. 0 keeps every conversation forever. Queued ones and ones with an
# agent are never deleted by age.
closed_after_days = 0

# Reports (README, "Reports"): a contained conversation is durable when the
# same visitor starts no other conversation within durable_days of its
# start; a closed one is resolved at first contact when it is not reopened
# (by a message or a new conversation of the same visitor) within fcr_days.
[reports]
durable_days = 7
fcr_days = 7

# Assignment and presence (README, "Assignment and presence").
[assignment]
# Give a waiting visitor to an online agent with free capacity by itself
# (upset visitors first, the least busy agent first): when the visitor
# starts waiting and whenever an agent becomes available. Off: agents
# claim from the queue.
auto_assign = false
# An agent who set themselves online and whose last console tab closed
# becomes away after this many seconds (visitors are then told nobody is
# there instead of a wait); a console that connects again makes them
# online again. 0: presence is only what the agent sets.
away_after_secs = 120
# Files visitors and agents send into a conversation: images (PNG, JPEG,
# GIF, WebP) and PDFs, recognised by their content, never by their name.
# The largest file taken, in bytes (at most 33554432); a bigger upload is
# answered 413 and cut off once it passes the limit.
[attachments]
max_bytes = 10485760
# Storage caps: files and bytes one conversation may hold (over either an
# upload is answered 413 `attachment_quota_exceeded`), and bytes all
# conversations together may hold (507 `attachment_storage_full`; 0: no
# such cap). Deleting conversations (retention, erase) frees their share.
max_files_per_conversation = 20
max_bytes_per_conversation = 52428800
max_total_bytes = 5368709120

# Webhooks: a versioned JSON packet (conversation, summary, transcript) is
# POSTed on each event, signed in the X-Frontdesk-Signature header as
# "sha256=" + hex HMAC-SHA256 of the body with the secret. Deliveries are
# retried with backoff from a durable outbox. Plain http:// only.
# [[webhooks]]
# url = "http://crm.internal/frontdesk"
# secret = "at least 16 characters"
# events = ["handoff", "closed"]

# Email through SMTP (README, "Email"): an agent's replies to a visitor who
# left an address and is not connected (batched over batch_secs, with a
# link back into the conversation), the transcript when a visitor asks at
# the close, and a notice to `notify` when a visitor waits with no agent
# online. Without a host nothing is sent and the widget promises no email.
# Emails wait in the durable outbox and are retried with backoff.
[email]
# host = "smtp.example.com"
# port: 25 with tls = "none", 587 with "starttls", 465 with "tls".
# port = 587
# tls = "starttls"
# username = "frontdesk@shop.example"
# The password is best given as FRONTDESK_EMAIL__PASSWORD.
# password = ""
# from = "Shop support <help@shop.example>"
# The page the widget is on: email links open it with #frontdesk=… and
# the widget resumes the conversation.
# public_url = "https://shop.example/help"
notify = []
batch_secs = 60
# Transcripts go only to the address the visitor left, once per
# conversation, and at most this many an hour in all.
transcripts_per_hour = 100
# The link in an email works once, for this many hours, and opens only
# its conversation (README, "Email").
link_hours = 72

# The widget: prechat asks for a name (optional) and an email (checked)
# before the first message; agents see them as the visitor's identity.
[widget]
prechat = false

# Identity verification (README, "Identity verification"): the shop's page
# calls FrontDesk.identify({id, name, email, hash}) with hash = hex
# HMAC-SHA256 of the id, made by the shop's server with this secret (at
# least 16 characters; best given as FRONTDESK_IDENTITY__SECRET). A
# verified id is shown to agents as verified; without a valid hash it is
# kept as claimed, or refused (`identity_unverified`) with enforce = true.
[identity]
# secret = "at least 16 characters"
enforce = false

# Actions (README, "Actions"): intents with a [call] answer from the shop's
# backend. Off unless a signing secret is set (every request is signed:
# X-Frontdesk-Signature = "sha256=" + hex HMAC-SHA256 of
# "{timestamp}\n{METHOD}\n{path?query}\n{body}", X-Frontdesk-Timestamp);
# while off, those intents say their plain `answer`. Plain http:// only.
# Secrets named by intents ({ secret = "shop_api_key" }) come from
# [actions.secrets] or, better, FRONTDESK_SECRET_SHOP_API_KEY.
[actions]
# base_url = "http://127.0.0.1:8787"
# signing_secret = "at least 16 characters"
# [actions.secrets]
# shop_api_key = ""

# Where conversations, the queue, agents and the outbox are kept (README,
# "PostgreSQL"). "sled": files in [server] data_dir, for one process.
# "postgres": a PostgreSQL database at `url`, migrated at start (or with
# `frontdesk store migrate`), which several `frontdesk serve` nodes may
# share (README, "Several nodes on one database"). `frontdesk store copy`
# moves a shop between the two.
[store]
backend = "sled"
# The connection string; a password in it is never logged. Best given as
# FRONTDESK_STORE__URL.
# url = "postgres://frontdesk@localhost/frontdesk"
# Connections one node keeps open at most. A store call holds one only for
# its own statements, so 16 serve many more requests at once, and leave
# room in PostgreSQL's default max_connections (100) for more nodes.
pool_size = 16
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_take_secrets_from_the_file_and_the_environment_and_never_print_them() {
        let off = Config::load(None, []).unwrap();
        assert!(!off.actions.enabled(), "no signing secret: actions off");
        let (_d, p) = write("[actions]\nsigning_secret = \"sign-0123456789abcdef\"\nbase_url = \"http://127.0.0.1:8787/\"\n[actions.secrets]\nshop_api_key = \"from-file-1\"\nother = \"from-file-2\"\n");
        let env = [(
            "FRONTDESK_SECRET_SHOP_API_KEY".to_string(),
            "from-env-1".to_string(),
        )];
        let c = Config::load(Some(&p), env).unwrap();
        assert!(c.actions.enabled());
        assert_eq!(c.actions.base_url.as_deref(), Some("http://127.0.0.1:8787"));
        assert_eq!(
            c.actions.secrets["shop_api_key"].0, "from-env-1",
            "the environment wins"
        );
        assert_eq!(c.actions.secrets["other"].0, "from-file-2");
        let shown = format!("{:?}", c.actions);
        for s in ["sign-0123456789abcdef", "from-env-1", "from-file-2"] {
            assert!(!shown.contains(s), "{shown}");
        }
        for bad in [
            "[actions]\nsigning_secret = \"short\"\n",
            "[actions]\nbase_url = \"https://shop.example\"\n",
        ] {
            let (_d, p) = write(bad);
            let e = Config::load(Some(&p), []).unwrap_err().to_string();
            assert!(e.contains("[actions]"), "{e}");
        }
    }

    #[test]
    fn the_printed_default_config_is_the_default() {
        let (_d, p) = write(DEFAULT_CONFIG);
        let printed = Config::load(Some(&p), []).unwrap();
        let none = Config::load(None, []).unwrap();
        assert_eq!(printed.server, none.server);
        assert_eq!(printed.limits, none.limits);
        assert_eq!(printed.escalation, none.escalation);
        assert_eq!(printed.default_handle_secs, none.default_handle_secs);
        assert_eq!(printed.texts, none.texts);
        assert_eq!(printed.retention, none.retention);
        assert_eq!(printed.reports, none.reports);
        assert_eq!(printed.assignment, none.assignment);
        assert_eq!(printed.attachments, none.attachments);
        assert_eq!(printed.email, none.email);
        assert_eq!(printed.widget, none.widget);
        assert_eq!(printed.identity, none.identity);
        assert_eq!(printed.actions, none.actions);
        assert_eq!(printed.store, none.store);
        // Every text is listed, commented out, with its English default.
        let section = &DEFAULT_CONFIG[DEFAULT_CONFIG.find("\n[texts]\n").unwrap()..];
        let listed: toml::Table = section
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.split_once(" = ").is_some_and(|(k, _)| {
                    crate::conversation::texts::KEYS.iter().any(|t| t.name == k)
                })
            })
            .collect::<Vec<_>>()
            .join("\n")
            .parse()
            .unwrap();
        for key in crate::conversation::texts::KEYS {
            assert_eq!(
                listed.get(key.name).and_then(|v| v.as_str()),
                none.texts.get(key.name),
                "`{}` in DEFAULT_CONFIG",
                key.name
            );
        }
        // Every raw setting appears in the text, so none goes undocumented.
        for key in [
            "bind",
            "intents_dir",
            "data_dir",
            "allowed_origins",
            "reload_poll_ms",
            "body_bytes",
            "message_chars",
            "messages_per_minute",
            "conversations_per_ip_per_minute",
            "requests_per_ip_per_minute",
            "websockets_per_ip",
            "websockets_total",
            "websocket_message_bytes",
            "websocket_messages_per_minute",
            "header_read_timeout_secs",
            "body_read_timeout_secs",
            "connections_per_ip",
            "trusted_proxies",
            "forwarded_header",
            "websocket_idle_secs",
            "max_fallbacks",
            "on_negative_sentiment",
            "offer_first",
            "priority_for_upset",
            "default_handle_secs",
            "language",
            "closed_after_days",
            "durable_days",
            "fcr_days",
            "auto_assign",
            "away_after_secs",
            "max_bytes",
            "max_files_per_conversation",
            "max_bytes_per_conversation",
            "max_total_bytes",
            "notify",
            "batch_secs",
            "transcripts_per_hour",
            "link_hours",
            "prechat",
            "enforce",
            "backend",
            "pool_size",
        ] {
            assert!(DEFAULT_CONFIG.contains(&format!("\n{key} = ")), "{key}");
        }
        // `[email]`'s server settings have no default: shown commented out.
        let email = &DEFAULT_CONFIG[DEFAULT_CONFIG.find("\n[email]\n").unwrap()..];
        for key in [
            "host",
            "port",
            "tls",
            "username",
            "password",
            "from",
            "public_url",
        ] {
            assert!(email.contains(&format!("\n# {key} = ")), "[email] {key}");
        }
        let store = &DEFAULT_CONFIG[DEFAULT_CONFIG.find("\n[store]\n").unwrap()..];
        assert!(store.contains("\n# url = "), "[store] url");
    }

    #[test]
    fn the_store_section_picks_the_backend_and_points_at_its_keys() {
        assert_eq!(Config::load(None, []).unwrap().store, StoreConfig::Sled);
        let (_d, p) = write("[store]\nbackend = \"postgres\"\nurl = \"postgres://fd@db/shop\"\n");
        let StoreConfig::Postgres(pg) = Config::load(Some(&p), []).unwrap().store else {
            panic!("postgres")
        };
        assert_eq!(pg.url.0, "postgres://fd@db/shop");
        assert_eq!(pg.pool_size, DEFAULT_POOL_SIZE);
        // The url from the environment, the usual way with a password.
        let (_d, p) = write(
            "[server]\nbind = \"127.0.0.1:0\"\n\n[store]\nbackend = \"postgres\"\npool_size = 4\n",
        );
        let env = [(
            "FRONTDESK_STORE__URL".to_string(),
            "postgres://fd:hunter2-pw@db:5433/shop?sslmode=disable".to_string(),
        )];
        let c = Config::load(Some(&p), env).unwrap();
        let StoreConfig::Postgres(pg) = &c.store else {
            panic!("postgres")
        };
        assert_eq!(
            pg.url.0,
            "postgres://fd:hunter2-pw@db:5433/shop?sslmode=disable"
        );
        assert_eq!(pg.pool_size, 4);
        assert_eq!(pg.shown(), "postgres://fd:***@db:5433/shop?sslmode=disable");
        assert!(!format!("{c:?}").contains("hunter2"), "Debug hides the url");
        // No url: the error points at `backend`, in the file or the variable.
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(
            e.contains("frontdesk.toml:5:11: [store] backend = \"postgres\" needs a url"),
            "{e}"
        );
        let env = [(
            "FRONTDESK_STORE__BACKEND".to_string(),
            "postgres".to_string(),
        )];
        let e = Config::load(None, env).unwrap_err().to_string();
        assert!(
            e.starts_with("environment variable FRONTDESK_STORE__BACKEND: [store] backend = \"postgres\" needs a url"),
            "{e}"
        );
        for (body, want) in [
            (
                "[store]\nbackend = \"mysql\"\n",
                "frontdesk.toml:2:11: [store] backend \"mysql\" is not \"sled\" or \"postgres\"",
            ),
            (
                "[store]\nbackend = \"postgres\"\nurl = \"postgres://db/x\"\npool_size = 0\n",
                "frontdesk.toml:4:13: [store] pool_size = 0 is not 1 to 1000",
            ),
            (
                "[store]\nbackend = \"postgres\"\nurl = \"  \"\n",
                "needs a url",
            ),
            (
                "[store]\nuser = \"x\"\n",
                "frontdesk.toml:2:1: unknown field `user`",
            ),
        ] {
            let (_d, p) = write(body);
            let e = Config::load(Some(&p), []).unwrap_err().to_string();
            assert!(e.contains(want), "{body:?}: {e}");
        }
    }

    #[test]
    fn a_password_in_a_store_url_is_never_shown() {
        for (url, shown) in [
            ("postgres://fd:s3cret@db/shop", "postgres://fd:***@db/shop"),
            (
                "postgresql://fd:s3:cr@t@db:5432",
                "postgresql://fd:***@db:5432",
            ),
            ("postgres://fd@db/shop", "postgres://fd@db/shop"),
            ("postgres://db/shop", "postgres://db/shop"),
            (
                "postgres://db/shop?user=fd&password=s3cret&sslmode=require",
                "postgres://db/shop?user=fd&password=***&sslmode=require",
            ),
            (
                "host=db user=fd password=s3cret dbname=shop",
                "host=db user=fd password=*** dbname=shop",
            ),
            (
                "host=db password = 's3 \\' cret' dbname=shop",
                "host=db password = *** dbname=shop",
            ),
            (
                "host=/run/postgresql dbname=shop",
                "host=/run/postgresql dbname=shop",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3"), "{url}");
        }
    }

    #[test]
    fn server_settings_are_checked() {
        let (_d, p) = write("[limits]\nwebsocket_message_bytes = 1000000\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(
            e.contains("websocket_message_bytes = 1000000 is over"),
            "{e}"
        );
        let (_d, p) = write("[[webhooks]]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(e.contains("must start with http://"), "{e}");
        let (_d, p) = write("[model]\nprecision = \"fp8\"\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(
            e.contains(r#"[model] precision "fp8" is not one of "auto", "f32", "bf16", "int8""#),
            "{e}"
        );
        let (_d, p) = write("[model]\nprecision = \"f32\"\n");
        let c = Config::load(Some(&p), []).unwrap();
        assert_eq!(c.model_precision, Precision::F32);
        assert_eq!(
            Config::load(None, []).unwrap().model_precision,
            Precision::Auto
        );
        let env = [(
            "FRONTDESK_SERVER__ALLOWED_ORIGINS".to_string(),
            r#"["https://shop.example"]"#.to_string(),
        )];
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.server.allowed_origins, ["https://shop.example"]);
        let env = [(
            "FRONTDESK_SERVER__BIND".to_string(),
            "127.0.0.1:0".to_string(),
        )];
        assert_eq!(Config::load(None, env).unwrap().server.bind, "127.0.0.1:0");
    }

    #[test]
    fn trusted_proxies_are_checked() {
        let (_d, p) = write(
            "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]\nforwarded_header = \"forwarded\"\n",
        );
        let c = Config::load(Some(&p), []).unwrap();
        let [one, ten, v6] = c.server.trusted_proxies[..] else {
            panic!("{:?}", c.server.trusted_proxies)
        };
        assert_eq!(c.server.forwarded_header, ForwardedHeader::Forwarded);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(one.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped");
        assert!(ten.contains(ip("10.200.3.4")) && !ten.contains(ip("11.0.0.1")));
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        let c = Config::load(None, []).unwrap();
        assert!(c.server.trusted_proxies.is_empty(), "none by default");
        assert_eq!(c.server.forwarded_header, ForwardedHeader::XForwardedFor);
        for (value, error) in [
            (
                "[\"nginx\"]",
                "[server] trusted_proxies: \"nginx\" is not an IP address",
            ),
            ("[\"10.0.0.0/33\"]", "prefix /33 is not 0 to 32"),
            (
                "[\"10.0.0.1/8\"]",
                "10.0.0.1/8 has host bits set (the network is 10.0.0.0/8)",
            ),
        ] {
            let (_d, p) = write(&format!("[server]\ntrusted_proxies = {value}\n"));
            let e = Config::load(Some(&p), []).unwrap_err().to_string();
            assert!(e.contains(error), "{e}");
        }
        let (_d, p) = write("[server]\nforwarded_header = \"x-real-ip\"\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(
            e.contains("[server] forwarded_header: \"x-real-ip\" is not"),
            "{e}"
        );
        let env = [(
            "FRONTDESK_SERVER__TRUSTED_PROXIES".to_string(),
            r#"["192.168.1.0/24"]"#.to_string(),
        )];
        let c = Config::load(None, env).unwrap();
        assert!(c.server.trusted_proxies[0].contains(ip("192.168.1.77")));
    }

    fn write(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("frontdesk.toml");
        std::fs::write(&p, body).unwrap();
        (dir, p)
    }

    #[test]
    fn defaults_file_then_environment() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(c.escalation, EscalationPolicy::default());
        assert!(c.business_hours.is_none());
        let (_d, p) = write("[escalation]\nmax_fallbacks = 3\noffer_first = false\n[queue]\ndefault_handle_secs = 120\n[business_hours]\ntimezone = \"Europe/Berlin\"\nmonday = [\"09:00-17:00\"]\n");
        let c = Config::load(Some(&p), []).unwrap();
        assert_eq!(c.escalation.max_fallbacks, 3);
        assert!(!c.escalation.offer_first);
        assert_eq!(c.default_handle_secs, 120);
        assert!(c.business_hours.is_some());
        let env = [
            (
                "FRONTDESK_ESCALATION__MAX_FALLBACKS".to_string(),
                "5".to_string(),
            ),
            (
                "FRONTDESK_ESCALATION__ON_NEGATIVE_SENTIMENT".to_string(),
                "false".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = Config::load(Some(&p), env).unwrap();
        assert_eq!(
            c.escalation.max_fallbacks, 5,
            "the environment wins over the file"
        );
        assert!(!c.escalation.on_negative_sentiment);
    }

    #[test]
    fn texts_language_and_overrides() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(*c.texts, Texts::builtin(Language::En));
        let (_d, p) = write(
            "[texts]\nlanguage = \"de\"\nfallback = \"Wie bitte?\"\nwidget_joined = \"{agent} ist da\"\n",
        );
        let c = Config::load(Some(&p), []).unwrap();
        assert_eq!(c.texts.language, Language::De);
        assert_eq!(c.texts.fallback, "Wie bitte?");
        assert_eq!(c.texts.widget_joined, "{agent} ist da");
        assert_eq!(c.texts.offer, Texts::builtin(Language::De).offer);
        let env = [(
            "FRONTDESK_TEXTS__OFFER".to_string(),
            "Soll ich jemanden holen?".to_string(),
        )];
        let c = Config::load(Some(&p), env).unwrap();
        assert_eq!(c.texts.offer, "Soll ich jemanden holen?");
        assert_eq!(c.texts.fallback, "Wie bitte?");
        let env = [
            ("FRONTDESK_TEXTS__WIDGET_SEND".to_string(), "5".to_string()),
            ("FRONTDESK_TEXTS__OFFER_YES".to_string(), "[ja]".to_string()),
        ];
        let c = Config::load(None, env).unwrap();
        assert_eq!((&*c.texts.widget_send, &*c.texts.offer_yes), ("5", "[ja]"));
    }

    #[test]
    fn texts_errors_point_at_the_line() {
        for (body, want) in [
            (
                "[texts]\nlanguage = \"de\"\nfallbak = \"Wie bitte?\"\n",
                "frontdesk.toml:3:1: [texts] unknown text `fallbak`",
            ),
            (
                "[texts]\nfallback = \"Sorry {name}\"\n",
                "frontdesk.toml:2:12: [texts] text `fallback` does not support the placeholder `{name}` (it supports: none)",
            ),
            (
                "[texts]\nlanguage = \"fr\"\n",
                "frontdesk.toml:2:12: [texts] unknown language \"fr\" (known: \"en\", \"de\")",
            ),
            (
                "[texts]\n\n  offer = \"\"\n",
                "frontdesk.toml:3:11: [texts] text `offer` is empty",
            ),
            (
                "[texts]\nfallback = 3\n",
                "frontdesk.toml:2:12: invalid type",
            ),
        ] {
            let (_d, p) = write(body);
            let e = Config::load(Some(&p), []).unwrap_err().to_string();
            assert!(e.contains(want), "{body:?}: {e}");
        }
        let env = [(
            "FRONTDESK_TEXTS__OPENS_AT".to_string(),
            "{day} {time}".to_string(),
        )];
        let e = Config::load(None, env).unwrap_err().to_string();
        assert!(
            e.starts_with("environment variable FRONTDESK_TEXTS__OPENS_AT: text `opens_at` does not support the placeholder `{day}`"),
            "{e}"
        );
    }

    #[test]
    fn errors_point_at_the_line_or_the_variable() {
        let (_d, p) = write("[escalation]\nmax_fallbacks = 2\nmax_fallback = 3\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(
            e.contains("frontdesk.toml:3:1: unknown field `max_fallback`"),
            "{e}"
        );
        let (_d, p) = write("[escalation]\nmax_fallbacks = \"two\"\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(e.contains("frontdesk.toml:2:17: invalid type"), "{e}");
        let env = [(
            "FRONTDESK_ESCALATION__MAX_FALLBACKS".to_string(),
            "many".to_string(),
        )];
        let e = Config::load(None, env).unwrap_err().to_string();
        assert!(
            e.starts_with("environment variable FRONTDESK_ESCALATION__MAX_FALLBACKS: invalid type"),
            "{e}"
        );
        let (_d, p) = write("[business_hours]\ntimezone = \"Mars/Base\"\n");
        let e = Config::load(Some(&p), []).unwrap_err().to_string();
        assert!(e.contains("unknown time zone `Mars/Base`"), "{e}");
        let e = Config::load(Some(Path::new("/nonexistent/frontdesk.toml")), [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}

//! The `/metrics` exposition, through `prometheus-client`: every family is
//! registered once, with its help text, when [`Metrics`] is built, and
//! callers count through [`Count`], so a counter cannot go unexported (the
//! hand-written format dropped any name missing from its help table) and
//! label values are escaped by the encoder.
//!
//! The output is the OpenMetrics text format ([`CONTENT_TYPE`]). Sample
//! names and labels are those of the hand-written version, so dashboards
//! keep working; what changed is that a counter's `# TYPE`/`# HELP` lines
//! name the family without `_total`, histogram bounds read `le="10.0"`,
//! and the text ends with `# EOF`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What `/metrics` answers with: the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the wait-time histogram, in seconds.
const WAIT_BUCKETS: &[f64] = &[10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

/// One label: its name and value.
type One = [(&'static str, String); 1];
/// Two labels.
type Two = [(&'static str, String); 2];

/// One event to count; each variant is one counter family of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count<'a> {
    /// `frontdesk_http_requests_total{route, status}`.
    HttpRequest { route: &'a str, status: u16 },
    /// `frontdesk_messages_total{from}`: `visitor` or `agent`.
    Message(&'a str),
    /// `frontdesk_decisions_total{kind}`: `answer`, `clarify`, `fallback`.
    Decision(&'a str),
    /// `frontdesk_handoffs_total{reason}`.
    Handoff(&'a str),
    /// `frontdesk_webhook_deliveries_total{result}`: `ok` or `failed`.
    WebhookDelivery(&'a str),
    /// `frontdesk_reloads_total{result}`: `ok` or `error`.
    Reload(&'a str),
    /// `frontdesk_emails_total{result}`: `sent` or `failed` (per attempt).
    Email(&'a str),
}

/// The gauges of `/metrics`, read by the caller when it is rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauges {
    pub queue_length: i64,
    pub agents_online: i64,
    pub websockets_open: i64,
    pub webhook_outbox: i64,
}

/// The registered families. Counting is atomic (the families hold their
/// own locks, never across an `.await`); the registry is only read.
#[derive(Debug)]
pub struct Metrics {
    /// Owns the descriptions; encoded on every scrape.
    registry: Registry,
    http_requests: Family<Two, Counter>,
    messages: Family<One, Counter>,
    decisions: Family<One, Counter>,
    handoffs: Family<One, Counter>,
    webhook_deliveries: Family<One, Counter>,
    reloads: Family<One, Counter>,
    emails: Family<One, Counter>,
    /// `frontdesk_intent_builds_total`: intent sets built into a
    /// classifier by this process (`classify::builds`, read at render).
    intent_builds: Counter,
    /// Two scrapes at once must not both add the same builds.
    intent_builds_sync: std::sync::Mutex<()>,
    queue_length: Gauge,
    agents_online: Gauge,
    websockets_open: Gauge,
    webhook_outbox: Gauge,
    /// How long visitors waited for an agent, in seconds.
    waits: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        // Counter names are given without `_total`: the encoder adds it to
        // the samples. Help texts get their final `.` from the encoder too.
        let mut counter = |name: &str, help: &str| {
            let family = Family::<One, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let messages = counter("frontdesk_messages", "Messages by sender (visitor, agent)");
        let decisions = counter("frontdesk_decisions", "Bot decisions by kind");
        let handoffs = counter("frontdesk_handoffs", "Handoffs to a person by reason");
        let webhook_deliveries = counter(
            "frontdesk_webhook_deliveries",
            "Webhook delivery attempts by result",
        );
        let reloads = counter("frontdesk_reloads", "Intent reloads by result");
        let emails = counter("frontdesk_emails", "Email send attempts by result");
        let intent_builds = Counter::default();
        registry.register(
            "frontdesk_intent_builds",
            "Intent sets built (loads, reloads, validated edits, replays)",
            intent_builds.clone(),
        );
        let http_requests = Family::<Two, Counter>::default();
        registry.register(
            "frontdesk_http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let mut gauge = |name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let queue_length = gauge(
            "frontdesk_queue_length",
            "Conversations waiting for an agent",
        );
        let agents_online = gauge("frontdesk_agents_online", "Agents online");
        let websockets_open = gauge("frontdesk_websockets_open", "Open WebSockets");
        let webhook_outbox = gauge(
            "frontdesk_webhook_outbox",
            "Webhook deliveries not yet acknowledged",
        );
        let waits = Histogram::new(WAIT_BUCKETS.iter().copied());
        registry.register(
            "frontdesk_wait_seconds",
            "How long visitors waited for an agent",
            waits.clone(),
        );
        Metrics {
            registry,
            http_requests,
            messages,
            decisions,
            handoffs,
            webhook_deliveries,
            reloads,
            emails,
            intent_builds,
            intent_builds_sync: std::sync::Mutex::new(()),
            queue_length,
            agents_online,
            websockets_open,
            webhook_outbox,
            waits,
        }
    }

    /// Adds one to the counter of `what`.
    pub fn inc(&self, what: Count<'_>) {
        let (family, name, value) = match what {
            Count::HttpRequest { route, status } => {
                let labels = [("route", route.to_string()), ("status", status.to_string())];
                self.http_requests.get_or_create(&labels).inc();
                return;
            }
            Count::Message(from) => (&self.messages, "from", from),
            Count::Decision(kind) => (&self.decisions, "kind", kind),
            Count::Handoff(reason) => (&self.handoffs, "reason", reason),
            Count::WebhookDelivery(result) => (&self.webhook_deliveries, "result", result),
            Count::Reload(result) => (&self.reloads, "result", result),
            Count::Email(result) => (&self.emails, "result", result),
        };
        family.get_or_create(&[(name, value.to_string())]).inc();
    }

    /// Records one visitor's wait for an agent.
    pub fn observe_wait(&self, secs: f64) {
        self.waits.observe(secs);
    }

    /// The text exposition, with the gauges the caller reads at this moment.
    pub fn render(&self, gauges: Gauges) -> String {
        self.queue_length.set(gauges.queue_length);
        self.agents_online.set(gauges.agents_online);
        self.websockets_open.set(gauges.websockets_open);
        self.webhook_outbox.set(gauges.webhook_outbox);
        {
            let _one = self
                .intent_builds_sync
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let shown = self.intent_builds.get();
            self.intent_builds
                .inc_by(crate::classify::builds().saturating_sub(shown));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of count is exported under the sample name dashboards
    /// already query (the bug this replaces: a name missing from the help
    /// table was counted and never shown).
    #[test]
    fn every_count_is_exported_under_its_old_name() {
        let m = Metrics::new();
        let all = [
            (
                Count::HttpRequest {
                    route: "/api/v1/conversations",
                    status: 201,
                },
                r#"frontdesk_http_requests_total{route="/api/v1/conversations",status="201"} 1"#,
            ),
            (
                Count::Message("visitor"),
                r#"frontdesk_messages_total{from="visitor"} 1"#,
            ),
            (
                Count::Decision("answer"),
                r#"frontdesk_decisions_total{kind="answer"} 1"#,
            ),
            (
                Count::Handoff("asked"),
                r#"frontdesk_handoffs_total{reason="asked"} 1"#,
            ),
            (
                Count::WebhookDelivery("failed"),
                r#"frontdesk_webhook_deliveries_total{result="failed"} 1"#,
            ),
            (
                Count::Reload("ok"),
                r#"frontdesk_reloads_total{result="ok"} 1"#,
            ),
        ];
        for (what, _) in &all {
            m.inc(*what);
        }
        m.inc(Count::Decision("clarify"));
        m.inc(Count::Decision("clarify"));
        let text = m.render(Gauges::default());
        for (what, line) in &all {
            assert!(text.lines().any(|l| l == *line), "{what:?}: {line}\n{text}");
        }
        assert!(text.contains("frontdesk_decisions_total{kind=\"clarify\"} 2\n"));
        assert!(text.contains("# HELP frontdesk_decisions Bot decisions by kind.\n"));
        assert!(text.contains("# TYPE frontdesk_decisions counter\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn gauges_and_the_wait_histogram() {
        let m = Metrics::new();
        m.observe_wait(12.0);
        m.observe_wait(4000.0);
        let text = m.render(Gauges {
            queue_length: 3,
            agents_online: 2,
            websockets_open: 7,
            webhook_outbox: 0,
        });
        for line in [
            "# TYPE frontdesk_queue_length gauge",
            "frontdesk_queue_length 3",
            "frontdesk_agents_online 2",
            "frontdesk_websockets_open 7",
            "frontdesk_webhook_outbox 0",
            "# TYPE frontdesk_wait_seconds histogram",
            r#"frontdesk_wait_seconds_bucket{le="10.0"} 0"#,
            r#"frontdesk_wait_seconds_bucket{le="30.0"} 1"#,
            r#"frontdesk_wait_seconds_bucket{le="3600.0"} 1"#,
            r#"frontdesk_wait_seconds_bucket{le="+Inf"} 2"#,
            "frontdesk_wait_seconds_sum 4012.0",
            "frontdesk_wait_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        // Gauges are the values of this render, not a sum of renders.
        let text = m.render(Gauges::default());
        assert!(
            text.lines().any(|l| l == "frontdesk_queue_length 0"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.inc(Count::HttpRequest {
            route: "/a\"b\\c\nd",
            status: 404,
        });
        let text = m.render(Gauges::default());
        let want = r#"frontdesk_http_requests_total{route="/a\"b\\c\nd",status="404"} 1"#;
        assert!(text.lines().any(|l| l == want), "{text}");
    }
}

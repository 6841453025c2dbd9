//! Counters for `/metrics`, in Prometheus' text format. A handful of
//! series, so a map under a std `Mutex` (never held across an `.await`)
//! is all it takes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds of the wait-time histogram, in seconds.
const WAIT_BUCKETS: &[f64] = &[10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// (bucket counts, sum, count) of visitors' waits for an agent.
    waits: Mutex<(Vec<u64>, f64, u64)>,
}

/// What each counter means, for the `# HELP` lines.
const HELP: &[(&str, &str)] = &[
    (
        "frontdesk_http_requests_total",
        "HTTP requests by route and status.",
    ),
    (
        "frontdesk_messages_total",
        "Messages by sender (visitor, agent).",
    ),
    ("frontdesk_decisions_total", "Bot decisions by kind."),
    (
        "frontdesk_handoffs_total",
        "Handoffs to a person by reason.",
    ),
    (
        "frontdesk_webhook_deliveries_total",
        "Webhook delivery attempts by result.",
    ),
    ("frontdesk_reloads_total", "Intent reloads by result."),
];

impl Metrics {
    /// Adds one to `name{labels}`; `labels` is written as Prometheus
    /// expects, e.g. `kind="answer"`.
    pub fn inc(&self, name: &'static str, labels: String) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry((name, labels)).or_insert(0) += 1;
    }

    pub fn observe_wait(&self, secs: f64) {
        let mut w = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        if w.0.is_empty() {
            w.0 = vec![0; WAIT_BUCKETS.len()];
        }
        for (i, b) in WAIT_BUCKETS.iter().enumerate() {
            if secs <= *b {
                w.0[i] += 1;
            }
        }
        w.1 += secs;
        w.2 += 1;
    }

    /// The text exposition, with the gauges the caller reads at this moment.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, labels), v) in counters.iter() {
                if n == name {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        }
        drop(counters);
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let w = self.waits.lock().unwrap_or_else(|e| e.into_inner());
        let name = "frontdesk_wait_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} How long visitors waited for an agent.\n# TYPE {name} histogram"
        );
        for (i, b) in WAIT_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                w.0.get(i).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", w.2);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", w.1, w.2);
        out
    }
}

/// Escapes a label value.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

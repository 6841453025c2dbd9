//! A report for the terminal (`frontdesk report`): the numbers a person
//! reads first, each rate with its counts.

use std::fmt::Write as _;

use super::model::{Durations, Rate, Report};

fn pct(r: &Rate) -> String {
    match r.value {
        Some(v) => format!("{:5.1}% ({}/{})", v * 100.0, r.num, r.den),
        None => format!("    – (0/{})", r.den),
    }
}

fn secs(ms: Option<i64>) -> String {
    match ms {
        None => "–".into(),
        Some(ms) if ms < 60_000 => format!("{:.0} s", ms as f64 / 1000.0),
        Some(ms) if ms < 3_600_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        Some(ms) => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

fn dist(d: &Durations) -> String {
    format!(
        "median {:>8}  p90 {:>8}  within 60 s {}  (n={})",
        secs(d.median_ms),
        secs(d.p90_ms),
        pct(&d.within_60s),
        d.count
    )
}

/// The report as text.
/// Visitor text for a terminal: control characters (escape sequences, a
/// carriage return, a newline that would fake a line) are shown escaped,
/// never sent.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let w = &r.window;
    let _ = writeln!(
        s,
        "Report {} to {} ({}), {} conversations ({} started, {} without a visitor message)",
        w.from,
        w.to,
        w.timezone,
        r.cohort.conversations,
        r.cohort.started,
        r.cohort.without_visitor_message
    );
    let o = &r.outcomes;
    let _ = writeln!(s, "\nOutcomes");
    let _ = writeln!(s, "  contained (bot only)    {}", pct(&o.contained));
    let _ = writeln!(s, "    confirmed helpful     {}", pct(&o.confirmed));
    let _ = writeln!(s, "    assumed               {}", pct(&o.assumed));
    let _ = writeln!(s, "    rated not helpful     {}", pct(&o.unhelpful));
    let _ = writeln!(
        s,
        "    durable ({} days)      {}  ({} anonymous, {} pending)",
        w.durable_days,
        pct(&o.durable),
        o.contained_anonymous,
        o.durable_pending
    );
    let _ = writeln!(s, "  handed off              {}", pct(&o.handed_off));
    let _ = writeln!(s, "  abandoned               {}", pct(&o.abandoned));
    let _ = writeln!(s, "\nHandoffs by reason (first handoff)");
    for c in &r.handoff_reasons {
        let _ = writeln!(s, "  {:<22}  {}", c.reason, pct(&c.rate));
    }
    let m = &r.messages;
    let _ = writeln!(s, "\nVisitor messages: {}", m.visitor_messages);
    for (name, x) in [("first", &m.first), ("later", &m.later), ("all", &m.all)] {
        let _ = writeln!(
            s,
            "  {name:<6} fallback {}  clarify {}",
            pct(&x.fallback),
            pct(&x.clarify)
        );
    }
    let h = &r.human;
    let hours = if w.business_hours {
        "business hours"
    } else {
        "no [business_hours]: same as clock"
    };
    let _ = writeln!(s, "\nPeople");
    let _ = writeln!(s, "  (per handoff cycle)");
    let _ = writeln!(s, "  wait                {}", dist(&h.wait.clock));
    let _ = writeln!(s, "    ({hours})  {}", dist(&h.wait.business));
    let _ = writeln!(s, "  first response      {}", dist(&h.first_response.clock));
    let _ = writeln!(s, "    ({hours})  {}", dist(&h.first_response.business));
    let _ = writeln!(
        s,
        "  resolution          {}",
        dist(&h.resolution.total.clock)
    );
    let _ = writeln!(s, "    bot part          {}", dist(&h.resolution.bot.clock));
    let _ = writeln!(
        s,
        "    human part        {}",
        dist(&h.resolution.human.clock)
    );
    let _ = writeln!(s, "  never answered      {}", pct(&h.never_answered));
    let _ = writeln!(
        s,
        "  takeovers           {}  (an agent took it: no wait)",
        h.takeovers
    );
    let _ = writeln!(
        s,
        "  FCR ({} days)        {}  ({} pending)",
        w.fcr_days,
        pct(&r.fcr.rate),
        r.fcr.pending
    );
    let c = &r.csat;
    let _ = writeln!(s, "\nCSAT (4-5 of ratings; response = rated of closed)");
    for (name, g) in [
        ("all", &c.all),
        ("bot only", &c.bot_only),
        ("with a person", &c.with_person),
    ] {
        let _ = writeln!(
            s,
            "  {name:<14} {}  response {}",
            pct(&g.positive),
            pct(&g.response)
        );
    }
    for cm in c.comments.iter().take(5) {
        let _ = writeln!(
            s,
            "  {} ★ {}: {}",
            cm.score,
            cm.conversation,
            printable(&cm.comment)
        );
    }
    let _ = writeln!(s, "\nTop intents (answers, helpful, handed off)");
    for i in r.intents.iter().take(10) {
        let _ = writeln!(
            s,
            "  {:<24} {:>6}  {}  {}",
            i.intent,
            i.answers,
            pct(&i.helpful),
            pct(&i.handed_off)
        );
    }
    if !r.failures.is_empty() {
        let _ = writeln!(s, "\nTop failures");
        for f in r.failures.iter().take(10) {
            let _ = writeln!(s, "  {:<9} {:<26} {:>6}", f.kind, f.reason, f.messages);
        }
    }
    let _ = writeln!(
        s,
        "\nBy day (conversations, contained, handed off, abandoned)"
    );
    for d in &r.days {
        let _ = writeln!(
            s,
            "  {}  {:>6} {:>6} {:>6} {:>6}",
            d.date, d.conversations, d.contained, d.handed_off, d.abandoned
        );
    }
    s
}

//! From facts to a report: the formulas of the README's "Reports", in one
//! place, pure (the facts, the window, the time zone, the business hours
//! and the settings in; the report out), so a unit test can feed it
//! hand-made facts and the HTTP handler, the CLI and the drill-down all
//! count alike.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::facts::Facts;
use super::model::*;
use crate::config::Reports;
use crate::handoff::BusinessHours;
use crate::util::clock::DAY_MS;

/// The longest window a report covers, in days.
pub const MAX_DAYS: i64 = 366;

/// A bad `from` / `to`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WindowError {
    #[error("`{0}` is not a date: write it as YYYY-MM-DD")]
    NotADate(String),
    #[error("`from` ({from}) is after `to` ({to})")]
    Backwards { from: String, to: String },
    #[error("the window is {0} days long; at most {MAX_DAYS}")]
    TooLong(i64),
}

/// The days a report covers, `to` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Date,
    pub to: Date,
}

impl Period {
    /// `from` and `to` as given (`YYYY-MM-DD`), each defaulting to the
    /// last 7 days up to `today`.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Period, WindowError> {
        let date = |s: &str| {
            s.trim()
                .parse::<Date>()
                .ok()
                .filter(|_| s.trim().len() == 10)
                .ok_or_else(|| WindowError::NotADate(s.chars().take(40).collect()))
        };
        let to = match to {
            Some(s) => date(s)?,
            None => today,
        };
        let from = match from {
            Some(s) => date(s)?,
            None => to.saturating_sub(jiff::Span::new().days(6)),
        };
        Period::new(from, to)
    }

    pub fn new(from: Date, to: Date) -> Result<Period, WindowError> {
        if from > to {
            return Err(WindowError::Backwards {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        let days = days_between(from, to) + 1;
        if days > MAX_DAYS {
            return Err(WindowError::TooLong(days));
        }
        Ok(Period { from, to })
    }

    /// The last `days` days up to `today` (`--since 7d`).
    pub fn last(days: u32, today: Date) -> Result<Period, WindowError> {
        let back = i64::from(days.max(1)) - 1;
        Period::new(today.saturating_sub(jiff::Span::new().days(back)), today)
    }

    /// `[from 00:00, to + 1 day 00:00)` in `tz`, as Unix ms.
    pub fn bounds(&self, tz: &TimeZone) -> (i64, i64) {
        (
            start_of(self.from, tz),
            start_of(self.to.tomorrow().unwrap_or(self.to), tz),
        )
    }

    /// Every date of the period, in order.
    pub fn days(&self) -> Vec<Date> {
        let mut out = Vec::new();
        let mut d = self.from;
        while d <= self.to {
            out.push(d);
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        out
    }
}

fn days_between(a: Date, b: Date) -> i64 {
    (start_of(b, &TimeZone::UTC) - start_of(a, &TimeZone::UTC)) / DAY_MS
}

fn start_of(d: Date, tz: &TimeZone) -> i64 {
    d.to_zoned(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(i64::MAX)
}

/// The date of an instant in `tz`.
pub fn date_of(ms: i64, tz: &TimeZone) -> Date {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
        .date()
}

/// Where the shop is: its time zone and business hours.
#[derive(Debug, Clone)]
pub struct Zone {
    pub tz: TimeZone,
    pub name: String,
    pub hours: Option<BusinessHours>,
}

impl Zone {
    /// The zone of `[business_hours]`, else UTC (always open).
    pub fn of(hours: Option<&BusinessHours>) -> Zone {
        match hours {
            Some(h) => {
                let (tz, name) = h.time_zone();
                Zone {
                    tz: tz.clone(),
                    name: name.to_string(),
                    hours: Some(h.clone()),
                }
            }
            None => Zone {
                tz: TimeZone::UTC,
                name: "UTC".into(),
                hours: None,
            },
        }
    }

    /// Milliseconds from `a` to `b`, in business hours only.
    fn open_ms(&self, a: i64, b: i64) -> i64 {
        match &self.hours {
            Some(h) => h.open_ms_between(a, b),
            None => (b - a).max(0),
        }
    }

    /// Today's date in the zone.
    pub fn today(&self, now_ms: i64) -> Date {
        date_of(now_ms, &self.tz)
    }
}

/// Whether a visitor started a conversation in `(after_ms, until_ms]`
/// (their coming back, for durable and FCR).
pub trait Returns {
    fn came_back(&self, visitor: &str, after_ms: i64, until_ms: i64) -> bool;
}

/// `Returns` over facts in memory (every conversation that could count).
pub struct StartsOf(HashMap<String, Vec<i64>>);

impl StartsOf {
    pub fn new<'a>(facts: impl IntoIterator<Item = &'a Facts>) -> StartsOf {
        let mut m: HashMap<String, Vec<i64>> = HashMap::new();
        for f in facts {
            if let Some(k) = &f.visitor_key {
                m.entry(k.clone()).or_default().push(f.started_ms);
            }
        }
        for v in m.values_mut() {
            v.sort_unstable();
        }
        StartsOf(m)
    }

    pub fn insert(&mut self, visitor: &str, started_ms: i64) {
        let v = self.0.entry(visitor.to_string()).or_default();
        let at = v.partition_point(|s| *s < started_ms);
        v.insert(at, started_ms);
    }
}

impl Returns for StartsOf {
    fn came_back(&self, visitor: &str, after_ms: i64, until_ms: i64) -> bool {
        self.0.get(visitor).is_some_and(|v| {
            let i = v.partition_point(|s| *s <= after_ms);
            v.get(i).is_some_and(|s| *s <= until_ms)
        })
    }
}

/// A verdict that needs days to pass: `Pending` until they have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Yes,
    No,
    /// Its look-ahead (`durable_days` after the start, `fcr_days` after
    /// the close) has not ended at the report's `now`: it cannot be judged
    /// yet, whatever happened so far.
    Pending,
}

/// What a conversation's verdicts are that depend on other conversations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judged {
    /// Contained with a known visitor: did they stay away?
    pub durable: Option<Verdict>,
    /// Handed off and closed by an agent: resolved at first contact?
    pub fcr: Option<Verdict>,
}

/// Durable and FCR for one conversation, as of `now_ms`. A conversation
/// whose look-ahead ends after `now_ms` is `Pending` even when it already
/// failed (the visitor came back early): judging early failures but not
/// early successes would pull the rate down for every young window.
pub fn judge(f: &Facts, settings: Reports, returns: &dyn Returns, now_ms: i64) -> Judged {
    let mut j = Judged::default();
    let verdict = |ok: bool, until: i64| {
        if now_ms < until {
            Verdict::Pending
        } else if ok {
            Verdict::Yes
        } else {
            Verdict::No
        }
    };
    if f.outcome() == "contained" {
        if let Some(v) = &f.visitor_key {
            let until = f.started_ms + i64::from(settings.durable_days) * DAY_MS;
            j.durable = Some(verdict(!returns.came_back(v, f.started_ms, until), until));
        }
    }
    if let (true, Some(close), true) = (f.handed_off(), f.first_close_ms, f.first_close_by_agent) {
        let until = close + i64::from(settings.fcr_days) * DAY_MS;
        let reopened = f.reopened_ms.is_some_and(|r| r <= until);
        let returned = f
            .visitor_key
            .as_deref()
            .is_some_and(|v| returns.came_back(v, close, until));
        j.fcr = Some(verdict(f.agents <= 1 && !reopened && !returned, until));
    }
    j
}

fn durations(mut v: Vec<i64>) -> Durations {
    v.sort_unstable();
    let within = v.iter().filter(|d| **d <= SLA_MS).count() as u64;
    Durations {
        count: v.len() as u64,
        median_ms: nearest_rank(&v, 50),
        p90_ms: nearest_rank(&v, 90),
        within_60s: Rate::new(within, v.len() as u64),
    }
}

/// Clock and business-hours samples of the same intervals.
#[derive(Default)]
struct Samples {
    clock: Vec<i64>,
    business: Vec<i64>,
}

impl Samples {
    fn push(&mut self, zone: &Zone, a: i64, b: i64) {
        self.clock.push((b - a).max(0));
        self.business.push(zone.open_ms(a, b));
    }

    fn timing(self) -> Timing {
        Timing {
            clock: durations(self.clock),
            business: durations(self.business),
        }
    }
}

fn histogram(samples: &[i64]) -> Vec<Bucket> {
    let mut out = Vec::new();
    let mut lo = 0;
    for hi in HISTOGRAM_BOUNDS_MS {
        out.push(Bucket {
            from_ms: lo,
            to_ms: Some(hi),
            count: samples.iter().filter(|s| **s >= lo && **s < hi).count() as u64,
        });
        lo = hi;
    }
    out.push(Bucket {
        from_ms: lo,
        to_ms: None,
        count: samples.iter().filter(|s| **s >= lo).count() as u64,
    });
    out
}

#[derive(Default)]
struct Csats {
    rated: u64,
    positive: u64,
    closed: u64,
    closed_rated: u64,
}

impl Csats {
    fn add(&mut self, f: &Facts) {
        if let Some(r) = &f.rating {
            self.rated += 1;
            self.positive += u64::from(r.score >= 4);
        }
        if f.first_close_ms.is_some() {
            self.closed += 1;
            self.closed_rated += u64::from(f.rating.is_some());
        }
    }

    fn group(&self) -> CsatGroup {
        CsatGroup {
            positive: Rate::new(self.positive, self.rated),
            response: Rate::new(self.closed_rated, self.closed),
        }
    }
}

#[derive(Default)]
struct IntentSum {
    answers: u64,
    helpful: u64,
    not_helpful: u64,
    conversations: u64,
    handed_off: u64,
}

impl Report {
    /// The report over the conversations of `facts` that started in
    /// `period` (others are ignored), as the README defines it, as of
    /// `now_ms` (what durable and FCR can judge yet).
    pub fn compute(
        facts: &[Facts],
        period: &Period,
        zone: &Zone,
        settings: Reports,
        returns: &dyn Returns,
        now_ms: i64,
    ) -> Report {
        let (from_ms, to_ms) = period.bounds(&zone.tz);
        let started: Vec<&Facts> = facts
            .iter()
            .filter(|f| f.started_ms >= from_ms && f.started_ms < to_ms)
            .collect();
        let cohort: Vec<&Facts> = started
            .iter()
            .copied()
            .filter(|f| f.visitor_messages > 0)
            .collect();
        let n = cohort.len() as u64;

        let (mut contained, mut handed_off, mut abandoned) = (0u64, 0u64, 0u64);
        let (mut confirmed, mut assumed, mut unhelpful) = (0u64, 0u64, 0u64);
        let (mut durable, mut known, mut anonymous, mut durable_pending) = (0u64, 0u64, 0u64, 0u64);
        let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
        let (mut first, mut later) = ([0u64; 3], [0u64; 3]);
        let mut visitor_messages = 0u64;
        let mut failures: BTreeMap<&str, u64> = BTreeMap::new();
        let (mut wait, mut reply) = (Samples::default(), Samples::default());
        let (mut total, mut bot, mut human) =
            (Samples::default(), Samples::default(), Samples::default());
        let (mut cycles, mut never_answered, mut never_joined, mut takeovers) =
            (0u64, 0u64, 0u64, 0u64);
        let (mut fcr, mut fcr_den, mut fcr_pending) = (0u64, 0u64, 0u64);
        let (mut all_csat, mut bot_csat, mut person_csat) =
            (Csats::default(), Csats::default(), Csats::default());
        let mut comments = Vec::new();
        let mut intents: BTreeMap<&str, IntentSum> = BTreeMap::new();
        let days = period.days();
        let mut per_day: BTreeMap<Date, (u64, u64, u64, u64, u64, u64)> =
            days.iter().map(|d| (*d, Default::default())).collect();

        for f in &cohort {
            let j = judge(f, settings, returns, now_ms);
            let day = per_day.entry(date_of(f.started_ms, &zone.tz)).or_default();
            day.0 += 1;
            match f.outcome() {
                "contained" => {
                    contained += 1;
                    day.1 += 1;
                    match f.containment() {
                        "confirmed" => confirmed += 1,
                        "unhelpful" => unhelpful += 1,
                        _ => assumed += 1,
                    }
                    match j.durable {
                        Some(Verdict::Pending) => durable_pending += 1,
                        Some(d) => {
                            known += 1;
                            durable += u64::from(d == Verdict::Yes);
                        }
                        None => anonymous += 1,
                    }
                }
                "handed_off" => {
                    handed_off += 1;
                    day.2 += 1;
                }
                _ => {
                    abandoned += 1;
                    day.3 += 1;
                }
            }
            if let Some(r) = &f.rating {
                day.4 += 1;
                day.5 += u64::from(r.score >= 4);
            }

            visitor_messages += u64::from(f.visitor_messages);
            if let Some(t) = f.first {
                first[0] += 1;
                first[1] += u64::from(t.fallback);
                first[2] += u64::from(t.clarify);
            }
            later[0] += u64::from(f.later);
            later[1] += u64::from(f.later_fallback);
            later[2] += u64::from(f.later_clarify);
            for (k, c) in &f.failures {
                *failures.entry(k).or_default() += u64::from(*c);
            }

            if let Some(h) = f.first_handoff() {
                *reasons.entry(h.reason.as_str()).or_default() += 1;
            }
            takeovers += f.handoffs.iter().filter(|h| h.takeover()).count() as u64;
            for h in f.waited() {
                cycles += 1;
                match h.joined_ms {
                    Some(j) => wait.push(zone, h.at_ms, j),
                    None => never_joined += 1,
                }
                match h.replied_ms {
                    Some(m) => reply.push(zone, h.at_ms, m),
                    None => never_answered += 1,
                }
            }
            for c in &f.cycles {
                total.push(zone, c.start_ms, c.close_ms);
                let handoff = c.handoff_ms.unwrap_or(c.close_ms);
                bot.push(zone, c.start_ms, handoff);
                if let Some(h) = c.handoff_ms {
                    human.push(zone, h, c.close_ms);
                }
            }
            match j.fcr {
                Some(Verdict::Pending) => fcr_pending += 1,
                Some(v) => {
                    fcr_den += 1;
                    fcr += u64::from(v == Verdict::Yes);
                }
                None => {}
            }

            all_csat.add(f);
            if f.handed_off() {
                person_csat.add(f);
            } else {
                bot_csat.add(f);
            }
            if let Some(r) = &f.rating {
                if let Some(c) = &r.comment {
                    comments.push(Comment {
                        conversation: f.id.clone(),
                        at_ms: r.at_ms,
                        score: r.score,
                        comment: c.clone(),
                    });
                }
            }

            for u in &f.intents {
                let s = intents.entry(u.intent.as_str()).or_default();
                s.answers += u64::from(u.answers);
                s.helpful += u64::from(u.helpful);
                s.not_helpful += u64::from(u.not_helpful);
                s.conversations += 1;
                s.handed_off += u64::from(f.handed_off());
            }
        }

        comments.sort_by(|a, b| (b.at_ms, &b.conversation).cmp(&(a.at_ms, &a.conversation)));
        let mut intents: Vec<IntentStats> = intents
            .into_iter()
            .map(|(intent, s)| {
                let rated = s.helpful + s.not_helpful;
                IntentStats {
                    intent: intent.to_string(),
                    answers: s.answers,
                    helpful: Rate::new(s.helpful, rated),
                    not_helpful: Rate::new(s.not_helpful, rated),
                    conversations: s.conversations,
                    handed_off: Rate::new(s.handed_off, s.conversations),
                }
            })
            .collect();
        intents.sort_by(|a, b| b.answers.cmp(&a.answers).then(a.intent.cmp(&b.intent)));
        let mut failures: Vec<FailureCount> = failures
            .into_iter()
            .map(|(k, messages)| {
                let (kind, reason) = k.split_once(':').unwrap_or((k, "unknown"));
                FailureCount {
                    kind: kind.to_string(),
                    reason: reason.to_string(),
                    messages,
                }
            })
            .collect();
        failures.sort_by(|a, b| {
            b.messages
                .cmp(&a.messages)
                .then((&a.kind, &a.reason).cmp(&(&b.kind, &b.reason)))
        });
        let rates = |m: [u64; 3]| MessageRates {
            messages: m[0],
            fallback: Rate::new(m[1], m[0]),
            clarify: Rate::new(m[2], m[0]),
        };
        let all = [
            first[0] + later[0],
            first[1] + later[1],
            first[2] + later[2],
        ];
        let histograms = Histograms {
            wait: histogram(&wait.clock),
            first_response: histogram(&reply.clock),
        };

        Report {
            window: Window {
                from: period.from.to_string(),
                to: period.to.to_string(),
                timezone: zone.name.clone(),
                from_ms,
                to_ms,
                durable_days: settings.durable_days,
                fcr_days: settings.fcr_days,
                business_hours: zone.hours.is_some(),
            },
            cohort: Cohort {
                started: started.len() as u64,
                without_visitor_message: (started.len() - cohort.len()) as u64,
                conversations: n,
            },
            outcomes: Outcomes {
                contained: Rate::new(contained, n),
                handed_off: Rate::new(handed_off, n),
                abandoned: Rate::new(abandoned, n),
                confirmed: Rate::new(confirmed, contained),
                assumed: Rate::new(assumed, contained),
                unhelpful: Rate::new(unhelpful, contained),
                durable: Rate::new(durable, known),
                contained_anonymous: anonymous,
                durable_pending,
            },
            handoff_reasons: HANDOFF_REASONS
                .iter()
                .map(|r| {
                    let c = reasons.get(r).copied().unwrap_or(0);
                    ReasonCount {
                        reason: r.to_string(),
                        rate: Rate::new(c, n),
                        share: Rate::new(c, handed_off),
                    }
                })
                .collect(),
            messages: Messages {
                visitor_messages,
                first: rates(first),
                later: rates(later),
                all: rates(all),
            },
            human: Human {
                wait: wait.timing(),
                first_response: reply.timing(),
                resolution: Resolution {
                    total: total.timing(),
                    bot: bot.timing(),
                    human: human.timing(),
                },
                never_answered: Rate::new(never_answered, cycles),
                never_joined,
                takeovers,
            },
            fcr: Fcr {
                rate: Rate::new(fcr, fcr_den),
                pending: fcr_pending,
            },
            csat: Csat {
                all: all_csat.group(),
                bot_only: bot_csat.group(),
                with_person: person_csat.group(),
                comments,
            },
            intents,
            failures,
            days: per_day
                .into_iter()
                .filter(|(d, _)| *d >= period.from && *d <= period.to)
                .map(|(d, c)| Day {
                    date: d.to_string(),
                    conversations: c.0,
                    contained: c.1,
                    handed_off: c.2,
                    abandoned: c.3,
                    csat: Rate::new(c.5, c.4),
                })
                .collect(),
            histograms,
        }
    }
}

/// A drill-down filter (README, "Reports": the filter names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// One of `FILTERS`.
    Named(&'static str),
    Handoff(String),
    Intent(String),
    IntentHandoff(String),
    Day(Date),
}

/// A filter name that is not one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown filter `{0}`: use one of {list}, handoff:<reason>, intent:<id>, intent_handoff:<id> or day:YYYY-MM-DD", list = FILTERS.join(", "))]
pub struct FilterError(pub String);

impl Filter {
    pub fn parse(s: &str) -> Result<Filter, FilterError> {
        let bad = || FilterError(s.chars().take(80).collect());
        if let Some(n) = FILTERS.iter().find(|n| **n == s) {
            return Ok(Filter::Named(n));
        }
        match s.split_once(':') {
            Some(("handoff", r)) if HANDOFF_REASONS.contains(&r) => Ok(Filter::Handoff(r.into())),
            Some(("intent", i)) if !i.is_empty() => Ok(Filter::Intent(i.into())),
            Some(("intent_handoff", i)) if !i.is_empty() => Ok(Filter::IntentHandoff(i.into())),
            Some(("day", d)) => d.parse().map(Filter::Day).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    /// Whether a cohort conversation is behind the number this filter
    /// names.
    pub fn matches(&self, f: &Facts, j: Judged, zone: &Zone) -> bool {
        let within = |a: i64, b: Option<i64>| b.is_some_and(|b| b - a <= SLA_MS);
        let has_intent = |i: &str| f.intents.iter().any(|u| u.intent == i);
        match self {
            Filter::Named(n) => match *n {
                "cohort" => true,
                "contained" => f.outcome() == "contained",
                "contained_confirmed" => {
                    f.outcome() == "contained" && f.containment() == "confirmed"
                }
                "contained_assumed" => f.outcome() == "contained" && f.containment() == "assumed",
                "contained_unhelpful" => {
                    f.outcome() == "contained" && f.containment() == "unhelpful"
                }
                "durable" => j.durable == Some(Verdict::Yes),
                "not_durable" => j.durable == Some(Verdict::No),
                "durable_pending" => j.durable == Some(Verdict::Pending),
                "handed_off" | "with_person" => f.handed_off(),
                "bot_only" => !f.handed_off(),
                "abandoned" => f.outcome() == "abandoned",
                // Conversations with at least one such handoff cycle.
                "never_answered" => f.waited().any(|h| h.replied_ms.is_none()),
                "wait_within_60s" => f.waited().any(|h| within(h.at_ms, h.joined_ms)),
                "first_response_within_60s" => f.waited().any(|h| within(h.at_ms, h.replied_ms)),
                "fcr" => j.fcr == Some(Verdict::Yes),
                "not_fcr" => j.fcr == Some(Verdict::No),
                "fcr_pending" => j.fcr == Some(Verdict::Pending),
                "rated" => f.rating.is_some(),
                "csat_positive" => f.rating.as_ref().is_some_and(|r| r.score >= 4),
                "csat_negative" => f.rating.as_ref().is_some_and(|r| r.score < 4),
                "fallback" => f.first.is_some_and(|t| t.fallback) || f.later_fallback > 0,
                "clarify" => f.first.is_some_and(|t| t.clarify) || f.later_clarify > 0,
                _ => false,
            },
            Filter::Handoff(r) => f.first_handoff().is_some_and(|h| &h.reason == r),
            Filter::Intent(i) => has_intent(i),
            Filter::IntentHandoff(i) => has_intent(i) && f.handed_off(),
            Filter::Day(d) => date_of(f.started_ms, &zone.tz) == *d,
        }
    }
}

/// A conversation as a drill-down or CSV row. Wait and first response are
/// of its first handoff cycle a visitor waited in (not a takeover),
/// resolution of its first closed cycle; a duration the clock made
/// negative (it stepped back) is 0, as in the report's samples.
pub fn row(f: &Facts) -> ConversationRow {
    let h = f.first_handoff();
    let w = f.waited().next();
    let span = |a: i64, b: i64| (b - a).max(0);
    ConversationRow {
        id: f.id.clone(),
        started_ms: f.started_ms,
        visitor: f.visitor.clone(),
        first_question: f.first_question.clone(),
        outcome: f.outcome().to_string(),
        reason: match f.outcome() {
            "contained" => f.containment().to_string(),
            "handed_off" => h.map(|h| h.reason.clone()).unwrap_or_default(),
            _ => String::new(),
        },
        wait_ms: w.and_then(|h| h.joined_ms.map(|j| span(h.at_ms, j))),
        first_response_ms: w.and_then(|h| h.replied_ms.map(|m| span(h.at_ms, m))),
        resolution_ms: f.cycles.first().map(|c| span(c.start_ms, c.close_ms)),
        rating: f.rating.as_ref().map(|r| r.score),
        intents: f.intents.iter().map(|u| u.intent.clone()).collect(),
    }
}

/// The cohort conversations of `period` behind `filter`, in start order
/// (then id), judged as of `now_ms`: the total and the rows `offset..offset
/// + limit`.
#[allow(clippy::too_many_arguments)]
pub fn drill(
    facts: &[Facts],
    period: &Period,
    zone: &Zone,
    settings: Reports,
    returns: &dyn Returns,
    now_ms: i64,
    filter: &Filter,
    offset: usize,
    limit: usize,
) -> (u64, Vec<ConversationRow>) {
    let (from_ms, to_ms) = period.bounds(&zone.tz);
    let mut hits: Vec<&Facts> = facts
        .iter()
        .filter(|f| f.started_ms >= from_ms && f.started_ms < to_ms && f.visitor_messages > 0)
        .filter(|f| filter.matches(f, judge(f, settings, returns, now_ms), zone))
        .collect();
    hits.sort_by(|a, b| (a.started_ms, &a.id).cmp(&(b.started_ms, &b.id)));
    let total = hits.len() as u64;
    let rows = hits.into_iter().skip(offset).take(limit).map(row).collect();
    (total, rows)
}

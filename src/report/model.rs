//! The report's shape: what `GET /api/v1/admin/reports/summary` returns
//! (the wire mirrors in `http::api` copy it field by field), what
//! `frontdesk report --json` prints, and what a test compares exactly.
//!
//! Every rate is a [`Rate`]: its numerator and denominator counts travel
//! with it, so a reader can check each number and sum them. The formulas
//! are in the README, section "Reports"; the comments here name each
//! rate's numerator and denominator.
//!
//! Durations are whole milliseconds; percentiles are nearest-rank
//! ([`nearest_rank`]); a distribution with no sample has `None` for them.

use serde::{Deserialize, Serialize};

/// The handoff reasons in the order every report lists them (all of
/// them, zero or not).
pub const HANDOFF_REASONS: [&str; 7] = [
    "asked",
    "negative_sentiment",
    "repeated_fallback",
    "low_confidence",
    "intent_action",
    "agent_took_over",
    "backend_error",
];

/// Upper bounds (exclusive, ms) of the wait and first-response histogram
/// buckets; a last bucket with no upper bound takes the rest:
/// `[0,30s) [30s,60s) [1m,2m) [2m,5m) [5m,15m) [15m,1h) [1h,∞)`.
pub const HISTOGRAM_BOUNDS_MS: [i64; 6] = [30_000, 60_000, 120_000, 300_000, 900_000, 3_600_000];

/// The SLA the `within_60s` shares are measured against.
pub const SLA_MS: i64 = 60_000;

/// A share with the counts behind it. `value` is `num / den` as an f64
/// (`None` when `den` is 0), so two computations of the same counts agree
/// bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub num: u64,
    pub den: u64,
    pub value: Option<f64>,
}

impl Rate {
    pub fn new(num: u64, den: u64) -> Rate {
        Rate {
            num,
            den,
            value: (den > 0).then(|| num as f64 / den as f64),
        }
    }
}

/// The p-th percentile (0 < p <= 100) of `sorted` (ascending) by the
/// nearest-rank definition: the value at 1-based rank `ceil(p/100 * n)`.
/// The median is `nearest_rank(50)`: for an even count, the lower middle.
pub fn nearest_rank(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (u64::from(p) * n).div_ceil(100).max(1);
    Some(sorted[(rank - 1) as usize])
}

/// The period a report covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// First day, `YYYY-MM-DD` in `timezone`.
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    /// The shop's time zone (`[business_hours] timezone`, else `UTC`).
    pub timezone: String,
    /// `from` 00:00 in `timezone`, as Unix ms.
    pub from_ms: i64,
    /// The day after `to`, 00:00 in `timezone` (exclusive).
    pub to_ms: i64,
    /// `[reports] durable_days` and `fcr_days` the report used.
    pub durable_days: u32,
    pub fcr_days: u32,
    /// Whether business-hours figures use a schedule (`false`: none is
    /// configured, the shop counts as always open and they equal the
    /// plain figures).
    pub business_hours: bool,
}

/// Which conversations the report is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    /// Conversations started in the window.
    pub started: u64,
    /// Of those, without any visitor message: left out of everything.
    pub without_visitor_message: u64,
    /// `started - without_visitor_message`: the denominator of the outcomes.
    pub conversations: u64,
}

/// Where the cohort's conversations ended up. `contained + handed_off +
/// abandoned` = `cohort.conversations`, always (each has den = cohort).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// The bot answered at least once and no person was involved.
    pub contained: Rate,
    /// A handoff happened (any reason, an agent's takeover included).
    pub handed_off: Rate,
    /// No bot answer and no handoff.
    pub abandoned: Rate,
    /// Of the contained (den = contained): the visitor's latest feedback
    /// on at least one answer is helpful and on none is not helpful.
    pub confirmed: Rate,
    /// Of the contained: no feedback at all on any answer.
    pub assumed: Rate,
    /// Of the contained: the latest feedback on at least one answer is
    /// not helpful (the visitor left unhappy without a person).
    /// `confirmed + assumed + unhelpful = contained`.
    pub unhelpful: Rate,
    /// Of the contained with a known visitor whose `durable_days` have
    /// passed (den = `contained - contained_anonymous - durable_pending`):
    /// the same visitor started no other conversation within
    /// `durable_days` after this one started.
    pub durable: Rate,
    /// Contained conversations without a visitor id or email: durability
    /// cannot be told, so they are left out of `durable`.
    pub contained_anonymous: u64,
    /// Contained conversations with a known visitor started less than
    /// `durable_days` before the report: not judged yet, left out of
    /// `durable`.
    pub durable_pending: u64,
}

/// Handoffs of one reason; a conversation counts once, under the reason of
/// its first handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// One of [`HANDOFF_REASONS`].
    pub reason: String,
    /// num: conversations whose first handoff had this reason; den: cohort.
    pub rate: Rate,
    /// The same num over den = handed-off conversations (the shares sum
    /// to 1).
    pub share: Rate,
}

/// Fallback and clarify rates over a set of visitor messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRates {
    /// Visitor messages the bot handled (written while no person had the
    /// conversation): the denominator of both rates.
    pub messages: u64,
    /// num: of those, messages the bot answered with a fallback.
    pub fallback: Rate,
    /// num: of those, messages the bot answered with "Did you mean …?".
    pub clarify: Rate,
}

/// Fallbacks and clarifications, first messages apart from later ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Messages {
    /// Every visitor message of the cohort (handled by the bot or not).
    pub visitor_messages: u64,
    /// The first visitor message of each conversation (when the bot
    /// handled it).
    pub first: MessageRates,
    /// Every later visitor message the bot handled.
    pub later: MessageRates,
    /// `first` and `later` together.
    pub all: MessageRates,
}

/// One distribution of durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    /// Samples.
    pub count: u64,
    /// Nearest-rank p50 and p90, ms.
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    /// num: samples <= 60 000 ms; den: count.
    pub within_60s: Rate,
}

/// A duration measured on the clock and in business hours only (the time
/// the shop was open between the two instants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub clock: Durations,
    pub business: Durations,
}

/// Resolution of closed cycles, whole and in its bot and human parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// Cycle start → close, one sample per close.
    pub total: Timing,
    /// Cycle start → the cycle's first handoff (→ close when none).
    pub bot: Timing,
    /// The cycle's first handoff → close (cycles with a handoff only).
    pub human: Timing,
}

/// The person side, measured within each handoff cycle (a handoff until
/// the conversation goes back to the bot or is closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Human {
    /// Handoff → the first `AgentJoined` in its cycle, one sample per
    /// handoff cycle (takeovers excluded).
    pub wait: Timing,
    /// Handoff → the first `AgentMessage` in its cycle (bot replies never
    /// stop the clock), one sample per handoff cycle (takeovers excluded).
    pub first_response: Timing,
    pub resolution: Resolution,
    /// num: handoff cycles (takeovers excluded) with no agent message in
    /// them (as of the report); den: handoff cycles, takeovers excluded.
    /// Not in `wait` or `first_response` (they have no sample).
    pub never_answered: Rate,
    /// Handoff cycles (takeovers excluded) no agent joined (no `wait`
    /// sample).
    pub never_joined: u64,
    /// Handoff cycles that were an agent's takeover (`agent_took_over`):
    /// nobody waited, so they give no wait or first-response sample and
    /// are counted here instead.
    pub takeovers: u64,
}

/// First contact resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fcr {
    /// num: of den, first closed by an agent, every agent event before
    /// that close by one agent, and not reopened within `fcr_days` of the
    /// close (no visitor message or handoff in it after the close, no new
    /// conversation of the same visitor started); den: handed-off conversations closed at least
    /// once by an agent, whose `fcr_days` after that close have passed.
    pub rate: Rate,
    /// Handed-off conversations first closed by an agent less than
    /// `fcr_days` before the report: not judged yet, left out of `rate`.
    pub pending: u64,
}

/// CSAT of one group of conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsatGroup {
    /// num: conversations whose latest rating is 4 or 5; den: rated
    /// conversations.
    pub positive: Rate,
    /// num: rated conversations; den: closed conversations (closed at
    /// least once).
    pub response: Rate,
}

/// A rating with a comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub conversation: String,
    pub at_ms: i64,
    pub score: u8,
    pub comment: String,
}

/// Customer satisfaction, from each conversation's latest rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Csat {
    pub all: CsatGroup,
    /// Conversations no person was involved in.
    pub bot_only: CsatGroup,
    /// Handed-off conversations.
    pub with_person: CsatGroup,
    /// Latest ratings with a non-empty comment, newest first.
    pub comments: Vec<Comment>,
}

/// How one intent did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentStats {
    pub intent: String,
    /// Bot answers (`BotReply`) with this intent.
    pub answers: u64,
    /// num: answers whose latest feedback is helpful; den: answers with
    /// feedback.
    pub helpful: Rate,
    /// num: answers whose latest feedback is not helpful; den: the same.
    pub not_helpful: Rate,
    /// Conversations with at least one answer of this intent.
    pub conversations: u64,
    /// num: of those, handed off (at any point); den: `conversations`.
    pub handed_off: Rate,
}

/// Bot turns that failed a visitor message, by the decision's reason code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureCount {
    /// `fallback` or `clarify`.
    pub kind: String,
    /// The decision's reason code (`below_clarify_threshold`,
    /// `out_of_scope`, …; `unknown` for records without a decision).
    pub reason: String,
    pub messages: u64,
}

/// One day of the window (by start, in the shop's time zone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    pub date: String,
    /// Cohort conversations started that day.
    pub conversations: u64,
    pub contained: u64,
    pub handed_off: u64,
    pub abandoned: u64,
    /// Of that day's conversations: num positive latest ratings, den rated.
    pub csat: Rate,
}

/// One histogram bucket: `[from_ms, to_ms)`; `to_ms: None` is unbounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub from_ms: i64,
    pub to_ms: Option<i64>,
    pub count: u64,
}

/// Clock-time distributions, bucketed by [`HISTOGRAM_BOUNDS_MS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    pub wait: Vec<Bucket>,
    pub first_response: Vec<Bucket>,
}

/// `GET /api/v1/admin/reports/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub window: Window,
    pub cohort: Cohort,
    pub outcomes: Outcomes,
    /// Every reason, in [`HANDOFF_REASONS`] order.
    pub handoff_reasons: Vec<ReasonCount>,
    pub messages: Messages,
    pub human: Human,
    pub fcr: Fcr,
    pub csat: Csat,
    /// Every intent that answered, most answers first (then by name).
    pub intents: Vec<IntentStats>,
    /// Every (kind, reason) that occurred, most messages first (then by
    /// kind and reason).
    pub failures: Vec<FailureCount>,
    /// Every day of the window, in order (zero days included).
    pub days: Vec<Day>,
    pub histograms: Histograms,
}

/// One conversation behind a number (drill-down) or a CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRow {
    pub id: String,
    pub started_ms: i64,
    /// Name, else email, else the shop's visitor id, else empty.
    pub visitor: String,
    /// The first visitor message, up to 120 characters.
    pub first_question: String,
    /// `contained`, `handed_off` or `abandoned`.
    pub outcome: String,
    /// For a contained one: `confirmed`, `assumed` or `unhelpful`; for a
    /// handed-off one: the first handoff's reason; else empty.
    pub reason: String,
    /// Wait and first response of the first handoff cycle that was not an
    /// agent's takeover; never negative.
    pub wait_ms: Option<i64>,
    pub first_response_ms: Option<i64>,
    /// First closed cycle: start → close (never negative).
    pub resolution_ms: Option<i64>,
    /// Latest rating.
    pub rating: Option<u8>,
    /// Intents the bot answered, first seen first, without repeats.
    pub intents: Vec<String>,
}

/// `GET /api/v1/admin/reports/conversations`: a page of the conversations
/// behind `filter`, in start order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationPage {
    pub filter: String,
    /// Conversations matching, over all pages.
    pub total: u64,
    pub offset: u64,
    pub conversations: Vec<ConversationRow>,
}

/// The drill-down filters (stable names); `handoff:<reason>`,
/// `intent:<id>` (answered by it), `intent_handoff:<id>` (answered by it
/// and handed off) and `day:YYYY-MM-DD` take a value.
pub const FILTERS: [&str; 23] = [
    "cohort",
    "contained",
    "contained_confirmed",
    "contained_assumed",
    "contained_unhelpful",
    "durable",
    "not_durable",
    "durable_pending",
    "handed_off",
    "abandoned",
    "never_answered",
    "wait_within_60s",
    "first_response_within_60s",
    "fcr",
    "not_fcr",
    "fcr_pending",
    "rated",
    "csat_positive",
    "csat_negative",
    "fallback",
    "clarify",
    "bot_only",
    "with_person",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_is_the_textbook_one() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(nearest_rank(&v, 50), Some(50));
        assert_eq!(nearest_rank(&v, 90), Some(90));
        assert_eq!(nearest_rank(&v, 100), Some(100));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
        assert_eq!(nearest_rank(&[1, 2, 3], 50), Some(2));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn rates_carry_their_counts() {
        assert_eq!(Rate::new(1, 4).value, Some(0.25));
        assert_eq!(Rate::new(0, 0).value, None);
    }
}

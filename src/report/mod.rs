//! Reports: how the bot and the team did over a window of days, with the
//! count behind every rate (README, "Reports"). A pure fold turns each
//! conversation's log into compact `Facts`; `Report::compute` turns the
//! facts of a window into a `Report`. The store keeps the facts (derived
//! data, refreshed from the time index: `refresh`), so a report reads no
//! logs; a server also keeps them parsed in memory (`cache`), so a warm
//! report reads no rows either.
//!
//! May import `conversation`, `handoff` (business hours), the `Store`
//! trait, `config` and `util`; never `app` or `http`.

pub mod cache;
pub mod compute;
pub mod facts;
pub mod model;
pub mod refresh;
pub mod text;

#[cfg(test)]
mod tests;

pub use cache::FactsCache;
pub use compute::{
    drill, judge, row, Filter, FilterError, Judged, Period, Returns, StartsOf, Verdict,
    WindowError, Zone,
};
pub use facts::{fold, Facts, FACTS_VERSION};
pub use model::*;
pub use refresh::{refresh, report, report_with, ReportError};

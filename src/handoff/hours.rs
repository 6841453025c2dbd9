//! Business hours: a weekly schedule in the shop's time zone, with closed
//! dates (holidays). Used to tell a visitor honestly when a person will
//! reply. Times come in as Unix milliseconds, so tests control the clock.

use std::collections::BTreeSet;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::conversation::Texts;

/// `[business_hours]` as written in `frontdesk.toml`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHours {
    /// An IANA zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Per weekday, open periods as `"09:00-17:30"`; missing days are closed.
    #[serde(default)]
    pub monday: Vec<String>,
    #[serde(default)]
    pub tuesday: Vec<String>,
    #[serde(default)]
    pub wednesday: Vec<String>,
    #[serde(default)]
    pub thursday: Vec<String>,
    #[serde(default)]
    pub friday: Vec<String>,
    #[serde(default)]
    pub saturday: Vec<String>,
    #[serde(default)]
    pub sunday: Vec<String>,
    /// Dates the shop is closed, `"2026-12-25"`.
    #[serde(default)]
    pub closed: Vec<String>,
}

/// A bad schedule, naming the value to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HoursError {
    #[error("unknown time zone `{0}`")]
    TimeZone(String),
    #[error("bad period `{0}` for {1}: write it as \"09:00-17:30\", start before end")]
    Period(String, &'static str),
    #[error("bad closed date `{0}`: write it as \"2026-12-25\"")]
    Date(String),
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    tz: TimeZone,
    tz_name: String,
    /// Monday first.
    week: [Vec<(Time, Time)>; 7],
    closed: BTreeSet<Date>,
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl BusinessHours {
    pub fn new(raw: &RawHours) -> Result<BusinessHours, HoursError> {
        let tz =
            TimeZone::get(&raw.timezone).map_err(|_| HoursError::TimeZone(raw.timezone.clone()))?;
        let lists = [
            &raw.monday,
            &raw.tuesday,
            &raw.wednesday,
            &raw.thursday,
            &raw.friday,
            &raw.saturday,
            &raw.sunday,
        ];
        let mut week: [Vec<(Time, Time)>; 7] = Default::default();
        for (i, list) in lists.iter().enumerate() {
            for p in list.iter() {
                let bad = || HoursError::Period(p.clone(), DAYS[i]);
                let (a, b) = p.split_once('-').ok_or_else(bad)?;
                let a: Time = a.trim().parse().map_err(|_| bad())?;
                let b: Time = b.trim().parse().map_err(|_| bad())?;
                if a >= b {
                    return Err(bad());
                }
                week[i].push((a, b));
            }
            week[i].sort();
        }
        let closed = raw
            .closed
            .iter()
            .map(|d| {
                d.trim()
                    .parse::<Date>()
                    .map_err(|_| HoursError::Date(d.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(BusinessHours {
            tz,
            tz_name: raw.timezone.clone(),
            week,
            closed,
        })
    }

    fn periods(&self, date: Date) -> &[(Time, Time)] {
        if self.closed.contains(&date) {
            return &[];
        }
        let i = match date.weekday() {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        };
        &self.week[i]
    }

    /// Is the shop open at `at_ms`?
    pub fn is_open(&self, at_ms: i64) -> bool {
        let Ok(ts) = Timestamp::from_millisecond(at_ms) else {
            return false;
        };
        let local = ts.to_zoned(self.tz.clone()).datetime();
        self.periods(local.date())
            .iter()
            .any(|(a, b)| *a <= local.time() && local.time() < *b)
    }

    /// When the shop next opens after `at_ms` (`at_ms` itself if open), up to
    /// a year ahead; `None` for a schedule with no open period at all.
    pub fn next_open_ms(&self, at_ms: i64) -> Option<i64> {
        if self.is_open(at_ms) {
            return Some(at_ms);
        }
        let ts = Timestamp::from_millisecond(at_ms).ok()?;
        let now = ts.to_zoned(self.tz.clone());
        let mut date = now.date();
        for _ in 0..=366 {
            for (start, _) in self.periods(date) {
                let candidate = date.to_datetime(*start).to_zoned(self.tz.clone()).ok()?;
                if candidate.timestamp() > ts {
                    return Some(candidate.timestamp().as_millisecond());
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The shop's time zone and its IANA name (reports count days in it).
    pub fn time_zone(&self) -> (&TimeZone, &str) {
        (&self.tz, &self.tz_name)
    }

    /// Milliseconds of `[from_ms, to_ms)` during which the shop is open:
    /// a duration "in business hours only" (reports). 0 when `to_ms <=
    /// from_ms`.
    pub fn open_ms_between(&self, from_ms: i64, to_ms: i64) -> i64 {
        if to_ms <= from_ms {
            return 0;
        }
        let (Ok(a), Ok(b)) = (
            Timestamp::from_millisecond(from_ms),
            Timestamp::from_millisecond(to_ms),
        ) else {
            return 0;
        };
        let mut date = a.to_zoned(self.tz.clone()).date();
        let last = b.to_zoned(self.tz.clone()).date();
        let mut total = 0;
        while date <= last {
            for (start, end) in self.periods(date) {
                let at = |t: Time| {
                    date.to_datetime(t)
                        .to_zoned(self.tz.clone())
                        .map(|z| z.timestamp().as_millisecond())
                };
                let (Ok(s), Ok(e)) = (at(*start), at(*end)) else {
                    continue;
                };
                let (s, e) = (s.max(from_ms), e.min(to_ms));
                if e > s {
                    total += e - s;
                }
            }
            let Ok(next) = date.tomorrow() else { break };
            date = next;
        }
        total
    }

    /// "Monday 09:00 (Europe/Berlin)", for telling visitors: `opens_at`
    /// of `texts`, with its weekday names.
    pub fn describe(&self, at_ms: i64, texts: &Texts) -> Option<String> {
        let ts = Timestamp::from_millisecond(at_ms).ok()?;
        let z = ts.to_zoned(self.tz.clone());
        let weekday = z.weekday().to_monday_zero_offset() as usize;
        let time = z.strftime("%H:%M").to_string();
        Some(texts.opens_at(weekday, &time, &self.tz_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> BusinessHours {
        BusinessHours::new(&RawHours {
            timezone: "Europe/Berlin".into(),
            monday: vec!["09:00-12:00".into(), "13:00-17:00".into()],
            tuesday: vec!["09:00-17:00".into()],
            wednesday: vec!["09:00-17:00".into()],
            thursday: vec!["09:00-17:00".into()],
            friday: vec!["09:00-15:00".into()],
            saturday: vec![],
            sunday: vec![],
            closed: vec!["2026-12-25".into()],
        })
        .unwrap()
    }

    /// Milliseconds of a Berlin wall-clock time.
    fn berlin(s: &str) -> i64 {
        let dt: jiff::civil::DateTime = s.parse().unwrap();
        dt.to_zoned(TimeZone::get("Europe/Berlin").unwrap())
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn open_and_closed_times() {
        let h = shop();
        // 2026-11-23 is a Monday.
        for (at, open) in [
            ("2026-11-23T08:59", false),
            ("2026-11-23T09:00", true),
            ("2026-11-23T12:30", false),
            ("2026-11-23T16:59", true),
            ("2026-11-23T17:00", false),
            ("2026-11-28T10:00", false),
            ("2026-12-25T10:00", false),
            ("2026-12-24T10:00", true),
        ] {
            assert_eq!(h.is_open(berlin(at)), open, "{at}");
        }
    }

    #[test]
    fn open_time_between_two_instants() {
        let h = shop();
        // Within one open period: the plain difference.
        let a = berlin("2026-06-01T10:00:00");
        assert_eq!(h.open_ms_between(a, a + 90_000), 90_000);
        // Friday 14:50 to Monday 09:05: ten minutes, then five.
        let fri = berlin("2026-06-05T14:50:00");
        let mon = berlin("2026-06-08T09:05:00");
        assert_eq!(h.open_ms_between(fri, mon), 15 * 60_000);
        // Closed all along, and backwards.
        assert_eq!(
            h.open_ms_between(berlin("2026-06-06T10:00:00"), berlin("2026-06-06T12:00:00")),
            0
        );
        assert_eq!(h.open_ms_between(mon, fri), 0);
    }

    #[test]
    fn next_opening() {
        let h = shop();
        let t = |s| h.next_open_ms(berlin(s));
        assert_eq!(
            t("2026-11-23T10:00"),
            Some(berlin("2026-11-23T10:00")),
            "open now"
        );
        assert_eq!(
            t("2026-11-23T12:30"),
            Some(berlin("2026-11-23T13:00")),
            "after lunch"
        );
        assert_eq!(
            t("2026-11-27T18:00"),
            Some(berlin("2026-11-30T09:00")),
            "Friday evening to Monday"
        );
        assert_eq!(t("2026-12-24T16:00"), Some(berlin("2026-12-24T16:00")));
        assert_eq!(
            t("2026-12-24T17:30"),
            Some(berlin("2026-12-28T09:00")),
            "over the holiday and weekend"
        );
        assert_eq!(
            h.describe(berlin("2026-11-30T09:00"), &Texts::default())
                .unwrap(),
            "Monday 09:00 (Europe/Berlin)"
        );
        let de = Texts::builtin(crate::conversation::Language::De);
        assert_eq!(
            h.describe(berlin("2026-12-01T09:00"), &de).unwrap(),
            "Dienstag um 09:00 Uhr (Europe/Berlin)"
        );
        // Daylight saving: 2026-03-29 02:00 → 03:00 in Berlin; Monday the 30th opens at 09:00 local.
        assert_eq!(t("2026-03-28T12:00"), Some(berlin("2026-03-30T09:00")));
    }

    #[test]
    fn bad_schedules_are_named() {
        let mut raw = RawHours {
            timezone: "Mars/Olympus".into(),
            monday: vec![],
            tuesday: vec![],
            wednesday: vec![],
            thursday: vec![],
            friday: vec![],
            saturday: vec![],
            sunday: vec![],
            closed: vec![],
        };
        assert_eq!(
            BusinessHours::new(&raw).unwrap_err(),
            HoursError::TimeZone("Mars/Olympus".into())
        );
        raw.timezone = "UTC".into();
        raw.monday = vec!["17:00-09:00".into()];
        assert!(matches!(
            BusinessHours::new(&raw),
            Err(HoursError::Period(_, "monday"))
        ));
        raw.monday = vec!["9am-5pm".into()];
        assert!(matches!(
            BusinessHours::new(&raw),
            Err(HoursError::Period(_, "monday"))
        ));
        raw.monday = vec![];
        raw.closed = vec!["25/12/2026".into()];
        assert!(matches!(BusinessHours::new(&raw), Err(HoursError::Date(_))));
        raw.closed = vec![];
        let never = BusinessHours::new(&raw).unwrap();
        assert_eq!(never.next_open_ms(0), None);
        assert!(
            !never.is_open(i64::MAX),
            "out-of-range times are closed, not a panic"
        );
    }
}

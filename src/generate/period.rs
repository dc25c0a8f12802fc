//! The billing period as the generator sees it: a calendar month of whole UTC hours.

use chrono::{DateTime, NaiveDate, Utc};

/// Milliseconds in one hour, the grain of every commitment calculation.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// One billing month, `[start, end)` in UTC milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    pub(crate) year: i32,
    pub(crate) month: u32,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
}

impl Period {
    /// The month `year-month`, or `None` when it is not a real calendar month.
    pub(crate) fn new(year: i32, month: u32) -> Option<Self> {
        let (next_year, next_month) = if month == 12 {
            (year.checked_add(1)?, 1)
        } else {
            (year, month + 1)
        };
        Some(Self {
            year,
            month,
            start_ms: first_of_month_ms(year, month)?,
            end_ms: first_of_month_ms(next_year, next_month)?,
        })
    }

    /// Number of hours in the month (672 to 744).
    pub(crate) fn hours(&self) -> u32 {
        ((self.end_ms - self.start_ms) / HOUR_MS) as u32
    }

    /// Start of hour `h` of the month, in milliseconds.
    pub(crate) fn hour_ms(&self, h: u32) -> i64 {
        self.start_ms + i64::from(h) * HOUR_MS
    }

    /// `YYYY-MM`, as in `BILLING_PERIOD=YYYY-MM` and the truth tables' `billing_period`.
    pub(crate) fn label(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

fn first_of_month_ms(year: i32, month: u32) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(year, month, 1)?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// A UTC instant as CUR writes commitment times: `YYYY-MM-DDTHH:MM:SS.000Z`.
///
/// Instants come from a valid [`Period`] plus at most a few years, far inside chrono's range;
/// an out-of-range value would print as an empty string rather than panic.
pub(crate) fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_have_the_right_hours() {
        let jul = Period::new(2025, 7).unwrap();
        assert_eq!(jul.hours(), 744);
        assert_eq!(iso_ms(jul.start_ms), "2025-07-01T00:00:00.000Z");
        assert_eq!(iso_ms(jul.end_ms), "2025-08-01T00:00:00.000Z");
        assert_eq!(Period::new(2024, 2).unwrap().hours(), 696);
        let dec = Period::new(2025, 12).unwrap();
        assert_eq!(iso_ms(dec.end_ms), "2026-01-01T00:00:00.000Z");
        assert_eq!(dec.label(), "2025-12");
        assert!(Period::new(2025, 13).is_none());
        assert!(Period::new(2025, 0).is_none());
    }
}

//! Time ranges in URLs (`?range=7d`, `/badge/x/uptime/30d.svg`): a duration in the units the
//! settings use, bounded so no request can ask for more than the rollups can answer cheaply.

use std::time::Duration;

use chrono::TimeDelta;
use serde::Deserialize;

use super::error::WebError;

/// Shortest range served.
pub const MIN_RANGE: TimeDelta = TimeDelta::hours(1);
/// Longest range served (a year and a day).
pub const MAX_RANGE: TimeDelta = TimeDelta::days(366);
/// The site page's and API's default.
pub const DEFAULT_RANGE: TimeDelta = TimeDelta::days(7);
/// The ranges the pages offer.
pub const CHOICES: [&str; 4] = ["24h", "7d", "30d", "90d"];

/// `?range=...`.
#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    /// E.g. `24h`, `7d`, `90d`.
    pub range: Option<String>,
}

impl RangeQuery {
    /// The range asked for, or the default.
    pub fn get(&self) -> Result<TimeDelta, WebError> {
        self.range.as_deref().map_or(Ok(DEFAULT_RANGE), parse)
    }
}

/// A range such as `90d`, within [`MIN_RANGE`, `MAX_RANGE`].
pub fn parse(text: &str) -> Result<TimeDelta, WebError> {
    let bad = |why: &str| WebError::BadRequest(format!("range `{text}`: {why}"));
    let d: Duration = sitewatch_checks::ops::units::parse_duration(text).map_err(|e| bad(&e))?;
    let d = TimeDelta::from_std(d).map_err(|_| bad("too long"))?;
    if d < MIN_RANGE {
        return Err(bad("shorter than an hour"));
    }
    if d > MAX_RANGE {
        return Err(bad("longer than 366 days"));
    }
    Ok(d)
}

/// How a range is written in links and labels: whole days beyond one as `Nd`, else hours.
pub fn label(range: TimeDelta) -> String {
    if range.num_hours() % 24 == 0 && range.num_hours() > 24 {
        format!("{}d", range.num_days())
    } else {
        format!("{}h", range.num_hours())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_bounded_and_labelled() {
        assert_eq!(parse("90d").unwrap(), TimeDelta::days(90));
        assert_eq!(parse("24h").unwrap(), TimeDelta::hours(24));
        assert_eq!(label(TimeDelta::hours(24)), "24h");
        assert_eq!(label(TimeDelta::days(7)), "7d");
        assert_eq!(label(TimeDelta::hours(36)), "36h");
        for bad in ["0s", "5m", "367d", "100000d", "forever", "", "-1d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

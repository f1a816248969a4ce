//! Which table serves a window: raw results for a day or less (exact percentiles), hourly
//! rollups up to a week (from the hour), daily rollups beyond that or beyond the raw
//! results' retention (from midnight UTC).

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::rollups::Resolution;

/// Longest window read from raw results.
const RAW_WINDOW: TimeDelta = TimeDelta::days(1);
/// Longest window read from hourly rollups.
const HOURLY_WINDOW: TimeDelta = TimeDelta::days(7);
/// Allowance on those lengths: `--since 1d` is a day counted a moment before the report.
const SLACK: TimeDelta = TimeDelta::minutes(1);

/// Where figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `results`.
    Results,
    /// `rollup_hourly` (windows up to a week).
    HourlyRollups,
    /// `rollup_daily`.
    DailyRollups,
}

impl Source {
    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Results => "raw results",
            Source::HourlyRollups => "hourly rollups",
            Source::DailyRollups => "daily rollups",
        }
    }

    /// Its rollup table of per-location rows (`None` for raw results).
    pub fn resolution(self) -> Option<Resolution> {
        match self {
            Source::Results => None,
            Source::HourlyRollups => Some(Resolution::Hourly),
            Source::DailyRollups => Some(Resolution::Daily),
        }
    }

    /// Its rollup table to read whole sites' figures from: per-site rows where there are
    /// (daily), else per location.
    pub fn site_resolution(self) -> Option<Resolution> {
        match self {
            Source::DailyRollups => Some(Resolution::SiteDaily),
            other => other.resolution(),
        }
    }
}

/// Where figures for results since `since` come from, and the window's start as that source
/// has it: raw results up to a day back (while they are kept), hourly rollups up to a week
/// (from the hour), daily rollups beyond (from midnight UTC).
pub fn source_for(
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    raw_dropped_before: Option<NaiveDate>,
) -> (Source, DateTime<Utc>) {
    let raw_kept = raw_dropped_before
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .is_none_or(|from| since >= from.and_utc());
    let window = now - since - SLACK;
    if window <= RAW_WINDOW && raw_kept {
        (Source::Results, since)
    } else if window <= HOURLY_WINDOW {
        let hour = since.duration_trunc(TimeDelta::hours(1)).unwrap_or(since);
        (Source::HourlyRollups, hour)
    } else {
        let day = since.duration_trunc(TimeDelta::days(1)).unwrap_or(since);
        (Source::DailyRollups, day)
    }
}

/// [`source_for`] with the raw results' retention as the database records it.
pub async fn choose<C: GenericClient>(
    client: &C,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Source, DateTime<Utc>), tokio_postgres::Error> {
    let dropped: Option<NaiveDate> = client
        .query_one("SELECT raw_dropped_before FROM retention_state", &[])
        .await?
        .get(0);
    Ok(source_for(since, now, dropped))
}

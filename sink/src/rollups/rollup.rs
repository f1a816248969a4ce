//! What a rollup row holds for one (site, location, bucket), how a check adds to it, and
//! how rows merge. Everything is an exact integer (counts, milliseconds, microseconds, the
//! sketch's counts), so adding the same checks in any order, or in any batches, gives the
//! same row: the incremental rollups equal a recomputation.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::sketch::Sketch;
use crate::codes;

/// How a check counts for time: it covers the time since the previous check of its (site,
/// location), when that was at most this long before; a longer gap (or no previous check)
/// is time nobody observed, and the check covers nothing.
pub const MAX_GAP: TimeDelta = TimeDelta::hours(1);

/// Rollup tables: their granularity, and whether a row is one location's or the site's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// `rollup_hourly`: buckets start on the hour (UTC).
    Hourly,
    /// `rollup_daily`: buckets start at midnight UTC.
    Daily,
    /// `rollup_site_daily`: as `Daily`, every location of the site added up (what readers of
    /// a site's figures over days read: one row per day, not one per location).
    SiteDaily,
}

impl Resolution {
    /// Every table, in the order they are written.
    pub const ALL: [Resolution; 3] = [Resolution::Hourly, Resolution::Daily, Resolution::SiteDaily];

    /// The table.
    pub fn table(self) -> &'static str {
        match self {
            Resolution::Hourly => "rollup_hourly",
            Resolution::Daily => "rollup_daily",
            Resolution::SiteDaily => "rollup_site_daily",
        }
    }

    /// A bucket's length.
    pub fn span(self) -> TimeDelta {
        match self {
            Resolution::Hourly => TimeDelta::hours(1),
            Resolution::Daily | Resolution::SiteDaily => TimeDelta::days(1),
        }
    }

    /// Whether a row is one location's (else the whole site's).
    pub fn per_location(self) -> bool {
        self != Resolution::SiteDaily
    }

    /// The start of the bucket holding `at`.
    pub fn bucket(self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.range(at).0
    }

    /// The bucket holding `at`: its start, and its end (exclusive) where every instant
    /// before it has that start (`None` for an instant too far out to truncate, which is its
    /// own bucket).
    pub fn range(self, at: DateTime<Utc>) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        match at.duration_trunc(self.span()) {
            Ok(start) => (start, start.checked_add_signed(self.span())),
            Err(_) => (at, None),
        }
    }
}

/// One stored check as rollups see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// `agents.id`, which orders checks of one location starting at the same instant.
    pub agent_id: i16,
    /// Outcome code (`codes`).
    pub outcome: i16,
    /// Total time, µs, as stored.
    pub total_us: i32,
}

impl Check {
    /// The order checks of one (site, location) follow.
    pub fn order(&self) -> (DateTime<Utc>, i16) {
        (self.started_at, self.agent_id)
    }
}

/// Milliseconds `check` covers after a previous check that started at `previous` (see
/// [`MAX_GAP`]).
pub fn span_ms(previous: Option<DateTime<Utc>>, check: &Check) -> i64 {
    match previous {
        Some(p) if check.started_at - p <= MAX_GAP => {
            check.started_at.timestamp_millis() - p.timestamp_millis()
        }
        _ => 0,
    }
}

/// One rollup row's figures (or a change to them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Checks `up`.
    pub up: i64,
    /// Checks `degraded`.
    pub degraded: i64,
    /// Checks `down`.
    pub down: i64,
    /// Milliseconds covered by `up` checks.
    pub up_ms: i64,
    /// Milliseconds covered by `degraded` checks.
    pub degraded_ms: i64,
    /// Milliseconds covered by `down` checks.
    pub down_ms: i64,
    /// Sum of total times, µs.
    pub total_us_sum: i64,
    /// Shortest total time, µs (`None` without checks).
    pub total_us_min: Option<i32>,
    /// Longest total time, µs (`None` without checks).
    pub total_us_max: Option<i32>,
    /// Total times, µs.
    pub latency: Sketch,
}

impl Rollup {
    /// Checks counted.
    pub fn checks(&self) -> i64 {
        self.up + self.degraded + self.down
    }

    /// Counts `check` (not its time: see [`Rollup::cover`]).
    pub fn count(&mut self, check: &Check) {
        match check.outcome {
            codes::UP => self.up += 1,
            codes::DEGRADED => self.degraded += 1,
            _ => self.down += 1,
        }
        let t = check.total_us;
        self.total_us_sum += i64::from(t);
        self.total_us_min = Some(self.total_us_min.map_or(t, |m| m.min(t)));
        self.total_us_max = Some(self.total_us_max.map_or(t, |m| m.max(t)));
        self.latency.add(i64::from(t));
    }

    /// Adds `ms` (may be negative: a late check shortened it) to the time of `outcome`.
    pub fn cover(&mut self, outcome: i16, ms: i64) {
        match outcome {
            codes::UP => self.up_ms += ms,
            codes::DEGRADED => self.degraded_ms += ms,
            _ => self.down_ms += ms,
        }
    }

    /// Adds `other` to this row.
    pub fn merge(&mut self, other: &Rollup) {
        self.up += other.up;
        self.degraded += other.degraded;
        self.down += other.down;
        self.up_ms += other.up_ms;
        self.degraded_ms += other.degraded_ms;
        self.down_ms += other.down_ms;
        self.total_us_sum += other.total_us_sum;
        self.total_us_min = combine(self.total_us_min, other.total_us_min, i32::min);
        self.total_us_max = combine(self.total_us_max, other.total_us_max, i32::max);
        self.latency.merge(&other.latency);
    }
}

fn combine(a: Option<i32>, b: Option<i32>, pick: fn(i32, i32) -> i32) -> Option<i32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

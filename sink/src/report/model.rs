//! What a report holds: each site over the window, and where the figures came from.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::figures::Source;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Start of the window the figures cover (long windows start on the hour or at midnight
    /// UTC, as their rollups do).
    pub since: DateTime<Utc>,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
    /// Where the figures came from.
    pub source: Source,
    /// One entry per known site, by name.
    pub sites: Vec<SiteReport>,
}

/// One site over the window.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    /// Site name.
    pub name: String,
    /// URL last checked.
    pub url: String,
    /// Outcome of the latest check (`unknown` before any).
    pub outcome: String,
    /// When the site entered that outcome.
    pub since: DateTime<Utc>,
    /// Latest check.
    pub last_seen: DateTime<Utc>,
    /// Checks in the window.
    pub checks: i64,
    /// Share of those checks that were not `down`, in percent (`None` without checks).
    pub uptime_pct: Option<f64>,
    /// Checks that were `degraded`.
    pub degraded: i64,
    /// Checks that were `down`.
    pub down: i64,
    /// Time covered by `down` checks, seconds (from rollups only).
    pub down_seconds: Option<f64>,
    /// Time covered by `degraded` checks, seconds (from rollups only).
    pub degraded_seconds: Option<f64>,
    /// Median total response time, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile total response time, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile total response time, ms.
    pub p99_ms: Option<f64>,
    /// Latest error in the window: kind.
    pub last_error_kind: Option<String>,
    /// Latest error in the window: message.
    pub last_error: Option<String>,
    /// When that error happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Latest outcome changes in the window, oldest first.
    pub events: Vec<Event>,
}

/// One outcome change.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// Outcome before (`None` for a site's first result).
    pub previous: Option<String>,
    /// Outcome after.
    pub new: String,
    /// Why, when the new outcome is not `up`.
    pub reason: Option<String>,
}

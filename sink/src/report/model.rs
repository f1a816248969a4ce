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
    /// Mean time to recovery over every site's incidents resolved in the window, seconds.
    pub mttr_seconds: Option<f64>,
}

/// One site over the window.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    /// Site name.
    pub name: String,
    /// URL last checked.
    pub url: String,
    /// The site's verdict from its locations: `up`, `degraded`, `down` or `unknown`.
    pub verdict: String,
    /// When it took that verdict (`None` before its first).
    pub verdict_since: Option<DateTime<Utc>>,
    /// Why, in words.
    pub verdict_reason: Option<String>,
    /// Each location's state.
    pub locations: Vec<LocationReport>,
    /// The open incident, if the site is (or was last seen) down.
    pub open_incident: Option<IncidentReport>,
    /// Incidents that started in the window.
    pub incidents: i64,
    /// Mean time to recovery of its incidents resolved in the window, seconds.
    pub mttr_seconds: Option<f64>,
    /// Outcome of the latest check, from whichever location (`unknown` before any).
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

/// One location's state for a site.
#[derive(Debug, Clone, Serialize)]
pub struct LocationReport {
    /// The location (an agent's `location`, else its name).
    pub name: String,
    /// `pending`, `passing`, `degraded` or `failing`.
    pub state: String,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// Out of the vote: silent since then.
    pub silent_since: Option<DateTime<Utc>>,
    /// Its latest counted check.
    pub last_check: DateTime<Utc>,
    /// First error of the run behind a degraded or failing state.
    pub problem: Option<String>,
}

/// An incident.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentReport {
    /// `incidents.id`.
    pub id: i64,
    /// The first failing check that led to down.
    pub started_at: DateTime<Utc>,
    /// When the verdict became down.
    pub opened_at: DateTime<Utc>,
    /// Locations failing while it was open.
    pub locations: Vec<String>,
    /// Its first error.
    pub first_error: Option<String>,
}

/// One event: a verdict change or a location gone silent (or, from before verdicts, a
/// change of the latest check's outcome).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `verdict`, `location_silent` or (before version 4) `outcome`.
    pub kind: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Verdict before (a location's state, for `location_silent`; `None` for a first).
    pub previous: Option<String>,
    /// Verdict after (`silent`).
    pub new: String,
    /// The silent location.
    pub location: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

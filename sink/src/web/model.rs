//! What the pages and the JSON API show, as plain data: sites with their verdict, each
//! location's state and their figures, incidents, failed checks, daily bars and latency
//! points. Serialised as is by the API, so page and API cannot disagree.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A site's verdict, or a location's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Failing (ordered first: the worst is listed first).
    Down,
    /// Working, but slow or failing somewhere.
    Degraded,
    /// No recent result to judge by.
    Unknown,
    /// Working.
    Up,
}

impl Verdict {
    /// Every verdict, worst first.
    pub const ALL: [Verdict; 4] = [
        Verdict::Down,
        Verdict::Degraded,
        Verdict::Unknown,
        Verdict::Up,
    ];

    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Degraded => "degraded",
            Verdict::Down => "down",
            Verdict::Unknown => "unknown",
        }
    }

    /// From an outcome's or verdict's name; anything else is `Unknown`.
    pub fn parse(name: Option<&str>) -> Verdict {
        match name {
            Some("up") => Verdict::Up,
            Some("degraded") => Verdict::Degraded,
            Some("down") => Verdict::Down,
            _ => Verdict::Unknown,
        }
    }
}

/// One location's view of a site.
#[derive(Debug, Clone, Serialize)]
pub struct LocationState {
    /// Location name (an agent's `location`, else its name).
    pub name: String,
    /// Its state.
    pub state: Verdict,
    /// Its latest check.
    pub last_check_at: DateTime<Utc>,
    /// Why it is not up (error kind and message), when it is not.
    pub error: Option<String>,
}

/// A site as the catalog defines it and as its verdict stands.
#[derive(Debug, Clone, Serialize)]
pub struct SiteState {
    /// `sites.id` (not part of the API).
    #[serde(skip)]
    pub id: i32,
    /// Name: the site's id everywhere.
    pub name: String,
    /// URL checked.
    pub url: String,
    /// The site's verdict.
    pub verdict: Verdict,
    /// Since when it has had that verdict.
    pub verdict_since: Option<DateTime<Utc>>,
    /// Why, in words (how many locations fail against the quorum).
    pub verdict_reason: Option<String>,
    /// Latest check from any location.
    pub last_check_at: DateTime<Utc>,
    /// Each location's state, by name.
    pub locations: Vec<LocationState>,
    /// Catalog tags.
    pub tags: Vec<String>,
    /// Catalog group.
    pub group: Option<String>,
    /// Whether the catalog lists it on the public status page.
    pub public: bool,
}

/// A period a site was down.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// The site.
    pub site: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended (`None`: still open).
    pub ended_at: Option<DateTime<Utc>>,
    /// Its length so far, seconds.
    pub duration_seconds: i64,
    /// The first error seen.
    pub first_error: Option<String>,
    /// Locations that saw it.
    pub locations: Vec<String>,
}

/// Uptime and latency of a site over the dashboard's windows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Uptimes {
    /// Percent over the last 24 hours (from the hour), 7, 30 and 90 days (from midnight UTC).
    pub pct_24h: Option<f64>,
    /// See `pct_24h`.
    pub pct_7d: Option<f64>,
    /// See `pct_24h`.
    pub pct_30d: Option<f64>,
    /// See `pct_24h`.
    pub pct_90d: Option<f64>,
    /// 95th percentile response time over the last 24 hours, ms.
    pub p95_ms_24h: Option<f64>,
}

/// A dashboard row: the site, its figures, its open incident.
#[derive(Debug, Clone, Serialize)]
pub struct SiteSummary {
    /// The site and its verdict.
    #[serde(flatten)]
    pub site: SiteState,
    /// Its uptime and latency.
    pub uptime: Uptimes,
    /// Its open incident, if any.
    pub open_incident: Option<Incident>,
    /// The maintenance window it is in now, if any.
    pub maintenance: Option<String>,
}

/// A check that did not come out `up`, with its phase timings.
#[derive(Debug, Clone, Serialize)]
pub struct FailedCheck {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Where from.
    pub location: String,
    /// Which agent.
    pub agent: String,
    /// `degraded` or `down`.
    pub outcome: Verdict,
    /// Error kind.
    pub error_kind: Option<String>,
    /// Error message.
    pub error: Option<String>,
    /// HTTP status, when a response arrived.
    pub http_status: Option<i16>,
    /// DNS time, ms.
    pub dns_ms: Option<f64>,
    /// Connect time, ms.
    pub connect_ms: Option<f64>,
    /// TLS handshake, ms.
    pub tls_ms: Option<f64>,
    /// Time to first byte, ms.
    pub ttfb_ms: Option<f64>,
    /// Total, ms.
    pub total_ms: f64,
}

/// One location's (or the whole site's) figures for one day or hour.
#[derive(Debug, Clone, Serialize)]
pub struct BucketPoint {
    /// Start of the day or hour (UTC).
    pub bucket: DateTime<Utc>,
    /// Checks.
    pub checks: i64,
    /// Checks that were down.
    pub down: i64,
    /// Checks that were degraded.
    pub degraded: i64,
    /// Time covered by down checks, seconds.
    pub down_seconds: f64,
    /// Uptime in percent.
    pub uptime_pct: Option<f64>,
    /// Median response time, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile response time, ms.
    pub p95_ms: Option<f64>,
}

/// A location's buckets.
#[derive(Debug, Clone, Serialize)]
pub struct LocationSeries {
    /// Location name (`all` for a site's figures over every location).
    pub location: String,
    /// Its buckets, oldest first; days or hours without checks are absent.
    pub points: Vec<BucketPoint>,
}

/// Where a maintenance period stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceState {
    /// Over.
    Ended,
    /// In progress now.
    Active,
    /// Not begun (scheduled).
    Scheduled,
}

impl MaintenanceState {
    /// Its name as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            MaintenanceState::Ended => "ended",
            MaintenanceState::Active => "active",
            MaintenanceState::Scheduled => "scheduled",
        }
    }
}

/// One occurrence of a maintenance window for one site, as the sink recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct Maintenance {
    /// The site.
    pub site: String,
    /// The window's name in the sink's config file.
    pub window: String,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
    /// Its length, seconds.
    pub duration_seconds: i64,
    /// Ended, active or scheduled, at the time of the request.
    pub state: MaintenanceState,
}

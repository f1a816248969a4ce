//! The report's data: one query for the per-site figures, one for recent events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use crate::{codes, migrations};

/// Events listed per site, newest kept.
const EVENTS_PER_SITE: i64 = 5;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Start of the window.
    pub since: DateTime<Utc>,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
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
    /// Outcome of the latest check.
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
    /// Median total response time, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile total response time, ms.
    pub p95_ms: Option<f64>,
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

/// Why the report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The database is not at this build's schema.
    #[error("{0}")]
    Schema(#[from] migrations::MigrationError),
    /// A query failed.
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
}

/// Reads the report for results since `since`.
pub async fn load(client: &Client, since: DateTime<Utc>) -> Result<Report, ReportError> {
    migrations::check_current(client).await?;
    let rows = client
        .query(
            "SELECT s.name, s.url, coalesce(s.current_outcome, 'unknown'),
                    coalesce(s.last_change_at, s.first_seen), s.last_seen,
                    w.checks, w.down, w.degraded, w.p50, w.p95,
                    e.kind, e.message, e.at
             FROM sites s
             LEFT JOIN LATERAL (
                 SELECT count(*) AS checks,
                        count(*) FILTER (WHERE outcome = $2) AS down,
                        count(*) FILTER (WHERE outcome = $3) AS degraded,
                        percentile_cont(0.5) WITHIN GROUP (ORDER BY total_us) / 1000 AS p50,
                        percentile_cont(0.95) WITHIN GROUP (ORDER BY total_us) / 1000 AS p95
                 FROM results r
                 WHERE r.site_id = s.id AND r.started_at >= $1
             ) w ON true
             LEFT JOIN LATERAL (
                 SELECT s.last_error_kind AS kind, s.last_error_message AS message,
                        s.last_error_at AS at
                 WHERE s.last_error_at >= $1
             ) e ON true
             ORDER BY s.name",
            &[&since, &codes::DOWN, &codes::DEGRADED],
        )
        .await?;
    let mut events: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for r in client
        .query(
            "SELECT site, at, previous_outcome, new_outcome, reason FROM (
                 SELECT *, row_number() OVER (PARTITION BY site ORDER BY at DESC, id DESC) AS n
                 FROM site_events WHERE at >= $1
             ) e WHERE n <= $2 ORDER BY site, at, id",
            &[&since, &EVENTS_PER_SITE],
        )
        .await?
    {
        events.entry(r.get(0)).or_default().push(Event {
            at: r.get(1),
            previous: r.get(2),
            new: r.get(3),
            reason: r.get(4),
        });
    }
    let sites = rows
        .iter()
        .map(|r| {
            let name: String = r.get(0);
            let checks: i64 = r.get(5);
            let down: i64 = r.get(6);
            SiteReport {
                events: events.remove(&name).unwrap_or_default(),
                name,
                url: r.get(1),
                outcome: r.get(2),
                since: r.get(3),
                last_seen: r.get(4),
                checks,
                uptime_pct: (checks > 0).then(|| 100.0 * (checks - down) as f64 / checks as f64),
                degraded: r.get(7),
                down,
                p50_ms: r.get(8),
                p95_ms: r.get(9),
                last_error_kind: r.get(10),
                last_error: r.get(11),
                last_error_at: r.get(12),
            }
        })
        .collect();
    Ok(Report {
        since,
        generated_at: Utc::now(),
        sites,
    })
}

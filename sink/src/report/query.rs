//! Reading the report: which source serves the window, then the sites, their figures,
//! verdicts and recent events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::model::{Event, Report, SiteReport};
use super::verdicts;
use crate::figures;
use crate::migrations;

/// Events listed per site, newest kept.
const EVENTS_PER_SITE: i64 = 5;

/// The report's long-window figures are thousands of small index range reads whose summed
/// cost estimate passes PostgreSQL's JIT thresholds (`jit_above_cost`; with three locations
/// over 90 days also the inlining and optimising ones): compiling the plan then took about
/// as long as running it (EXPLAIN ANALYZE on the benchmark's data, 3 locations: ~290-320 ms
/// of JIT on a query that runs in ~300-350 ms without).
const NO_JIT: &str = "SET jit = off";

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

/// Reads the report for results since `since`. Turns off JIT compilation for the rest of
/// `client`'s session (see [`NO_JIT`]).
pub async fn load(client: &Client, since: DateTime<Utc>) -> Result<Report, ReportError> {
    client.batch_execute(NO_JIT).await?;
    migrations::check_current(client).await?;
    let now = Utc::now();
    let (source, since) = figures::choose(client, since, now).await?;
    let mut figures = figures::by_site(client, source, since, None).await?;
    let mut events = recent_events(client, since).await?;
    let (mut verdicts, mttr_seconds) = verdicts::load(client, since).await?;
    let rows = client
        .query(
            "SELECT id, name, url, coalesce(current_outcome, 'unknown'),
                    coalesce(last_change_at, first_seen), last_seen,
                    last_error_kind, last_error_message, last_error_at
             FROM sites ORDER BY name",
            &[],
        )
        .await?;
    let sites = rows
        .iter()
        .map(|r| {
            let f = figures.remove(&r.get::<_, i32>(0)).unwrap_or_default();
            let v = verdicts.remove(&r.get::<_, i32>(0)).unwrap_or_default();
            let name: String = r.get(1);
            let error_at: Option<DateTime<Utc>> = r.get(8);
            let in_window = error_at.is_some_and(|at| at >= since);
            SiteReport {
                events: events.remove(&name).unwrap_or_default(),
                name,
                url: r.get(2),
                verdict: v.verdict.unwrap_or_else(|| "unknown".into()),
                verdict_since: v.since,
                verdict_reason: v.reason,
                locations: v.locations,
                open_incident: v.open_incident,
                incidents: v.incidents,
                mttr_seconds: v.mttr_seconds,
                outcome: r.get(3),
                since: r.get(4),
                last_seen: r.get(5),
                checks: f.checks,
                uptime_pct: f.uptime_pct(),
                degraded: f.degraded,
                down: f.down,
                down_seconds: f.down_seconds,
                degraded_seconds: f.degraded_seconds,
                p50_ms: f.p50_ms,
                p95_ms: f.p95_ms,
                p99_ms: f.p99_ms,
                last_error_kind: r.get::<_, Option<String>>(6).filter(|_| in_window),
                last_error: r.get::<_, Option<String>>(7).filter(|_| in_window),
                last_error_at: error_at.filter(|_| in_window),
            }
        })
        .collect();
    Ok(Report {
        since,
        generated_at: now,
        source,
        sites,
        mttr_seconds,
    })
}

/// Each site's latest events since `since`, oldest first.
async fn recent_events(
    client: &Client,
    since: DateTime<Utc>,
) -> Result<BTreeMap<String, Vec<Event>>, tokio_postgres::Error> {
    let mut events: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for r in client
        .query(
            "SELECT s.name, e.at, e.previous_outcome, e.new_outcome, e.reason, e.kind, e.location
             FROM sites s
             CROSS JOIN LATERAL (
                 SELECT * FROM site_events e
                 WHERE e.site = s.name AND e.at >= $1
                 ORDER BY e.at DESC, e.id DESC LIMIT $2
             ) e
             ORDER BY s.name, e.at, e.id",
            &[&since, &EVENTS_PER_SITE],
        )
        .await?
    {
        events.entry(r.get(0)).or_default().push(Event {
            kind: r.get(5),
            location: r.get(6),
            at: r.get(1),
            previous: r.get(2),
            new: r.get(3),
            reason: r.get(4),
        });
    }
    Ok(events)
}

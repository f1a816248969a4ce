//! The verdict side of the report: each site's verdict, its locations' states, its open
//! incident and its incidents in the window (count and mean time to recovery).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::model::{IncidentReport, LocationReport};

/// A site's verdict facts.
#[derive(Debug, Default)]
pub(super) struct SiteVerdict {
    pub(super) verdict: Option<String>,
    pub(super) since: Option<DateTime<Utc>>,
    pub(super) reason: Option<String>,
    pub(super) locations: Vec<LocationReport>,
    pub(super) open_incident: Option<IncidentReport>,
    pub(super) incidents: i64,
    pub(super) mttr_seconds: Option<f64>,
}

/// Every site's verdict facts by site id, and the MTTR over all of them, for a window
/// starting at `since`.
pub(super) async fn load(
    client: &Client,
    since: DateTime<Utc>,
) -> Result<(BTreeMap<i32, SiteVerdict>, Option<f64>), tokio_postgres::Error> {
    let mut sites: BTreeMap<i32, SiteVerdict> = BTreeMap::new();
    for r in client
        .query(
            "SELECT site_id, verdict, since, reason FROM site_verdicts",
            &[],
        )
        .await?
    {
        let site = sites.entry(r.get(0)).or_default();
        site.verdict = r.get(1);
        site.since = r.get(2);
        site.reason = r.get(3);
    }
    for r in client
        .query(
            "SELECT ls.site_id, l.name, ls.state, ls.state_since, ls.silent_since,
                    ls.last_applied_at, concat_ws(': ', ls.problem_kind, ls.problem_message)
             FROM location_states ls JOIN locations l ON l.id = ls.location_id
             ORDER BY ls.site_id, l.name",
            &[],
        )
        .await?
    {
        let problem: String = r.get(6);
        sites
            .entry(r.get(0))
            .or_default()
            .locations
            .push(LocationReport {
                name: r.get(1),
                state: r.get(2),
                since: r.get(3),
                silent_since: r.get(4),
                last_check: r.get(5),
                problem: (!problem.is_empty()).then_some(problem),
            });
    }
    for r in client
        .query(
            "SELECT site_id, id, started_at, opened_at, locations,
                    concat_ws(': ', first_error_kind, first_error)
             FROM incidents WHERE resolved_at IS NULL",
            &[],
        )
        .await?
    {
        let error: String = r.get(5);
        sites.entry(r.get(0)).or_default().open_incident = Some(IncidentReport {
            id: r.get(1),
            started_at: r.get(2),
            opened_at: r.get(3),
            locations: r.get(4),
            first_error: (!error.is_empty()).then_some(error),
        });
    }
    // Incidents in the window: those started in it, and the MTTR of those resolved in it
    // (from the first failing check to recovery).
    let mttr = "extract(epoch FROM avg(duration) FILTER (WHERE resolved_at >= $1))::float8";
    for r in client
        .query(
            &format!(
                "SELECT site_id, count(*) FILTER (WHERE started_at >= $1), {mttr}
                 FROM incidents WHERE started_at >= $1 OR resolved_at >= $1 GROUP BY site_id"
            ),
            &[&since],
        )
        .await?
    {
        let site = sites.entry(r.get(0)).or_default();
        site.incidents = r.get(1);
        site.mttr_seconds = r.get(2);
    }
    let overall: Option<f64> = client
        .query_one(&format!("SELECT {mttr} FROM incidents"), &[&since])
        .await?
        .get(0);
    Ok((sites, overall))
}

//! The one place the web role reads verdicts, location states, incidents and the site
//! catalog: `site_verdicts`, `location_states`, `incidents` and `site_catalog`, kept by the
//! sink's verdict step (schema version 4). Sites a tombstone removed from the catalog leave
//! the lists (their page and history stay).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::model::{Incident, LocationState, SiteState, Verdict};

const SITE_QUERY: &str = "SELECT s.id, s.name, coalesce(c.url, s.url), v.verdict, v.since,
        s.last_seen, coalesce(c.tags, '{}'), c.site_group, coalesce(c.public, false), v.reason
 FROM sites s
 LEFT JOIN site_verdicts v ON v.site_id = s.id
 LEFT JOIN site_catalog c ON c.site = s.name";

/// Every site in the catalog (or, without a catalog entry, with results), by name.
pub async fn sites(client: &Client) -> Result<Vec<SiteState>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!("{SITE_QUERY} WHERE c.removed_at IS NULL ORDER BY s.name"),
            &[],
        )
        .await?;
    let mut locations = location_states(client, None).await?;
    Ok(rows
        .iter()
        .map(|r| site_from_row(r, locations.remove(&r.get::<_, i32>(0))))
        .collect())
}

/// One site by name (also one removed from the catalog).
pub async fn site(client: &Client, name: &str) -> Result<Option<SiteState>, tokio_postgres::Error> {
    let Some(r) = client
        .query_opt(&format!("{SITE_QUERY} WHERE s.name = $1"), &[&name])
        .await?
    else {
        return Ok(None);
    };
    let id: i32 = r.get(0);
    let mut locations = location_states(client, Some(id)).await?;
    Ok(Some(site_from_row(&r, locations.remove(&id))))
}

fn site_from_row(r: &tokio_postgres::Row, locations: Option<Vec<LocationState>>) -> SiteState {
    SiteState {
        id: r.get(0),
        name: r.get(1),
        url: r.get(2),
        verdict: Verdict::parse(r.get(3)),
        verdict_since: r.get(4),
        verdict_reason: r.get(9),
        last_check_at: r.get(5),
        locations: locations.unwrap_or_default(),
        tags: r.get(6),
        group: r.get(7),
        public: r.get(8),
    }
}

/// A location's state as the page shows it: `passing` is up, `failing` down, `pending` (not
/// decided yet) and silent ones unknown.
fn location_verdict(state: &str, silent: bool) -> Verdict {
    match state {
        _ if silent => Verdict::Unknown,
        "passing" => Verdict::Up,
        "degraded" => Verdict::Degraded,
        "failing" => Verdict::Down,
        _ => Verdict::Unknown,
    }
}

/// Each location's state, by site id (all sites, or one).
async fn location_states(
    client: &Client,
    site_id: Option<i32>,
) -> Result<HashMap<i32, Vec<LocationState>>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT ls.site_id, l.name, ls.state, ls.silent_since, ls.last_result_at,
                    ls.problem_kind, ls.problem_message
             FROM location_states ls JOIN locations l ON l.id = ls.location_id
             WHERE $1::int IS NULL OR ls.site_id = $1
             ORDER BY ls.site_id, l.name",
            &[&site_id],
        )
        .await?;
    let mut by_site: HashMap<i32, Vec<LocationState>> = HashMap::new();
    for r in &rows {
        let raw: String = r.get(2);
        let silent_since: Option<DateTime<Utc>> = r.get(3);
        let state = location_verdict(&raw, silent_since.is_some());
        let error = match silent_since {
            Some(at) => Some(format!("silent since {}", at.format("%Y-%m-%d %H:%M UTC"))),
            None if state == Verdict::Up => None,
            None if raw == "pending" => Some("pending: too few checks to decide".into()),
            None => error_text(r.get(5), r.get(6)),
        };
        by_site.entry(r.get(0)).or_default().push(LocationState {
            name: r.get(1),
            state,
            last_check_at: r.get(4),
            error,
        });
    }
    Ok(by_site)
}

/// `kind: message`, or whichever of the two there is.
pub fn error_text(kind: Option<String>, message: Option<String>) -> Option<String> {
    match (kind, message) {
        (Some(k), Some(m)) => Some(format!("{k}: {m}")),
        (k, m) => k.or(m),
    }
}

const INCIDENT_COLUMNS: &str = "s.name, i.started_at, i.resolved_at, i.first_error_kind,
        i.first_error, i.locations";

/// Incidents of one site (or every site) open at any time since `since`, newest first, at
/// most `limit`.
pub async fn incidents(
    client: &Client,
    site: Option<&str>,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Incident>, tokio_postgres::Error> {
    let now = Utc::now();
    let rows = client
        .query(
            &format!(
                "SELECT {INCIDENT_COLUMNS}
                 FROM incidents i JOIN sites s ON s.id = i.site_id
                 WHERE ($1::text IS NULL OR s.name = $1)
                   AND (i.resolved_at IS NULL OR i.resolved_at >= $2)
                 ORDER BY i.started_at DESC
                 LIMIT $3"
            ),
            &[&site, &since, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| incident(r, now)).collect())
}

/// Each currently open incident, by site name.
pub async fn open_incidents(
    client: &Client,
) -> Result<HashMap<String, Incident>, tokio_postgres::Error> {
    let now = Utc::now();
    let rows = client
        .query(
            &format!(
                "SELECT {INCIDENT_COLUMNS}
                 FROM incidents i JOIN sites s ON s.id = i.site_id
                 WHERE i.resolved_at IS NULL"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let i = incident(r, now);
            (i.site.clone(), i)
        })
        .collect())
}

fn incident(r: &tokio_postgres::Row, now: DateTime<Utc>) -> Incident {
    let started_at: DateTime<Utc> = r.get(1);
    let ended_at: Option<DateTime<Utc>> = r.get(2);
    Incident {
        site: r.get(0),
        started_at,
        ended_at,
        duration_seconds: (ended_at.unwrap_or(now) - started_at).num_seconds().max(0),
        first_error: error_text(r.get(3), r.get(4)),
        locations: r.get(5),
    }
}

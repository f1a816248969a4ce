//! The one place the web role reads verdicts, location states, incidents and the site
//! catalog. Until the verdict tables (issue 16) exist these come from what is stored today:
//! a site's verdict is its latest outcome (`sites.current_outcome`, any location), a
//! location's state is its latest result, an incident is a period between a site's
//! `site_events` change to `down` and the next change, and there is no catalog (no tags,
//! groups or public sites). Every other module goes through the functions here.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Client;

use super::model::{Incident, LocationState, SiteState, Verdict};

/// A site without a result for this long is `unknown`, and so is a location.
pub const STALE_AFTER: TimeDelta = TimeDelta::minutes(15);

const SITE_COLUMNS: &str = "s.id, s.name, s.url, s.current_outcome, s.last_change_at, s.last_seen";

/// Every known site, by name.
pub async fn sites(client: &Client) -> Result<Vec<SiteState>, tokio_postgres::Error> {
    let now = Utc::now();
    let rows = client
        .query(
            &format!("SELECT {SITE_COLUMNS} FROM sites s ORDER BY s.name"),
            &[],
        )
        .await?;
    let mut locations = location_states(client, None, now).await?;
    Ok(rows
        .iter()
        .map(|r| site_from_row(r, locations.remove(&r.get::<_, i32>(0)), now))
        .collect())
}

/// One site by name.
pub async fn site(client: &Client, name: &str) -> Result<Option<SiteState>, tokio_postgres::Error> {
    let now = Utc::now();
    let Some(r) = client
        .query_opt(
            &format!("SELECT {SITE_COLUMNS} FROM sites s WHERE s.name = $1"),
            &[&name],
        )
        .await?
    else {
        return Ok(None);
    };
    let id: i32 = r.get(0);
    let mut locations = location_states(client, Some(id), now).await?;
    Ok(Some(site_from_row(&r, locations.remove(&id), now)))
}

fn site_from_row(
    r: &tokio_postgres::Row,
    locations: Option<Vec<LocationState>>,
    now: DateTime<Utc>,
) -> SiteState {
    let last_check_at: DateTime<Utc> = r.get(5);
    let verdict = if now - last_check_at > STALE_AFTER {
        Verdict::Unknown
    } else {
        Verdict::parse(r.get(3))
    };
    SiteState {
        id: r.get(0),
        name: r.get(1),
        url: r.get(2),
        verdict,
        verdict_since: r.get(4),
        last_check_at,
        locations: locations.unwrap_or_default(),
        tags: Vec::new(),
        group: None,
        public: false,
    }
}

/// Each location's latest result within `STALE_AFTER`, by site id (all sites, or one).
/// One index probe per (site, agent) for its latest row (the results' key leads with both),
/// rather than a scan of every recent result.
async fn location_states(
    client: &Client,
    site_id: Option<i32>,
    now: DateTime<Utc>,
) -> Result<HashMap<i32, Vec<LocationState>>, tokio_postgres::Error> {
    let since = now - STALE_AFTER;
    let rows = client
        .query(
            "SELECT s.id, l.name, o.name, r.started_at, k.name, r.error_message
             FROM sites s
             CROSS JOIN agents a
             JOIN locations l ON l.id = a.location_id
             CROSS JOIN LATERAL (
                 SELECT started_at, outcome, error_kind, error_message FROM results r
                 WHERE r.site_id = s.id AND r.agent_id = a.id AND r.started_at >= $1
                 ORDER BY r.started_at DESC LIMIT 1
             ) r
             JOIN outcomes o ON o.id = r.outcome
             LEFT JOIN error_kinds k ON k.id = r.error_kind
             WHERE $2::int IS NULL OR s.id = $2",
            &[&since, &site_id],
        )
        .await?;
    let mut by_site: HashMap<i32, Vec<LocationState>> = HashMap::new();
    for r in &rows {
        let state = Verdict::parse(r.get(2));
        let latest = LocationState {
            name: r.get(1),
            state,
            last_check_at: r.get(3),
            error: (state != Verdict::Up)
                .then(|| error_text(r.get(4), r.get(5)))
                .flatten(),
        };
        // Several agents may share a location: its state is the latest of theirs.
        let states = by_site.entry(r.get(0)).or_default();
        match states.iter_mut().find(|l| l.name == latest.name) {
            Some(known) if known.last_check_at >= latest.last_check_at => {}
            Some(known) => *known = latest,
            None => states.push(latest),
        }
    }
    for states in by_site.values_mut() {
        states.sort_by(|a, b| a.name.cmp(&b.name));
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

/// Incidents of one site (or every site) that were open at any time since `since`, newest
/// first, at most `limit`.
pub async fn incidents(
    client: &Client,
    site: Option<&str>,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Incident>, tokio_postgres::Error> {
    let now = Utc::now();
    let rows = client
        .query(
            "SELECT site, at, ended_at, reason FROM (
                 SELECT e.site, e.at, e.new_outcome, e.reason,
                        lead(e.at) OVER (PARTITION BY e.site ORDER BY e.at, e.id) AS ended_at
                 FROM site_events e
                 WHERE $1::text IS NULL OR e.site = $1
             ) p
             WHERE new_outcome = 'down' AND (ended_at IS NULL OR ended_at >= $2)
             ORDER BY at DESC
             LIMIT $3",
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
            "SELECT s.name, e.at, NULL::timestamptz, e.reason
             FROM sites s
             CROSS JOIN LATERAL (
                 SELECT at, reason FROM site_events e
                 WHERE e.site = s.name ORDER BY e.at DESC, e.id DESC LIMIT 1
             ) e
             WHERE s.current_outcome = 'down'",
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
        first_error: r.get(3),
        locations: Vec::new(),
    }
}

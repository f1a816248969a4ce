//! Step: `sites` upserts and `site_events` for every change of a site's outcome, in three
//! statements per batch whatever the number of sites (lock, insert events, upsert).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sitewatch_checks::CheckResult;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::step::{Step, StepFuture, Stored};

/// Keeps `sites` current and records outcome changes in `site_events`.
pub(super) struct SitesAndEvents;

impl Step for SitesAndEvents {
    fn name(&self) -> &'static str {
        "events"
    }

    fn apply<'a>(&'a self, tx: &'a Transaction<'a>, stored: &'a Stored<'a>) -> StepFuture<'a> {
        Box::pin(async move { Ok(record_sites_and_events(tx, stored).await?) })
    }
}

type Inserted<'a> = &'a CheckResult;

/// A site's state as stored before this batch.
struct Known {
    outcome: String,
    last_change: DateTime<Utc>,
}

/// Upserts `sites` and records an event for every outcome change, in `started_at` order.
/// The batch's site rows are locked (in name order, so concurrent sinks cannot deadlock)
/// until commit, so sinks overlapping during a rebalance serialise per site.
async fn record_sites_and_events(
    tx: &Transaction<'_>,
    stored: &Stored<'_>,
) -> Result<u64, tokio_postgres::Error> {
    if stored.is_empty() {
        return Ok(0);
    }
    // Stored results come in site order, so the names are sorted too.
    let by_site: Vec<(&str, Vec<Inserted<'_>>)> = stored
        .by_site()
        .map(|run| {
            let site = run[0].result.site.as_str();
            (site, run.iter().map(|s| s.result).collect())
        })
        .collect();
    let names: Vec<&str> = by_site.iter().map(|(site, _)| *site).collect();
    let known: HashMap<String, Known> = tx
        .query(
            "SELECT name, current_outcome, last_change_at FROM sites
             WHERE name = ANY($1) ORDER BY name FOR UPDATE",
            &[&names],
        )
        .await?
        .into_iter()
        .map(|r| {
            (
                r.get(0),
                Known {
                    outcome: r.get(1),
                    last_change: r.get(2),
                },
            )
        })
        .collect();

    let mut events = Events::default();
    let mut sites = Sites::default();
    for (site, mut rows) in by_site {
        rows.sort_by_key(|r| (r.started_at, r.check_id));
        let before = known.get(site);
        let mut current: Option<&str> = before.map(|k| k.outcome.as_str());
        let mut last_change = before.map(|k| k.last_change);
        for row in &rows {
            if current != Some(row.outcome.as_str()) {
                events.push(site, current, row);
                current = Some(row.outcome.as_str());
                last_change = Some(row.started_at);
            }
        }
        let (first, last) = (rows[0], rows[rows.len() - 1]);
        sites.name.push(site);
        sites.url.push(last.url.as_str());
        sites.first_seen.push(first.started_at);
        sites.last_seen.push(last.started_at);
        sites.outcome.push(current.unwrap_or(last.outcome.as_str()));
        sites
            .last_change
            .push(last_change.unwrap_or(first.started_at));
    }

    let recorded = events.site.len() as u64;
    if recorded > 0 {
        tx.execute(
            "INSERT INTO site_events (site, previous_outcome, new_outcome, at, check_id, reason)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                                  $5::uuid[], $6::text[])",
            &[
                &events.site,
                &events.previous,
                &events.new,
                &events.at,
                &events.check_id,
                &events.reason,
            ],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO sites (name, url, first_seen, last_seen, current_outcome, last_change_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                              $5::text[], $6::timestamptz[])
         ON CONFLICT (name) DO UPDATE SET
             url = EXCLUDED.url,
             last_seen = GREATEST(sites.last_seen, EXCLUDED.last_seen),
             current_outcome = EXCLUDED.current_outcome,
             last_change_at = EXCLUDED.last_change_at",
        &[
            &sites.name,
            &sites.url,
            &sites.first_seen,
            &sites.last_seen,
            &sites.outcome,
            &sites.last_change,
        ],
    )
    .await?;
    Ok(recorded)
}

/// `site_events` rows, column by column.
#[derive(Default)]
struct Events<'a> {
    site: Vec<&'a str>,
    previous: Vec<Option<&'a str>>,
    new: Vec<&'a str>,
    at: Vec<DateTime<Utc>>,
    check_id: Vec<Uuid>,
    reason: Vec<Option<&'a str>>,
}

impl<'a> Events<'a> {
    fn push(&mut self, site: &'a str, previous: Option<&'a str>, row: Inserted<'a>) {
        self.site.push(site);
        self.previous.push(previous);
        self.new.push(row.outcome.as_str());
        self.at.push(row.started_at);
        self.check_id.push(row.check_id);
        self.reason
            .push(row.error.as_ref().map(|e| e.message.as_str()));
    }
}

/// `sites` rows, column by column.
#[derive(Default)]
struct Sites<'a> {
    name: Vec<&'a str>,
    url: Vec<&'a str>,
    first_seen: Vec<DateTime<Utc>>,
    last_seen: Vec<DateTime<Utc>>,
    outcome: Vec<&'a str>,
    last_change: Vec<DateTime<Utc>>,
}

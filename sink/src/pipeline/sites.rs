//! Step: each site's latest facts in `sites` (URL, last seen, regex pattern, certificate
//! expiry, last error, the latest check's outcome and when it last changed), in
//! `started_at` order: two statements per batch whatever the number of sites (read,
//! update). The sites are locked by the store step. Events are the verdict step's: a
//! check's outcome changing is not news, a site's verdict changing is.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;

use super::step::{Step, StepFuture, Stored, StoredResult};

/// Keeps `sites` current.
pub(super) struct SiteFacts;

impl Step for SiteFacts {
    fn name(&self) -> &'static str {
        "sites"
    }

    fn apply<'a>(&'a self, tx: &'a Transaction<'a>, stored: &'a Stored<'a>) -> StepFuture<'a> {
        Box::pin(async move { Ok(record(tx, stored).await?) })
    }
}

/// A site's state as stored before this batch.
struct Known {
    outcome: Option<String>,
    last_change: Option<DateTime<Utc>>,
}

/// Updates `sites` with the batch's facts; returns the sites updated.
async fn record(tx: &Transaction<'_>, stored: &Stored<'_>) -> Result<u64, tokio_postgres::Error> {
    if stored.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i32> = stored.by_site().map(|run| run[0].site_id).collect();
    let known: HashMap<i32, Known> = tx
        .query(
            "SELECT id, current_outcome, last_change_at FROM sites WHERE id = ANY($1)",
            &[&ids],
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

    let mut sites = Sites::default();
    for run in stored.by_site() {
        // A site's results from every location, in time order.
        let mut rows: Vec<&StoredResult<'_>> = run.iter().collect();
        rows.sort_by_key(|s| (s.result.started_at, s.agent_id));
        let site = run[0].site_id;
        let before = known.get(&site);
        let mut current: Option<&str> = before.and_then(|k| k.outcome.as_deref());
        let mut last_change = before.and_then(|k| k.last_change);
        for s in &rows {
            let outcome = s.result.outcome.as_str();
            if current != Some(outcome) {
                current = Some(outcome);
                last_change = Some(s.result.started_at);
            }
        }
        let (first, last) = (rows[0].result, rows[rows.len() - 1].result);
        let error = rows.iter().rev().find(|s| s.result.error.is_some());
        sites.id.push(site);
        sites.url.push(last.url.as_str());
        sites.first_seen.push(first.started_at);
        sites.last_seen.push(last.started_at);
        sites
            .regex_pattern
            .push(last.regex.as_ref().map(|g| g.pattern.as_str()));
        sites
            .tls_not_after
            .push(last.tls.as_ref().map(|t| t.cert_not_after));
        sites.outcome.push(current.unwrap_or(last.outcome.as_str()));
        sites
            .last_change
            .push(last_change.unwrap_or(first.started_at));
        sites.error_at.push(error.map(|s| s.result.started_at));
        sites.error_kind.push(error.and_then(|s| s.error_kind));
        sites.error_message.push(
            error
                .and_then(|s| s.result.error.as_ref())
                .map(|e| e.message.as_str()),
        );
    }

    // Facts of a batch older than what is stored (a late result) do not replace newer ones.
    let updated = tx
        .execute(
            "UPDATE sites s SET
             url = CASE WHEN u.last_seen >= s.last_seen THEN u.url ELSE s.url END,
             regex_pattern = CASE WHEN u.last_seen >= s.last_seen THEN u.regex_pattern
                                  ELSE s.regex_pattern END,
             tls_not_after = CASE WHEN u.last_seen >= s.last_seen THEN u.tls_not_after
                                  ELSE s.tls_not_after END,
             first_seen = LEAST(s.first_seen, u.first_seen),
             last_seen = GREATEST(s.last_seen, u.last_seen),
             current_outcome = u.outcome,
             last_change_at = u.last_change,
             last_error_kind = CASE WHEN u.error_at > coalesce(s.last_error_at, '-infinity')
                                    THEN u.error_kind ELSE s.last_error_kind END,
             last_error_message = CASE WHEN u.error_at > coalesce(s.last_error_at, '-infinity')
                                       THEN u.error_message ELSE s.last_error_message END,
             last_error_at = GREATEST(s.last_error_at, u.error_at)
         FROM UNNEST($1::int[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[],
                     $6::timestamptz[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                     $10::text[], $11::text[])
              AS u(id, url, first_seen, last_seen, regex_pattern, tls_not_after, outcome,
                   last_change, error_at, error_kind, error_message)
         WHERE s.id = u.id",
            &[
                &sites.id,
                &sites.url,
                &sites.first_seen,
                &sites.last_seen,
                &sites.regex_pattern,
                &sites.tls_not_after,
                &sites.outcome,
                &sites.last_change,
                &sites.error_at,
                &sites.error_kind,
                &sites.error_message,
            ],
        )
        .await?;
    Ok(updated)
}

/// `sites` updates, column by column.
#[derive(Default)]
struct Sites<'a> {
    id: Vec<i32>,
    url: Vec<&'a str>,
    first_seen: Vec<DateTime<Utc>>,
    last_seen: Vec<DateTime<Utc>>,
    regex_pattern: Vec<Option<&'a str>>,
    tls_not_after: Vec<Option<DateTime<Utc>>>,
    outcome: Vec<&'a str>,
    last_change: Vec<DateTime<Utc>>,
    error_at: Vec<Option<DateTime<Utc>>>,
    error_kind: Vec<Option<&'a str>>,
    error_message: Vec<Option<&'a str>>,
}

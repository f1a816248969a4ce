//! Step: each site's latest facts in `sites` (URL, last seen, regex pattern, certificate
//! expiry, last error, the latest check's outcome and when it last changed), in
//! `started_at` order: one statement per batch whatever the number of sites. The sites are
//! locked by the store step. Events are the verdict step's: a check's outcome changing is
//! not news, a site's verdict changing is.

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

/// Updates `sites` with the batch's facts; returns the sites updated. One statement: how
/// the latest outcome and its last change follow from what is stored is decided in it.
async fn record(tx: &Transaction<'_>, stored: &Stored<'_>) -> Result<u64, tokio_postgres::Error> {
    if stored.is_empty() {
        return Ok(0);
    }
    let mut sites = Sites::default();
    for run in stored.by_site() {
        // A site's results from every location, in time order.
        let mut rows: Vec<&StoredResult<'_>> = run.iter().collect();
        rows.sort_by_key(|s| (s.result.started_at, s.agent_id));
        let (first, last) = (rows[0].result, rows[rows.len() - 1].result);
        // The batch's last run of one outcome: where it starts, and whether it is the batch.
        let latest = last.outcome.as_str();
        let run_len = rows
            .iter()
            .rev()
            .take_while(|s| s.result.outcome.as_str() == latest)
            .count();
        let run_start = rows[rows.len() - run_len].result.started_at;
        let error = rows.iter().rev().find(|s| s.result.error.is_some());
        sites.id.push(run[0].site_id);
        sites.url.push(last.url.as_str());
        sites.first_seen.push(first.started_at);
        sites.last_seen.push(last.started_at);
        sites
            .regex_pattern
            .push(last.regex.as_ref().map(|g| g.pattern.as_str()));
        sites
            .tls_not_after
            .push(last.tls.as_ref().map(|t| t.cert_not_after));
        sites.outcome.push(latest);
        sites.run_start.push(run_start);
        sites.one_run.push(run_len == rows.len());
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
             -- The outcome last changed where the batch's last run started, unless the whole
             -- batch continued the stored outcome.
             last_change_at = CASE WHEN u.one_run AND s.current_outcome = u.outcome
                                   THEN coalesce(s.last_change_at, u.run_start)
                                   ELSE u.run_start END,
             last_error_kind = CASE WHEN u.error_at > coalesce(s.last_error_at, '-infinity')
                                    THEN u.error_kind ELSE s.last_error_kind END,
             last_error_message = CASE WHEN u.error_at > coalesce(s.last_error_at, '-infinity')
                                       THEN u.error_message ELSE s.last_error_message END,
             last_error_at = GREATEST(s.last_error_at, u.error_at)
         FROM UNNEST($1::int[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[],
                     $6::timestamptz[], $7::text[], $8::timestamptz[], $9::bool[],
                     $10::timestamptz[], $11::text[], $12::text[])
              AS u(id, url, first_seen, last_seen, regex_pattern, tls_not_after, outcome,
                   run_start, one_run, error_at, error_kind, error_message)
         WHERE s.id = u.id",
            &[
                &sites.id,
                &sites.url,
                &sites.first_seen,
                &sites.last_seen,
                &sites.regex_pattern,
                &sites.tls_not_after,
                &sites.outcome,
                &sites.run_start,
                &sites.one_run,
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
    /// Start of the batch's last run of `outcome`.
    run_start: Vec<DateTime<Utc>>,
    /// Whether that run is the whole batch.
    one_run: Vec<bool>,
    error_at: Vec<Option<DateTime<Utc>>>,
    error_kind: Vec<Option<&'a str>>,
    error_message: Vec<Option<&'a str>>,
}

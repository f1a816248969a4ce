//! Writing one batch in one transaction: results (bulk, idempotent), sites, status-change
//! events, rejected messages. Nothing is partly stored: the transaction commits or not.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sitewatch_checks::CheckResult;
use tokio_postgres::types::Json;
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use crate::partitions;

/// A decoded message with where it came from.
#[derive(Debug, Clone)]
pub struct Row {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// The result.
    pub result: CheckResult,
}

/// A message that could not be decoded.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Why it was rejected.
    pub error: String,
    /// The raw value.
    pub payload: Vec<u8>,
}

/// What one transaction stores.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Decoded results.
    pub rows: Vec<Row>,
    /// Undecodable messages.
    pub rejected: Vec<Rejected>,
}

impl Batch {
    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.rows.len() + self.rejected.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a batch write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// New result rows (redeliveries are not counted).
    pub inserted: u64,
    /// Status-change events recorded.
    pub events: u64,
    /// Rejected messages recorded.
    pub rejected: u64,
}

/// Stores `batch` in one transaction.
pub async fn write_batch(
    client: &mut Client,
    batch: &Batch,
) -> Result<WriteStats, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let days = batch.rows.iter().map(|r| r.result.started_at.date_naive());
    partitions::ensure_days(&tx, days).await?;
    let inserted = insert_results(&tx, &batch.rows).await?;
    let events = record_sites_and_events(&tx, &inserted).await?;
    let rejected = insert_rejected(&tx, &batch.rejected).await?;
    tx.commit().await?;
    Ok(WriteStats {
        inserted: inserted.len() as u64,
        events,
        rejected,
    })
}

/// One column of the batch, for an UNNEST parameter.
fn col<'a, T>(rows: &'a [Row], f: impl Fn(&'a CheckResult) -> T) -> Vec<T> {
    rows.iter().map(|row| f(&row.result)).collect()
}

/// A row that was actually inserted (not a duplicate).
struct Inserted {
    site: String,
    url: String,
    started_at: DateTime<Utc>,
    check_id: Uuid,
    outcome: String,
    reason: Option<String>,
}

async fn insert_results(
    tx: &Transaction<'_>,
    rows: &[Row],
) -> Result<Vec<Inserted>, tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let started_at: Vec<DateTime<Utc>> = col(rows, |c| c.started_at);
    let check_id: Vec<Uuid> = col(rows, |c| c.check_id);
    let site: Vec<&str> = rows.iter().map(|x| x.result.site.as_str()).collect();
    let url: Vec<&str> = rows.iter().map(|x| x.result.url.as_str()).collect();
    let agent: Vec<&str> = rows.iter().map(|x| x.result.agent.as_str()).collect();
    let location: Vec<Option<&str>> = rows.iter().map(|x| x.result.location.as_deref()).collect();
    let outcome: Vec<&str> = rows.iter().map(|x| x.result.outcome.as_str()).collect();
    let error_kind: Vec<Option<&str>> = rows
        .iter()
        .map(|x| x.result.error.as_ref().map(|e| e.kind.as_str()))
        .collect();
    let error_message: Vec<Option<&str>> = rows
        .iter()
        .map(|x| x.result.error.as_ref().map(|e| e.message.as_str()))
        .collect();
    let http_status: Vec<Option<i32>> = col(rows, |c| c.http.as_ref().map(|h| i32::from(h.status)));
    let http_version: Vec<Option<&str>> = rows
        .iter()
        .map(|x| x.result.http.as_ref().map(|h| h.version.as_str()))
        .collect();
    let body_bytes: Vec<Option<i64>> = col(rows, |c| {
        c.http
            .as_ref()
            .map(|h| i64::try_from(h.body_bytes).unwrap_or(i64::MAX))
    });
    let body_truncated: Vec<Option<bool>> =
        col(rows, |c| c.http.as_ref().map(|h| h.body_truncated));
    let dns: Vec<Option<f64>> = col(rows, |c| c.timings_ms.dns);
    let connect: Vec<Option<f64>> = col(rows, |c| c.timings_ms.connect);
    let tls: Vec<Option<f64>> = col(rows, |c| c.timings_ms.tls);
    let ttfb: Vec<Option<f64>> = col(rows, |c| c.timings_ms.ttfb);
    let total: Vec<f64> = col(rows, |c| c.timings_ms.total);
    let tls_not_after: Vec<Option<DateTime<Utc>>> =
        col(rows, |c| c.tls.as_ref().map(|t| t.cert_not_after));
    let tls_days_left: Vec<Option<i32>> = col(rows, |c| {
        c.tls
            .as_ref()
            .map(|t| i32::try_from(t.days_left).unwrap_or(i32::MIN))
    });
    let regex_pattern: Vec<Option<&str>> = rows
        .iter()
        .map(|x| x.result.regex.as_ref().map(|g| g.pattern.as_str()))
        .collect();
    let regex_matched: Vec<Option<bool>> = col(rows, |c| c.regex.as_ref().map(|g| g.matched));
    let regex_absent_matched: Vec<Option<bool>> =
        col(rows, |c| c.regex_absent.as_ref().map(|g| g.matched));
    let plugins: Vec<Option<Json<&Vec<sitewatch_checks::schema::PluginResult>>>> = rows
        .iter()
        .map(|x| (!x.result.plugins.is_empty()).then_some(Json(&x.result.plugins)))
        .collect();
    let schema: Vec<i32> = col(rows, |c| i32::try_from(c.schema).unwrap_or(i32::MAX));
    let partition: Vec<i32> = rows.iter().map(|x| x.partition).collect();
    let offset: Vec<i64> = rows.iter().map(|x| x.offset).collect();

    let inserted = tx
        .query(
            "INSERT INTO check_results (started_at, check_id, site, url, agent, location, outcome,
                 error_kind, error_message, http_status, http_version, body_bytes, body_truncated,
                 dns_ms, connect_ms, tls_ms, ttfb_ms, total_ms, tls_not_after, tls_days_left,
                 regex_pattern, regex_matched, regex_absent_matched, plugins, schema_version,
                 kafka_partition, kafka_offset)
             SELECT * FROM UNNEST($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[], $12::bigint[],
                 $13::bool[], $14::float8[], $15::float8[], $16::float8[], $17::float8[], $18::float8[],
                 $19::timestamptz[], $20::int[], $21::text[], $22::bool[], $23::bool[], $24::jsonb[],
                 $25::int[], $26::int[], $27::bigint[])
             ON CONFLICT (started_at, check_id) DO NOTHING
             RETURNING site, url, started_at, check_id, outcome, error_message",
            &[
                &started_at, &check_id, &site, &url, &agent, &location, &outcome, &error_kind,
                &error_message, &http_status, &http_version, &body_bytes, &body_truncated, &dns,
                &connect, &tls, &ttfb, &total, &tls_not_after, &tls_days_left, &regex_pattern,
                &regex_matched, &regex_absent_matched, &plugins, &schema, &partition, &offset,
            ],
        )
        .await?;
    Ok(inserted
        .iter()
        .map(|row| Inserted {
            site: row.get(0),
            url: row.get(1),
            started_at: row.get(2),
            check_id: row.get(3),
            outcome: row.get(4),
            reason: row.get(5),
        })
        .collect())
}

/// Upserts `sites` and records an event for every outcome change, in `started_at` order.
/// The site rows stay locked until commit, so concurrent sinks serialise per site.
async fn record_sites_and_events(
    tx: &Transaction<'_>,
    inserted: &[Inserted],
) -> Result<u64, tokio_postgres::Error> {
    let mut by_site: BTreeMap<&str, Vec<&Inserted>> = BTreeMap::new();
    for row in inserted {
        by_site.entry(row.site.as_str()).or_default().push(row);
    }
    let mut events = 0;
    for (site, mut rows) in by_site {
        rows.sort_by_key(|r| (r.started_at, r.check_id));
        let (first, last) = (rows[0], rows[rows.len() - 1]);
        let mut current: Option<String> = tx
            .query_opt(
                "SELECT current_outcome FROM sites WHERE name = $1 FOR UPDATE",
                &[&site],
            )
            .await?
            .map(|r| r.get(0));
        let mut last_change: Option<DateTime<Utc>> = None;
        for row in &rows {
            if current.as_deref() != Some(row.outcome.as_str()) {
                tx.execute(
                    "INSERT INTO site_events (site, previous_outcome, new_outcome, at, check_id, reason)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&site, &current, &row.outcome, &row.started_at, &row.check_id, &row.reason],
                )
                .await?;
                events += 1;
                current = Some(row.outcome.clone());
                last_change = Some(row.started_at);
            }
        }
        let outcome = current.unwrap_or_else(|| last.outcome.clone());
        tx.execute(
            "INSERT INTO sites (name, url, first_seen, last_seen, current_outcome, last_change_at)
             VALUES ($1, $2, $3::timestamptz, $4, $5, COALESCE($6::timestamptz, $3::timestamptz))
             ON CONFLICT (name) DO UPDATE SET
                 url = EXCLUDED.url,
                 last_seen = GREATEST(sites.last_seen, EXCLUDED.last_seen),
                 current_outcome = EXCLUDED.current_outcome,
                 last_change_at = COALESCE($6::timestamptz, sites.last_change_at)",
            &[
                &site,
                &last.url,
                &first.started_at,
                &last.started_at,
                &outcome,
                &last_change,
            ],
        )
        .await?;
    }
    Ok(events)
}

async fn insert_rejected(
    tx: &Transaction<'_>,
    rejected: &[Rejected],
) -> Result<u64, tokio_postgres::Error> {
    if rejected.is_empty() {
        return Ok(0);
    }
    let topic: Vec<&str> = rejected.iter().map(|r| r.topic.as_str()).collect();
    let partition: Vec<i32> = rejected.iter().map(|r| r.partition).collect();
    let offset: Vec<i64> = rejected.iter().map(|r| r.offset).collect();
    let error: Vec<&str> = rejected.iter().map(|r| r.error.as_str()).collect();
    let payload: Vec<&[u8]> = rejected.iter().map(|r| r.payload.as_slice()).collect();
    tx.execute(
        "INSERT INTO rejected_messages (topic, kafka_partition, kafka_offset, error, payload)
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::bytea[])",
        &[&topic, &partition, &offset, &error, &payload],
    )
    .await
}

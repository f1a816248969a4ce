//! The first step: result rows into `check_results` by binary `COPY`. COPY itself cannot
//! skip duplicates, so [`InsertMethod::Copy`] COPYs straight into `check_results` and fails
//! on a row already stored, and [`InsertMethod::Staged`] COPYs into a session-local staging
//! table and inserts from there with `INSERT … ON CONFLICT DO NOTHING`. Either way it returns
//! only the rows this transaction stored, which is all the later steps ever see.

use std::collections::{HashMap, HashSet};
use std::pin::pin;

use chrono::{DateTime, Utc};
use sitewatch_checks::CheckResult;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::batch::Row;

/// How result rows reach `check_results`. Both are idempotent; `Copy` is the default
/// because it measured fastest (BENCHMARKS.md).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum InsertMethod {
    /// Binary `COPY` into a temporary staging table, then `INSERT … SELECT … ON CONFLICT DO NOTHING`.
    Staged,
    /// Binary `COPY` straight into `check_results`. Redeliveries are rare (a restart, a
    /// rebalance, an agent re-sending its spool), so rather than look every key up first
    /// (as costly as the COPY, measured), a batch holding a row already stored is refused by
    /// the primary key and written again with [`InsertMethod::Staged`], which skips it.
    #[default]
    Copy,
}

/// Stores `rows` (each key once) and returns the rows this transaction stored.
pub(super) async fn store<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
    method: InsertMethod,
) -> Result<Vec<&'a Row>, tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match method {
        InsertMethod::Copy => insert_direct(tx, rows).await,
        InsertMethod::Staged => insert_staged(tx, rows).await,
    }
}

const COLUMNS: &str = "started_at, check_id, site, url, agent, location, outcome, error_kind, \
     error_message, http_status, http_version, body_bytes, body_truncated, dns_ms, connect_ms, \
     tls_ms, ttfb_ms, total_ms, tls_not_after, tls_days_left, regex_pattern, regex_matched, \
     regex_absent_matched, plugins, schema_version, kafka_partition, kafka_offset";

const TYPES: [Type; 27] = [
    Type::TIMESTAMPTZ,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::INT8,
    Type::BOOL,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::TIMESTAMPTZ,
    Type::INT4,
    Type::TEXT,
    Type::BOOL,
    Type::BOOL,
    Type::JSONB,
    Type::INT4,
    Type::INT4,
    Type::INT8,
];

/// COPYs the batch (each key once) straight into `check_results`. Fails with a unique
/// violation, and stores nothing, if any of its rows is already stored (a redelivery) or
/// being stored by another transaction.
async fn insert_direct<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
) -> Result<Vec<&'a Row>, tokio_postgres::Error> {
    let mut seen = HashSet::with_capacity(rows.len());
    let unique: Vec<&Row> = rows
        .iter()
        .filter(|row| seen.insert(key(&row.result)))
        .collect();
    copy_rows(tx, "check_results", &unique).await?;
    Ok(unique)
}

/// COPYs the rows into a staging table, then inserts from there skipping rows already stored.
async fn insert_staged<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
) -> Result<Vec<&'a Row>, tokio_postgres::Error> {
    // Lives for the session; emptied at every commit.
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS sitewatch_staging AS \
         SELECT {COLUMNS} FROM check_results WITH NO DATA;
         TRUNCATE sitewatch_staging"
    ))
    .await?;
    copy_rows(tx, "sitewatch_staging", rows).await?;
    let inserted = tx
        .query(
            &format!(
                "INSERT INTO check_results ({COLUMNS}) SELECT {COLUMNS} FROM sitewatch_staging
                 ON CONFLICT (started_at, check_id) DO NOTHING
                 RETURNING started_at, check_id"
            ),
            &[],
        )
        .await?;
    let keyed = by_key(rows);
    Ok(inserted
        .iter()
        .filter_map(|r| keyed.get(&key_of(r)).copied())
        .collect())
}

/// A result's primary key in `check_results`, with the time in microseconds as stored
/// (results carry nanoseconds; PostgreSQL keeps microseconds).
type Key = (i64, Uuid);

/// `r`'s key as PostgreSQL will store it.
fn key(r: &CheckResult) -> Key {
    (r.started_at.timestamp_micros(), r.check_id)
}

/// The key of a `started_at, check_id` row.
fn key_of(row: &tokio_postgres::Row) -> Key {
    let started_at: DateTime<Utc> = row.get(0);
    (started_at.timestamp_micros(), row.get(1))
}

/// The batch's rows by key; of rows sharing a key (a redelivery within the batch) the first.
fn by_key(rows: &[Row]) -> HashMap<Key, &Row> {
    let mut keyed = HashMap::with_capacity(rows.len());
    for row in rows {
        keyed.entry(key(&row.result)).or_insert(row);
    }
    keyed
}

/// Binary COPY of `rows` into `table` (which has the result columns).
async fn copy_rows<R: std::borrow::Borrow<Row>>(
    tx: &Transaction<'_>,
    table: &str,
    rows: &[R],
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &TYPES));
    for row in rows {
        let row: &Row = row.borrow();
        let r = &row.result;
        let http_status = r.http.as_ref().map(|h| i32::from(h.status));
        let body_bytes = r
            .http
            .as_ref()
            .map(|h| i64::try_from(h.body_bytes).unwrap_or(i64::MAX));
        let tls_days_left = r
            .tls
            .as_ref()
            .map(|t| i32::try_from(t.days_left).unwrap_or(i32::MIN));
        let plugins = (!r.plugins.is_empty()).then_some(Json(&r.plugins));
        let schema = i32::try_from(r.schema).unwrap_or(i32::MAX);
        let values: [&(dyn ToSql + Sync); 27] = [
            &r.started_at,
            &r.check_id,
            &r.site,
            &r.url,
            &r.agent,
            &r.location,
            &r.outcome.as_str(),
            &r.error.as_ref().map(|e| e.kind.as_str()),
            &r.error.as_ref().map(|e| e.message.as_str()),
            &http_status,
            &r.http.as_ref().map(|h| h.version.as_str()),
            &body_bytes,
            &r.http.as_ref().map(|h| h.body_truncated),
            &r.timings_ms.dns,
            &r.timings_ms.connect,
            &r.timings_ms.tls,
            &r.timings_ms.ttfb,
            &r.timings_ms.total,
            &r.tls.as_ref().map(|t| t.cert_not_after),
            &tls_days_left,
            &r.regex.as_ref().map(|g| g.pattern.as_str()),
            &r.regex.as_ref().map(|g| g.matched),
            &r.regex_absent.as_ref().map(|g| g.matched),
            &plugins,
            &schema,
            &row.partition,
            &row.offset,
        ];
        writer.as_mut().write(&values).await?;
    }
    writer.finish().await?;
    Ok(())
}

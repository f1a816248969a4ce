//! Result rows by binary `COPY`. COPY itself cannot skip duplicates: `insert_direct`
//! COPYs straight into `check_results` and fails on a row already stored, `insert_staged`
//! COPYs into a session-local staging table and inserts from there with
//! `INSERT … ON CONFLICT DO NOTHING`.

use std::collections::HashSet;
use std::pin::pin;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};
use tokio_postgres::Transaction;

use super::batch::{self, Inserted, Row};

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
pub(super) async fn insert_direct<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
) -> Result<Vec<Inserted<'a>>, tokio_postgres::Error> {
    let mut seen = HashSet::with_capacity(rows.len());
    let unique: Vec<&Row> = rows
        .iter()
        .filter(|row| seen.insert(batch::key(&row.result)))
        .collect();
    copy_rows(tx, "check_results", &unique).await?;
    Ok(unique.into_iter().map(|row| &row.result).collect())
}

/// COPYs the rows into a staging table, then inserts from there skipping rows already stored.
pub(super) async fn insert_staged<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
) -> Result<Vec<Inserted<'a>>, tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
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
    Ok(batch::returned(rows, &inserted))
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
        let http_status = batch::http_status(r);
        let body_bytes = batch::body_bytes(r);
        let tls_days_left = batch::tls_days_left(r);
        let plugins = (!r.plugins.is_empty()).then_some(Json(&r.plugins));
        let schema = batch::schema_version(r);
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

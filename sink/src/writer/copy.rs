//! Result rows by binary `COPY` into a session-local staging table, then one
//! `INSERT … SELECT … ON CONFLICT DO NOTHING` (COPY itself cannot skip duplicates).

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

pub(super) async fn insert_results(
    tx: &Transaction<'_>,
    rows: &[Row],
) -> Result<Vec<Inserted>, tokio_postgres::Error> {
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
    let sink = tx
        .copy_in(&format!(
            "COPY sitewatch_staging ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &TYPES));
    for row in rows {
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
    let inserted = tx
        .query(
            &format!(
                "INSERT INTO check_results ({COLUMNS}) SELECT {COLUMNS} FROM sitewatch_staging
                 ON CONFLICT (started_at, check_id) DO NOTHING
                 RETURNING site, url, started_at, check_id, outcome, error_message"
            ),
            &[],
        )
        .await?;
    Ok(inserted.iter().map(Inserted::from_row).collect())
}

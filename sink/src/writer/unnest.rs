//! Result rows as one `INSERT … SELECT FROM UNNEST(…)` with a parameter per column.

use chrono::{DateTime, Utc};
use sitewatch_checks::CheckResult;
use tokio_postgres::types::Json;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::batch::{self, Inserted, Row};

/// One column of the batch, for an UNNEST parameter.
fn col<'a, T>(rows: &'a [Row], f: impl Fn(&'a CheckResult) -> T) -> Vec<T> {
    rows.iter().map(|row| f(&row.result)).collect()
}

pub(super) async fn insert_results<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
) -> Result<Vec<Inserted<'a>>, tokio_postgres::Error> {
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
    let http_status: Vec<Option<i32>> = col(rows, batch::http_status);
    let http_version: Vec<Option<&str>> = rows
        .iter()
        .map(|x| x.result.http.as_ref().map(|h| h.version.as_str()))
        .collect();
    let body_bytes: Vec<Option<i64>> = col(rows, batch::body_bytes);
    let body_truncated: Vec<Option<bool>> =
        col(rows, |c| c.http.as_ref().map(|h| h.body_truncated));
    let dns: Vec<Option<f64>> = col(rows, |c| c.timings_ms.dns);
    let connect: Vec<Option<f64>> = col(rows, |c| c.timings_ms.connect);
    let tls: Vec<Option<f64>> = col(rows, |c| c.timings_ms.tls);
    let ttfb: Vec<Option<f64>> = col(rows, |c| c.timings_ms.ttfb);
    let total: Vec<f64> = col(rows, |c| c.timings_ms.total);
    let tls_not_after: Vec<Option<DateTime<Utc>>> =
        col(rows, |c| c.tls.as_ref().map(|t| t.cert_not_after));
    let tls_days_left: Vec<Option<i32>> = col(rows, batch::tls_days_left);
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
    let schema: Vec<i32> = col(rows, batch::schema_version);
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
             RETURNING started_at, check_id",
            &[
                &started_at, &check_id, &site, &url, &agent, &location, &outcome, &error_kind,
                &error_message, &http_status, &http_version, &body_bytes, &body_truncated, &dns,
                &connect, &tls, &ttfb, &total, &tls_not_after, &tls_days_left, &regex_pattern,
                &regex_matched, &regex_absent_matched, &plugins, &schema, &partition, &offset,
            ],
        )
        .await?;
    Ok(batch::returned(rows, &inserted))
}

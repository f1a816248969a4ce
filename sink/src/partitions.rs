//! Daily range partitions of `results` (`results_YYYYMMDD`): created ahead of
//! time and on demand for a batch's days, dropped whole once older than the retention.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate, Utc};
use tokio_postgres::{Client, GenericClient};

/// Serialises partition DDL across sinks (CREATE IF NOT EXISTS still races otherwise).
const PARTITION_LOCK: i64 = 0x5157_7061_7274;

fn name(day: NaiveDate) -> String {
    format!("results_{}", day.format("%Y%m%d"))
}

/// Makes sure a partition exists for each day (cheap when they all do).
pub async fn ensure_days<C: GenericClient>(
    client: &C,
    days: impl IntoIterator<Item = NaiveDate>,
) -> Result<(), tokio_postgres::Error> {
    let days: BTreeSet<NaiveDate> = days.into_iter().collect();
    let mut locked = false;
    for day in days {
        let table = name(day);
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await?
            .get(0);
        if exists {
            continue;
        }
        if !locked {
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
                .await?;
            locked = true;
        }
        let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
        // Dates are formatted by us, never user input.
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} PARTITION OF results
                 FOR VALUES FROM ('{day}T00:00:00Z') TO ('{next}T00:00:00Z')"
            ))
            .await?;
        tracing::info!(partition = %table, "created partition");
    }
    Ok(())
}

/// Creates partitions from yesterday through `ahead` days from today, in one transaction.
pub async fn create_ahead(client: &mut Client, ahead: u64) -> Result<(), tokio_postgres::Error> {
    let today = Utc::now().date_naive();
    let start = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    let days = (0..=ahead + 1).filter_map(|d| start.checked_add_days(Days::new(d)));
    let tx = client.transaction().await?;
    ensure_days(&tx, days).await?;
    tx.commit().await
}

/// Drops partitions whose whole day ended more than `retention_days` ago; returns their names.
pub async fn drop_older_than(
    client: &mut Client,
    retention_days: u64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let today = Utc::now().date_naive();
    let Some(cutoff) = today.checked_sub_days(Days::new(retention_days)) else {
        return Ok(Vec::new());
    };
    let children: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = 'results'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut dropped = Vec::new();
    for table in children {
        let Some(day) = table
            .strip_prefix("results_")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        // The partition covers [day, day+1): wholly older once day+1 <= cutoff.
        if day < cutoff {
            client
                .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
            tracing::info!(partition = %table, "dropped partition past retention");
            dropped.push(table);
        }
    }
    Ok(dropped)
}

//! Result rows by binary `COPY`. COPY itself cannot skip duplicates, so
//! [`InsertMethod::Copy`] COPYs straight into `results` and fails on a row already stored,
//! and [`InsertMethod::Staged`] COPYs into a session-local staging table and inserts from
//! there with `INSERT … ON CONFLICT DO NOTHING`. Either way [`store`] returns only the rows
//! this transaction stored, which is all the later steps ever see.

use std::collections::HashSet;
use std::pin::pin;

use chrono::{DateTime, Utc};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::Transaction;

use super::super::batch::Row;
use super::super::step::{StepError, StoredResult};
use super::columns::{self, Compact};
use super::dimensions::{location_label, AgentIds, Ids};

/// How result rows reach `results`. Both are idempotent; `Copy` is the default because it
/// measured fastest (BENCHMARKS.md).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum InsertMethod {
    /// Binary `COPY` into a temporary staging table, then `INSERT … SELECT … ON CONFLICT DO NOTHING`.
    Staged,
    /// Binary `COPY` straight into `results`. Redeliveries are rare (a restart, a
    /// rebalance, an agent re-sending its spool), so rather than look every key up first
    /// (as costly as the COPY, measured), a batch holding a row already stored is refused by
    /// the primary key and written again with [`InsertMethod::Staged`], which skips it.
    #[default]
    Copy,
}

/// A result's primary key, with the time in microseconds as stored (results carry
/// nanoseconds; PostgreSQL keeps microseconds).
type Key = (i32, i16, i64);

/// One row to store, with its ids.
struct Keyed<'a> {
    key: Key,
    row: &'a Row,
    agent: AgentIds,
    error_kind: Option<i16>,
}

/// Stores `rows` (each key once: of a redelivery within the batch, the first) and returns
/// the ones this transaction stored.
pub(in crate::pipeline) async fn store<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
    method: InsertMethod,
) -> Result<Vec<StoredResult<'a>>, StepError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = Ids::resolve(tx, rows).await?;
    let mut keyed = Vec::with_capacity(rows.len());
    for row in rows {
        let r = &row.result;
        let (site, agent) = (ids.site(r)?, ids.agent(r)?);
        keyed.push(Keyed {
            key: (site, agent.agent, r.started_at.timestamp_micros()),
            row,
            agent,
            error_kind: ids.error_kind(row)?,
        });
    }
    // In key order, as the primary key index takes them best; the sort is stable, so of
    // equal keys the first in the batch stays.
    keyed.sort_by_key(|k| k.key);
    keyed.dedup_by_key(|k| k.key);
    let stored: Vec<&Keyed<'a>> = match method {
        InsertMethod::Copy => {
            copy_rows(tx, "results", &keyed).await?;
            keyed.iter().collect()
        }
        InsertMethod::Staged => {
            let new = insert_staged(tx, &keyed).await?;
            keyed.iter().filter(|k| new.contains(&k.key)).collect()
        }
    };
    Ok(stored
        .into_iter()
        .map(|k| StoredResult {
            site_id: k.key.0,
            agent_id: k.agent.agent,
            location_id: k.agent.location,
            location: location_label(&k.row.result).unwrap_or(&k.row.result.agent),
            result: &k.row.result,
            error_kind: k.row.error_kind(),
            partition: k.row.partition,
        })
        .collect())
}

/// COPYs the rows into a staging table, then inserts from there skipping rows already
/// stored; returns the keys inserted.
async fn insert_staged(
    tx: &Transaction<'_>,
    rows: &[Keyed<'_>],
) -> Result<HashSet<Key>, StepError> {
    let columns = columns::list();
    // Lives for the session; emptied at every commit.
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS sitewatch_staging_results AS \
         SELECT {columns} FROM results WITH NO DATA;
         TRUNCATE sitewatch_staging_results"
    ))
    .await?;
    copy_rows(tx, "sitewatch_staging_results", rows).await?;
    let inserted = tx
        .query(
            &format!(
                "INSERT INTO results ({columns}) SELECT {columns} FROM sitewatch_staging_results
                 ON CONFLICT (site_id, agent_id, started_at) DO NOTHING
                 RETURNING site_id, agent_id, started_at"
            ),
            &[],
        )
        .await?;
    Ok(inserted
        .iter()
        .map(|r| {
            let at: DateTime<Utc> = r.get(2);
            (r.get(0), r.get(1), at.timestamp_micros())
        })
        .collect())
}

/// Binary COPY of `rows` into `table` (which has the result columns).
async fn copy_rows(
    tx: &Transaction<'_>,
    table: &str,
    rows: &[Keyed<'_>],
) -> Result<(), tokio_postgres::Error> {
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            columns::list()
        ))
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, columns::TYPES));
    for k in rows {
        let row = Compact::new(k.row, k.key.0, k.key.1, k.error_kind);
        writer.as_mut().write(&row.values()).await?;
    }
    writer.finish().await?;
    Ok(())
}

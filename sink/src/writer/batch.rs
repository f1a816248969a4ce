//! One batch, one transaction: results (bulk, idempotent), sites, status-change
//! events, rejected messages. Nothing is partly stored: the transaction commits or not.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sitewatch_checks::CheckResult;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use super::{copy, events, unnest};
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
    /// The batch held results already stored, so it was written a second time, skipping them.
    pub rewritten: bool,
}

/// How result rows reach `check_results`. All are idempotent; `Copy` is the default
/// because it measured fastest (BENCHMARKS.md).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum InsertMethod {
    /// One `INSERT … SELECT FROM UNNEST($1, …, $27) ON CONFLICT DO NOTHING`.
    Unnest,
    /// Binary `COPY` into a temporary staging table, then `INSERT … SELECT … ON CONFLICT DO NOTHING`.
    Staged,
    /// Binary `COPY` straight into `check_results`. Redeliveries are rare (a restart, a
    /// rebalance, an agent re-sending its spool), so rather than look every key up first
    /// (as costly as the COPY, measured), a batch holding a row already stored is refused by
    /// the primary key and written again with [`InsertMethod::Staged`], which skips it.
    #[default]
    Copy,
}

/// Stores `batch` in one transaction with the default [`InsertMethod`].
pub async fn write_batch(
    client: &mut Client,
    batch: &Batch,
) -> Result<WriteStats, tokio_postgres::Error> {
    write_batch_with(client, batch, InsertMethod::default()).await
}

/// Stores `batch` in one transaction.
pub async fn write_batch_with(
    client: &mut Client,
    batch: &Batch,
    method: InsertMethod,
) -> Result<WriteStats, tokio_postgres::Error> {
    match write_once(client, batch, method).await {
        Err(e) if method == InsertMethod::Copy && e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            tracing::debug!(error = %e, "batch holds results already stored; writing it again, skipping those");
            let mut stats = write_once(client, batch, InsertMethod::Staged).await?;
            stats.rewritten = true;
            Ok(stats)
        }
        written => written,
    }
}

async fn write_once(
    client: &mut Client,
    batch: &Batch,
    method: InsertMethod,
) -> Result<WriteStats, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let days = batch.rows.iter().map(|r| r.result.started_at.date_naive());
    partitions::ensure_days(&tx, days).await?;
    let inserted = match method {
        InsertMethod::Unnest => unnest::insert_results(&tx, &batch.rows).await?,
        InsertMethod::Staged => copy::insert_staged(&tx, &batch.rows).await?,
        InsertMethod::Copy => copy::insert_direct(&tx, &batch.rows).await?,
    };
    let events = events::record_sites_and_events(&tx, &inserted).await?;
    let rejected = insert_rejected(&tx, &batch.rejected).await?;
    tx.commit().await?;
    Ok(WriteStats {
        inserted: inserted.len() as u64,
        events,
        rejected,
        rewritten: false,
    })
}

/// `http.status` as the column's type.
pub(super) fn http_status(r: &CheckResult) -> Option<i32> {
    r.http.as_ref().map(|h| i32::from(h.status))
}

/// `http.body_bytes` as the column's type (saturating).
pub(super) fn body_bytes(r: &CheckResult) -> Option<i64> {
    r.http
        .as_ref()
        .map(|h| i64::try_from(h.body_bytes).unwrap_or(i64::MAX))
}

/// `tls.days_left` as the column's type (saturating).
pub(super) fn tls_days_left(r: &CheckResult) -> Option<i32> {
    r.tls
        .as_ref()
        .map(|t| i32::try_from(t.days_left).unwrap_or(i32::MIN))
}

/// `schema` as the column's type (saturating).
pub(super) fn schema_version(r: &CheckResult) -> i32 {
    i32::try_from(r.schema).unwrap_or(i32::MAX)
}

/// A result that was actually inserted (not a duplicate), as held in the batch.
pub(super) type Inserted<'a> = &'a CheckResult;

/// A result's primary key in `check_results`, with the time in microseconds as stored
/// (results carry nanoseconds; PostgreSQL keeps microseconds).
pub(super) type Key = (i64, Uuid);

/// `r`'s key as PostgreSQL will store it.
pub(super) fn key(r: &CheckResult) -> Key {
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

/// The batch rows whose keys a `RETURNING started_at, check_id` gave back.
pub(super) fn returned<'a>(rows: &'a [Row], returned: &[tokio_postgres::Row]) -> Vec<Inserted<'a>> {
    let keyed = by_key(rows);
    returned
        .iter()
        .filter_map(|r| keyed.get(&key_of(r)))
        .map(|row| &row.result)
        .collect()
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

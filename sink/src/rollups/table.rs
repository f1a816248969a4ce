//! Rollup rows in the database: read for a set of keys, written back whole. Callers hold
//! the sites' row locks (taken by the batch's store step, or by a rebuild), so no other
//! writer changes these rows between the read and the write. Per-site tables have no
//! location column; their keys carry [`ALL_LOCATIONS`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use super::rollup::{Resolution, Rollup};
use super::sketch::{CorruptSketch, Sketch};

/// A rollup row's identity within its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// `sites.id`.
    pub site_id: i32,
    /// `locations.id`, or [`ALL_LOCATIONS`] in a per-site table.
    pub location_id: i16,
    /// Start of the bucket.
    pub bucket: DateTime<Utc>,
}

/// The location of a per-site row's key (`locations.id` starts at 1).
pub const ALL_LOCATIONS: i16 = 0;

/// A per-location row's columns in the order [`from_row`] reads them (table alias `r`).
pub const COLUMNS: &str = "r.site_id, r.location_id, r.bucket, r.up, r.degraded, r.down, \
     r.up_ms, r.degraded_ms, r.down_ms, r.total_us_sum, r.total_us_min, r.total_us_max, r.latency";

/// A row's location in a table of `resolution`: its column, or [`ALL_LOCATIONS`].
fn location(resolution: Resolution) -> String {
    if resolution.per_location() {
        "r.location_id".to_string()
    } else {
        format!("{ALL_LOCATIONS}::int2")
    }
}

/// [`COLUMNS`] as a table of `resolution` has them.
fn columns(resolution: Resolution) -> String {
    COLUMNS.replace("r.location_id", &location(resolution))
}

/// Why rollups could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    /// The database failed.
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
    /// A stored sketch does not decode.
    #[error("{table} row of site {site_id} at {bucket}: {error}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's site.
        site_id: i32,
        /// The row's bucket.
        bucket: DateTime<Utc>,
        /// What is wrong.
        error: CorruptSketch,
    },
}

/// The stored rows among `keys`.
pub async fn read<C: GenericClient>(
    client: &C,
    resolution: Resolution,
    keys: &[Key],
) -> Result<HashMap<Key, Rollup>, RollupError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let sites: Vec<i32> = keys.iter().map(|k| k.site_id).collect();
    let locations: Vec<i16> = keys.iter().map(|k| k.location_id).collect();
    let buckets: Vec<DateTime<Utc>> = keys.iter().map(|k| k.bucket).collect();
    let table = resolution.table();
    let location = location(resolution);
    let rows = client
        .query(
            &format!(
                "SELECT {} FROM {table} r
                 JOIN unnest($1::int[], $2::int2[], $3::timestamptz[]) AS k(site_id, location_id, bucket)
                   ON k.site_id = r.site_id AND k.location_id = {location} AND k.bucket = r.bucket",
                columns(resolution)
            ),
            &[&sites, &locations, &buckets],
        )
        .await?;
    rows.iter().map(|r| from_row(table, r)).collect()
}

/// A stored row as (key, figures).
pub fn from_row(
    table: &'static str,
    r: &tokio_postgres::Row,
) -> Result<(Key, Rollup), RollupError> {
    let key = Key {
        site_id: r.get(0),
        location_id: r.get(1),
        bucket: r.get(2),
    };
    let latency = Sketch::decode(r.get(12)).map_err(|error| RollupError::Corrupt {
        table,
        site_id: key.site_id,
        bucket: key.bucket,
        error,
    })?;
    let rollup = Rollup {
        up: i64::from(r.get::<_, i32>(3)),
        degraded: i64::from(r.get::<_, i32>(4)),
        down: i64::from(r.get::<_, i32>(5)),
        up_ms: r.get(6),
        degraded_ms: r.get(7),
        down_ms: r.get(8),
        total_us_sum: r.get(9),
        total_us_min: Some(r.get(10)),
        total_us_max: Some(r.get(11)),
        latency,
    };
    Ok((key, rollup))
}

/// Writes `rows` whole (inserting or replacing). Rows without checks are not written.
pub async fn write<C: GenericClient>(
    client: &C,
    resolution: Resolution,
    rows: &[(Key, Rollup)],
) -> Result<u64, RollupError> {
    let rows: Vec<&(Key, Rollup)> = rows.iter().filter(|(_, r)| r.checks() > 0).collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let col = |f: fn(&Rollup) -> i64| rows.iter().map(|(_, r)| f(r)).collect::<Vec<i64>>();
    let int = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let sites: Vec<i32> = rows.iter().map(|(k, _)| k.site_id).collect();
    let locations: Vec<i16> = rows.iter().map(|(k, _)| k.location_id).collect();
    let buckets: Vec<DateTime<Utc>> = rows.iter().map(|(k, _)| k.bucket).collect();
    let up: Vec<i32> = rows.iter().map(|(_, r)| int(r.up)).collect();
    let degraded: Vec<i32> = rows.iter().map(|(_, r)| int(r.degraded)).collect();
    let down: Vec<i32> = rows.iter().map(|(_, r)| int(r.down)).collect();
    let min: Vec<i32> = rows
        .iter()
        .map(|(_, r)| r.total_us_min.unwrap_or(0))
        .collect();
    let max: Vec<i32> = rows
        .iter()
        .map(|(_, r)| r.total_us_max.unwrap_or(0))
        .collect();
    let latency: Vec<Vec<u8>> = rows.iter().map(|(_, r)| r.latency.encode()).collect();
    let table = resolution.table();
    let key = if resolution.per_location() {
        "site_id, location_id, bucket"
    } else {
        "site_id, bucket"
    };
    client
        .execute(
            &format!(
                "INSERT INTO {table} ({key}, up, degraded, down, up_ms, degraded_ms, down_ms,
                     total_us_sum, total_us_min, total_us_max, latency)
                 SELECT {key}, up, degraded, down, up_ms, degraded_ms, down_ms, total_us_sum,
                        total_us_min, total_us_max, latency
                 FROM unnest($1::int[], $2::int2[], $3::timestamptz[], $4::int[],
                     $5::int[], $6::int[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],
                     $11::int[], $12::int[], $13::bytea[])
                     AS v(site_id, location_id, bucket, up, degraded, down, up_ms, degraded_ms,
                          down_ms, total_us_sum, total_us_min, total_us_max, latency)
                 ON CONFLICT ({key}) DO UPDATE SET
                     up = EXCLUDED.up, degraded = EXCLUDED.degraded, down = EXCLUDED.down,
                     up_ms = EXCLUDED.up_ms, degraded_ms = EXCLUDED.degraded_ms,
                     down_ms = EXCLUDED.down_ms, total_us_sum = EXCLUDED.total_us_sum,
                     total_us_min = EXCLUDED.total_us_min, total_us_max = EXCLUDED.total_us_max,
                     latency = EXCLUDED.latency"
            ),
            &[
                &sites,
                &locations,
                &buckets,
                &up,
                &degraded,
                &down,
                &col(|r| r.up_ms),
                &col(|r| r.degraded_ms),
                &col(|r| r.down_ms),
                &col(|r| r.total_us_sum),
                &min,
                &max,
                &latency,
            ],
        )
        .await?;
    Ok(rows.len() as u64)
}

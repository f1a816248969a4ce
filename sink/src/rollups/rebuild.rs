//! `sitewatch-sink rollup --rebuild --since DATE`: every rollup row from DATE on is
//! recomputed from the raw results, a few sites per transaction (their rows locked, so a
//! running sink waits for them and carries on after). The checks are added up by the same
//! code the batch step uses, so a rebuild of correct rollups changes nothing. It leaves the
//! rollup cursors (`cursors`) alone: they follow `results`, which a rebuild does not change.

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio_postgres::{Client, Transaction};

use super::incremental::Changes;
use super::rollup::{span_ms, Check, Resolution, MAX_GAP};
use super::table::{self, Key, RollupError};
use crate::partitions;

/// Sites recomputed per transaction.
const SITES_PER_TRANSACTION: usize = 50;
/// Raw rows fetched at a time.
const FETCH_ROWS: i32 = 10_000;

/// Why a rebuild did not run (or stopped; what was committed before stays consistent).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The raw results a rebuild from this date needs are gone (or never were).
    #[error("cannot rebuild rollups from {since}: raw results are kept from {earliest} on (they, and the hour before, are what a rebuild reads)")]
    TooEarly {
        /// The date asked for.
        since: NaiveDate,
        /// The earliest date a rebuild can start from.
        earliest: NaiveDate,
    },
    /// Nothing is stored yet.
    #[error("no raw results are stored, so there is nothing to rebuild rollups from")]
    NoResults,
    /// Reading or writing failed.
    #[error("{0}")]
    Rollup(#[from] RollupError),
}

impl From<tokio_postgres::Error> for RebuildError {
    fn from(e: tokio_postgres::Error) -> Self {
        RebuildError::Rollup(e.into())
    }
}

/// What a rebuild did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Sites recomputed.
    pub sites: u64,
    /// Raw results read (the hour before `since` included).
    pub results: u64,
    /// Rollup rows written: hourly, daily and per-site daily.
    pub rows: u64,
}

/// The earliest date a rebuild can start from: raw results must exist for that whole day
/// and the hour before it.
pub async fn earliest(client: &Client) -> Result<NaiveDate, RebuildError> {
    let dropped: Option<NaiveDate> = client
        .query_one("SELECT raw_dropped_before FROM retention_state", &[])
        .await?
        .get(0);
    let oldest = partitions::oldest(client, &partitions::RESULTS)
        .await?
        .ok_or(RebuildError::NoResults)?;
    Ok(
        match dropped.and_then(|d| d.checked_add_days(Days::new(1))) {
            Some(after_cut) => after_cut.max(oldest),
            None => oldest,
        },
    )
}

/// Recomputes every rollup row from `since` (midnight UTC) on.
pub async fn rebuild(client: &mut Client, since: NaiveDate) -> Result<Rebuilt, RebuildError> {
    let earliest = earliest(client).await?;
    if since < earliest {
        return Err(RebuildError::TooEarly { since, earliest });
    }
    let from = since.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let sites: Vec<i32> = client
        .query("SELECT id FROM sites ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Partitions first, outside the transactions that lock sites (see `ensure_days`).
    let last = Utc::now().date_naive().succ_opt().unwrap_or(since);
    let days = since.iter_days().take_while(|d| *d <= last);
    let tx = client.transaction().await?;
    partitions::ensure(&tx, &partitions::ROLLUP_HOURLY, days).await?;
    tx.commit().await?;
    let mut done = Rebuilt::default();
    for chunk in sites.chunks(SITES_PER_TRANSACTION) {
        let tx = client.transaction().await?;
        let chunk_done = rebuild_sites(&tx, chunk, from).await?;
        tx.commit().await?;
        done.sites += chunk.len() as u64;
        done.results += chunk_done.results;
        done.rows += chunk_done.rows;
    }
    tracing::info!(%since, sites = done.sites, results = done.results, rows = done.rows, "rollups rebuilt");
    Ok(done)
}

/// Recomputes the rollups of `sites` from `from` on, inside `tx`.
async fn rebuild_sites(
    tx: &Transaction<'_>,
    sites: &[i32],
    from: DateTime<Utc>,
) -> Result<Rebuilt, RebuildError> {
    tx.query(
        "SELECT id FROM sites WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&sites],
    )
    .await?;
    for resolution in Resolution::ALL {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE site_id = ANY($1) AND bucket >= $2",
                resolution.table()
            ),
            &[&sites, &from],
        )
        .await?;
    }
    let look_back = from - MAX_GAP;
    let portal = tx
        .bind(
            "SELECT r.site_id, a.location_id, r.started_at, r.agent_id, r.outcome, r.total_us
             FROM results r JOIN agents a ON a.id = r.agent_id
             WHERE r.site_id = ANY($1) AND r.started_at >= $2
             ORDER BY r.site_id, a.location_id, r.started_at, r.agent_id",
            &[&sites, &look_back],
        )
        .await?;
    let mut changes = Changes::default();
    let mut done = Rebuilt::default();
    // The previous check of the (site, location) being read.
    let mut previous: Option<(i32, i16, Check)> = None;
    loop {
        let rows = tx.query_portal(&portal, FETCH_ROWS).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let (site, location): (i32, i16) = (r.get(0), r.get(1));
            let check = Check {
                started_at: r.get(2),
                agent_id: r.get(3),
                outcome: r.get(4),
                total_us: r.get(5),
            };
            let before = previous
                .filter(|(s, l, _)| (*s, *l) == (site, location))
                .map(|(_, _, c)| c.started_at);
            if check.started_at >= from {
                changes.add(site, location, &check, span_ms(before, &check));
            }
            previous = Some((site, location, check));
            done.results += 1;
        }
    }
    for resolution in Resolution::ALL {
        let rows: Vec<(Key, _)> = changes
            .of(resolution)
            .map(|(k, r)| (*k, r.clone()))
            .collect();
        done.rows += table::write(tx, resolution, &rows).await?;
    }
    Ok(done)
}

/// Runs the rebuilds migrations asked for (results stored before rollups existed), each
/// from its date or the earliest possible, and clears them.
pub async fn run_pending(client: &mut Client) -> Result<(), RebuildError> {
    let pending: Option<NaiveDate> = client
        .query_one("SELECT min(since) FROM rollup_rebuilds_pending", &[])
        .await?
        .get(0);
    let Some(since) = pending else {
        return Ok(());
    };
    match earliest(client).await {
        Ok(earliest) => {
            tracing::info!(since = %since.max(earliest), "rolling up results stored before rollups existed");
            rebuild(client, since.max(earliest)).await?;
        }
        Err(RebuildError::NoResults) => {}
        Err(e) => return Err(e),
    }
    client
        .execute("DELETE FROM rollup_rebuilds_pending", &[])
        .await?;
    Ok(())
}

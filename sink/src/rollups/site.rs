//! Daily rollups per site, every location added up (`rollup_site_daily`): kept by the batch
//! step and rebuilt with the others (they are one more [`Resolution`] of the same changes),
//! and filled here from the per-location daily rows when the migration that adds the table
//! runs. Every figure is a sum, so a site's row is exactly its locations' rows merged.

use std::collections::BTreeMap;

use tokio_postgres::Transaction;

use super::rollup::{Resolution, Rollup};
use super::table::{self, Key, RollupError, ALL_LOCATIONS};

/// Per-location rows fetched at a time.
const FETCH_ROWS: i32 = 20_000;
/// Per-site rows written at a time (at least).
const WRITE_ROWS: usize = 5_000;

/// Writes each site's days from its `rollup_daily` rows into `rollup_site_daily` (which the
/// caller has just created, empty); returns the rows written. One pass in key order, a
/// site at a time. Fails on a stored sketch that does not decode, as the batch step does.
pub async fn fill(tx: &Transaction<'_>) -> Result<u64, RollupError> {
    let from = Resolution::Daily.table();
    let portal = tx
        .bind(
            &format!(
                "SELECT {} FROM {from} r ORDER BY r.site_id, r.location_id, r.bucket",
                table::COLUMNS
            ),
            &[],
        )
        .await?;
    // The site being read, by day; the sites done and not yet written.
    let mut site: BTreeMap<Key, Rollup> = BTreeMap::new();
    let mut done: Vec<(Key, Rollup)> = Vec::new();
    let mut written = 0;
    loop {
        let rows = tx.query_portal(&portal, FETCH_ROWS).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let (key, rollup) = table::from_row(from, r)?;
            if site.keys().next().is_some_and(|k| k.site_id != key.site_id) {
                done.extend(std::mem::take(&mut site));
                if done.len() >= WRITE_ROWS {
                    written += table::write(tx, Resolution::SiteDaily, &done).await?;
                    done.clear();
                }
            }
            let key = Key {
                location_id: ALL_LOCATIONS,
                ..key
            };
            site.entry(key).or_default().merge(&rollup);
        }
    }
    done.extend(site);
    written += table::write(tx, Resolution::SiteDaily, &done).await?;
    Ok(written)
}

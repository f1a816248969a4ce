//! Each (site, location)'s latest stored check (`rollup_cursors`, schema version 6): the
//! predecessor of a batch's checks whenever they all come after what is stored, which is the
//! rule for results delivered in order and always so when a backlog is caught up on. The
//! rollup step then reads one small row per (site, location) instead of searching the
//! partitioned `results` (see `incremental`).
//!
//! Exact because of where it is written: results are stored only by the batch transaction,
//! which moves the cursors of the (site, location)s it stored checks for to their latest
//! check, under the sites' row locks (so no other writer moves them meanwhile).
//! `rollup --rebuild` recomputes rollups from `results` without changing `results`, so it
//! leaves the cursors as they are. Retention drops whole days of raw results, all more than
//! [`super::MAX_GAP`] old: a cursor may then name a dropped check, which still is the
//! latest check its location made; a later check is then either more than `MAX_GAP` after
//! it (it covers nothing, as with no predecessor) or in the first kept day, which a rebuild
//! refuses to recompute anyway (it needs the hour before). Cursors only ever move forward
//! and a (site, location) has one row, so the table stays small and needs no retention.

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;

use super::incremental::NewChecks;
use super::table::RollupError;

/// A check's place in its (site, location)'s order ([`super::Check::order`]).
pub(super) type Order = (DateTime<Utc>, i16);

/// The cursor of each group of `new`, by position (`None`: nothing stored for it yet).
pub(super) async fn read(
    tx: &Transaction<'_>,
    new: &[NewChecks],
) -> Result<Vec<Option<Order>>, RollupError> {
    let sites: Vec<i32> = new.iter().map(|g| g.site_id).collect();
    let locations: Vec<i16> = new.iter().map(|g| g.location_id).collect();
    let rows = tx
        .query(
            "SELECT k.i, c.last_at, c.last_agent
             FROM unnest($1::int[], $2::int2[]) WITH ORDINALITY AS k(site_id, location_id, i)
             JOIN rollup_cursors c ON c.site_id = k.site_id AND c.location_id = k.location_id",
            &[&sites, &locations],
        )
        .await?;
    let mut cursors = vec![None; new.len()];
    for r in rows {
        let i: i64 = r.get(0);
        if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| cursors.get_mut(i)) {
            *slot = Some((r.get(1), r.get(2)));
        }
    }
    Ok(cursors)
}

/// Moves each group's cursor to its latest new check where that is later than `cursors`
/// (as [`read`] returned them; the update checks again, so a stale one cannot move it back).
pub(super) async fn advance(
    tx: &Transaction<'_>,
    new: &[NewChecks],
    cursors: &[Option<Order>],
) -> Result<(), RollupError> {
    let moved: Vec<(i32, i16, Order)> = new
        .iter()
        .zip(cursors)
        .filter_map(|(group, cursor)| {
            let latest = group.checks.iter().map(super::Check::order).max()?;
            cursor
                .is_none_or(|c| c < latest)
                .then_some((group.site_id, group.location_id, latest))
        })
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let sites: Vec<i32> = moved.iter().map(|m| m.0).collect();
    let locations: Vec<i16> = moved.iter().map(|m| m.1).collect();
    let at: Vec<DateTime<Utc>> = moved.iter().map(|m| m.2 .0).collect();
    let agents: Vec<i16> = moved.iter().map(|m| m.2 .1).collect();
    tx.execute(
        "INSERT INTO rollup_cursors (site_id, location_id, last_at, last_agent)
         SELECT * FROM unnest($1::int[], $2::int2[], $3::timestamptz[], $4::int2[])
         ON CONFLICT (site_id, location_id) DO UPDATE
         SET last_at = EXCLUDED.last_at, last_agent = EXCLUDED.last_agent
         WHERE (rollup_cursors.last_at, rollup_cursors.last_agent)
               < (EXCLUDED.last_at, EXCLUDED.last_agent)",
        &[&sites, &locations, &at, &agents],
    )
    .await?;
    Ok(())
}

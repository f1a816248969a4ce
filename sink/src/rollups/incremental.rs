//! Rollups kept up to date inside the batch transaction. Each new check counts in its
//! buckets and covers the time since its (site, location)'s previous check. For a (site,
//! location) whose new checks all come after its latest stored one (`cursors`; the rule when
//! results arrive in order, and when a backlog is caught up on), that latest one is the
//! predecessor and nothing else changes. For the others (a late result landed between
//! stored ones, which shortens the time its successor covers), the checks stored from just
//! before the batch's earliest one on are read back, so the change stays exact. Only checks
//! the batch stored are counted: a redelivered one never reaches here.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;

use super::cursors::{self, Order};
use super::rollup::{span_ms, Check, Resolution, Rollup, MAX_GAP};
use super::table::{self, Key, RollupError, ALL_LOCATIONS};

/// The checks of one (site, location) a batch stored, in order.
#[derive(Debug, Clone)]
pub struct NewChecks {
    /// `sites.id`.
    pub site_id: i32,
    /// `locations.id`.
    pub location_id: i16,
    /// The stored checks, ordered by [`Check::order`].
    pub checks: Vec<Check>,
}

/// Changes to rollup rows, by table and key.
#[derive(Debug, Default)]
pub struct Changes(BTreeMap<(Resolution, Key), Rollup>);

impl Changes {
    /// The key of the row of `resolution`'s table that a check at `at` counts in.
    fn key(resolution: Resolution, site_id: i32, location_id: i16, at: DateTime<Utc>) -> Key {
        Self::key_of(resolution, site_id, location_id, resolution.bucket(at))
    }

    /// The key of the row of `resolution`'s table for `bucket`.
    fn key_of(
        resolution: Resolution,
        site_id: i32,
        location_id: i16,
        bucket: DateTime<Utc>,
    ) -> Key {
        Key {
            site_id,
            location_id: if resolution.per_location() {
                location_id
            } else {
                ALL_LOCATIONS
            },
            bucket,
        }
    }

    fn row(
        &mut self,
        resolution: Resolution,
        site_id: i32,
        location_id: i16,
        at: DateTime<Utc>,
    ) -> &mut Rollup {
        let key = Self::key(resolution, site_id, location_id, at);
        self.0.entry((resolution, key)).or_default()
    }

    /// Counts `check`, covering `span` ms, in each resolution's bucket.
    pub fn add(&mut self, site_id: i32, location_id: i16, check: &Check, span: i64) {
        for resolution in Resolution::ALL {
            let row = self.row(resolution, site_id, location_id, check.started_at);
            row.count(check);
            row.cover(check.outcome, span);
        }
    }

    /// Changes the time an already counted `check` covers by `delta` ms.
    fn recover(&mut self, site_id: i32, location_id: i16, check: &Check, delta: i64) {
        for resolution in Resolution::ALL {
            self.row(resolution, site_id, location_id, check.started_at)
                .cover(check.outcome, delta);
        }
    }

    /// The changed rows of one table.
    pub fn of(&self, resolution: Resolution) -> impl Iterator<Item = (&Key, &Rollup)> {
        self.0
            .iter()
            .filter(move |((r, _), _)| *r == resolution)
            .map(|((_, k), v)| (k, v))
    }
}

/// Applies the batch's new checks (one group per (site, location)) to the rollup tables;
/// returns the rows written. The caller holds the sites' locks and has made sure
/// `rollup_hourly` has partitions for the checks' days (`partitions::ensure_days`, before
/// taking them).
pub async fn apply(tx: &Transaction<'_>, new: &[NewChecks]) -> Result<u64, RollupError> {
    if new.is_empty() {
        return Ok(0);
    }
    let latest: Vec<Option<Order>> = cursors::read(tx, new).await?;
    let after_latest: Vec<bool> = new
        .iter()
        .zip(&latest)
        .map(|(group, cursor)| comes_after(group, *cursor))
        .collect();
    let late: Vec<&NewChecks> = new
        .iter()
        .zip(&after_latest)
        .filter(|(_, after)| !**after)
        .map(|(group, _)| group)
        .collect();
    let mut read_back = neighbours(tx, &late).await?.into_iter();
    let mut changes = Changes::default();
    for ((group, cursor), after) in new.iter().zip(&latest).zip(after_latest) {
        if after {
            // Nothing is stored after the first new check: the sequence is the latest
            // stored check, then the new ones.
            changes_of(&mut changes, group, cursor.map(|(at, _)| at), None);
        } else if let Some(around) = read_back.next() {
            let previous = around.previous.map(|c| c.started_at);
            changes_of(&mut changes, group, previous, Some(&around.from_first));
        }
    }
    cursors::advance(tx, new, &latest).await?;
    let mut written = 0;
    for resolution in Resolution::ALL {
        written += merge_into(tx, resolution, &changes).await?;
    }
    Ok(written)
}

/// Whether all of `group`'s new checks come after its `latest` stored one (checks are
/// unique in this order, so a new check is never equal to a stored one).
fn comes_after(group: &NewChecks, latest: Option<Order>) -> bool {
    let first = group.checks.iter().map(Check::order).min();
    match (latest, first) {
        (Some(latest), Some(first)) => latest < first,
        _ => true,
    }
}

/// Adds the batch's changes to the stored rows and writes them.
async fn merge_into(
    tx: &Transaction<'_>,
    resolution: Resolution,
    changes: &Changes,
) -> Result<u64, RollupError> {
    let keys: Vec<Key> = changes.of(resolution).map(|(k, _)| *k).collect();
    let mut stored = table::read(tx, resolution, &keys).await?;
    let merged: Vec<(Key, Rollup)> = changes
        .of(resolution)
        .map(|(key, change)| {
            let mut row = stored.remove(key).unwrap_or_default();
            row.merge(change);
            (*key, row)
        })
        .collect();
    table::write(tx, resolution, &merged).await
}

/// What is stored around a group's new checks: the latest check before the earliest new one
/// (within [`MAX_GAP`]), and every check from the earliest new one on, new ones included.
#[derive(Debug, Default)]
struct Around {
    previous: Option<Check>,
    from_first: Vec<Check>,
}

/// Reads [`Around`] for every group, in one statement (none for no groups).
async fn neighbours(tx: &Transaction<'_>, new: &[&NewChecks]) -> Result<Vec<Around>, RollupError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let sites: Vec<i32> = new.iter().map(|g| g.site_id).collect();
    let locations: Vec<i16> = new.iter().map(|g| g.location_id).collect();
    let first: Vec<DateTime<Utc>> = new
        .iter()
        .map(|g| {
            g.checks
                .first()
                .map_or(DateTime::<Utc>::MAX_UTC, |c| c.started_at)
        })
        .collect();
    let gap = MAX_GAP.num_milliseconds();
    let rows = tx
        .query(
            "SELECT k.i, r.before, r.started_at, r.agent_id, r.outcome, r.total_us
             FROM unnest($1::int[], $2::int2[], $3::timestamptz[])
                  WITH ORDINALITY AS k(site_id, location_id, first, i)
             JOIN agents a ON a.location_id = k.location_id
             CROSS JOIN LATERAL (
                 (SELECT true AS before, started_at, agent_id, outcome, total_us
                  FROM results r
                  WHERE r.site_id = k.site_id AND r.agent_id = a.id AND r.started_at < k.first
                    AND r.started_at >= k.first - $4 * interval '1 ms'
                  ORDER BY r.started_at DESC LIMIT 1)
                 UNION ALL
                 (SELECT false, started_at, agent_id, outcome, total_us
                  FROM results r
                  WHERE r.site_id = k.site_id AND r.agent_id = a.id AND r.started_at >= k.first)
             ) r",
            &[&sites, &locations, &first, &(gap as f64)],
        )
        .await?;
    let mut around: Vec<Around> = new.iter().map(|_| Around::default()).collect();
    for r in rows {
        let i: i64 = r.get(0);
        let Some(group) = usize::try_from(i - 1).ok().and_then(|i| around.get_mut(i)) else {
            continue;
        };
        let check = Check {
            started_at: r.get(2),
            agent_id: r.get(3),
            outcome: r.get(4),
            total_us: r.get(5),
        };
        if r.get::<_, bool>(1) {
            // The latest of the location's agents' latest.
            if group.previous.is_none_or(|p| p.order() < check.order()) {
                group.previous = Some(check);
            }
        } else {
            group.from_first.push(check);
        }
    }
    for group in &mut around {
        group.from_first.sort_by_key(Check::order);
    }
    Ok(around)
}

/// The changes one group's new checks make, given its stored checks from the first new one
/// on (`from_first`, new ones included, in order; `None`: none stored after them, so just
/// the new ones) and the stored check before those (`previous`, when it started): each new
/// check is counted with the time it covers; a stored check whose predecessor is now a new
/// (late) check covers less.
fn changes_of(
    changes: &mut Changes,
    group: &NewChecks,
    previous: Option<DateTime<Utc>>,
    from_first: Option<&[Check]>,
) {
    let mut rows = GroupRows::new(group.site_id, group.location_id);
    let Some(from_first) = from_first else {
        let mut after = previous;
        for check in &group.checks {
            rows.add(changes, check, span_ms(after, check));
            after = Some(check.started_at);
        }
        rows.close(changes);
        return;
    };
    let new: HashSet<(DateTime<Utc>, i16)> = group.checks.iter().map(Check::order).collect();
    // The sequence with the batch (after) and without it (before, as the rollups have it).
    let mut after = previous;
    let mut before = previous;
    for check in from_first {
        let span = span_ms(after, check);
        if new.contains(&check.order()) {
            rows.add(changes, check, span);
        } else {
            let was = span_ms(before, check);
            if span != was {
                changes.recover(group.site_id, group.location_id, check, span - was);
            }
            before = Some(check.started_at);
        }
        after = Some(check.started_at);
    }
    rows.close(changes);
}

/// One group's new checks added up row by row before they go into [`Changes`]: its checks
/// come in time order, so consecutive ones mostly count in the same rows, and adding to a
/// row at hand is much cheaper than finding it among the batch's. Rows are sums, so adding
/// a row's checks here and then the sum there gives the same row.
struct GroupRows {
    site_id: i32,
    location_id: i16,
    /// Per resolution (in [`Resolution::ALL`]'s order), the row being added to and where its
    /// bucket ends: a check before that end counts in it without its bucket being computed.
    open: [Option<OpenRow>; Resolution::ALL.len()],
}

/// A row being added to.
struct OpenRow {
    key: Key,
    /// End of the row's bucket ([`Resolution::range`]).
    end: Option<DateTime<Utc>>,
    row: Rollup,
}

impl OpenRow {
    fn holds(&self, at: DateTime<Utc>) -> bool {
        self.end
            .is_some_and(|end| at >= self.key.bucket && at < end)
    }
}

impl GroupRows {
    fn new(site_id: i32, location_id: i16) -> Self {
        GroupRows {
            site_id,
            location_id,
            open: Default::default(),
        }
    }

    /// Counts `check`, covering `span` ms, in each resolution's row.
    fn add(&mut self, changes: &mut Changes, check: &Check, span: i64) {
        let at = check.started_at;
        for (resolution, open) in Resolution::ALL.into_iter().zip(&mut self.open) {
            if !open.as_ref().is_some_and(|o| o.holds(at)) {
                // Another bucket (or none open yet): the row at hand is done.
                if let Some(done) = open.take() {
                    changes
                        .0
                        .entry((resolution, done.key))
                        .or_default()
                        .merge(&done.row);
                }
                let (bucket, end) = resolution.range(at);
                *open = Some(OpenRow {
                    key: Changes::key_of(resolution, self.site_id, self.location_id, bucket),
                    end,
                    row: Rollup::default(),
                });
            }
            if let Some(o) = open {
                o.row.count(check);
                o.row.cover(check.outcome, span);
            }
        }
    }

    /// Hands the rows at hand to `changes`.
    fn close(self, changes: &mut Changes) {
        for (resolution, open) in Resolution::ALL.into_iter().zip(self.open) {
            if let Some(done) = open {
                changes
                    .0
                    .entry((resolution, done.key))
                    .or_default()
                    .merge(&done.row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks on both sides of an hour's and a day's end, a millisecond apart, added a group
    /// at a time count in the rows they count in when each check's bucket is computed.
    #[test]
    fn a_check_at_a_buckets_end_counts_in_the_next_bucket() {
        let checks: Vec<Check> = [
            "2026-11-29T10:59:59.999Z",
            "2026-11-29T11:00:00Z",
            "2026-11-29T23:59:59.999Z",
            "2026-11-30T00:00:00Z",
            "2026-11-30T00:00:00.001Z",
        ]
        .iter()
        .map(|t| Check {
            started_at: t.parse().unwrap(),
            agent_id: 1,
            outcome: 0,
            total_us: 1000,
        })
        .collect();
        let group = NewChecks {
            site_id: 7,
            location_id: 2,
            checks: checks.clone(),
        };
        let mut grouped = Changes::default();
        changes_of(&mut grouped, &group, None, None);
        let mut each = Changes::default();
        let mut after = None;
        for check in &checks {
            each.add(7, 2, check, span_ms(after, check));
            after = Some(check.started_at);
        }
        for resolution in Resolution::ALL {
            let rows = |c: &Changes| -> Vec<(Key, Rollup)> {
                c.of(resolution).map(|(k, r)| (*k, r.clone())).collect()
            };
            assert_eq!(rows(&grouped), rows(&each), "{resolution:?}");
        }
        let hours: Vec<i64> = grouped
            .of(Resolution::Hourly)
            .map(|(_, r)| r.checks())
            .collect();
        assert_eq!(hours, [1, 1, 1, 2], "10:00, 11:00, 23:00, 00:00");
    }
}

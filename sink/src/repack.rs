//! Re-packing a finished day's results index.
//!
//! Results arrive in time order but the primary key is `(site_id, agent_id, started_at)`:
//! each minute's rows land in thousands of places in the key space, leaf pages split half
//! full, and a day's index ends ~65% full (48 B per result instead of 32 B, BENCHMARKS.md).
//! Once a daily partition's day (UTC) is over, plus a grace for late results, its primary key
//! is rebuilt once with `REINDEX INDEX CONCURRENTLY`, which does not block inserts: late
//! results are still stored and a redelivery is still refused by the rebuilt key.
//!
//! - Done once per partition: a rebuilt index carries a comment starting with [`MARKER`]
//!   (catalog-visible, no table to keep; PostgreSQL moves the comment along if the index is
//!   rebuilt again by hand).
//! - One sink at a time: a pass runs under a session advisory lock, and a sink that cannot
//!   take it leaves the pass to the one holding it.
//! - An interrupted rebuild leaves an INVALID `<index>_ccnew` (or `_ccold`) behind; a pass
//!   drops it before rebuilding, so the rebuild is retried.
//! - The pass runs on a connection and task of its own ([`run_periodically`]), never on the
//!   batch loop's; a dead database is logged, counted and retried at the next pass; shutdown
//!   cancels the statement in flight.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::database::Database;
use crate::ops::SinkMetrics;
use crate::partitions::{self, RESULTS};

/// One re-pack pass at a time across sinks (session-level: `REINDEX CONCURRENTLY` cannot
/// run in a transaction, so a transaction-level lock would not cover it).
pub const LOCK: i64 = 0x5157_7265_7061;

/// Start of the comment that marks a results partition's primary key as re-packed.
pub const MARKER: &str = "sitewatch: re-packed";

/// How often a sink looks for finished days to re-pack.
const EVERY: Duration = Duration::from_secs(3600);

/// Longest shutdown waits for the statement in flight to be cancelled.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// One partition's primary key, rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repacked {
    /// The partition (`results_YYYYMMDD`).
    pub partition: String,
    /// Index size before, in bytes.
    pub before: i64,
    /// Index size after, in bytes.
    pub after: i64,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Another sink holds the re-pack lock: nothing was done.
    pub busy: bool,
    /// Shutdown interrupted the pass (a rebuild in flight leaves an INVALID index for the
    /// next pass to drop).
    pub cancelled: bool,
    /// Indexes left INVALID by an interrupted rebuild, dropped.
    pub dropped_invalid: Vec<String>,
    /// Partitions rebuilt, newest first.
    pub repacked: Vec<Repacked>,
    /// Partitions whose rebuild failed, with the error (retried at the next pass).
    pub failed: Vec<(String, String)>,
}

/// Which daily partitions a pass re-packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Partitions ending on or before this day (their day is over, plus the grace).
    pub ended_by: NaiveDate,
    /// Partitions starting on or after this day: retention drops older ones within two
    /// days. Its `DROP TABLE` locks the whole `results` table first and would then wait
    /// for the rebuild holding the partition, stalling every batch behind it.
    pub starting_from: NaiveDate,
}

impl Due {
    /// What is due at `now`: days ended at least `grace` ago, kept `raw_days` by retention.
    pub fn at(now: DateTime<Utc>, grace: Duration, raw_days: u64) -> Due {
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        // A day ending at midnight `end` is due once `end + grace <= now`.
        let ended_by = now
            .checked_sub_signed(grace)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .date_naive();
        // Retention drops a partition once its end is `raw_days` before today.
        let today = now.date_naive();
        let starting_from = today
            .checked_sub_days(Days::new(raw_days))
            .and_then(|d| d.checked_add_days(Days::new(2)))
            .unwrap_or(today);
        Due {
            ended_by,
            starting_from,
        }
    }
}

/// Re-packs the primary key of every results partition `due` that is not re-packed yet,
/// newest first. Returns early, with [`Pass::cancelled`], once `stop` is cancelled.
pub async fn run(
    client: &Client,
    due: Due,
    stop: &CancellationToken,
) -> Result<Pass, tokio_postgres::Error> {
    let mut pass = Pass::default();
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK])
        .await?
        .get(0);
    if !locked {
        pass.busy = true;
        return Ok(pass);
    }
    let outcome = run_locked(client, due, stop, &mut pass).await;
    // Also released when the connection closes, should this fail.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await;
    outcome?;
    unlocked?;
    Ok(pass)
}

async fn run_locked(
    client: &Client,
    due: Due,
    stop: &CancellationToken,
    pass: &mut Pass,
) -> Result<(), tokio_postgres::Error> {
    let ended = partitions::ending_by(client, &RESULTS, due.ended_by).await?;
    let kept = |name: &String| RESULTS.parse(name).is_some_and(|s| s >= due.starting_from);
    for partition in ended.into_iter().rev().filter(kept) {
        // Looked up after taking the lock, so a partition another sink just did is skipped.
        let Some(index) = pending_index(client, &partition).await? else {
            continue;
        };
        if stop.is_cancelled() {
            pass.cancelled = true;
            return Ok(());
        }
        match repack(client, &partition, &index, stop, pass).await {
            Ok(Some(done)) => pass.repacked.push(done),
            Ok(None) => {
                pass.cancelled = true;
                return Ok(());
            }
            // The connection is gone: so is every later rebuild of this pass.
            Err(e) if client.is_closed() => return Err(e),
            Err(e) => pass.failed.push((partition, e.to_string())),
        }
    }
    Ok(())
}

/// The primary key of `partition` (quoted, as SQL names it), unless it is re-packed already.
async fn pending_index(
    client: &Client,
    partition: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT i.indexrelid::regclass::text,
                    coalesce(obj_description(i.indexrelid, 'pg_class'), '')
             FROM pg_index i
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND i.indisvalid",
            &[&partition],
        )
        .await?;
    Ok(row.and_then(|r| {
        let comment: String = r.get(1);
        (!comment.starts_with(MARKER)).then(|| r.get(0))
    }))
}

/// Drops what an interrupted rebuild of `index` left, rebuilds it and marks it; `None` when
/// `stop` interrupted it.
async fn repack(
    client: &Client,
    partition: &str,
    index: &str,
    stop: &CancellationToken,
    pass: &mut Pass,
) -> Result<Option<Repacked>, tokio_postgres::Error> {
    // `REINDEX CONCURRENTLY` names its transient copies `<index>_ccnew` / `_ccold` (plus a
    // digit when taken); interrupted, it leaves them INVALID on the partition.
    let leftovers = client
        .query(
            "SELECT c.oid::regclass::text FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = to_regclass($1) AND NOT i.indisvalid
               AND (c.relname LIKE $2::text || '\\_ccnew%' OR c.relname LIKE $2::text || '\\_ccold%')",
            &[&partition, &unquoted(index)],
        )
        .await?;
    for row in leftovers {
        let leftover: String = row.get(0);
        let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {leftover}");
        if !execute_unless_stopped(client, &drop, stop).await? {
            return Ok(None);
        }
        tracing::info!(index = %leftover, "dropped an index left INVALID by an interrupted re-pack");
        pass.dropped_invalid.push(leftover);
    }
    let before = index_size(client, index).await?;
    // Names come from the catalog, quoted by `regclass`.
    let reindex = format!("REINDEX INDEX CONCURRENTLY {index}");
    if !execute_unless_stopped(client, &reindex, stop).await? {
        return Ok(None);
    }
    let marker = format!("{MARKER} {}", Utc::now().format("%Y-%m-%dT%H:%M:%SZ"));
    client
        .batch_execute(&format!("COMMENT ON INDEX {index} IS {}", literal(&marker)))
        .await?;
    let after = index_size(client, index).await?;
    tracing::info!(
        partition,
        before,
        after,
        "re-packed a finished day's results index"
    );
    Ok(Some(Repacked {
        partition: partition.to_string(),
        before,
        after,
    }))
}

/// Runs `sql`; `false` once `stop` is cancelled first (the statement may still be running
/// on the server: [`one_pass`] cancels it).
async fn execute_unless_stopped(
    client: &Client,
    sql: &str,
    stop: &CancellationToken,
) -> Result<bool, tokio_postgres::Error> {
    tokio::select! {
        r = client.batch_execute(sql) => r.map(|()| true),
        _ = stop.cancelled() => Ok(false),
    }
}

async fn index_size(client: &Client, index: &str) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT pg_relation_size($1::text::regclass)", &[&index])
        .await?
        .get(0))
}

/// A name as `relname` holds it (`regclass` quotes only names that need it; ours do not).
fn unquoted(name: &str) -> String {
    name.trim_matches('"').replace("\"\"", "\"")
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs a pass at once and then every hour on a connection of its own, until `stop` is
/// cancelled; failures are logged, counted in `metrics` and retried at the next pass.
pub async fn run_periodically(
    db: Database,
    grace: Duration,
    raw_days: u64,
    metrics: Arc<SinkMetrics>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        one_pass(&db, grace, raw_days, &metrics, &stop).await;
    }
}

/// One pass on a fresh connection (closed afterwards, which also releases the lock).
pub async fn one_pass(
    db: &Database,
    grace: Duration,
    raw_days: u64,
    metrics: &SinkMetrics,
    stop: &CancellationToken,
) {
    let connected = tokio::select! {
        c = db.connect_once() => c,
        _ = stop.cancelled() => return,
    };
    let client = match connected {
        Ok(client) => client,
        Err(e) => {
            metrics.repack_failures.inc();
            tracing::warn!(error = %e, "cannot connect to re-pack finished days; trying again in an hour");
            return;
        }
    };
    let cancel = client.cancel_token();
    match run(&client, Due::at(Utc::now(), grace, raw_days), stop).await {
        Ok(pass) => {
            metrics.repacked.add(pass.repacked.len() as u64);
            let freed: i64 = pass.repacked.iter().map(|r| r.before - r.after).sum();
            metrics.repack_freed_bytes.add(freed.max(0) as u64);
            for (partition, error) in &pass.failed {
                metrics.repack_failures.inc();
                tracing::warn!(%partition, %error, "re-packing a finished day failed; trying again in an hour");
            }
            if pass.cancelled {
                // The server would otherwise finish (or keep waiting in) the rebuild alone.
                match tokio::time::timeout(CANCEL_WAIT, db.cancel(&cancel)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "cannot cancel the re-pack"),
                    Err(_) => tracing::debug!("cancelling the re-pack timed out"),
                }
            }
        }
        Err(e) => {
            metrics.repack_failures.inc();
            tracing::warn!(error = %e, "re-packing finished days failed; trying again in an hour");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_day_is_due_once_its_end_plus_the_grace_has_passed() {
        let hour = Duration::from_secs(3600);
        let at = |h, m| Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0).unwrap();
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        // results_20261129 ends on the 30th at midnight: due from 01:00 on.
        assert_eq!(Due::at(at(0, 59), hour, 14).ended_by, day(29));
        assert_eq!(Due::at(at(1, 0), hour, 14).ended_by, day(30));
        assert_eq!(Due::at(at(0, 0), Duration::ZERO, 14).ended_by, day(30));
    }

    #[test]
    fn days_retention_drops_within_two_days_are_left_alone() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let due = Due::at(now, Duration::from_secs(3600), 14);
        // Retention keeps results_20261116 (ends the 17th, 13 days ago) until tomorrow's
        // midnight pass and results_20261117 one day more: both skipped.
        assert_eq!(
            due.starting_from,
            NaiveDate::from_ymd_opt(2026, 11, 18).unwrap()
        );
    }

    #[test]
    fn names_and_literals_are_quoted() {
        assert_eq!(unquoted("\"odd\"\"name\""), "odd\"name");
        assert_eq!(unquoted("results_20261129_pkey"), "results_20261129_pkey");
        assert_eq!(literal("it's"), "'it''s'");
    }
}

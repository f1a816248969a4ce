//! When checks run: each site on its own fixed-rate timeline.
//!
//! Site `i` of `n` starts at `interval * i / n` (no thundering herd at start-up, nor when
//! a reload adds sites), then every `interval` measured from its slots, not from when the
//! last check finished, so there is no drift. One task per site runs its checks one after
//! another, so a site is never checked twice at once (a changed site's new timeline waits
//! for the old one's check in flight); a check that overruns makes the missed slots be
//! skipped (and counted). A [`ConcurrencyLimit`] caps the checks running at once across
//! all sites.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sitewatch_checks::ops::Histogram;
use sitewatch_checks::spec::CheckSpec;
use sitewatch_checks::CheckResult;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::limit::ConcurrencyLimit;
use crate::throttle::Throttle;

/// Bounds (seconds) for how late a check starts against its slot.
pub const LATENESS_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters the scheduler keeps (read by metrics and tests).
#[derive(Debug)]
pub struct SchedulerStats {
    /// How late checks started against their slots (waiting for a concurrency permit included).
    pub lateness: Histogram,
    /// Checks started.
    pub checks_started: AtomicU64,
    /// Slots skipped because the site's previous check was still running.
    pub slots_skipped: AtomicU64,
    /// Checks abandoned because they were still running when the shutdown grace ran out.
    pub checks_abandoned: AtomicU64,
    /// When skipped slots were last logged: an overloaded agent would otherwise log one
    /// line per check.
    overrun_log: Throttle,
}

impl Default for SchedulerStats {
    fn default() -> Self {
        SchedulerStats {
            lateness: Histogram::new(LATENESS_BUCKETS),
            checks_started: AtomicU64::default(),
            slots_skipped: AtomicU64::default(),
            checks_abandoned: AtomicU64::default(),
            overrun_log: Throttle::new(OVERRUN_LOG_EVERY),
        }
    }
}

/// At most one "skipping missed slots" warning per this period, with the running total.
const OVERRUN_LOG_EVERY: Duration = Duration::from_secs(10);

/// Scheduler limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Checks running at once, across all sites.
    pub max_concurrency: usize,
    /// How long in-flight checks may take to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

/// What the scheduler tells a check about its start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Started {
    /// How late the check started against its slot (waiting for a permit included).
    pub lag: Duration,
}

/// Offset of site `index` of `count` within its first interval.
fn spread_offset(interval: Duration, index: usize, count: usize) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    interval.mul_f64(index as f64 / count as f64)
}

/// What [`Scheduler::apply`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sites started.
    pub added: usize,
    /// Sites stopped (after their check in flight).
    pub removed: usize,
    /// Sites restarted with a new definition.
    pub changed: usize,
    /// Sites left running as they were.
    pub unchanged: usize,
}

/// A site's running timeline.
struct Timeline {
    spec: Arc<CheckSpec>,
    /// Stops the timeline after its check in flight.
    stop: CancellationToken,
    /// Cancelled once the timeline's task has ended (however it ended).
    ended: CancellationToken,
}

/// The set of site timelines, changeable while it runs.
pub struct Scheduler<F> {
    check: F,
    results: mpsc::Sender<CheckResult>,
    limit: Arc<ConcurrencyLimit>,
    shutdown: CancellationToken,
    stats: Arc<SchedulerStats>,
    timelines: HashMap<String, Timeline>,
    tasks: JoinSet<()>,
}

impl<F, Fut> Scheduler<F>
where
    F: Fn(Arc<CheckSpec>, Started) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = CheckResult> + Send + 'static,
{
    /// A scheduler with no sites yet; results go to `results` until `shutdown`.
    pub fn new(
        check: F,
        results: mpsc::Sender<CheckResult>,
        limit: Arc<ConcurrencyLimit>,
        shutdown: CancellationToken,
        stats: Arc<SchedulerStats>,
    ) -> Self {
        Scheduler {
            check,
            results,
            limit,
            shutdown,
            stats,
            timelines: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Sites running now.
    pub fn sites(&self) -> usize {
        self.timelines.len()
    }

    /// Makes `sites` the running set. A site is unchanged when it is given as the very
    /// same `Arc` as before (the caller decides what counts as a change); other known
    /// names are restarted with their new definition once their check in flight ends;
    /// new names start; missing names stop after their check in flight. New and
    /// restarted timelines are spread over their intervals from now.
    pub fn apply(&mut self, sites: Vec<Arc<CheckSpec>>) -> Changes {
        // Reap timelines that have ended, so the task set does not grow with reloads.
        while self.tasks.try_join_next().is_some() {}
        let mut changes = Changes::default();
        let mut keep = HashMap::with_capacity(sites.len());
        let mut starting = Vec::new();
        for spec in sites {
            match self.timelines.remove(&spec.name) {
                Some(old) if Arc::ptr_eq(&old.spec, &spec) => {
                    changes.unchanged += 1;
                    keep.insert(spec.name.clone(), old);
                }
                Some(old) => {
                    changes.changed += 1;
                    old.stop.cancel();
                    starting.push((spec, Some(old.ended)));
                }
                None => {
                    changes.added += 1;
                    starting.push((spec, None));
                }
            }
        }
        for (_, gone) in self.timelines.drain() {
            changes.removed += 1;
            gone.stop.cancel();
        }
        let now = Instant::now();
        let count = starting.len();
        for (index, (spec, after)) in starting.into_iter().enumerate() {
            let first_slot = now + spread_offset(spec.interval, index, count);
            let stop = self.shutdown.child_token();
            let ended = CancellationToken::new();
            let site = SiteLoop {
                spec: spec.clone(),
                check: self.check.clone(),
                results: self.results.clone(),
                limit: self.limit.clone(),
                stop: stop.clone(),
                stats: self.stats.clone(),
            };
            let guard = ended.clone().drop_guard();
            self.tasks.spawn(async move {
                let _ended = guard;
                if let Some(previous) = after {
                    // Never two checks of one site at once.
                    previous.cancelled().await;
                }
                site.run(first_slot).await;
            });
            keep.insert(spec.name.clone(), Timeline { spec, stop, ended });
        }
        self.timelines = keep;
        changes
    }

    /// After `shutdown` is cancelled: waits up to `grace` for checks in flight (their
    /// results are still sent), then abandons the rest, counted.
    pub async fn drain(mut self, grace: Duration) {
        drop(self.results);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            let left = self.tasks.len() as u64;
            self.stats
                .checks_abandoned
                .fetch_add(left, Ordering::Relaxed);
            tracing::warn!(
                checks = left,
                ?grace,
                "abandoning checks still running at shutdown"
            );
            self.tasks.shutdown().await;
        }
    }
}

/// Runs every site on schedule until `shutdown` is cancelled, sending each result to `results`.
///
/// After cancellation no new check starts; checks already running get `limits.shutdown_grace`
/// to finish (their results are still sent), then the rest are abandoned and counted.
pub async fn run<F, Fut>(
    sites: Vec<Arc<CheckSpec>>,
    check: F,
    results: mpsc::Sender<CheckResult>,
    limits: Limits,
    shutdown: CancellationToken,
    stats: Arc<SchedulerStats>,
) where
    F: Fn(Arc<CheckSpec>, Started) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = CheckResult> + Send + 'static,
{
    let limit = ConcurrencyLimit::new(limits.max_concurrency);
    let mut scheduler = Scheduler::new(check, results, limit, shutdown.clone(), stats);
    scheduler.apply(sites);
    shutdown.cancelled().await;
    scheduler.drain(limits.shutdown_grace).await;
}

/// One site's timeline.
struct SiteLoop<F> {
    spec: Arc<CheckSpec>,
    check: F,
    results: mpsc::Sender<CheckResult>,
    limit: Arc<ConcurrencyLimit>,
    stop: CancellationToken,
    stats: Arc<SchedulerStats>,
}

impl<F, Fut> SiteLoop<F>
where
    F: Fn(Arc<CheckSpec>, Started) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    async fn run(self, mut slot: Instant) {
        let interval = self.spec.interval.max(Duration::from_millis(1));
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep_until(slot) => {}
            }
            let permit = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return,
                permit = self.limit.acquire() => permit,
            };
            let lag = Instant::now().saturating_duration_since(slot);
            self.stats.checks_started.fetch_add(1, Ordering::Relaxed);
            self.stats.lateness.observe(lag.as_secs_f64());
            let result = (self.check)(self.spec.clone(), Started { lag }).await;
            drop(permit);
            if self.results.send(result).await.is_err() {
                return;
            }

            slot += interval;
            let now = Instant::now();
            if slot <= now {
                let behind = now.duration_since(slot).as_nanos() / interval.as_nanos() + 1;
                let behind = u32::try_from(behind).unwrap_or(u32::MAX);
                slot += interval * behind;
                self.skipped(behind);
            }
        }
    }

    fn skipped(&self, behind: u32) {
        let stats = &self.stats;
        let total = stats
            .slots_skipped
            .fetch_add(u64::from(behind), Ordering::Relaxed)
            + u64::from(behind);
        if stats.overrun_log.allow() {
            tracing::warn!(
                site = %self.spec.name,
                skipped = behind,
                skipped_total = total,
                "checks overran their intervals (slow sites, or agent.max_concurrency too low); \
                 skipping missed slots; logged at most every {}s, sitewatch_slots_skipped_total counts all",
                OVERRUN_LOG_EVERY.as_secs()
            );
        }
    }
}

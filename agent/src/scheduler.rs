//! When checks run: each site on its own fixed-rate timeline.
//!
//! Site `i` of `n` starts at `interval * i / n` (no thundering herd at start-up),
//! then every `interval` measured from its slots, not from when the last check
//! finished, so there is no drift. One task per site runs its checks one after
//! another, so a site is never checked twice at once; a check that overruns
//! makes the missed slots be skipped (and counted). A semaphore caps the checks
//! running at once across all sites.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sitewatch_checks::ops::Histogram;
use sitewatch_checks::spec::CheckSpec;
use sitewatch_checks::CheckResult;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

/// Lets an event through at most once per period, from any thread, without a lock.
#[derive(Debug)]
struct Throttle {
    epoch: std::time::Instant,
    period_ms: u64,
    /// Milliseconds after `epoch` of the last event let through, plus one (0: none yet).
    last: AtomicU64,
}

impl Throttle {
    fn new(period: Duration) -> Self {
        Throttle {
            epoch: std::time::Instant::now(),
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
        }
    }

    /// Whether an event happening now is let through.
    fn allow(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last.saturating_add(self.period_ms) {
            return false;
        }
        // Of threads racing past the check, one wins.
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// Scheduler limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Checks running at once, across all sites.
    pub max_concurrency: usize,
    /// How long in-flight checks may take to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

/// Offset of site `index` of `count` within its first interval.
fn spread_offset(interval: Duration, index: usize, count: usize) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    interval.mul_f64(index as f64 / count as f64)
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
    F: Fn(Arc<CheckSpec>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = CheckResult> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_concurrency.max(1)));
    let start = Instant::now();
    let count = sites.len();
    let mut tasks = JoinSet::new();
    for (index, spec) in sites.into_iter().enumerate() {
        let first_slot = start + spread_offset(spec.interval, index, count);
        tasks.spawn(site_loop(
            spec,
            first_slot,
            check.clone(),
            results.clone(),
            permits.clone(),
            shutdown.clone(),
            stats.clone(),
        ));
    }
    drop(results);

    shutdown.cancelled().await;
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let left = tasks.len() as u64;
        stats.checks_abandoned.fetch_add(left, Ordering::Relaxed);
        tracing::warn!(checks = left, grace = ?limits.shutdown_grace, "abandoning checks still running at shutdown");
        tasks.shutdown().await;
    }
}

async fn site_loop<F, Fut>(
    spec: Arc<CheckSpec>,
    mut slot: Instant,
    check: F,
    results: mpsc::Sender<CheckResult>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    stats: Arc<SchedulerStats>,
) where
    F: Fn(Arc<CheckSpec>) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    let interval = spec.interval.max(Duration::from_millis(1));
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(slot) => {}
        }
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        stats.checks_started.fetch_add(1, Ordering::Relaxed);
        stats
            .lateness
            .observe(Instant::now().saturating_duration_since(slot).as_secs_f64());
        let result = check(spec.clone()).await;
        drop(permit);
        if results.send(result).await.is_err() {
            return;
        }

        slot += interval;
        let now = Instant::now();
        if slot <= now {
            let behind = now.duration_since(slot).as_nanos() / interval.as_nanos() + 1;
            let behind = u32::try_from(behind).unwrap_or(u32::MAX);
            slot += interval * behind;
            let total = stats
                .slots_skipped
                .fetch_add(u64::from(behind), Ordering::Relaxed)
                + u64::from(behind);
            if stats.overrun_log.allow() {
                tracing::warn!(
                    site = %spec.name,
                    skipped = behind,
                    skipped_total = total,
                    "checks overran their intervals (slow sites, or agent.max_concurrency too low); \
                     skipping missed slots; logged at most every {}s, sitewatch_slots_skipped_total counts all",
                    OVERRUN_LOG_EVERY.as_secs()
                );
            }
        }
    }
}

/// Checks every site once, at most `max_concurrency` at a time; results in completion order.
pub async fn run_once<F, Fut>(
    sites: Vec<Arc<CheckSpec>>,
    check: F,
    max_concurrency: usize,
) -> Vec<CheckResult>
where
    F: Fn(Arc<CheckSpec>) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    futures::stream::iter(sites.into_iter().map(check))
        .buffer_unordered(max_concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_event_through_per_period() {
        let throttle = Throttle::new(Duration::from_millis(200));
        assert!(throttle.allow(), "the first event passes");
        assert!(!throttle.allow(), "a second one within the period does not");
        assert!(!throttle.allow());
        std::thread::sleep(Duration::from_millis(250));
        assert!(throttle.allow(), "after the period one passes again");
        assert!(!throttle.allow());
    }

    #[test]
    fn throttle_lets_one_of_many_racing_threads_through() {
        let throttle = Throttle::new(Duration::from_secs(60));
        let passed = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if throttle.allow() {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(passed.load(Ordering::Relaxed), 1);
    }
}

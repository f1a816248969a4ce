//! Starting only the checks the agent can run. With more checks in flight than its CPU
//! can serve, every check waits its turn for the CPU at each step (connect, handshake,
//! response), so all of them get slower and their timings report the agent's queue, not
//! the site; no more checks complete for it. So the cap on checks in flight adapts:
//! while the runtime stalls (see [`RuntimeStall`]) the cap shrinks; while it does not and
//! the cap is reached, it grows back, up to `agent.max_concurrency`. Checks that cannot
//! start wait, and their sites skip the slots they miss.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sitewatch_checks::probe::StallClock;
use tokio_util::sync::CancellationToken;

use crate::limit::ConcurrencyLimit;
use crate::overload::RuntimeStall;

/// How often the cap is reconsidered.
const WINDOW: Duration = Duration::from_millis(250);
/// Share of a window the runtime stalled above which the cap shrinks (by a quarter).
const SHRINK_ABOVE: f64 = 0.4;
/// Share below which a full cap grows (by an eighth).
const GROW_BELOW: f64 = 0.15;
/// The cap never goes below this (nor above `agent.max_concurrency`).
const MIN_CAP: usize = 4;

/// The cap's next value, given the share of the last window the runtime stalled.
pub fn next_cap(cap: usize, in_use: usize, max: usize, stalled_share: f64) -> usize {
    let floor = MIN_CAP.min(max);
    let next = if stalled_share > SHRINK_ABOVE {
        cap - cap / 4
    } else if stalled_share < GROW_BELOW && in_use + 1 >= cap {
        cap + (cap / 8).max(1)
    } else {
        cap
    };
    next.clamp(floor, max.max(1))
}

/// Adapts `limit` every [`WINDOW`] until `stop`; `max` is `agent.max_concurrency` (a
/// reload may change it).
pub async fn adapt(
    limit: Arc<ConcurrencyLimit>,
    max: Arc<AtomicUsize>,
    stall: Arc<RuntimeStall>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(WINDOW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (tokio::time::Instant::now(), stall.stalled());
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = (tokio::time::Instant::now(), stall.stalled());
        let window = now.0.duration_since(last.0).as_secs_f64();
        let stalled = now.1.saturating_sub(last.1).as_secs_f64();
        last = now;
        if window <= 0.0 {
            continue;
        }
        let cap = limit.limit();
        let next = next_cap(
            cap,
            limit.in_use(),
            max.load(Ordering::Relaxed),
            stalled / window,
        );
        if next != cap {
            tracing::debug!(
                from = cap,
                to = next,
                stalled_share = stalled / window,
                "check concurrency cap"
            );
            limit.set_limit(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_while_stalled_grows_while_full_and_idle_and_stays_in_bounds() {
        assert_eq!(next_cap(256, 256, 256, 0.9), 192);
        assert_eq!(next_cap(5, 5, 256, 0.9), 4, "never below the floor");
        assert_eq!(next_cap(32, 32, 256, 0.05), 36);
        assert_eq!(next_cap(4, 4, 256, 0.0), 5, "grows by at least one");
        assert_eq!(
            next_cap(32, 10, 256, 0.0),
            32,
            "not full: no reason to grow"
        );
        assert_eq!(next_cap(32, 32, 256, 0.3), 32, "in between: holds");
        assert_eq!(
            next_cap(250, 250, 256, 0.0),
            256,
            "never above max_concurrency"
        );
        assert_eq!(
            next_cap(200, 0, 64, 0.3),
            64,
            "a lowered maximum applies at once"
        );
        assert_eq!(
            next_cap(1, 1, 1, 0.9),
            1,
            "a maximum below the floor is kept"
        );
    }

    #[tokio::test]
    async fn a_stalling_runtime_lowers_the_cap() {
        let limit = ConcurrencyLimit::new(64);
        let stall = RuntimeStall::start();
        let stop = CancellationToken::new();
        let task = tokio::spawn(adapt(
            limit.clone(),
            Arc::new(AtomicUsize::new(64)),
            stall.clone(),
            stop.clone(),
        ));
        // Take the (only) worker thread most of the time for a while.
        for _ in 0..12 {
            std::thread::sleep(Duration::from_millis(100));
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        stop.cancel();
        task.await.unwrap();
        assert!(limit.limit() < 64, "cap {}", limit.limit());
    }
}

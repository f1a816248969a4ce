//! Checks that stall on the agent's side. When the agent's CPU is taken (more checks
//! than it can run, or a starved machine), a check's future waits to be polled while
//! its deadline runs on; the site would be reported slow or timed out for the agent's
//! fault. The agent measures how long it could not run ready work (a [`StallClock`]);
//! a check's deadline is extended by the stall it suffered (at most by its timeout
//! again), and only a check stalled that long cannot be judged.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long, in total so far, the process could not run work that was ready.
pub trait StallClock: Send + Sync {
    /// The cumulative stall; only differences between two readings mean anything.
    fn stalled(&self) -> Duration;
}

/// No stall is ever measured (the default: deadlines are plain).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStall;

impl StallClock for NoStall {
    fn stalled(&self) -> Duration {
        Duration::ZERO
    }
}

/// How a deadline-bounded run ended.
#[derive(Debug)]
pub(crate) enum Bounded<T> {
    /// Finished in time; with the stall it suffered.
    Done(T, Duration),
    /// Ran out of time; with the stall it suffered.
    TimedOut(Duration),
}

/// Runs `work` until `timeout` has passed plus however long the agent stalled meanwhile
/// (capped at `timeout` more).
pub(crate) async fn bounded<T>(
    work: impl Future<Output = T>,
    timeout: Duration,
    clock: &dyn StallClock,
) -> Bounded<T> {
    let start = Instant::now();
    let stall_at_start = clock.stalled();
    let stall = || clock.stalled().saturating_sub(stall_at_start);
    let mut deadline = start + timeout;
    tokio::pin!(work);
    loop {
        match tokio::time::timeout_at(deadline, &mut work).await {
            Ok(done) => return Bounded::Done(done, stall()),
            Err(_) => {
                // A stall that just ended may not be on the clock yet: its measuring task
                // woke up late too and is queued; let it run first. How late this wake-up
                // came is a stall in itself.
                let woke_late = Instant::now().saturating_duration_since(deadline);
                tokio::task::yield_now().await;
                let stalled = stall().max(woke_late);
                let extended = start + timeout + stalled.min(timeout);
                // Extend only by a real amount, or this could spin at the deadline.
                if extended > deadline + Duration::from_millis(1) {
                    deadline = extended;
                } else {
                    return Bounded::TimedOut(stalled);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock the test moves by hand.
    #[derive(Default)]
    struct Manual(AtomicU64);

    impl StallClock for Manual {
        fn stalled(&self) -> Duration {
            Duration::from_millis(self.0.load(Ordering::Relaxed))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_extends_the_deadline_by_as_much_up_to_the_timeout() {
        let clock = Manual::default();
        clock.0.store(400, Ordering::Relaxed);
        // 1.3 s of work, 1 s timeout, 400 ms stalled: done at 1.3 s < 1.4 s.
        let work = async {
            clock.0.store(800, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1_300)).await;
        };
        match bounded(work, Duration::from_secs(1), &clock).await {
            Bounded::Done((), stall) => assert_eq!(stall, Duration::from_millis(400)),
            Bounded::TimedOut(_) => panic!("the stall extends the deadline"),
        }
        // Without a stall the same work times out at 1 s.
        let start = Instant::now();
        let work = tokio::time::sleep(Duration::from_millis(1_300));
        assert!(matches!(
            bounded(work, Duration::from_secs(1), &NoStall).await,
            Bounded::TimedOut(stall) if stall.is_zero()
        ));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // However long the stall, the deadline is at most twice the timeout.
        clock.0.store(0, Ordering::Relaxed);
        let start = Instant::now();
        let work = async {
            clock.0.store(60_000, Ordering::Relaxed);
            std::future::pending::<()>().await;
        };
        assert!(matches!(
            bounded(work, Duration::from_secs(1), &clock).await,
            Bounded::TimedOut(stall) if stall == Duration::from_secs(60)
        ));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}

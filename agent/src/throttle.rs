//! Rate-limiting repeated log lines: an overloaded agent would otherwise log one warning
//! per check, which only makes it more overloaded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Lets an event through at most once per period, from any thread, without a lock.
#[derive(Debug)]
pub struct Throttle {
    epoch: std::time::Instant,
    period_ms: u64,
    /// Milliseconds after `epoch` of the last event let through, plus one (0: none yet).
    last: AtomicU64,
}

impl Throttle {
    /// At most one event per `period`.
    pub fn new(period: Duration) -> Self {
        Throttle {
            epoch: std::time::Instant::now(),
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
        }
    }

    /// Whether an event happening now is let through.
    pub fn allow(&self) -> bool {
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

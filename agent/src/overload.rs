//! Knowing when the agent itself is the bottleneck, so it does not blame sites for it.
//!
//! Two measurements: how late checks start against their slots (`agent_lag_ms`: demand
//! above capacity, a saturated `max_concurrency`), and how long the agent could not run
//! work that was ready ([`RuntimeStall`]: its CPU is taken, by its own checks or by the
//! machine). A stall extends the deadline of the checks it hit and is not counted as
//! slowness (see `sitewatch_checks::probe::StallClock`); results carry both figures. While
//! either is high the agent reports itself overloaded in `/metrics` and `/healthz` and
//! warns (at most every 30 s) with what to do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sitewatch_checks::ops::Counter;
use sitewatch_checks::probe::StallClock;
use sitewatch_checks::{CheckResult, ErrorKind};
use tokio::time::Instant;

use crate::throttle::Throttle;

/// How often the stall monitor wakes up.
const TICK: Duration = Duration::from_millis(10);
/// Lateness of a wake-up that is ordinary timer and scheduling jitter.
const JITTER: Duration = Duration::from_millis(2);
/// A check starting this late, or stalled this long, means the agent is behind.
const BEHIND: Duration = Duration::from_millis(250);
/// `agent_lag_ms` is reported from this much lateness on.
const LAG_REPORTED: Duration = Duration::from_millis(10);
/// The agent counts as overloaded for this long after the last sign of it.
const OVERLOAD_HOLDS: Duration = Duration::from_secs(30);
/// At most one overload warning per this period.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Cumulative time the agent's async runtime could not run ready work: a task that wakes
/// every [`TICK`] adds up how late it wakes (beyond [`JITTER`]). Its wake-up waits in the
/// same queues as every check's, so its lateness is theirs.
#[derive(Debug, Default)]
pub struct RuntimeStall {
    micros: AtomicU64,
}

impl RuntimeStall {
    /// Starts measuring on the current runtime, for as long as the returned value lives.
    pub fn start() -> Arc<Self> {
        let stall = Arc::new(RuntimeStall::default());
        let weak = Arc::downgrade(&stall);
        tokio::spawn(async move {
            loop {
                let asked = Instant::now();
                tokio::time::sleep(TICK).await;
                let late = asked.elapsed().saturating_sub(TICK);
                let Some(stall) = weak.upgrade() else { return };
                if late > JITTER {
                    let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                    stall.micros.fetch_add(micros, Ordering::Relaxed);
                }
            }
        });
        stall
    }
}

impl StallClock for RuntimeStall {
    fn stalled(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

/// The agent's own load, as `/metrics`, `/healthz` and the warning report it.
#[derive(Debug)]
pub struct Overload {
    /// Runtime stall so far.
    pub stall: Arc<RuntimeStall>,
    /// Checks that started [`BEHIND`] or later against their slots.
    pub late_checks: Counter,
    /// Checks that stalled [`BEHIND`] or longer on the agent's side.
    pub stalled_checks: Counter,
    /// Results that could not be judged because of the agent (`agent_overloaded`).
    pub not_judged: Counter,
    /// Latest lag seen in the current warning period (ms), for the warning.
    worst_lag_ms: AtomicU64,
    /// Milliseconds after `epoch` of the last sign of overload, plus one (0: none yet).
    last_sign: AtomicU64,
    epoch: Instant,
    warn: Throttle,
}

impl Overload {
    /// Starts the stall monitor on the current runtime.
    pub fn start() -> Arc<Self> {
        Arc::new(Overload {
            stall: RuntimeStall::start(),
            late_checks: Counter::default(),
            stalled_checks: Counter::default(),
            not_judged: Counter::default(),
            worst_lag_ms: AtomicU64::new(0),
            last_sign: AtomicU64::new(0),
            epoch: Instant::now(),
            warn: Throttle::new(WARN_EVERY),
        })
    }

    /// Marks `result` with how late it started (`lag`: `None` in `--once`) and notes what
    /// it says about the agent's load. `max_concurrency` is named in the warning.
    pub fn note(&self, result: &mut CheckResult, lag: Option<Duration>, max_concurrency: usize) {
        let mut sign = false;
        if let Some(lag) = lag {
            if lag >= LAG_REPORTED {
                result.agent_lag_ms = Some(lag.as_micros() as f64 / 1000.0);
            }
            if lag >= BEHIND {
                self.late_checks.inc();
                let lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
                self.worst_lag_ms.fetch_max(lag_ms, Ordering::Relaxed);
                sign = true;
            }
        }
        if result
            .agent_stall_ms
            .is_some_and(|ms| ms >= BEHIND.as_millis() as f64)
        {
            self.stalled_checks.inc();
            sign = true;
        }
        if result
            .error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::AgentOverloaded)
        {
            self.not_judged.inc();
            sign = true;
        }
        if sign {
            let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last_sign
                .store(now.saturating_add(1), Ordering::Relaxed);
            if self.warn.allow() {
                self.warning(max_concurrency);
            }
        }
    }

    fn warning(&self, max_concurrency: usize) {
        let worst_lag_ms = self.worst_lag_ms.swap(0, Ordering::Relaxed);
        tracing::warn!(
            late_checks = self.late_checks.get(),
            stalled_checks = self.stalled_checks.get(),
            not_judged = self.not_judged.get(),
            worst_lag_ms,
            stalled_s = self.stall.stalled().as_secs_f64(),
            max_concurrency,
            "the agent is overloaded: checks start late or wait for CPU. Results taken meanwhile \
             carry agent_lag_ms / agent_stall_ms, and checks it could not judge are `degraded` \
             with error kind agent_overloaded, never `down`. If the CPU is idle, raise \
             agent.max_concurrency; otherwise give the agent more CPU, lengthen intervals, or \
             split the sites across agents. (Logged at most every {}s.)",
            WARN_EVERY.as_secs()
        );
    }

    /// Whether the agent showed signs of overload in the last [`OVERLOAD_HOLDS`].
    pub fn overloaded(&self) -> bool {
        let last = self.last_sign.load(Ordering::Relaxed);
        if last == 0 {
            return false;
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let holds = u64::try_from(OVERLOAD_HOLDS.as_millis()).unwrap_or(u64::MAX);
        now.saturating_add(1) < last.saturating_add(holds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> CheckResult {
        serde_json::from_value(serde_json::json!({
            "schema": 1, "check_id": uuid::Uuid::now_v7(), "site": "s", "url": "http://x/",
            "agent": "a", "started_at": "2026-01-02T03:04:05.678Z", "outcome": "up",
            "timings_ms": {"total": 1.0}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_blocked_runtime_is_measured_as_stall() {
        let stall = RuntimeStall::start();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let before = stall.stalled();
        // Hold the only worker thread: the monitor cannot wake up meanwhile.
        std::thread::sleep(Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stalled = stall.stalled() - before;
        assert!(
            stalled >= Duration::from_millis(250),
            "measured {stalled:?} of a 300 ms block"
        );
    }

    #[tokio::test]
    async fn late_or_stalled_checks_mark_results_and_the_agent_overloaded() {
        let overload = Overload::start();
        let mut r = result();
        overload.note(&mut r, Some(Duration::from_millis(3)), 8);
        assert_eq!(r.agent_lag_ms, None, "ordinary jitter is not reported");
        assert!(!overload.overloaded());

        let mut r = result();
        overload.note(&mut r, Some(Duration::from_millis(40)), 8);
        assert_eq!(r.agent_lag_ms, Some(40.0));
        assert!(!overload.overloaded(), "a little late is not overloaded");

        let mut r = result();
        overload.note(&mut r, Some(Duration::from_millis(1_500)), 8);
        assert_eq!(r.agent_lag_ms, Some(1_500.0));
        assert!(overload.overloaded());
        assert_eq!(overload.late_checks.get(), 1);

        let mut r = result();
        r.agent_stall_ms = Some(600.0);
        overload.note(&mut r, None, 8);
        assert_eq!(overload.stalled_checks.get(), 1);
    }
}

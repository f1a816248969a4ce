//! The agent's operator surface: metrics it keeps and what `/healthz` and `/metrics` report.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sitewatch_checks::ops::{Counter, Gauge, Histogram, MetricsText, OpsState};
use sitewatch_checks::{CheckResult, Outcome};

use crate::scheduler::SchedulerStats;

/// Counters updated as checks complete and results are published.
#[derive(Debug, Default)]
pub struct AgentMetrics {
    /// Checks finished, by outcome.
    pub up: Counter,
    /// Checks finished `degraded`.
    pub degraded: Counter,
    /// Checks finished `down`.
    pub down: Counter,
    /// Total check time (seconds).
    pub check_duration: Histogram,
    /// Results the output could not accept or deliver.
    pub publish_failures: Counter,
    /// Results waiting between the scheduler and the output.
    pub queue_depth: Gauge,
    /// Sites configured.
    pub sites: Gauge,
}

impl AgentMetrics {
    /// Records a finished check.
    pub fn record(&self, result: &CheckResult) {
        match result.outcome {
            Outcome::Up => self.up.inc(),
            Outcome::Degraded => self.degraded.inc(),
            Outcome::Down => self.down.inc(),
        }
        self.check_duration
            .observe(result.timings_ms.total / 1000.0);
    }
}

/// What the ops endpoint reads.
pub struct AgentOps {
    /// Check and publish counters.
    pub metrics: Arc<AgentMetrics>,
    /// Scheduler counters.
    pub scheduler: Arc<SchedulerStats>,
    /// Config reload counters.
    pub reload: Arc<crate::reload::ReloadMetrics>,
    /// The agent's own load.
    pub overload: Arc<crate::overload::Overload>,
    /// The cap on checks running at once, as it adapts.
    pub limit: Arc<crate::limit::ConcurrencyLimit>,
    /// `agent.max_concurrency`, the most the cap may be.
    pub max_concurrency: Arc<std::sync::atomic::AtomicUsize>,
    /// Kafka delivery state, when publishing to Kafka.
    pub kafka: Option<Arc<crate::publisher::KafkaStats>>,
    /// Disk spool state, when results are spooled.
    pub spool: Option<Arc<crate::spool::SpoolStats>>,
}

impl OpsState for AgentOps {
    fn ready(&self) -> Result<(), String> {
        if self.overload.overloaded() {
            return Err(format!(
                "the agent is overloaded (checks start late or wait for CPU; {} of {} check slots busy): \
                 its results are marked (agent_lag_ms, agent_stall_ms) and must not count against sites",
                self.limit.in_use(),
                self.limit.limit()
            ));
        }
        match &self.kafka {
            Some(k) if !k.broker_up.load(Ordering::Relaxed) => Err(match self.spool {
                Some(_) => {
                    "no Kafka broker connection: results wait in the spool until there is one"
                }
                None => {
                    "no Kafka broker connection: results are queued in memory until there is one"
                }
            }
            .into()),
            _ => Ok(()),
        }
    }

    fn metrics(&self) -> String {
        let m = &self.metrics;
        let mut t = MetricsText::new();
        t.counter(
            "sitewatch_checks_total",
            "Checks finished, by outcome.",
            Some("outcome"),
            &[
                ("up", m.up.get()),
                ("degraded", m.degraded.get()),
                ("down", m.down.get()),
            ],
        );
        t.histogram(
            "sitewatch_check_duration_seconds",
            "Total time of a check.",
            &m.check_duration,
        );
        t.counter(
            "sitewatch_publish_failures_total",
            "Results the output failed to accept or deliver.",
            None,
            &[("", m.publish_failures.get())],
        );
        t.counter(
            "sitewatch_slots_skipped_total",
            "Scheduled checks skipped because the site's previous check overran its interval.",
            None,
            &[("", self.scheduler.slots_skipped.load(Ordering::Relaxed))],
        );
        t.histogram(
            "sitewatch_schedule_lateness_seconds",
            "How late checks started against their scheduled slots.",
            &self.scheduler.lateness,
        );
        t.gauge(
            "sitewatch_queue_depth",
            "Results waiting for the output.",
            m.queue_depth.get() as f64,
        );
        t.gauge("sitewatch_sites", "Sites configured.", m.sites.get() as f64);
        let o = &self.overload;
        t.gauge(
            "sitewatch_agent_overloaded",
            "1 while the agent itself is the bottleneck (signs within the last 30 s), else 0.",
            if o.overloaded() { 1.0 } else { 0.0 },
        );
        t.counter_f64(
            "sitewatch_agent_stall_seconds_total",
            "Time the agent could not run work that was ready (its CPU was taken).",
            sitewatch_checks::probe::StallClock::stalled(o.stall.as_ref()).as_secs_f64(),
        );
        t.counter(
            "sitewatch_checks_late_total",
            "Checks that started 250 ms or more after their slot (agent behind schedule).",
            None,
            &[("", o.late_checks.get())],
        );
        t.counter(
            "sitewatch_checks_stalled_total",
            "Checks the agent could not run for 250 ms or more while they were in flight.",
            None,
            &[("", o.stalled_checks.get())],
        );
        t.counter(
            "sitewatch_checks_not_judged_total",
            "Checks that could not be judged because of the agent (error kind agent_overloaded).",
            None,
            &[("", o.not_judged.get())],
        );
        t.gauge(
            "sitewatch_checks_running",
            "Checks running now.",
            self.limit.in_use() as f64,
        );
        t.gauge(
            "sitewatch_concurrency_limit",
            "The cap on checks running at once now (lowered while the agent's CPU cannot keep up).",
            self.limit.limit() as f64,
        );
        t.gauge(
            "sitewatch_max_concurrency",
            "The most the cap may be (agent.max_concurrency).",
            self.max_concurrency.load(Ordering::Relaxed) as f64,
        );
        t.counter(
            "sitewatch_config_reload_failures_total",
            "Config reloads refused because the new config was invalid.",
            None,
            &[("", self.reload.failures.get())],
        );
        t.gauge(
            "sitewatch_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load (start or reload).",
            self.reload.last_success.load(Ordering::Relaxed) as f64,
        );
        t.gauge(
            "sitewatch_config_last_reload_successful",
            "Whether the last config reload succeeded (1) or was refused (0).",
            self.reload.last_successful.get() as f64,
        );
        if let Some(k) = &self.kafka {
            t.counter(
                "sitewatch_kafka_delivered_total",
                "Results the broker acknowledged.",
                None,
                &[("", k.delivered.load(Ordering::Relaxed))],
            );
            t.gauge(
                "sitewatch_kafka_pending",
                "Results handed to the Kafka client and not yet acknowledged.",
                k.pending.load(Ordering::Relaxed) as f64,
            );
        }
        if let Some(s) = &self.spool {
            t.gauge(
                "sitewatch_spool_backlog",
                "Results in the disk spool that Kafka has not confirmed.",
                s.backlog.load(Ordering::Relaxed) as f64,
            );
            t.gauge(
                "sitewatch_spool_bytes",
                "Bytes of spool segment files on disk.",
                s.bytes.load(Ordering::Relaxed) as f64,
            );
            t.counter(
                "sitewatch_spool_dropped_total",
                "Results dropped unsent because the spool reached spool_max_bytes.",
                None,
                &[("", s.dropped.load(Ordering::Relaxed))],
            );
            t.counter(
                "sitewatch_spool_damaged_total",
                "Results lost to damaged spool records (writes cut short by a crash).",
                None,
                &[("", s.damaged.load(Ordering::Relaxed))],
            );
        }
        t.finish()
    }
}

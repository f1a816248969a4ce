//! The sink's operator surface: what it counts and when it is ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sitewatch_checks::ops::{Counter, Gauge, Histogram, MetricsText, OpsState};

/// Counters and state updated by the consume loop.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Result rows newly stored.
    pub rows_written: Counter,
    /// Redelivered results skipped as already stored.
    pub duplicates: Counter,
    /// Transactions committed.
    pub batches: Counter,
    /// Batches written a second time because they held results already stored.
    pub rewrites: Counter,
    /// Batches written in parts, split by site, over several connections at once.
    pub split_batches: Counter,
    /// Time to store one batch (seconds).
    pub batch_duration: Histogram,
    /// Messages kept in `rejected_messages`.
    pub rejected: Counter,
    /// Failed attempts to store a batch.
    pub db_errors: Counter,
    /// Verdict changes and silent locations recorded in `site_events`.
    pub events: Counter,
    /// Site definitions that disagreed with another agent's definition in force.
    pub catalog_conflicts: Counter,
    /// Messages in the topic not yet stored (committed), over assigned partitions.
    pub lag: Gauge,
    /// Messages consumed and waiting in the current batch.
    pub pending: Gauge,
    /// Whether the last database operation succeeded.
    pub db_up: AtomicBool,
    /// Whether a Kafka broker connection is up (from the client's statistics).
    pub kafka_up: AtomicBool,
    /// Finished days' results indexes re-packed (`repack`).
    pub repacked: Counter,
    /// Bytes the re-packs freed.
    pub repack_freed_bytes: Counter,
    /// Re-pack passes or partitions that failed (retried at the next pass).
    pub repack_failures: Counter,
    /// Notifications sent, failed and pending.
    pub alerts: Arc<crate::alerts::AlertMetrics>,
}

impl SinkMetrics {
    fn text(&self) -> String {
        let mut t = MetricsText::new();
        let one = |c: &Counter| [("", c.get())];
        t.counter(
            "sitewatch_sink_rows_written_total",
            "Result rows newly stored.",
            None,
            &one(&self.rows_written),
        );
        t.counter(
            "sitewatch_sink_duplicates_total",
            "Redelivered results skipped as already stored.",
            None,
            &one(&self.duplicates),
        );
        t.counter(
            "sitewatch_sink_batches_total",
            "Transactions committed.",
            None,
            &one(&self.batches),
        );
        t.counter(
            "sitewatch_sink_batch_rewrites_total",
            "Batches written a second time, skipping results already stored (redeliveries).",
            None,
            &one(&self.rewrites),
        );
        t.counter(
            "sitewatch_sink_batches_split_total",
            "Batches written in parts split by site, over several connections at once (each part is a transaction).",
            None,
            &one(&self.split_batches),
        );
        t.histogram(
            "sitewatch_sink_batch_duration_seconds",
            "Time to store one batch.",
            &self.batch_duration,
        );
        t.counter(
            "sitewatch_sink_rejected_messages_total",
            "Messages that did not decode, kept in rejected_messages.",
            None,
            &one(&self.rejected),
        );
        t.counter(
            "sitewatch_sink_events_total",
            "Verdict changes and silent locations recorded in site_events.",
            None,
            &one(&self.events),
        );
        t.counter(
            "sitewatch_sink_catalog_conflicts_total",
            "Site definitions that disagreed with another agent's definition in force (the later wins).",
            None,
            &one(&self.catalog_conflicts),
        );
        t.counter(
            "sitewatch_sink_db_errors_total",
            "Failed attempts to store a batch.",
            None,
            &one(&self.db_errors),
        );
        t.gauge(
            "sitewatch_sink_pending_messages",
            "Messages consumed and waiting in the current batch.",
            self.pending.get() as f64,
        );
        t.gauge(
            "sitewatch_sink_lag_messages",
            "Messages in assigned partitions not yet stored and committed.",
            self.lag.get() as f64,
        );
        t.counter(
            "sitewatch_sink_repacked_partitions_total",
            "Finished days' results partitions whose primary key was re-packed (REINDEX CONCURRENTLY).",
            None,
            &one(&self.repacked),
        );
        t.counter(
            "sitewatch_sink_repack_freed_bytes_total",
            "Index bytes freed by re-packing finished days.",
            None,
            &one(&self.repack_freed_bytes),
        );
        t.counter(
            "sitewatch_sink_repack_failures_total",
            "Re-pack passes (or partitions) that failed; retried an hour later.",
            None,
            &one(&self.repack_failures),
        );
        self.alerts.write(&mut t);
        t.finish()
    }
}

/// `/healthz` and `/metrics` for the sink.
pub struct SinkOps(pub Arc<SinkMetrics>);

impl OpsState for SinkOps {
    fn ready(&self) -> Result<(), String> {
        match (
            self.0.db_up.load(Ordering::Relaxed),
            self.0.kafka_up.load(Ordering::Relaxed),
        ) {
            (true, true) => Ok(()),
            (false, _) => Err("no working database connection".into()),
            (true, false) => Err("no Kafka broker connection".into()),
        }
    }

    fn metrics(&self) -> String {
        self.0.text()
    }
}

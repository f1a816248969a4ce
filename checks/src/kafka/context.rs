//! librdkafka's logs, errors and statistics, handled the same way by every client:
//! logs go to `tracing` with repeats of the same error rate-limited (a broker that is down
//! reports itself many times a second), and statistics tell whether a broker is reachable
//! and how far a consumer is behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::Statistics;

/// How often the same librdkafka error is logged while it persists (it repeats every ~50 ms).
const ERROR_LOG_EVERY: Duration = Duration::from_secs(30);

/// Routes librdkafka's log lines and errors into `tracing`, rate-limiting repeats.
#[derive(Debug, Default)]
pub struct KafkaLog {
    last: Mutex<Option<(String, Instant)>>,
}

impl KafkaLog {
    /// Whether `message` should be logged now (new, or not logged for a while).
    fn should_log(&self, message: &str) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return true;
        };
        let now = Instant::now();
        match last.as_ref() {
            Some((m, at)) if m == message && now.duration_since(*at) < ERROR_LOG_EVERY => false,
            _ => {
                *last = Some((message.to_string(), now));
                true
            }
        }
    }

    /// A librdkafka log line. Errors also arrive through [`error`](Self::error), so its own
    /// lines are detail, except the gravest.
    pub fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(target: "librdkafka", fac, "{message}")
            }
            _ => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    /// A client-level error (broker down, authentication failed, ...).
    pub fn error(&self, error: &KafkaError, reason: &str) {
        if self.should_log(reason) {
            tracing::warn!(
                target: "librdkafka",
                %error,
                "kafka: {reason} (repeats are logged every {}s)",
                ERROR_LOG_EVERY.as_secs()
            );
        }
    }
}

/// Whether the statistics show a connection to a broker that is up.
pub fn broker_up(statistics: &Statistics) -> bool {
    statistics
        .brokers
        .values()
        .any(|b| b.nodeid >= 0 && b.state == "UP")
}

/// Messages in the consumer's assigned partitions it has not yet consumed and committed.
pub fn consumer_lag(statistics: &Statistics) -> i64 {
    statistics
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.partition >= 0 && p.desired)
        .map(|p| p.consumer_lag.max(0))
        .sum()
}

/// A client context for clients that need only logging and, optionally, broker state.
#[derive(Debug, Default)]
pub struct KafkaContext {
    log: KafkaLog,
    broker_up: Option<Arc<AtomicBool>>,
}

impl KafkaContext {
    /// Logging only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Logging, and `broker_up` kept current from the statistics.
    pub fn watching(broker_up: Arc<AtomicBool>) -> Self {
        KafkaContext {
            log: KafkaLog::default(),
            broker_up: Some(broker_up),
        }
    }
}

impl ClientContext for KafkaContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(up) = &self.broker_up {
            up.store(broker_up(&statistics), Ordering::Relaxed);
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ConsumerContext for KafkaContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_error_is_logged_once_per_period() {
        let log = KafkaLog::default();
        assert!(log.should_log("broker down"));
        assert!(!log.should_log("broker down"));
        assert!(log.should_log("auth failed"), "a new message is logged");
        assert!(
            log.should_log("broker down"),
            "and the old one again after it"
        );
    }
}

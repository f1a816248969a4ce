//! JSON lines on stdout: the zero-setup output.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sitewatch_checks::CheckResult;
use tokio::sync::Mutex;

use super::PublisherError;

/// Writes one JSON object per line to stdout.
#[derive(Default)]
pub struct StdoutPublisher {
    // A mutex keeps lines whole when several checks finish at once.
    lock: Mutex<()>,
    failures: AtomicU64,
}

impl StdoutPublisher {
    /// A publisher writing to the process's stdout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the result as one line and flushes it (consumers read line by line).
    pub async fn publish(&self, result: &CheckResult) -> Result<(), PublisherError> {
        let line = serde_json::to_string(result).map_err(|e| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            PublisherError::Encode(format!("{}: {e}", result.site))
        })?;
        let _guard = self.lock.lock().await;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(|e| {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(site = %result.site, error = %e, "cannot write result to stdout");
                PublisherError::Send(format!("{}: {e}", result.site))
            })
    }

    /// Lines are flushed as written: nothing is ever left unsent.
    pub async fn close(self, _deadline: Duration) -> usize {
        0
    }

    /// Results that could not be written.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

//! JSON lines on stdout: the zero-setup output.

use std::io::{BufWriter, Stdout, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use sitewatch_checks::CheckResult;

use super::PublisherError;

/// Lines buffered at most before a write.
const BUFFER: usize = 64 * 1024;
/// How long lines may gather before they are written, once no result is waiting.
const GATHER: Duration = Duration::from_millis(5);

/// Writes one JSON object per line to stdout (or, for tests, to another writer).
pub struct StdoutPublisher<W: Write = Stdout> {
    // Rust's stdout flushes at every newline, a write(2) per result; under load that is
    // thousands a second. Lines gather here instead, for at most `GATHER`.
    out: Mutex<Out<W>>,
    failures: AtomicU64,
}

struct Out<W: Write> {
    lines: BufWriter<W>,
    /// When buffered lines were last written out.
    written_at: Instant,
}

impl Default for StdoutPublisher {
    fn default() -> Self {
        Self::to(std::io::stdout())
    }
}

impl StdoutPublisher {
    /// A publisher writing to the process's stdout.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<W: Write> StdoutPublisher<W> {
    /// A publisher writing lines to `out`.
    pub fn to(out: W) -> Self {
        StdoutPublisher {
            out: Mutex::new(Out {
                lines: BufWriter::with_capacity(BUFFER, out),
                // The first line of an idle agent goes out at once.
                written_at: Instant::now()
                    .checked_sub(GATHER)
                    .unwrap_or_else(Instant::now),
            }),
            failures: AtomicU64::default(),
        }
    }

    /// Buffers the result as one line; [`StdoutPublisher::flush`] writes it out.
    pub async fn publish(&self, result: &CheckResult) -> Result<(), PublisherError> {
        let mut line = serde_json::to_vec(result).map_err(|e| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            PublisherError::Encode(format!("{}: {e}", result.site))
        })?;
        line.push(b'\n');
        let written = match self.out.lock() {
            Ok(mut out) => out.lines.write_all(&line),
            Err(_) => Err(std::io::Error::other("stdout writer poisoned")),
        };
        written.map_err(|e| {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(site = %result.site, error = %e, "cannot write result to stdout");
            PublisherError::Send(format!("{}: {e}", result.site))
        })
    }

    /// Called when no result is waiting: writes out buffered lines, unless lines were
    /// written less than `GATHER` ago; then returns when to call again.
    pub fn flush(&self) -> Option<Instant> {
        self.write_out(false)
    }

    fn write_out(&self, force: bool) -> Option<Instant> {
        let flushed = match self.out.lock() {
            Ok(mut out) => {
                if out.lines.buffer().is_empty() {
                    return None;
                }
                let due = out.written_at + GATHER;
                let now = Instant::now();
                if !force && now < due {
                    return Some(due);
                }
                out.written_at = now;
                out.lines.flush()
            }
            Err(_) => Err(std::io::Error::other("stdout writer poisoned")),
        };
        if let Err(e) = flushed {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "cannot write results to stdout");
        }
        None
    }

    /// Writes out what is buffered; returns 0 when it all went, 1 otherwise.
    pub async fn close(self, _deadline: Duration) -> usize {
        let before = self.failures();
        self.write_out(true);
        usize::from(self.failures() != before)
    }

    /// Results (or buffered batches) that could not be written.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn lines(&self) -> usize {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|b| **b == b'\n')
                .count()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_goes_out_at_once_when_idle_and_within_the_gather_time_under_load() {
        let out = Shared::default();
        let publisher = StdoutPublisher::to(out.clone());
        let result = sitewatch_tests::fixtures::result("home");
        publisher.publish(&result).await.unwrap();
        assert_eq!(out.lines(), 0, "buffered until flushed");
        assert_eq!(publisher.flush(), None, "idle: written at once");
        assert_eq!(out.lines(), 1);

        // A second result right after: put off, with a time to come back.
        tokio::time::advance(Duration::from_millis(1)).await;
        publisher.publish(&result).await.unwrap();
        publisher.publish(&result).await.unwrap();
        let due = publisher.flush().expect("put off within the gather time");
        assert!(due <= Instant::now() + GATHER);
        assert_eq!(out.lines(), 1);
        tokio::time::sleep_until(due).await;
        assert_eq!(publisher.flush(), None);
        assert_eq!(out.lines(), 3, "both lines written when due");
        assert_eq!(
            publisher.flush(),
            None,
            "nothing buffered: nothing to come back for"
        );

        publisher.publish(&result).await.unwrap();
        assert_eq!(publisher.close(Duration::ZERO).await, 0);
        assert_eq!(out.lines(), 4, "close writes out what is buffered");
    }
}

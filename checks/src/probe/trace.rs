//! What a check in flight has done so far: the current phase, phase timings,
//! TLS and response facts. Shared by reference with the check future so that
//! a timeout (which drops that future) can still report where it stopped.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::schema::{HttpInfo, Timings, TlsInfo};

/// The phase a check is in; named in timeout messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    /// Looking up the host name.
    #[default]
    Resolving,
    /// Opening the TCP connection.
    Connecting,
    /// TLS handshake.
    TlsHandshake,
    /// Request sent, waiting for the status line and headers.
    WaitingHeaders,
    /// Reading the response body.
    ReadingBody,
}

impl Phase {
    /// Words for "timed out after 2s <this>".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Phase::Resolving => "resolving the host name",
            Phase::Connecting => "connecting",
            Phase::TlsHandshake => "in the TLS handshake",
            Phase::WaitingHeaders => "waiting for response headers",
            Phase::ReadingBody => "reading the response body",
        }
    }
}

/// Everything recorded so far.
#[derive(Debug, Default)]
pub(crate) struct TraceState {
    /// Current phase.
    pub(crate) phase: Phase,
    /// Phase timings of the latest hop (`total` is filled in at the end).
    pub(crate) timings: Timings,
    /// Leaf certificate of the latest https hop.
    pub(crate) tls: Option<TlsInfo>,
    /// Latest response head (and body bytes read so far).
    pub(crate) http: Option<HttpInfo>,
    /// Redirects followed so far.
    pub(crate) redirects: u32,
}

/// Interior-mutable [`TraceState`]; never locked across an await.
#[derive(Debug, Default)]
pub(crate) struct Trace(Mutex<TraceState>);

impl Trace {
    /// Locks the state (a poisoned lock still holds usable data).
    pub(crate) fn lock(&self) -> MutexGuard<'_, TraceState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters `phase`.
    pub(crate) fn enter(&self, phase: Phase) {
        self.lock().phase = phase;
    }

    /// Takes the recorded state out.
    pub(crate) fn take(&self) -> TraceState {
        std::mem::take(&mut *self.lock())
    }
}

/// A duration in fractional milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    // Whole microseconds: finer digits are noise and bloat every message.
    d.as_micros() as f64 / 1000.0
}

/// A short human form of a configured duration: `2s`, `1.5s`, `250ms`.
pub(crate) fn human(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d >= Duration::from_secs(1) {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(2)), "2s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
    }
}

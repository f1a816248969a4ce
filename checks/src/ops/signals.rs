//! Signals and exit codes, the same for both binaries.
//!
//! The first SIGINT or SIGTERM cancels the root token: no new work starts, work in flight
//! gets its grace period, output is flushed, and the process exits normally. A second
//! one ends the process at once with [`EXIT_INTERRUPTED`], for an operator who will not
//! wait. SIGHUP, where the binary asks for it, requests a reload.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Exit code for a configuration that cannot work, in both binaries (sysexits `EX_CONFIG`).
/// systemd units do not restart on it (`RestartPreventExitStatus=78`).
pub const EXIT_CONFIG: u8 = 78;

/// Exit code when a second stop signal ends the process without finishing (128 + SIGINT,
/// what shells report for an interrupted command).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Watches the signals from now on (call it early: until then SIGINT and SIGTERM kill the
/// process outright). `finishing` says, for the log, what the binary does before it exits.
/// With `reload`, each SIGHUP sends `()` there; without, SIGHUP keeps its default action.
pub fn watch_signals(
    shutdown: CancellationToken,
    reload: Option<mpsc::UnboundedSender<()>>,
    finishing: &'static str,
) {
    let register = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch {name}");
            None
        }
    };
    let mut term = register(SignalKind::terminate(), "SIGTERM");
    let mut int = register(SignalKind::interrupt(), "SIGINT");
    let mut hup = reload
        .as_ref()
        .and_then(|_| register(SignalKind::hangup(), "SIGHUP"));
    tokio::spawn(async move {
        let mut stops = 0u32;
        loop {
            let name = tokio::select! {
                Some(()) = next(&mut term) => "SIGTERM",
                Some(()) = next(&mut int) => "SIGINT",
                Some(()) = next(&mut hup) => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    if let Some(reload) = &reload {
                        let _ = reload.send(());
                    }
                    continue;
                }
                else => return,
            };
            stops += 1;
            if stops == 1 {
                tracing::info!(
                    signal = name,
                    "shutdown requested: {finishing}; a second SIGINT or SIGTERM exits at once"
                );
                shutdown.cancel();
            } else {
                tracing::warn!(
                    signal = name,
                    "second stop signal: exiting now, without finishing (exit {EXIT_INTERRUPTED})"
                );
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        }
    });
}

/// The next delivery of `signal`, or never when it is not watched.
async fn next(signal: &mut Option<Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

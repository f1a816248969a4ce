//! `sitewatch-agent`: parse arguments, start logging, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = sitewatch_agent::cli::Cli::parse();
    sitewatch_checks::ops::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sitewatch-agent: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(sitewatch_agent::app::main(cli));
    // Checks abandoned at shutdown may leave a plugin call running on a blocking thread
    // (up to its own deadline): exit without waiting for it.
    runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
    code
}

/// How long exiting waits for work still running outside the checks (blocking threads).
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

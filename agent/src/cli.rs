//! Command-line arguments.

use std::path::PathBuf;

use clap::Parser;
pub use sitewatch_checks::ops::LogFormat;

/// Checks websites on schedule and publishes every result (stdout or Kafka).
#[derive(Debug, Parser)]
#[command(name = "sitewatch-agent", version)]
pub struct Cli {
    /// Site list files, or directories whose `*.yaml` files are all read.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub config: Vec<PathBuf>,
    /// Validate the config, print it resolved (secrets masked) and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Check every site once, publish, and exit (1 if any site is down).
    #[arg(long)]
    pub once: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SITEWATCH_LOG_FORMAT")]
    pub log_format: LogFormat,
}

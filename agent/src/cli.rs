//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
pub use sitewatch_checks::ops::LogFormat;

/// Checks websites on schedule and publishes every result (stdout or Kafka).
#[derive(Debug, Parser)]
#[command(
    name = "sitewatch-agent",
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Site list files, or directories whose `*.yaml` files are all read.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub config: Vec<PathBuf>,
    /// Something other than checking sites.
    #[command(subcommand)]
    pub command: Option<Command>,
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

/// What the agent can do besides checking sites.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The WebAssembly check plugins a config declares.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

/// `sitewatch-agent plugins ...`
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Compile every plugin the config declares into the compiled-code cache, so an
    /// agent started with the same config on this machine loads them without compiling.
    Compile {
        /// Site list files, or directories, as given to the agent.
        #[arg(required = true, value_name = "FILE_OR_DIR")]
        config: Vec<PathBuf>,
        /// The cache directory to fill (default: the config's `agent.plugin_cache`,
        /// which defaults to $CACHE_DIRECTORY, then the XDG cache directory).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
}

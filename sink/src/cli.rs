//! Command-line arguments: the subcommand, the sink settings, the log format.

use std::time::Duration;

use clap::{Parser, Subcommand};
pub use sitewatch_checks::ops::LogFormat;

use crate::config::SinkConfig;

/// Stores sitewatch check results from Kafka in PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "sitewatch-sink", version)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Where to read from and write to.
    #[command(flatten)]
    pub config: SinkConfig,
    /// The sink's config file: the alerting policy (channels, routes, reminders, flapping,
    /// maintenance windows, retries). Connection settings stay flags and environment.
    #[arg(long = "config", global = true, env = "SITEWATCH_CONFIG")]
    pub config_file: Option<std::path::PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SITEWATCH_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// The sink's subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Consume and store until SIGINT/SIGTERM (the default).
    Run,
    /// Apply database migrations and exit.
    Migrate,
    /// Print each site's outcome, uptime, response times, last error and recent changes.
    Report {
        /// Window to summarise, e.g. `15m`, `1h`, `7d`.
        #[arg(long, default_value = "1h", value_parser = sitewatch_checks::ops::units::parse_duration)]
        since: Duration,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve the dashboard, site pages, public status page, JSON API, badges and `/metrics`
    /// from the database (read-only; the sink's database flags apply).
    Web(crate::web::WebArgs),
    /// Maintain the rollups.
    Rollup {
        /// Recompute every hourly and daily rollup row from `--since` on from the raw results.
        #[arg(long, required = true)]
        rebuild: bool,
        /// First day (UTC) to recompute, e.g. `2026-01-31`; raw results must still be kept
        /// for it and the hour before.
        #[arg(long)]
        since: chrono::NaiveDate,
    },
    /// Silence notifications for a site or tag (`silence SITE|tag:NAME --for 30m`),
    /// list silences (`silence list`) or end one early (`silence expire ID`).
    Silence(SilenceArgs),
    /// Alerting tools (the `--config` file's channels).
    Alerts {
        /// What to do.
        #[command(subcommand)]
        command: AlertsCommand,
    },
}

/// `silence`: make one, or list or expire them.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SilenceArgs {
    /// `list` or `expire ID`.
    #[command(subcommand)]
    pub command: Option<SilenceCommand>,
    /// A site name, or `tag:NAME` for every site with that tag.
    pub matcher: Option<String>,
    /// How long, e.g. `30m`, `2h`.
    #[arg(long = "for", value_parser = sitewatch_checks::ops::units::parse_duration)]
    pub duration: Option<Duration>,
    /// Why (shown by `silence list`).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `silence` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum SilenceCommand {
    /// Silences active now and those ended within a day.
    List,
    /// End a silence now.
    Expire {
        /// Its id (from `silence list`).
        id: i64,
    },
}

/// `alerts` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum AlertsCommand {
    /// Send a test notification through a channel now and report the result.
    Test {
        /// The channel's name in the config file.
        channel: String,
    },
}

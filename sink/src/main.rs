//! `sitewatch-sink`: parse arguments, start logging, hand over to the library.

use clap::{Parser, Subcommand};
use sitewatch_sink::SinkConfig;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Stores sitewatch check results from Kafka in PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "sitewatch-sink", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: SinkConfig,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume and store until SIGINT/SIGTERM (the default).
    Run,
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let token = CancellationToken::new();
    match cli.command.unwrap_or(Command::Run) {
        Command::Migrate => {
            let mut client = cli
                .config
                .database()?
                .connect(&token)
                .await
                .ok_or_else(|| anyhow::anyhow!("no database connection"))?;
            sitewatch_sink::consumer::prepare(&mut client, &cli.config).await?;
            Ok(())
        }
        Command::Run => {
            let stop = token.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => tokio::select! {
                        _ = tokio::signal::ctrl_c() => {},
                        _ = term.recv() => {},
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the sink");
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
                tracing::info!("shutdown requested: storing the current batch");
                stop.cancel();
            });
            sitewatch_sink::run(cli.config, token).await?;
            Ok(())
        }
    }
}

//! The sink's top level: run the chosen subcommand, map failures to exit codes,
//! turn SIGINT/SIGTERM into a cancellation (the shared signal helper).

use std::process::ExitCode;

use sitewatch_checks::ops::watch_signals;
pub use sitewatch_checks::ops::EXIT_CONFIG;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::consumer::{self, SinkError};
use crate::report;

/// Entry point used by `main.rs`.
pub async fn main(cli: Cli) -> ExitCode {
    let outcome = match cli.command.clone().unwrap_or(Command::Run) {
        Command::Run => {
            let alerts = match &cli.config_file {
                Some(path) => match crate::alerts::load(path) {
                    Ok(alerts) => Some(std::sync::Arc::new(alerts)),
                    Err(errors) => {
                        for e in &errors.0 {
                            tracing::error!("{e}");
                        }
                        return ExitCode::from(EXIT_CONFIG);
                    }
                },
                None => None,
            };
            let token = CancellationToken::new();
            watch_signals(token.clone(), None, "storing the current batch");
            consumer::run_with(cli.config, alerts, token).await
        }
        Command::Silence(args) => return crate::alerts::commands::silence(&cli, args).await,
        Command::Alerts {
            command: crate::cli::AlertsCommand::Test { channel },
        } => return crate::alerts::commands::test(&cli, &channel).await,
        Command::Migrate => migrate(&cli).await,
        Command::Report { since, json } => return print_report(&cli, since, json).await,
        Command::Rollup { since, .. } => rebuild_rollups(&cli, since).await,
        Command::Web(args) => return serve_web(&cli, args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (SinkError::DbConfig(_) | SinkError::KafkaConfig(_))) => {
            tracing::error!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(cli: &Cli) -> Result<(), SinkError> {
    let token = CancellationToken::new();
    watch_signals(token.clone(), None, "stopping after the current step");
    let db = cli.config.database()?;
    let Some(mut client) = db.connect(&token).await else {
        return Ok(());
    };
    consumer::prepare(&mut client, &cli.config).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn rebuild_rollups(cli: &Cli, since: chrono::NaiveDate) -> Result<(), SinkError> {
    let db = cli.config.database()?;
    let mut client = db.connect_once().await?;
    crate::migrations::check_current(&client).await?;
    let done = crate::rollups::rebuild(&mut client, since).await?;
    println!(
        "rollups rebuilt from {since}: {} sites, {} results read, {} rows written",
        done.sites, done.results, done.rows
    );
    Ok(())
}

async fn print_report(cli: &Cli, window: std::time::Duration, json: bool) -> ExitCode {
    let db = match cli.config.database() {
        Ok(db) => db,
        Err(e) => {
            eprintln!("sitewatch-sink: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let client = match db.connect_once().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("sitewatch-sink: cannot connect to the database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
    match report::load(&client, since).await {
        Ok(r) if json => match serde_json::to_string_pretty(&r) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sitewatch-sink: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(r) => {
            print!("{}", report::text(&r));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sitewatch-sink: cannot read the report (has the sink migrated this database?): {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_web(cli: &Cli, args: crate::web::WebArgs) -> ExitCode {
    let db = match cli.config.database() {
        Ok(db) => db,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let token = CancellationToken::new();
    watch_signals(token.clone(), None, "finishing the requests in flight");
    match crate::web::serve(&db, args, token).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("web: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The alerting subcommands: `silence` (make, list, expire) and `alerts test CHANNEL`
//! (a test notification through one channel, now, its result printed).

use std::process::ExitCode;

use sitewatch_checks::ops::units::format_duration;
use sitewatch_checks::ops::EXIT_CONFIG;

use super::channel::DeliveryError;
use super::notification::{Notification, NotificationKind};
use super::silences;
use crate::cli::{Cli, SilenceArgs, SilenceCommand};

/// `sitewatch-sink silence ...`.
pub async fn silence(cli: &Cli, args: SilenceArgs) -> ExitCode {
    let client = match connect(cli).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match (args.command, args.matcher, args.duration) {
        (Some(SilenceCommand::List), _, _) => silences::list(&client).await.map(|all| {
            let now = chrono::Utc::now();
            if all.is_empty() {
                println!("no silences");
            }
            for s in all {
                let state = match s.expired_at {
                    Some(at) => format!("expired {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
                    None if s.active(now) => "active".to_string(),
                    None => "ended".to_string(),
                };
                println!(
                    "{}\t{}\tuntil {}\t{state}\t{}",
                    s.id,
                    s.matcher,
                    s.ends_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    s.reason.unwrap_or_default()
                );
            }
        }),
        (Some(SilenceCommand::Expire { id }), _, _) => match silences::expire(&client, id).await {
            Ok(true) => {
                println!("silence {id} expired");
                Ok(())
            }
            Ok(false) => {
                eprintln!("sitewatch-sink: no active silence {id}");
                return ExitCode::FAILURE;
            }
            Err(e) => Err(e),
        },
        (None, Some(matcher), Some(duration)) => {
            match silences::add(&client, &matcher, duration, args.reason.as_deref()).await {
                Ok(s) => {
                    println!(
                        "silence {} for {} until {} ({})",
                        s.id,
                        s.matcher,
                        s.ends_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        format_duration(duration)
                    );
                    Ok(())
                }
                Err(silences::SilenceError::Db(e)) => Err(e),
                Err(e) => {
                    eprintln!("sitewatch-sink: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
        _ => {
            eprintln!("sitewatch-sink: usage: silence SITE|tag:NAME --for DURATION [--reason TEXT] | silence list | silence expire ID");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sitewatch-sink: {e} (has the sink migrated this database?)");
            ExitCode::FAILURE
        }
    }
}

/// `sitewatch-sink alerts test CHANNEL`.
pub async fn test(cli: &Cli, name: &str) -> ExitCode {
    let Some(path) = &cli.config_file else {
        eprintln!(
            "sitewatch-sink: alerts test needs the config file (--config or SITEWATCH_CONFIG)"
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    let alerts = match super::load(path) {
        Ok(a) => a,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let Some(channel) = alerts.channels.get(name) else {
        let known: Vec<&str> = alerts.channels.keys().map(String::as_str).collect();
        eprintln!(
            "sitewatch-sink: no channel `{name}` in {} (channels: {})",
            path.display(),
            known.join(", ")
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    let now = chrono::Utc::now();
    let notification = Notification {
        kind: NotificationKind::Test,
        idempotency_key: format!("sitewatch:test:{}:{name}", now.timestamp_micros()),
        channel: name.to_string(),
        site: "sitewatch-test".to_string(),
        url: None,
        group: None,
        tags: Vec::new(),
        incident_id: None,
        verdict: "up".to_string(),
        summary: format!("test notification from sitewatch-sink to channel {name}"),
        started_at: None,
        resolved_at: None,
        locations: Vec::new(),
        first_error: None,
        created_at: now,
    };
    match channel.deliver(&notification).await {
        Ok(()) => {
            println!("test notification delivered through {name}");
            ExitCode::SUCCESS
        }
        Err(DeliveryError::Retry(e)) => {
            println!(
                "test notification NOT delivered through {name} (temporary; would be retried): {e}"
            );
            ExitCode::FAILURE
        }
        Err(DeliveryError::Permanent(e)) => {
            println!("test notification NOT delivered through {name} (permanent): {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(cli: &Cli) -> Result<tokio_postgres::Client, ExitCode> {
    let db = cli.config.database().map_err(|e| {
        eprintln!("sitewatch-sink: {e}");
        ExitCode::from(EXIT_CONFIG)
    })?;
    let client = db.connect_once().await.map_err(|e| {
        eprintln!("sitewatch-sink: cannot connect to the database: {e}");
        ExitCode::FAILURE
    })?;
    crate::migrations::check_current(&client)
        .await
        .map_err(|e| {
            eprintln!("sitewatch-sink: {e}");
            ExitCode::FAILURE
        })?;
    Ok(client)
}

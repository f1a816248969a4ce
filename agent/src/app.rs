//! The agent's top level: load config, wire scheduler → publisher, handle signals.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sitewatch_checks::ops::watch_signals;
use sitewatch_checks::probe::Prober;
use sitewatch_checks::spec::CheckSpec;
use sitewatch_checks::Outcome;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::Cli;
use crate::config::{self, AgentConfig, EXIT_CONFIG};
use crate::ops::{AgentMetrics, AgentOps};
use crate::publisher::Publisher;
use crate::scheduler::{self, Limits, SchedulerStats};

/// Results buffered between the scheduler and the output before checks wait.
const RESULT_QUEUE: usize = 1024;

/// How long the publisher may take to deliver what is queued at exit.
const PUBLISH_FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// Entry point used by `main.rs`.
pub async fn main(cli: Cli) -> ExitCode {
    let mut config = match config::load(&cli.config) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(errors) = crate::plugins::attach(&mut config) {
        eprint!("{errors}");
        return ExitCode::from(EXIT_CONFIG);
    }
    if cli.check_config {
        print!("{}", config::render(&config));
        return ExitCode::SUCCESS;
    }
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone(), None, "finishing in-flight checks");
    match run(config, cli.once, shutdown).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the agent until `shutdown` (or, with `once`, until every site was checked once).
///
/// Returns exit code 1 in `once` mode when any site is down, and [`EXIT_UNSENT`] when
/// results could not be delivered before exit.
pub async fn run(
    config: AgentConfig,
    once: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let specs: Vec<Arc<CheckSpec>> = config
        .sites
        .iter()
        .map(|s| Arc::new(s.spec.clone()))
        .collect();
    let publisher = Publisher::from_config(config.kafka.as_ref()).await?;
    let prober = Arc::new(Prober::new(
        config.agent.name.clone(),
        config.agent.location.clone(),
    ));
    let check = move |spec: Arc<CheckSpec>| {
        let prober = prober.clone();
        async move { prober.check(&spec).await }
    };
    tracing::info!(sites = specs.len(), agent = %config.agent.name, "sitewatch agent starting");

    if once {
        let results = scheduler::run_once(specs, check, config.agent.max_concurrency).await;
        let any_down = results.iter().any(|r| r.outcome == Outcome::Down);
        for result in results {
            // A failure is logged by the publisher; the exit code reports the sites.
            let _ = publisher.publish(result).await;
        }
        // Closing writes out whatever flushing puts off.
        let _ = publisher.flush();
        if let Some(code) = report_unsent(publisher.close(PUBLISH_FLUSH_DEADLINE).await) {
            return Ok(code);
        }
        return Ok(if any_down {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }

    let metrics = Arc::new(AgentMetrics::default());
    metrics.sites.set(specs.len() as i64);
    let scheduler_stats = Arc::new(SchedulerStats::default());
    if let Some(addr) = config.agent.listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr} for /healthz and /metrics: {e}")
        })?;
        tracing::info!(%addr, "serving /healthz and /metrics");
        let state = Arc::new(AgentOps {
            metrics: metrics.clone(),
            scheduler: scheduler_stats.clone(),
            kafka: publisher.kafka_stats(),
            spool: publisher.spool_stats(),
        });
        let stop = shutdown.clone();
        tokio::spawn(sitewatch_checks::ops::serve(listener, state, async move {
            stop.cancelled().await
        }));
    }

    let (tx, mut rx) = mpsc::channel::<sitewatch_checks::CheckResult>(RESULT_QUEUE);
    let forward_metrics = metrics.clone();
    let forward = tokio::spawn(async move {
        // When a put-off flush is due.
        let mut flush_at = None;
        loop {
            let received = match flush_at {
                None => rx.recv().await,
                Some(at) => tokio::select! {
                    received = rx.recv() => received,
                    _ = tokio::time::sleep_until(at) => {
                        flush_at = publisher.flush();
                        continue;
                    }
                },
            };
            let Some(result) = received else { break };
            tracing::debug!(site = %result.site, started_at = %result.started_at.timestamp_millis(), check_id = %result.check_id, outcome = ?result.outcome, "check finished");
            forward_metrics.record(&result);
            forward_metrics.queue_depth.set(rx.len() as i64);
            if publisher.publish(result).await.is_err() {
                forward_metrics.publish_failures.inc();
            }
            if rx.is_empty() {
                flush_at = publisher.flush();
            }
        }
        publisher.close(PUBLISH_FLUSH_DEADLINE).await
    });
    let limits = Limits {
        max_concurrency: config.agent.max_concurrency,
        shutdown_grace: config.agent.shutdown_grace,
    };
    scheduler::run(specs, check, tx, limits, shutdown, scheduler_stats).await;
    if let Some(code) = report_unsent(forward.await?) {
        return Ok(code);
    }
    tracing::info!("sitewatch agent stopped");
    Ok(ExitCode::SUCCESS)
}

/// Exit code when results could not be delivered before exit (sysexits EX_TEMPFAIL).
pub const EXIT_UNSENT: u8 = 75;

/// Logs undelivered results; `Some(exit code)` when there were any.
fn report_unsent(unsent: usize) -> Option<ExitCode> {
    (unsent > 0).then(|| {
        tracing::error!(unsent, "results could not be delivered before exit");
        ExitCode::from(EXIT_UNSENT)
    })
}

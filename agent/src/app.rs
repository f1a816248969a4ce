//! The agent's top level: load config, wire scheduler → publisher, handle signals
//! (stop, and reload in the daemon).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sitewatch_checks::ops::{watch_signals, EXIT_INTERRUPTED};
use sitewatch_checks::spec::CheckSpec;
use sitewatch_checks::Outcome;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::CatalogPublisher;
use crate::check::Checker;
use crate::cli::{Cli, Command, PluginsCommand};
use crate::config::{self, AgentConfig, EXIT_CONFIG};
use crate::publisher::Publisher;

/// How long the publisher may take to deliver what is queued at exit.
pub const PUBLISH_FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// Exit code when results could not be delivered before exit (sysexits EX_TEMPFAIL).
pub const EXIT_UNSENT: u8 = 75;

/// Entry point used by `main.rs`.
pub async fn main(cli: Cli) -> ExitCode {
    if let Some(Command::Plugins(PluginsCommand::Compile { config, cache_dir })) = cli.command {
        return compile_plugins(&config, cache_dir);
    }
    let config = match crate::reload::load(&cli.config) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check_config {
        print!("{}", config::render(&config));
        return ExitCode::SUCCESS;
    }
    let shutdown = CancellationToken::new();
    let mut options = RunOptions {
        once: cli.once,
        reload: None,
    };
    if cli.once {
        watch_signals(shutdown.clone(), None, "finishing the checks running");
    } else {
        let (tx, rx) = mpsc::unbounded_channel();
        watch_signals(
            shutdown.clone(),
            Some(tx.clone()),
            "finishing in-flight checks",
        );
        options.reload = Some(ReloadSource {
            paths: cli.config.clone(),
            requests: rx,
            requester: tx,
        });
    }
    match run_with(config, options, shutdown).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `sitewatch-agent plugins compile`: fills the compiled-code cache and reports
/// what each plugin took.
fn compile_plugins(files: &[PathBuf], cache_dir: Option<PathBuf>) -> ExitCode {
    // The cache must be absolute; a relative --cache-dir is taken from here.
    let cache_dir = cache_dir.map(|d| std::path::absolute(&d).unwrap_or(d));
    let compiled =
        config::load(files).and_then(|config| crate::plugins::compile(&config, cache_dir));
    match compiled {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprint!("{errors}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Where reload requests come from, and which files to load again.
pub struct ReloadSource {
    /// The config paths given at start.
    pub paths: Vec<PathBuf>,
    /// Reload requests (SIGHUP, changed files).
    pub requests: mpsc::UnboundedReceiver<()>,
    /// For the config-file watcher to ask with.
    pub requester: mpsc::UnboundedSender<()>,
}

/// How to run.
pub struct RunOptions {
    /// Check every site once and exit.
    pub once: bool,
    /// Reload on request (daemon only); `None`: never.
    pub reload: Option<ReloadSource>,
}

/// Runs the agent until `shutdown` (or, with `once`, until every site was checked once),
/// without reloading.
///
/// Returns exit code 1 in `once` mode when any site is down, [`EXIT_INTERRUPTED`] when
/// `once` was stopped before every site was checked, and [`EXIT_UNSENT`] when results
/// could not be delivered before exit.
pub async fn run(
    config: AgentConfig,
    once: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let options = RunOptions { once, reload: None };
    run_with(config, options, shutdown).await
}

/// [`run`], with reloading when `options.reload` is given.
pub async fn run_with(
    config: AgentConfig,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    // Start-up does not wait for Kafka: checks begin at once, results queue (or spool).
    let publisher = Publisher::from_config(config.kafka.as_ref()).await?;
    let catalog = CatalogPublisher::new(config.kafka.as_ref())?;
    let first = catalog
        .as_ref()
        .map(|catalog| catalog.spawn_publish(config.clone(), true));
    tracing::info!(sites = config.sites.len(), agent = %config.agent.name, "sitewatch agent starting");
    if options.once {
        let code = once(config, publisher, shutdown).await;
        // The catalog is small; it gets the same deadline as the results.
        if let Some(published) = first {
            let _ = tokio::time::timeout(PUBLISH_FLUSH_DEADLINE, published).await;
        }
        return code;
    }
    crate::daemon::run(config, publisher, catalog, options.reload, shutdown).await
}

async fn once(
    config: AgentConfig,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let specs: Vec<Arc<CheckSpec>> = config
        .sites
        .iter()
        .map(|s| Arc::new(s.spec.clone()))
        .collect();
    let sites = specs.len();
    let checker = Checker::new(&config.agent);
    let run = crate::once::run_once(
        specs,
        move |spec| checker.check(spec, None),
        config.agent.max_concurrency,
        shutdown,
        config.agent.shutdown_grace,
    )
    .await;
    let any_down = run.results.iter().any(|r| r.outcome == Outcome::Down);
    let checked = run.results.len();
    for result in run.results {
        // A failure is logged by the publisher; the exit code reports the sites.
        let _ = publisher.publish(result).await;
    }
    // Closing writes out whatever flushing puts off.
    let _ = publisher.flush();
    if let Some(code) = report_unsent(publisher.close(PUBLISH_FLUSH_DEADLINE).await) {
        return Ok(code);
    }
    if run.interrupted {
        tracing::warn!(
            checked,
            abandoned = run.abandoned,
            not_checked = sites - checked,
            "--once stopped by a signal before every site was checked (exit {EXIT_INTERRUPTED})"
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(if any_down {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Logs undelivered results; `Some(exit code)` when there were any.
pub(crate) fn report_unsent(unsent: usize) -> Option<ExitCode> {
    (unsent > 0).then(|| {
        tracing::error!(unsent, "results could not be delivered before exit");
        ExitCode::from(EXIT_UNSENT)
    })
}

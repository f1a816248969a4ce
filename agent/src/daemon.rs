//! The long-running agent: site timelines feeding the publisher, the ops endpoint, and
//! reloads, until shutdown.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use sitewatch_checks::CheckResult;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{report_unsent, ReloadSource, PUBLISH_FLUSH_DEADLINE};
use crate::catalog::CatalogPublisher;
use crate::check::Checker;
use crate::config::AgentConfig;
use crate::limit::ConcurrencyLimit;
use crate::ops::{AgentMetrics, AgentOps};
use crate::publisher::Publisher;
use crate::reload::{self, ReloadMetrics, RunningSites};
use crate::scheduler::{Scheduler, SchedulerStats};

/// Results buffered between the scheduler and the output before checks wait.
const RESULT_QUEUE: usize = 1024;

/// Runs until `shutdown`; then lets checks in flight finish (`agent.shutdown_grace`) and
/// flushes the publisher.
pub async fn run(
    mut config: AgentConfig,
    publisher: Publisher,
    catalog: Option<Arc<CatalogPublisher>>,
    reload: Option<ReloadSource>,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let metrics = Arc::new(AgentMetrics::default());
    let scheduler_stats = Arc::new(SchedulerStats::default());
    let reload_metrics = Arc::new(ReloadMetrics::default());
    reload::loaded_at_start(&reload_metrics);
    let limit = ConcurrencyLimit::new(config.agent.max_concurrency);
    let max_concurrency = Arc::new(AtomicUsize::new(config.agent.max_concurrency));
    let checker = Checker::new(&config.agent);
    tokio::spawn(crate::adapt::adapt(
        limit.clone(),
        max_concurrency.clone(),
        checker.overload().stall.clone(),
        shutdown.clone(),
    ));
    if let Some(addr) = config.agent.listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr} for /healthz and /metrics: {e}")
        })?;
        tracing::info!(%addr, "serving /healthz and /metrics");
        let state = Arc::new(AgentOps {
            metrics: metrics.clone(),
            scheduler: scheduler_stats.clone(),
            reload: reload_metrics.clone(),
            overload: checker.overload(),
            limit: limit.clone(),
            max_concurrency: max_concurrency.clone(),
            kafka: publisher.kafka_stats(),
            spool: publisher.spool_stats(),
        });
        let stop = shutdown.clone();
        tokio::spawn(sitewatch_checks::ops::serve(listener, state, async move {
            stop.cancelled().await
        }));
    }

    let (tx, rx) = mpsc::channel::<CheckResult>(RESULT_QUEUE);
    let forward = tokio::spawn(forward(rx, publisher, metrics.clone()));
    let check = {
        let checker = checker.clone();
        move |spec, started| checker.check(spec, Some(started))
    };
    let mut scheduler = Scheduler::new(check, tx, limit.clone(), shutdown.clone(), scheduler_stats);
    let mut running = RunningSites::default();
    scheduler.apply(running.update(&config));
    metrics.sites.set(scheduler.sites() as i64);
    // The scheduler holds the sites now; what is kept is for comparing with a reload.
    config.sites.clear();

    let watching = Arc::new(AtomicBool::new(config.agent.watch_config));
    let (mut requests, paths) = match reload {
        Some(source) => {
            tokio::spawn(reload::watch_files(
                source.paths.clone(),
                watching.clone(),
                source.requester,
            ));
            (Some(source.requests), source.paths)
        }
        None => (None, Vec::new()),
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = next_request(&mut requests) => {
                // Loading compiles plugins: off the async workers.
                let (paths, current) = (paths.clone(), config.clone());
                let loaded = {
                    let metrics = reload_metrics.clone();
                    tokio::task::spawn_blocking(move || reload::reload(&paths, &current, &metrics)).await
                };
                let Ok(Some(new)) = loaded else { continue };
                checker.apply(&new.agent);
                // The cap adapts up to the new maximum; a lower one applies at once.
                max_concurrency.store(new.agent.max_concurrency, Ordering::Relaxed);
                limit.set_limit(limit.limit().min(new.agent.max_concurrency));
                watching.store(new.agent.watch_config, Ordering::Relaxed);
                if let Some(catalog) = &catalog {
                    catalog.spawn_publish(new.clone(), false);
                }
                let changes = scheduler.apply(running.update(&new));
                metrics.sites.set(scheduler.sites() as i64);
                tracing::info!(
                    added = changes.added,
                    removed = changes.removed,
                    changed = changes.changed,
                    unchanged = changes.unchanged,
                    "config reloaded"
                );
                // What needs a restart keeps its old value.
                let (kafka, listen, cache) = (config.kafka.take(), config.agent.listen, config.agent.plugin_cache.take());
                config = new;
                config.sites.clear();
                config.kafka = kafka;
                config.agent.listen = listen;
                config.agent.plugin_cache = cache;
            }
        }
    }
    scheduler.drain(config.agent.shutdown_grace).await;
    if let Some(code) = report_unsent(wait(forward).await?) {
        return Ok(code);
    }
    tracing::info!("sitewatch agent stopped");
    Ok(ExitCode::SUCCESS)
}

/// The next reload request; never without a source.
async fn next_request(requests: &mut Option<mpsc::UnboundedReceiver<()>>) -> Option<()> {
    match requests {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn wait(task: JoinHandle<usize>) -> anyhow::Result<usize> {
    Ok(task.await?)
}

/// Hands results to the publisher as they come, flushing when none are waiting; at the
/// end closes it and returns how many results were left undelivered.
async fn forward(
    mut rx: mpsc::Receiver<CheckResult>,
    publisher: Publisher,
    metrics: Arc<AgentMetrics>,
) -> usize {
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
        metrics.record(&result);
        metrics.queue_depth.set(rx.len() as i64);
        if publisher.publish(result).await.is_err() {
            metrics.publish_failures.inc();
        }
        if rx.is_empty() {
            flush_at = publisher.flush();
        }
    }
    publisher.close(PUBLISH_FLUSH_DEADLINE).await
}

//! `--once`: every site checked once, under the daemon's rules for concurrency and
//! shutdown. A SIGINT/SIGTERM stops checks from starting; those running get the
//! shutdown grace, then are abandoned.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sitewatch_checks::spec::CheckSpec;
use sitewatch_checks::CheckResult;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::limit::ConcurrencyLimit;

/// What a `--once` run did.
#[derive(Debug, Default)]
pub struct OnceRun {
    /// Results, in completion order.
    pub results: Vec<CheckResult>,
    /// Stopped by shutdown before every site was checked.
    pub interrupted: bool,
    /// Checks still running when the grace ran out.
    pub abandoned: usize,
}

/// Checks every site once, at most `max_concurrency` at a time, each on its own task.
pub async fn run_once<F, Fut>(
    sites: Vec<Arc<CheckSpec>>,
    check: F,
    max_concurrency: usize,
    shutdown: CancellationToken,
    grace: Duration,
) -> OnceRun
where
    F: Fn(Arc<CheckSpec>) -> Fut,
    Fut: Future<Output = CheckResult> + Send + 'static,
{
    let limit = ConcurrencyLimit::new(max_concurrency);
    let mut tasks = JoinSet::new();
    for spec in sites {
        let check = check(spec);
        let (limit, stop) = (limit.clone(), shutdown.clone());
        tasks.spawn(async move {
            let permit = tokio::select! {
                biased;
                _ = stop.cancelled() => return None,
                permit = limit.acquire() => permit,
            };
            let result = check.await;
            drop(permit);
            Some(result)
        });
    }
    let mut run = OnceRun::default();
    loop {
        tokio::select! {
            biased;
            joined = tasks.join_next() => match joined {
                Some(Ok(Some(result))) => run.results.push(result),
                Some(Ok(None)) => {}
                Some(Err(e)) => tracing::error!(error = %e, "a check failed to run"),
                None => return run,
            },
            _ = shutdown.cancelled() => break,
        }
    }
    run.interrupted = true;
    let finished = tokio::time::timeout(grace, async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Some(result)) = joined {
                run.results.push(result);
            }
        }
    })
    .await;
    if finished.is_err() {
        run.abandoned = tasks.len();
        tracing::warn!(
            checks = run.abandoned,
            ?grace,
            "abandoning checks still running at shutdown"
        );
        tasks.shutdown().await;
    }
    run
}

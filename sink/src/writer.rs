//! The database side of the sink, a task of its own: it stores the batches the consume loop
//! (`consumer`) hands it, in the order handed, and commits each batch's Kafka offsets only
//! after the batch's transaction committed; it runs the verdict sweep and the hourly
//! partition maintenance in between. Meanwhile the consume loop reads and decodes the next
//! batch, so a backlog is consumed while the previous batch is being written.
//!
//! The channel holds one job: the consume loop is at most one batch ahead of the batch being
//! written (plus the one it is filling), which bounds memory and keeps a slow database from
//! being outrun.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::SinkConfig;
use crate::context::SinkContext;
use crate::flush::{Consumed, Store};
use crate::verdicts;

/// How often partitions are created ahead and what is past retention dropped.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// What the consume loop asks of the writer; done in the order sent.
pub(crate) enum Job {
    /// Store the batch, then commit its offsets.
    Store(Consumed),
    /// Run the verdict sweep for the sites of these results partitions (owned and consumed
    /// to their end: everything consumed of them was sent before).
    Sweep(Vec<i32>),
    /// Answered once every job sent before is done (or given up on).
    Barrier(oneshot::Sender<()>),
}

/// The writer's end of the channel.
pub(crate) type Jobs = mpsc::Receiver<Job>;

/// The channel between the consume loop and the writer.
pub(crate) fn channel() -> (mpsc::Sender<Job>, Jobs) {
    mpsc::channel(1)
}

/// Does the jobs until every sender is gone. `stop` gives up on a batch that cannot be
/// stored (the database is down at shutdown): that batch's offsets, and every later batch's,
/// stay uncommitted, so all of it is redelivered.
pub(crate) async fn run(
    mut store: Store,
    consumer: Arc<StreamConsumer<SinkContext>>,
    mut jobs: Jobs,
    config: Arc<SinkConfig>,
    stop: CancellationToken,
) {
    // `prepare` just did this round of maintenance.
    let mut maintenance =
        tokio::time::interval_at(Instant::now() + MAINTENANCE_EVERY, MAINTENANCE_EVERY);
    let mut given_up = false;
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                None => break,
                Some(Job::Store(consumed)) if !given_up => {
                    given_up = !store.store_and_commit(consumed, &*consumer, &stop).await;
                }
                Some(Job::Sweep(owned)) if !given_up => sweep(&mut store, &owned).await,
                Some(Job::Barrier(done)) => {
                    let _ = done.send(());
                }
                // Given up on: later batches are not stored either (committing their offsets
                // would skip the one given up on).
                Some(_) => {}
            },
            _ = maintenance.tick() => {
                if let Err(e) = crate::consumer::maintain(&mut store.client, &config).await {
                    tracing::warn!(error = %e, "partition maintenance or retention failed");
                }
            }
        }
    }
}

/// Runs the verdict sweep for the sites of the `owned` results partitions that have a
/// location gone silent.
async fn sweep(store: &mut Store, owned: &[i32]) {
    let sites = match verdicts::sweep_candidates(&store.client, owned).await {
        Ok(sites) if !sites.is_empty() => sites,
        Ok(_) => return,
        Err(e) => {
            tracing::debug!(error = %e, "cannot look for silent locations");
            return;
        }
    };
    let alerts = store.alerts.clone();
    match verdicts::sweep_with(&mut store.client, &sites, alerts.as_deref()).await {
        Ok(saved) => {
            store.metrics.events.add(saved.events);
            if saved.events > 0 {
                tracing::info!(
                    events = saved.events,
                    "sweep: silent locations left the vote"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "sweep for silent locations failed; trying again"),
    }
}

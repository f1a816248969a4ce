//! One batch, one transaction: the pipeline of steps. The store step comes first and
//! decides which results are new; every later step sees only those, so a redelivered
//! result changes nothing downstream. Nothing is partly stored: the transaction commits
//! or not, and only then are the batch's Kafka offsets committed (by the caller).

use std::sync::Arc;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::batch::Batch;
use super::catalog;
use super::rejected;
use super::rollups::Rollups;
use super::sites::SiteFacts;
use super::step::{Step, StepError, Stored};
use super::store::{self, InsertMethod};
use super::verdicts::Verdicts;
use crate::alerts::Alerts;
use crate::partitions;

/// Why a batch was not stored (nothing of it was).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// A step failed.
    #[error("step `{step}`: {error}")]
    Step {
        /// The step's name.
        step: &'static str,
        /// What went wrong.
        error: StepError,
    },
}

impl WriteError {
    /// Whether a result in the batch was already stored (or is being stored by another
    /// transaction): the direct COPY's cue to write the batch again, skipping those.
    fn is_duplicate(&self) -> bool {
        let db = match self {
            WriteError::Db(e)
            | WriteError::Step {
                error: StepError::Db(e),
                ..
            } => e,
            WriteError::Step { .. } => return false,
        };
        db.code() == Some(&SqlState::UNIQUE_VIOLATION)
    }
}

/// What a batch write did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteStats {
    /// New result rows (redeliveries are not counted).
    pub inserted: u64,
    /// Rejected messages recorded.
    pub rejected: u64,
    /// The batch held results already stored, so it was written a second time, skipping them.
    pub rewritten: bool,
    /// Site catalog rows written (new, changed or removed definitions).
    pub catalog_written: u64,
    /// Catalog definitions that disagreed with another agent's definition in force.
    pub catalog_conflicts: u64,
    /// Rows each step after the store wrote, by step name, in pipeline order.
    pub steps: Vec<(&'static str, u64)>,
}

impl WriteStats {
    /// Rows the step called `name` wrote (0 if it did not run).
    pub fn step(&self, name: &str) -> u64 {
        self.steps
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, rows)| *rows)
    }
}

/// The batch transaction: store, then each step in order, then rejected messages, commit.
pub struct Pipeline {
    /// The steps after the store, in the order they run. Later stages (notifications) are
    /// added here, after the ones they read from.
    steps: Vec<Box<dyn Step>>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            steps: vec![
                Box::new(Rollups),
                Box::new(SiteFacts),
                Box::new(Verdicts::default()),
            ],
        }
    }
}

impl Pipeline {
    /// The default steps; verdict changes also write the notifications `alerts` routes
    /// (in the same transaction).
    pub fn with_alerts(alerts: Arc<Alerts>) -> Self {
        Pipeline {
            steps: vec![
                Box::new(Rollups),
                Box::new(SiteFacts),
                Box::new(Verdicts {
                    alerts: Some(alerts),
                }),
            ],
        }
    }

    /// Stores `batch` in one transaction with the default [`InsertMethod`]; a batch the
    /// direct COPY refuses (it holds stored results) is written again through the staging
    /// table.
    pub async fn write(
        &self,
        client: &mut Client,
        batch: &Batch,
    ) -> Result<WriteStats, WriteError> {
        self.write_with(client, batch, InsertMethod::default())
            .await
    }

    /// Stores `batch` in one transaction, results by `method`.
    pub async fn write_with(
        &self,
        client: &mut Client,
        batch: &Batch,
        method: InsertMethod,
    ) -> Result<WriteStats, WriteError> {
        match self.write_once(client, batch, method).await {
            Err(e) if method == InsertMethod::Copy && e.is_duplicate() => {
                tracing::debug!(error = %e, "batch holds results already stored; writing it again, skipping those");
                let mut stats = self.write_once(client, batch, InsertMethod::Staged).await?;
                stats.rewritten = true;
                Ok(stats)
            }
            written => written,
        }
    }

    async fn write_once(
        &self,
        client: &mut Client,
        batch: &Batch,
        method: InsertMethod,
    ) -> Result<WriteStats, WriteError> {
        let days = batch.rows.iter().map(|r| r.result.started_at.date_naive());
        partitions::ensure_days(client, days).await?;
        let tx = client.transaction().await?;
        let stored = store::store(&tx, &batch.rows, method)
            .await
            .map_err(|error| WriteError::Step {
                step: "store",
                error,
            })?;
        let stored = Stored::new(stored);
        // Definitions first: the verdict step judges by them.
        let catalog =
            catalog::apply(&tx, &batch.catalog)
                .await
                .map_err(|error| WriteError::Step {
                    step: "catalog",
                    error,
                })?;
        let mut stats = WriteStats {
            inserted: stored.len() as u64,
            catalog_written: catalog.written,
            catalog_conflicts: catalog.conflicts,
            ..WriteStats::default()
        };
        for step in &self.steps {
            let rows = step
                .apply(&tx, &stored)
                .await
                .map_err(|error| WriteError::Step {
                    step: step.name(),
                    error,
                })?;
            stats.steps.push((step.name(), rows));
        }
        stats.rejected = rejected::insert(&tx, &batch.rejected).await?;
        tx.commit().await?;
        Ok(stats)
    }
}

/// Stores `batch` in one transaction with the default pipeline and [`InsertMethod`].
pub async fn write_batch(client: &mut Client, batch: &Batch) -> Result<WriteStats, WriteError> {
    Pipeline::default().write(client, batch).await
}

/// Stores `batch` in one transaction with the default pipeline, results by `method`.
pub async fn write_batch_with(
    client: &mut Client,
    batch: &Batch,
    method: InsertMethod,
) -> Result<WriteStats, WriteError> {
    Pipeline::default().write_with(client, batch, method).await
}

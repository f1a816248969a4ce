//! The interface every stage of the batch transaction implements after the results are
//! stored: it gets the open transaction and the results this transaction stored (never a
//! redelivery), in (site, location, started_at) order, and returns how many rows it wrote.

use std::future::Future;
use std::pin::Pin;

use sitewatch_checks::CheckResult;
use tokio_postgres::Transaction;

/// A result this transaction stored: not a redelivery, so every step counts it once.
#[derive(Debug, Clone, Copy)]
pub struct StoredResult<'a> {
    /// `sites.id` (the site's row is locked by this transaction).
    pub site_id: i32,
    /// `locations.id` of where it was checked from.
    pub location_id: i16,
    /// `agents.id` of the agent that checked.
    pub agent_id: i16,
    /// Where it was checked from: the agent's `location`, else the agent's name.
    pub location: &'a str,
    /// The result as decoded.
    pub result: &'a CheckResult,
    /// Its error kind's name as stored (a newer agent's kind under its own name).
    pub error_kind: Option<&'a str>,
    /// The Kafka partition it came from.
    pub partition: i32,
}

impl StoredResult<'_> {
    /// The order steps see results in.
    fn order_key(&self) -> (i32, i16, chrono::DateTime<chrono::Utc>, i16) {
        (
            self.site_id,
            self.location_id,
            self.result.started_at,
            self.agent_id,
        )
    }
}

/// The batch's newly stored results, ordered by site, location, `started_at` (then agent),
/// sites and locations by id.
#[derive(Debug, Default)]
pub struct Stored<'a> {
    results: Vec<StoredResult<'a>>,
}

impl<'a> Stored<'a> {
    /// Orders `results` for the steps.
    pub(crate) fn new(mut results: Vec<StoredResult<'a>>) -> Self {
        results.sort_by_key(StoredResult::order_key);
        Stored { results }
    }

    /// Every stored result, in order.
    pub fn results(&self) -> &[StoredResult<'a>] {
        &self.results
    }

    /// How many results were stored.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether nothing new was stored (an empty or wholly redelivered batch).
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// The results of one site at a time (each run ordered by location, then time).
    pub fn by_site(&self) -> impl Iterator<Item = &[StoredResult<'a>]> {
        // Ids, not names: one site has one id (compared for every result).
        self.results.chunk_by(|a, b| a.site_id == b.site_id)
    }

    /// The results of one (site, location) at a time, each run in `started_at` order.
    pub fn by_location(&self) -> impl Iterator<Item = &[StoredResult<'a>]> {
        self.results
            .chunk_by(|a, b| a.site_id == b.site_id && a.location_id == b.location_id)
    }
}

/// Why a step failed; the whole transaction is rolled back and the batch retried.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// Stored data the step cannot use (never expected; the batch is retried, not skipped).
    #[error("{0}")]
    Data(String),
}

/// What [`Step::apply`] returns: rows written, or why not.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<u64, StepError>> + Send + 'a>>;

/// One stage of the batch transaction after the store.
pub trait Step: Send + Sync {
    /// Short name, used in logs and [`super::WriteStats::steps`].
    fn name(&self) -> &'static str;

    /// Does this step's work for `stored` inside `tx`. Called for every batch, also when
    /// nothing new was stored (a step may then return at once).
    fn apply<'a>(&'a self, tx: &'a Transaction<'a>, stored: &'a Stored<'a>) -> StepFuture<'a>;
}

//! Verdicts: each location's state from its own results, each site's verdict from a vote
//! of its locations, events on verdict changes and silent locations, incidents while a
//! site is down. `location` and `vote` are the rules, `site` applies them to one site's
//! results in order, `load` and `save` move that state in and out of PostgreSQL inside
//! the caller's transaction, `sweep` judges sites no result arrives for.

mod load;
mod location;
mod save;
mod site;
mod sweep;
mod vote;

pub use load::load;
pub use location::{Counted, LocationState, Problem, Runs, Status, Thresholds};
pub use save::{save, IncidentChange, Saved, VerdictChange};
pub use site::{
    Event, EventKind, Incident, Judged, Observation, Policy, SiteJudge, AGENT_OVERLOADED,
    DEFAULT_INTERVAL_MS, MIN_INFERRED_INTERVAL_MS, SILENT_AFTER_INTERVALS,
};
pub use sweep::{sweep, sweep_candidates, sweep_with};
pub use vote::{vote, Verdict, Vote};

/// Why verdict state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// Stored state this build cannot read.
    #[error("{0}")]
    Data(String),
}

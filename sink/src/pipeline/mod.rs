//! The batch transaction as a pipeline of steps: the store step writes the batch's results
//! and finds which are new; the batch's site catalog entries are applied (`catalog`); each
//! later step (`rollups`; `sites`: each site's latest facts; `verdicts`: location states,
//! verdicts, events, incidents) runs in the same transaction on those new results only. The
//! list of steps is [`Pipeline`]'s, in `write.rs`; the interface is [`Step`].

mod batch;
mod catalog;
mod rejected;
mod rollups;
mod sites;
mod step;
mod store;
mod verdicts;
mod write;

pub use batch::{Batch, CatalogEntry, Rejected, Row};
pub use catalog::CatalogStats;
pub use step::{Step, StepError, StepFuture, Stored, StoredResult};
pub use store::{InsertMethod, COLUMNS as RESULT_COLUMNS, COLUMN_TYPES as RESULT_COLUMN_TYPES};
pub use write::{write_batch, write_batch_with, Pipeline, WriteError, WriteStats};

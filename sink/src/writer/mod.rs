//! Storing batches of results in PostgreSQL.

mod batch;
mod copy;
mod events;
mod unnest;

pub use batch::{write_batch, write_batch_with, Batch, InsertMethod, Rejected, Row, WriteStats};

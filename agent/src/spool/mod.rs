//! The agent's disk spool: results wait here, in order, until Kafka confirms them, so a
//! broker outage longer than librdkafka's in-memory queue, or an agent stop or crash with
//! results unconfirmed, loses nothing. Replayed in order at the next start.

mod reader;
mod record;
mod store;
mod writer;

pub use reader::SpoolReader;
pub use record::Record;
pub use store::{open, SpoolAcks, SpoolError, SpoolSettings, SpoolStats, DEFAULT_SPOOL_MAX_BYTES};
pub use writer::{SpoolWriter, SYNC_EVERY};

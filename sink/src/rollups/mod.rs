//! Rollups per (site, location), hourly and daily, and per site daily (`site`): kept in the
//! batch transaction by the pipeline's rollup step (`incremental`), recomputed from raw
//! results by `rebuild`, read by reports. See `rollup` for what a row holds and `sketch` for
//! the latency histogram.

mod cursors;
pub mod incremental;
pub mod rebuild;
pub mod rollup;
pub mod site;
pub mod sketch;
pub mod table;

pub use incremental::{apply, NewChecks};
pub use rebuild::{rebuild, RebuildError, Rebuilt};
pub use rollup::{Check, Resolution, Rollup, MAX_GAP};
pub use sketch::{Sketch, Totals};
pub use table::{Key, RollupError};

//! The first step: the batch's results into `results`, compact. Dimension ids (sites,
//! agents and locations, error kinds) are resolved first, and the batch's `sites` rows
//! locked, so every later step works on sites no other sink is writing meanwhile.

mod columns;
mod dimensions;
mod insert;

pub use columns::{NAMES as COLUMNS, TYPES as COLUMN_TYPES};
pub(super) use insert::store;
pub use insert::InsertMethod;

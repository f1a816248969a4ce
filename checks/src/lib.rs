//! sitewatch check engine and result schema.
//!
//! `schema` (results) and `catalog` (site definitions) are always compiled: they are the
//! contract between agents and sinks; so is `causes` (an error's causes in one line).
//! The `engine` feature adds the HTTP probe and check evaluation; `wasm` adds the
//! WebAssembly plugin host; `ops` what both binaries share at their edges (health and
//! metrics endpoint, logging, signals, exit codes, units in settings); `kafka` the Kafka
//! client settings both use.

pub mod catalog;
pub mod causes;
pub mod schema;

#[cfg(feature = "engine")]
pub mod spec;

#[cfg(feature = "engine")]
pub mod probe;

#[cfg(feature = "wasm")]
pub mod plugin;

#[cfg(feature = "engine")]
pub mod plugin_limits;

#[cfg(feature = "ops")]
pub mod ops;

#[cfg(feature = "kafka")]
pub mod kafka;

pub use schema::{CheckResult, ErrorKind, Outcome, MAX_SITE_NAME, SCHEMA_VERSION};

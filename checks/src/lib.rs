//! sitewatch check engine and result schema.
//!
//! `schema` is always compiled: it is the contract between agents and sinks.
//! The `engine` feature adds the HTTP probe and check evaluation; `wasm` adds the
//! WebAssembly plugin host; `ops` the health/metrics endpoint both binaries serve.

pub mod schema;

#[cfg(feature = "engine")]
pub mod spec;

#[cfg(feature = "engine")]
pub mod probe;

#[cfg(feature = "wasm")]
pub mod plugin;

#[cfg(feature = "ops")]
pub mod ops;

pub use schema::{CheckResult, ErrorKind, Outcome, MAX_SITE_NAME, SCHEMA_VERSION};

//! sitewatch check engine and result schema.
//!
//! `schema` is always compiled: it is the contract between agents and sinks.
//! The `engine` feature adds the HTTP probe and check evaluation; `wasm` adds the
//! WebAssembly plugin host.

pub mod schema;

#[cfg(feature = "engine")]
pub mod spec;

#[cfg(feature = "engine")]
pub mod probe;

pub use schema::{CheckResult, ErrorKind, Outcome, SCHEMA_VERSION};

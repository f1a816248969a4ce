//! sitewatch sink: consumes check results from Kafka and stores each exactly once in
//! PostgreSQL (at-least-once delivery + idempotent insert; offsets committed only after
//! the database transaction holding their rows has committed).

pub mod alerts;
pub mod app;
pub mod cli;
pub mod codes;
pub mod config;
pub mod config_file;
pub mod consumer;
pub mod context;
pub mod database;
pub mod decode;
pub mod figures;
mod flush;
pub mod migrations;
pub mod ops;
pub mod partitions;
pub mod pipeline;
pub mod repack;
pub mod report;
pub mod retention;
pub mod rollups;
mod sweeper;
pub mod verdicts;
pub mod web;
mod writer;

pub use config::SinkConfig;
pub use consumer::{run, run_with, SinkError};

//! sitewatch agent library: the binary is a thin wrapper around [`app::main`].

pub mod app;
pub mod cli;
pub mod config;
pub mod ops;
pub mod plugins;
pub mod publisher;
pub mod scheduler;
pub mod spool;

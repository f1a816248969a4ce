//! sitewatch agent library: the binary is a thin wrapper around [`app::main`].

pub mod adapt;
pub mod app;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod limit;
pub mod once;
pub mod ops;
pub mod overload;
pub mod plugins;
pub mod publisher;
pub mod reload;
pub mod scheduler;
pub mod spool;
pub mod throttle;

//! `sitewatch-sink web`: the dashboard, site pages, public status page, JSON API, badges and
//! Prometheus metrics, served from PostgreSQL through the role's own connection pool with
//! read-only transactions (it works with a database role that may only SELECT).

mod api;
mod auth;
mod badge;
mod config;
mod error;
mod load;
mod maintenance;
mod metrics;
mod model;
mod pages;
mod range;
mod server;
mod verdicts;

pub use config::WebArgs;
pub use server::{router, serve, serve_on, WebError, WebState};

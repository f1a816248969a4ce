//! `sitewatch-sink report`: what the tables say about each site over a window,
//! for a terminal or (`--json`) for scripts.

mod query;
mod render;

pub use query::{load, Event, Report, ReportError, SiteReport};
pub use render::text;

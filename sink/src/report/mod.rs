//! `sitewatch-sink report`: what the tables say about each site over a window (its verdict,
//! each location's state, open incidents, MTTR, figures, recent events), for a terminal or
//! (`--json`) for scripts. A day or less is read from raw results; longer
//! windows, or ones beyond the raw results' retention, from rollups.

mod model;
mod query;
mod render;
mod verdicts;

pub use crate::figures::{source_for, Source};
pub use model::{Event, IncidentReport, LocationReport, Report, SiteReport};
pub use query::{load, ReportError};
pub use render::text;

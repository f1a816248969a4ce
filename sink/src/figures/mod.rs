//! Figures read from the stored results and rollups, shared by every reader (`report`, the
//! web pages and their JSON API): which table serves a window, each site's figures over a
//! window, and one site's figures bucket by bucket, per location or for the whole site.

mod buckets;
mod source;
mod window;

pub use buckets::{by_bucket, BucketFigures, Per, ALL_LOCATIONS};
pub use source::{choose, source_for, Source};
pub use window::{by_site, counts_by_site, uptime_pct, Figures};

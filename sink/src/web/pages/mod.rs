//! Server-rendered HTML (maud: every interpolated value is escaped unless wrapped in
//! `PreEscaped`, which only this module's constant CSS, JS and generated SVG numbers use).

mod charts;
mod dashboard;
mod format;
mod layout;
mod site;
mod status;

pub use dashboard::dashboard;
pub use format::pct as format_pct;
pub use layout::error_page;
pub use site::{site_page, SitePage};
pub use status::{status_page, StatusPage, StatusSite};

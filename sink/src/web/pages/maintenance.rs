//! Maintenance periods as a table (site page, status page): window, site, start, end and
//! whether it is scheduled, in progress or done.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::format::time;
use crate::web::maintenance::Maintenance;

/// The table; `empty` is shown when there is nothing.
pub fn maintenance_table(periods: &[Maintenance], now: DateTime<Utc>, empty: &str) -> Markup {
    html! {
        table #maintenance {
            thead { tr { th { "Maintenance" } th { "Site" } th { "Starts" } th { "Ends" } th { "" } } }
            tbody {
                @for m in periods {
                    tr.maintenance data-site=(m.site) data-state=(m.state(now)) {
                        td { (m.window) }
                        td { (m.site) }
                        td { (time(m.starts_at)) }
                        td { (time(m.ends_at)) }
                        td { span.pill.degraded { (m.state(now)) } }
                    }
                }
                @if periods.is_empty() { tr { td colspan="5" .muted { (empty) } } }
            }
        }
    }
}

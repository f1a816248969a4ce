//! Sample values of the result schema.

use chrono::Utc;
use sitewatch_checks::schema::Timings;
use sitewatch_checks::{CheckResult, Outcome, SCHEMA_VERSION};
use uuid::Uuid;

/// An `up` result for `site`, started now, with a fresh check id.
pub fn result(site: &str) -> CheckResult {
    CheckResult {
        schema: SCHEMA_VERSION,
        check_id: Uuid::now_v7(),
        site: site.to_string(),
        url: format!("http://127.0.0.1/{site}"),
        agent: "test-agent".into(),
        location: Some("test".into()),
        started_at: Utc::now(),
        outcome: Outcome::Up,
        error: None,
        http: None,
        timings_ms: Timings {
            total: 1.0,
            ..Default::default()
        },
        tls: None,
        regex: None,
        regex_absent: None,
        plugins: vec![],
        agent_lag_ms: None,
        agent_stall_ms: None,
    }
}

//! Reading sites' verdict state: the verdict, the policy from the catalog, every
//! location's state and the open incident, for a set of sites, in three statements. The
//! caller holds the sites' rows locked, so nothing it reads changes under it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sitewatch_checks::catalog::{Quorum, DEFAULT_FAILURE_THRESHOLD, DEFAULT_SUCCESS_THRESHOLD};
use sitewatch_checks::Outcome;
use tokio_postgres::{GenericClient, Row};

use super::location::{LocationState, Problem, Runs, Status, Thresholds};
use super::site::{Incident, Judged, Policy, SiteJudge};
use super::vote::Verdict;
use super::VerdictError;

/// The state of the sites `ids` (each must exist in `sites`), by id.
pub async fn load<C: GenericClient>(
    client: &C,
    ids: &[i32],
) -> Result<BTreeMap<i32, SiteJudge>, VerdictError> {
    let mut sites = BTreeMap::new();
    for row in client
        .query(
            "SELECT s.id, s.name, v.verdict, v.since, v.judged_at, v.reason, v.kafka_partition,
                    c.interval_ms, c.failure_threshold, c.success_threshold, c.quorum
             FROM sites s
             LEFT JOIN site_verdicts v ON v.site_id = s.id
             LEFT JOIN site_catalog c ON c.site = s.name
             WHERE s.id = ANY($1)",
            &[&ids],
        )
        .await?
    {
        let judge = site(&row)?;
        sites.insert(judge.site_id, judge);
    }
    for row in client
        .query(
            "SELECT ls.site_id, ls.location_id, l.name, ls.state, ls.state_since,
                    ls.problem_since, ls.problem_kind, ls.problem_message,
                    ls.up_run, ls.not_down_run, ls.not_up_run, ls.down_run,
                    ls.not_up_since, ls.not_up_kind, ls.not_up_message,
                    ls.down_since, ls.down_kind, ls.down_message,
                    ls.last_applied_at, ls.last_result_at, ls.last_outcome, ls.gap_ms,
                    ls.silent_since
             FROM location_states ls JOIN locations l ON l.id = ls.location_id
             WHERE ls.site_id = ANY($1)",
            &[&ids],
        )
        .await?
    {
        let state = location(&row)?;
        if let Some(site) = sites.get_mut(&row.get::<_, i32>(0)) {
            site.locations.insert(state.location_id, state);
        }
    }
    for row in client
        .query(
            &format!(
                "SELECT {} FROM incidents WHERE site_id = ANY($1) AND resolved_at IS NULL",
                Incident::OPEN_COLUMNS
            ),
            &[&ids],
        )
        .await?
    {
        if let Some(site) = sites.get_mut(&row.get::<_, i32>(1)) {
            site.incidents.push(Incident::open_from_row(&row));
        }
    }
    Ok(sites)
}

fn site(row: &Row) -> Result<SiteJudge, VerdictError> {
    let verdict = match row.get::<_, Option<&str>>(2) {
        None => None,
        Some(name) => Some(Judged {
            verdict: Verdict::parse(name)
                .ok_or_else(|| VerdictError::Data(format!("unknown verdict `{name}`")))?,
            since: row.get(3),
            judged_at: row.get(4),
            reason: row.get(5),
        }),
    };
    let quorum = match row.get::<_, Option<&str>>(10) {
        None => Quorum::default(),
        Some(text) => text
            .parse()
            .map_err(|e: String| VerdictError::Data(format!("site_catalog.quorum: {e}")))?,
    };
    Ok(SiteJudge {
        site_id: row.get(0),
        name: row.get(1),
        policy: Policy {
            interval_ms: row.get(7),
            thresholds: Thresholds {
                failure: row
                    .get::<_, Option<i32>>(8)
                    .unwrap_or(DEFAULT_FAILURE_THRESHOLD as i32),
                success: row
                    .get::<_, Option<i32>>(9)
                    .unwrap_or(DEFAULT_SUCCESS_THRESHOLD as i32),
            },
            quorum,
        },
        verdict,
        locations: BTreeMap::new(),
        incidents: Vec::new(),
        events: Vec::new(),
        reason_stale: false,
        partition: row.get(6),
        touched: BTreeSet::new(),
    })
}

/// A run head or problem from its three columns.
fn problem(row: &Row, at: usize) -> Option<Problem> {
    let since: Option<DateTime<Utc>> = row.get(at);
    since.map(|since| Problem {
        since,
        kind: row.get(at + 1),
        message: row.get(at + 2),
    })
}

fn location(row: &Row) -> Result<LocationState, VerdictError> {
    let state: &str = row.get(3);
    let status = Status::parse(state)
        .ok_or_else(|| VerdictError::Data(format!("unknown location state `{state}`")))?;
    let last_outcome = row.get::<_, Option<&str>>(20).and_then(|name| {
        [Outcome::Up, Outcome::Degraded, Outcome::Down]
            .into_iter()
            .find(|o| o.as_str() == name)
    });
    Ok(LocationState {
        location_id: row.get(1),
        name: row.get(2),
        status,
        status_since: row.get(4),
        problem: problem(row, 5),
        runs: Runs {
            up: row.get(8),
            not_down: row.get(9),
            not_up: row.get(10),
            down: row.get(11),
            not_up_head: problem(row, 12),
            down_head: problem(row, 15),
        },
        last_applied_at: row.get(18),
        last_result_at: row.get(19),
        last_outcome,
        gap_ms: row.get(21),
        silent_since: row.get(22),
    })
}

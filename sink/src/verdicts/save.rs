//! Writing what judging changed: location states, incidents, verdicts and events, a
//! handful of statements for any number of sites (one per incident, which are rare).

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::Json;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::location::Problem;
use super::site::{EventKind, Incident, SiteJudge};
use super::VerdictError;

/// What was written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Saved {
    /// `site_events` rows.
    pub events: u64,
    /// Incidents opened.
    pub opened: u64,
    /// Incidents resolved.
    pub resolved: u64,
    /// Incidents opened or resolved, in order (what notifications follow from).
    pub changes: Vec<IncidentChange>,
    /// Verdict changes, in order (what flapping is judged from).
    pub verdict_changes: Vec<VerdictChange>,
}

/// An incident opened or resolved by this save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentChange {
    /// `sites.id`.
    pub site_id: i32,
    /// `sites.name`.
    pub site: String,
    /// Opened (else resolved).
    pub opened: bool,
    /// The incident as written (its `id` is set).
    pub incident: Incident,
    /// The site's verdict and its reason after the change.
    pub verdict: String,
    /// Why, in words.
    pub reason: String,
}

/// A site's verdict changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictChange {
    /// `sites.id`.
    pub site_id: i32,
    /// When (the site's clock).
    pub at: DateTime<Utc>,
}

/// Writes every change of `sites`.
pub async fn save<C: GenericClient>(
    client: &C,
    sites: &mut [SiteJudge],
) -> Result<Saved, VerdictError> {
    let mut saved = Saved::default();
    for site in sites.iter_mut() {
        site.settle();
    }
    save_locations(client, sites).await?;
    for site in sites.iter_mut() {
        for incident in site.incidents.iter_mut().filter(|i| i.changed) {
            let locations: Vec<&String> = incident.locations.iter().collect();
            let opened = incident.id.is_none();
            match incident.id {
                None => {
                    let row = client
                        .query_one(
                            "INSERT INTO incidents (site_id, started_at, opened_at, resolved_at,
                                                    locations, first_error_kind, first_error)
                             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                            &[
                                &site.site_id,
                                &incident.started_at,
                                &incident.opened_at,
                                &incident.resolved_at,
                                &locations,
                                &incident.first_error_kind,
                                &incident.first_error,
                            ],
                        )
                        .await?;
                    incident.id = Some(row.get(0));
                    saved.opened += 1;
                }
                Some(id) => {
                    client
                        .execute(
                            "UPDATE incidents SET resolved_at = $2, locations = $3 WHERE id = $1",
                            &[&id, &incident.resolved_at, &locations],
                        )
                        .await?;
                }
            }
            if incident.resolved_at.is_some() {
                saved.resolved += 1;
            }
            incident.changed = false;
            let (verdict, reason) = site.verdict.as_ref().map_or_else(Default::default, |v| {
                (v.verdict.as_str().to_string(), v.reason.clone())
            });
            let change = |opened| IncidentChange {
                site_id: site.site_id,
                site: site.name.clone(),
                opened,
                incident: incident.clone(),
                verdict: verdict.clone(),
                reason: reason.clone(),
            };
            if opened {
                saved.changes.push(change(true));
            }
            if incident.resolved_at.is_some() {
                saved.changes.push(change(false));
            }
        }
    }
    save_verdicts(client, sites).await?;
    for site in sites.iter() {
        for e in site.events.iter().filter(|e| e.kind == EventKind::Verdict) {
            saved.verdict_changes.push(VerdictChange {
                site_id: site.site_id,
                at: e.at,
            });
        }
    }
    saved.events = save_events(client, sites).await?;
    Ok(saved)
}

/// (since, kind, message) columns of an optional problem.
fn split(p: Option<&Problem>) -> (Option<DateTime<Utc>>, Option<&str>, Option<&str>) {
    p.map_or((None, None, None), |p| {
        (Some(p.since), p.kind.as_deref(), p.message.as_deref())
    })
}

async fn save_locations<C: GenericClient>(
    client: &C,
    sites: &[SiteJudge],
) -> Result<(), VerdictError> {
    #[derive(Default)]
    struct Columns<'a> {
        site: Vec<i32>,
        location: Vec<i16>,
        state: Vec<&'static str>,
        state_since: Vec<Option<DateTime<Utc>>>,
        problem: [Vec<Option<DateTime<Utc>>>; 3],
        problem_kind: [Vec<Option<&'a str>>; 3],
        problem_message: [Vec<Option<&'a str>>; 3],
        runs: [Vec<i32>; 4],
        last_applied: Vec<DateTime<Utc>>,
        last_result: Vec<DateTime<Utc>>,
        last_outcome: Vec<Option<&'static str>>,
        gap: Vec<Option<i64>>,
        silent: Vec<Option<DateTime<Utc>>>,
    }
    let mut c = Columns::default();
    for site in sites {
        for l in site.touched.iter().filter_map(|id| site.locations.get(id)) {
            c.site.push(site.site_id);
            c.location.push(l.location_id);
            c.state.push(l.status.as_str());
            c.state_since.push(l.status_since);
            let problems = [
                l.problem.as_ref(),
                l.runs.not_up_head.as_ref(),
                l.runs.down_head.as_ref(),
            ];
            for (i, p) in problems.into_iter().enumerate() {
                let (since, kind, message) = split(p);
                c.problem[i].push(since);
                c.problem_kind[i].push(kind);
                c.problem_message[i].push(message);
            }
            let runs = [l.runs.up, l.runs.not_down, l.runs.not_up, l.runs.down];
            for (column, value) in c.runs.iter_mut().zip(runs) {
                column.push(value);
            }
            c.last_applied.push(l.last_applied_at);
            c.last_result.push(l.last_result_at);
            c.last_outcome.push(l.last_outcome.map(|o| o.as_str()));
            c.gap.push(l.gap_ms);
            c.silent.push(l.silent_since);
        }
    }
    if c.site.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "INSERT INTO location_states (site_id, location_id, state, state_since,
                 problem_since, problem_kind, problem_message,
                 not_up_since, not_up_kind, not_up_message,
                 down_since, down_kind, down_message,
                 up_run, not_down_run, not_up_run, down_run,
                 last_applied_at, last_result_at, last_outcome, gap_ms, silent_since)
             SELECT * FROM UNNEST($1::int[], $2::smallint[], $3::text[], $4::timestamptz[],
                 $5::timestamptz[], $6::text[], $7::text[],
                 $8::timestamptz[], $9::text[], $10::text[],
                 $11::timestamptz[], $12::text[], $13::text[],
                 $14::int[], $15::int[], $16::int[], $17::int[],
                 $18::timestamptz[], $19::timestamptz[], $20::text[], $21::bigint[],
                 $22::timestamptz[])
             ON CONFLICT (site_id, location_id) DO UPDATE SET
                 state = excluded.state, state_since = excluded.state_since,
                 problem_since = excluded.problem_since, problem_kind = excluded.problem_kind,
                 problem_message = excluded.problem_message,
                 not_up_since = excluded.not_up_since, not_up_kind = excluded.not_up_kind,
                 not_up_message = excluded.not_up_message,
                 down_since = excluded.down_since, down_kind = excluded.down_kind,
                 down_message = excluded.down_message,
                 up_run = excluded.up_run, not_down_run = excluded.not_down_run,
                 not_up_run = excluded.not_up_run, down_run = excluded.down_run,
                 last_applied_at = excluded.last_applied_at,
                 last_result_at = excluded.last_result_at,
                 last_outcome = excluded.last_outcome, gap_ms = excluded.gap_ms,
                 silent_since = excluded.silent_since",
            &[
                &c.site,
                &c.location,
                &c.state,
                &c.state_since,
                &c.problem[0],
                &c.problem_kind[0],
                &c.problem_message[0],
                &c.problem[1],
                &c.problem_kind[1],
                &c.problem_message[1],
                &c.problem[2],
                &c.problem_kind[2],
                &c.problem_message[2],
                &c.runs[0],
                &c.runs[1],
                &c.runs[2],
                &c.runs[3],
                &c.last_applied,
                &c.last_result,
                &c.last_outcome,
                &c.gap,
                &c.silent,
            ],
        )
        .await?;
    Ok(())
}

async fn save_verdicts<C: GenericClient>(
    client: &C,
    sites: &[SiteJudge],
) -> Result<(), VerdictError> {
    let judged: Vec<&SiteJudge> = sites.iter().filter(|s| s.verdict.is_some()).collect();
    if judged.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let (mut verdicts, mut since, mut judged_at, mut reasons) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut intervals, mut incidents, mut partitions) = (Vec::new(), Vec::new(), Vec::new());
    for site in judged {
        let Some(v) = site.verdict.as_ref() else {
            continue;
        };
        ids.push(site.site_id);
        verdicts.push(v.verdict.as_str());
        since.push(v.since);
        judged_at.push(v.judged_at);
        reasons.push(v.reason.as_str());
        intervals.push(site.interval_ms());
        incidents.push(
            site.incidents
                .iter()
                .find(|i| i.resolved_at.is_none())
                .and_then(|i| i.id),
        );
        partitions.push(site.partition);
    }
    client
        .execute(
            "INSERT INTO site_verdicts (site_id, verdict, since, judged_at, reason, interval_ms,
                                        incident_id, kafka_partition)
             SELECT * FROM UNNEST($1::int[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                                  $5::text[], $6::bigint[], $7::bigint[], $8::int[])
             ON CONFLICT (site_id) DO UPDATE SET
                 verdict = excluded.verdict, since = excluded.since,
                 judged_at = excluded.judged_at, reason = excluded.reason,
                 interval_ms = excluded.interval_ms, incident_id = excluded.incident_id,
                 kafka_partition = excluded.kafka_partition",
            &[
                &ids,
                &verdicts,
                &since,
                &judged_at,
                &reasons,
                &intervals,
                &incidents,
                &partitions,
            ],
        )
        .await?;
    Ok(())
}

async fn save_events<C: GenericClient>(
    client: &C,
    sites: &mut [SiteJudge],
) -> Result<u64, VerdictError> {
    let mut site: Vec<&str> = Vec::new();
    let mut kind: Vec<&str> = Vec::new();
    let mut previous: Vec<Option<&str>> = Vec::new();
    let mut new: Vec<&str> = Vec::new();
    let mut at: Vec<DateTime<Utc>> = Vec::new();
    let mut check: Vec<Option<Uuid>> = Vec::new();
    let mut reason: Vec<&str> = Vec::new();
    let mut location: Vec<Option<&str>> = Vec::new();
    let mut locations: Vec<Json<&Value>> = Vec::new();
    let mut incident: Vec<Option<i64>> = Vec::new();
    for s in sites.iter() {
        for e in &s.events {
            site.push(&s.name);
            kind.push(e.kind.as_str());
            previous.push(e.previous.as_deref());
            new.push(&e.new);
            at.push(e.at);
            check.push(e.check_id);
            reason.push(&e.reason);
            location.push(e.location.as_deref());
            locations.push(Json(&e.locations));
            incident.push(
                e.incident
                    .and_then(|i| s.incidents.get(i))
                    .and_then(|i| i.id),
            );
        }
    }
    let written = if site.is_empty() {
        0
    } else {
        client
            .execute(
                "INSERT INTO site_events (site, kind, previous_outcome, new_outcome, at, check_id,
                                          reason, location, locations, incident_id, recorded_at)
                 SELECT u.*, now() FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                        $5::timestamptz[], $6::uuid[], $7::text[], $8::text[], $9::jsonb[],
                        $10::bigint[]) AS u",
                &[
                    &site, &kind, &previous, &new, &at, &check, &reason, &location, &locations,
                    &incident,
                ],
            )
            .await?
    };
    for s in sites.iter_mut() {
        s.events.clear();
        s.touched.clear();
    }
    Ok(written)
}

//! Judging one site: its new results are applied to their locations in `started_at`
//! order, and after each the site is judged again at its clock. What changed is kept for
//! the caller to write: location states, the verdict, events and incidents.
//!
//! The rules (README "Verdicts" has them for users):
//! - A result starting no later than its location's latest counted check is *late*
//!   (stored and rolled up, but it changes no state). A result an overloaded agent took
//!   (error kind `agent_overloaded`) is not counted either.
//! - The site's clock is the latest start it has been judged at (never ahead of the
//!   database's clock): a location whose latest counted check is more than 3 intervals
//!   behind it is silent, leaves the vote, and a `location_silent` event is written.
//! - The interval is the catalog's; without a catalog entry, the longest gap between two
//!   counted checks of one of its locations (at least [`MIN_INFERRED_INTERVAL_MS`]);
//!   before any, [`DEFAULT_INTERVAL_MS`].
//! - An event is written for every verdict change, except a site's first verdict when it
//!   is `up`. An incident opens when the verdict becomes `down` (unless one is open) and
//!   is resolved when it becomes `up` or `degraded` (`unknown` leaves it open).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sitewatch_checks::catalog::Quorum;
use sitewatch_checks::Outcome;
use uuid::Uuid;

use super::location::{Counted, LocationState, Thresholds};
use super::vote::{vote, Verdict};

/// The interval assumed for a site with no catalog entry and no two checks yet from any
/// location (generous: too short an interval would call a slow site's locations silent).
pub const DEFAULT_INTERVAL_MS: i64 = 300_000;
/// The shortest interval inferred from the gaps between checks (the agent's default
/// interval): two agents sharing a location, or checks run by hand, leave short gaps.
pub const MIN_INFERRED_INTERVAL_MS: i64 = 60_000;
/// Intervals without a counted check after which a location is silent.
pub const SILENT_AFTER_INTERVALS: i64 = 3;
/// The error kind of results an overloaded agent could not judge.
pub const AGENT_OVERLOADED: &str = "agent_overloaded";

/// How a site is judged: from its catalog entry, else the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The catalog's interval.
    pub interval_ms: Option<i64>,
    /// Failure and success thresholds.
    pub thresholds: Thresholds,
    /// Failing locations that make it down.
    pub quorum: Quorum,
}

/// The verdict in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The verdict.
    pub verdict: Verdict,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The site's clock.
    pub judged_at: DateTime<Utc>,
    /// Why, in words.
    pub reason: String,
}

/// An incident, as stored or as made now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// `incidents.id`; `None` until written.
    pub id: Option<i64>,
    /// The first failing check that led to down.
    pub started_at: DateTime<Utc>,
    /// When the verdict became down.
    pub opened_at: DateTime<Utc>,
    /// When it recovered.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Locations failing while it was open.
    pub locations: BTreeSet<String>,
    /// Error kind of its first failing check.
    pub first_error_kind: Option<String>,
    /// Error message of its first failing check.
    pub first_error: Option<String>,
    /// Changed since loaded.
    pub changed: bool,
}

impl Incident {
    /// The `incidents` columns [`Incident::open_from_row`] reads, in its order (`site_id`
    /// second, for callers that group by site).
    pub const OPEN_COLUMNS: &'static str =
        "id, site_id, started_at, opened_at, locations, first_error_kind, first_error";

    /// An open incident from a row selected with [`Incident::OPEN_COLUMNS`] first.
    pub fn open_from_row(row: &tokio_postgres::Row) -> Incident {
        let locations: Vec<String> = row.get(4);
        Incident {
            id: Some(row.get(0)),
            started_at: row.get(2),
            opened_at: row.get(3),
            resolved_at: None,
            locations: locations.into_iter().collect(),
            first_error_kind: row.get(5),
            first_error: row.get(6),
            changed: false,
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The verdict changed.
    Verdict,
    /// A location went silent.
    LocationSilent,
}

impl EventKind {
    /// `site_events.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Verdict => "verdict",
            EventKind::LocationSilent => "location_silent",
        }
    }
}

/// A `site_events` row to write.
#[derive(Debug, Clone)]
pub struct Event {
    /// Verdict change or silent location.
    pub kind: EventKind,
    /// Verdict before (a location's state, for `location_silent`).
    pub previous: Option<String>,
    /// Verdict after (`silent`, for `location_silent`).
    pub new: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The check that caused it, if one did.
    pub check_id: Option<Uuid>,
    /// Why, in words.
    pub reason: String,
    /// The silent location.
    pub location: Option<String>,
    /// Every location's state at that moment.
    pub locations: serde_json::Value,
    /// Index in [`SiteJudge::incidents`] of the incident it opened, continued or resolved.
    pub incident: Option<usize>,
}

/// A result as judging needs it.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// `locations.id`.
    pub location_id: i16,
    /// Its name.
    pub location: &'a str,
    /// The check's start.
    pub at: DateTime<Utc>,
    /// Its outcome.
    pub outcome: Outcome,
    /// Its error kind as stored.
    pub kind: Option<&'a str>,
    /// Its error message.
    pub message: Option<&'a str>,
    /// Its check id.
    pub check_id: Uuid,
    /// Kafka partition it came from.
    pub partition: i32,
}

/// One site's state, judged as results come.
#[derive(Debug, Clone)]
pub struct SiteJudge {
    /// `sites.id`.
    pub site_id: i32,
    /// `sites.name`.
    pub name: String,
    /// How it is judged.
    pub policy: Policy,
    /// The verdict in force (`None`: never judged).
    pub verdict: Option<Judged>,
    /// Its locations by id.
    pub locations: BTreeMap<i16, LocationState>,
    /// The open incident as loaded (if any), then any made since.
    pub incidents: Vec<Incident>,
    /// Events to write, in order.
    pub events: Vec<Event>,
    /// Results partition of its latest results.
    pub partition: Option<i32>,
    /// Locations whose state changed (rows to write).
    pub touched: BTreeSet<i16>,
    /// The verdict's reason is behind the state it was judged at (see [`SiteJudge::settle`]).
    pub reason_stale: bool,
}

impl SiteJudge {
    /// The interval in force, in ms.
    pub fn interval_ms(&self) -> i64 {
        let inferred = || {
            let gap = self.locations.values().filter_map(|l| l.gap_ms).max()?;
            Some(gap.max(MIN_INFERRED_INTERVAL_MS))
        };
        self.policy
            .interval_ms
            .filter(|ms| *ms > 0)
            .or_else(inferred)
            .unwrap_or(DEFAULT_INTERVAL_MS)
    }

    fn silence(&self) -> Duration {
        Duration::milliseconds(self.interval_ms().saturating_mul(SILENT_AFTER_INTERVALS))
    }

    /// Applies one result (in `started_at` order per location) and judges the site again;
    /// `now` is the database's clock.
    pub fn observe(&mut self, r: &Observation<'_>, now: DateTime<Utc>) {
        self.partition = Some(r.partition);
        self.touched.insert(r.location_id);
        let clock = self.clock(r.at.min(now));
        let silence = self.silence();
        let thresholds = self.policy.thresholds;
        if !self.locations.contains_key(&r.location_id) {
            // A location joins the vote's inputs, perhaps without a judgement (a result not
            // counted): the reason of the last judgement is made before.
            self.settle();
        }
        let loc = self
            .locations
            .entry(r.location_id)
            .or_insert_with(|| LocationState::new(r.location_id, r.location, r.at));
        loc.last_result_at = loc.last_result_at.max(r.at);
        if r.at <= loc.last_applied_at || r.kind == Some(AGENT_OVERLOADED) {
            return;
        }
        let check = Counted {
            at: r.at,
            outcome: r.outcome,
            kind: r.kind,
            message: r.message,
        };
        loc.apply(&check, thresholds);
        // Back in the vote once it reports a check within the window again.
        if loc.silent_since.is_some() && r.at >= clock - silence {
            loc.silent_since = None;
        }
        self.judge(clock, Some(r.check_id));
    }

    /// Judges the site at the database's clock `now`, with no new result: locations
    /// silent by now leave the vote. Only for a site with a verdict; returns whether
    /// anything changed.
    pub fn sweep(&mut self, now: DateTime<Utc>) -> bool {
        if self.verdict.is_none() {
            return false;
        }
        let before = (self.events.len(), self.touched.len());
        let clock = self.clock(now);
        self.judge(clock, None);
        (self.events.len(), self.touched.len()) != before
    }

    /// The site's clock moved to `at` (it never goes back).
    fn clock(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        match &self.verdict {
            Some(v) => v.judged_at.max(at),
            None => at,
        }
    }

    fn judge(&mut self, clock: DateTime<Utc>, check_id: Option<Uuid>) {
        self.mark_silent(clock);
        let vote = vote(self.locations.values(), self.policy.quorum);
        let verdict = vote.verdict;
        // Only a down verdict opens or extends an incident: the failing locations, and when
        // the quorum's failures began (the quorum-th earliest failing check), are not needed
        // otherwise (most checks of most sites).
        let (failing, first) = if verdict == Verdict::Down {
            let failing: BTreeSet<String> = vote.failing.iter().map(|l| l.name.clone()).collect();
            let mut problems: Vec<_> = vote
                .failing
                .iter()
                .filter_map(|l| l.problem.as_ref())
                .collect();
            problems.sort_by_key(|p| p.since);
            let first = problems
                .get(vote.required.saturating_sub(1))
                .or(problems.last())
                .map(|p| (*p).clone());
            (failing, first)
        } else {
            (BTreeSet::new(), None)
        };
        let previous = self.verdict.as_ref().map(|v| v.verdict);
        let open = self.incidents.iter().position(|i| i.resolved_at.is_none());
        if previous == Some(verdict) || (previous.is_none() && verdict == Verdict::Unknown) {
            if let Some(v) = self.verdict.as_mut() {
                v.judged_at = clock;
                self.reason_stale = true;
            }
            if let (Verdict::Down, Some(i)) = (verdict, open) {
                self.extend(i, &failing);
            }
            return;
        }
        let reason = vote.reason(&self.silence_text());
        self.reason_stale = false;
        let incident = match (verdict, open) {
            (Verdict::Down, Some(i)) => {
                self.extend(i, &failing);
                Some(i)
            }
            (Verdict::Down, None) => {
                self.incidents.push(Incident {
                    id: None,
                    started_at: first.as_ref().map_or(clock, |p| p.since),
                    opened_at: clock,
                    resolved_at: None,
                    locations: failing,
                    first_error_kind: first.as_ref().and_then(|p| p.kind.clone()),
                    first_error: first.as_ref().and_then(|p| p.message.clone()),
                    changed: true,
                });
                Some(self.incidents.len() - 1)
            }
            (Verdict::Up | Verdict::Degraded, Some(i)) => {
                self.incidents[i].resolved_at = Some(clock);
                self.incidents[i].changed = true;
                Some(i)
            }
            _ => None,
        };
        if previous.is_some() || verdict != Verdict::Up {
            self.events.push(Event {
                kind: EventKind::Verdict,
                previous: previous.map(|v| v.as_str().to_string()),
                new: verdict.as_str().to_string(),
                at: clock,
                check_id,
                reason: reason.clone(),
                location: None,
                locations: self.locations_json(),
                incident,
            });
        }
        self.verdict = Some(Judged {
            verdict,
            since: clock,
            judged_at: clock,
            reason,
        });
    }

    /// Brings the verdict's reason up to the site's state. Judging again without a change
    /// only marks it stale (a reason is text, made for every result otherwise); nothing
    /// the vote reads changes between judgements, so this gives the last one's reason.
    pub fn settle(&mut self) {
        if !std::mem::take(&mut self.reason_stale) {
            return;
        }
        let reason = vote(self.locations.values(), self.policy.quorum).reason(&self.silence_text());
        if let Some(v) = self.verdict.as_mut() {
            v.reason = reason;
        }
    }

    /// The silence window as the reasons write it.
    fn silence_text(&self) -> String {
        sitewatch_checks::ops::units::format_duration(self.silence().to_std().unwrap_or_default())
    }

    fn extend(&mut self, i: usize, failing: &BTreeSet<String>) {
        let incident = &mut self.incidents[i];
        if !failing.is_subset(&incident.locations) {
            incident.locations.extend(failing.iter().cloned());
            incident.changed = true;
        }
    }

    /// Locations more than the silence window behind `clock` leave the vote, each with a
    /// `location_silent` event.
    fn mark_silent(&mut self, clock: DateTime<Utc>) {
        let silence = self.silence();
        let gone: Vec<i16> = self
            .locations
            .values()
            .filter(|l| l.silent_since.is_none() && l.last_applied_at < clock - silence)
            .map(|l| l.location_id)
            .collect();
        if gone.is_empty() {
            return;
        }
        let window =
            sitewatch_checks::ops::units::format_duration(silence.to_std().unwrap_or_default());
        for id in gone {
            let Some(loc) = self.locations.get_mut(&id) else {
                continue;
            };
            let at = loc.last_applied_at + silence;
            loc.silent_since = Some(at);
            let mut reason = format!("no counted check from {} for {window}", loc.name);
            if loc.last_result_at > loc.last_applied_at {
                reason.push_str(" (its latest results were late or taken by an overloaded agent)");
            }
            let previous = loc.status.as_str().to_string();
            let location = loc.name.clone();
            self.touched.insert(id);
            self.events.push(Event {
                kind: EventKind::LocationSilent,
                previous: Some(previous),
                new: "silent".to_string(),
                at,
                check_id: None,
                reason,
                location: Some(location),
                locations: self.locations_json(),
                incident: None,
            });
        }
    }

    /// Every location's state, for an event.
    fn locations_json(&self) -> serde_json::Value {
        self.locations
            .values()
            .map(|l| {
                json!({
                    "location": l.name,
                    "state": l.status.as_str(),
                    "since": l.status_since,
                    "voting": l.votes(),
                    "silent_since": l.silent_since,
                    "problem": l.problem.as_ref().map(|p| json!({
                        "since": p.since, "kind": p.kind, "message": p.message,
                    })),
                })
            })
            .collect()
    }
}

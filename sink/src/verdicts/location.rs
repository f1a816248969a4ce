//! One location's state for one site, from that location's own counted checks in
//! `started_at` order. A check's level is its outcome (up < degraded < down). The state
//! gets worse after `failure_threshold` checks in a row at that level or worse (`failing`:
//! down; `degraded`: degraded or down), and better after `success_threshold` checks in a
//! row at that level or better. A new location is `pending` (it does not vote) until one
//! of those rules first gives it a state.

use chrono::{DateTime, Utc};
use sitewatch_checks::Outcome;

/// Where a location stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Not enough checks yet to say; does not vote.
    Pending,
    /// Its checks are good.
    Passing,
    /// Its checks are degraded (or a mix of degraded and down).
    Degraded,
    /// Its checks are down.
    Failing,
}

impl Status {
    /// The name stored in `location_states.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Passing => "passing",
            Status::Degraded => "degraded",
            Status::Failing => "failing",
        }
    }

    /// The status a stored name stands for.
    pub fn parse(name: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Passing,
            Status::Degraded,
            Status::Failing,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// A check that starts a run of bad checks: when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Its start.
    pub since: DateTime<Utc>,
    /// Its error kind.
    pub kind: Option<String>,
    /// Its error message.
    pub message: Option<String>,
}

/// Counts of the latest checks in a row at each level, and where the bad runs began.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runs {
    /// Checks in a row that were up.
    pub up: i32,
    /// Checks in a row that were not down.
    pub not_down: i32,
    /// Checks in a row that were not up.
    pub not_up: i32,
    /// Checks in a row that were down.
    pub down: i32,
    /// First check of the current not-up run.
    pub not_up_head: Option<Problem>,
    /// First check of the current down run.
    pub down_head: Option<Problem>,
}

/// Thresholds from the site's catalog entry (or the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Bad checks in a row that make a location worse.
    pub failure: i32,
    /// Good checks in a row that make it better.
    pub success: i32,
}

/// A counted check, as the state machine sees it.
#[derive(Debug, Clone)]
pub struct Counted<'a> {
    /// Its start.
    pub at: DateTime<Utc>,
    /// Its outcome.
    pub outcome: Outcome,
    /// Its error kind, if any.
    pub kind: Option<&'a str>,
    /// Its error message, if any.
    pub message: Option<&'a str>,
}

impl Counted<'_> {
    fn problem(&self) -> Problem {
        Problem {
            since: self.at,
            kind: self.kind.map(str::to_string),
            message: self.message.map(str::to_string),
        }
    }
}

/// One location's state for one site (a `location_states` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationState {
    /// `locations.id`.
    pub location_id: i16,
    /// `locations.name`.
    pub name: String,
    /// Where it stands.
    pub status: Status,
    /// Start of the check that confirmed `status`.
    pub status_since: Option<DateTime<Utc>>,
    /// First bad check of the run behind `status` (none while passing or pending).
    pub problem: Option<Problem>,
    /// The latest runs.
    pub runs: Runs,
    /// Start of the latest counted check; a check starting no later is late.
    pub last_applied_at: DateTime<Utc>,
    /// Start of the latest result of any kind (late, or taken by an overloaded agent).
    pub last_result_at: DateTime<Utc>,
    /// Outcome of the latest counted check.
    pub last_outcome: Option<Outcome>,
    /// Time between its last two counted checks.
    pub gap_ms: Option<i64>,
    /// Out of the vote since then: silent for three intervals.
    pub silent_since: Option<DateTime<Utc>>,
}

impl LocationState {
    /// A location seen for the first time, with a result started at `at` (not yet applied).
    pub fn new(location_id: i16, name: &str, at: DateTime<Utc>) -> Self {
        LocationState {
            location_id,
            name: name.to_string(),
            status: Status::Pending,
            status_since: None,
            problem: None,
            runs: Runs::default(),
            // Just before `at`, so the first check is not late.
            last_applied_at: at - chrono::Duration::microseconds(1),
            last_result_at: at,
            last_outcome: None,
            gap_ms: None,
            silent_since: None,
        }
    }

    /// Whether it takes part in the vote.
    pub fn votes(&self) -> bool {
        self.silent_since.is_none() && self.status != Status::Pending
    }

    /// Applies a counted check (the caller has made sure it is not late); returns the
    /// status before when the status changed.
    pub fn apply(&mut self, check: &Counted<'_>, t: Thresholds) -> Option<Status> {
        if self.last_outcome.is_some() {
            self.gap_ms = Some((check.at - self.last_applied_at).num_milliseconds());
        }
        self.last_applied_at = check.at;
        self.last_result_at = self.last_result_at.max(check.at);
        self.last_outcome = Some(check.outcome);
        let r = &mut self.runs;
        match check.outcome {
            Outcome::Up => {
                r.up += 1;
                r.not_down += 1;
                (r.not_up, r.down) = (0, 0);
                (r.not_up_head, r.down_head) = (None, None);
            }
            Outcome::Degraded => {
                r.up = 0;
                r.not_down += 1;
                r.not_up += 1;
                r.down = 0;
                r.down_head = None;
                r.not_up_head.get_or_insert_with(|| check.problem());
            }
            Outcome::Down => {
                (r.up, r.not_down) = (0, 0);
                r.not_up += 1;
                r.down += 1;
                r.not_up_head.get_or_insert_with(|| check.problem());
                r.down_head.get_or_insert_with(|| check.problem());
            }
        }
        let next = self.next_status(t);
        if next == self.status {
            return None;
        }
        let before = std::mem::replace(&mut self.status, next);
        self.status_since = Some(check.at);
        self.problem = match next {
            Status::Failing => self.runs.down_head.clone(),
            Status::Degraded => self.runs.not_up_head.clone(),
            Status::Passing | Status::Pending => None,
        };
        Some(before)
    }

    /// The status the runs call for.
    fn next_status(&self, t: Thresholds) -> Status {
        let r = &self.runs;
        let s = self.status;
        if r.down >= t.failure && s < Status::Failing {
            return Status::Failing;
        }
        if r.not_up >= t.failure && s < Status::Degraded {
            return Status::Degraded;
        }
        match s {
            Status::Pending | Status::Degraded if r.up >= t.success => Status::Passing,
            Status::Failing if r.not_down >= t.success => {
                if r.up >= t.success {
                    Status::Passing
                } else {
                    Status::Degraded
                }
            }
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        failure: 2,
        success: 1,
    };

    /// The statuses after each of `outcomes` (`u`, `d`, `x` = up, degraded, down), a second apart.
    fn walk(outcomes: &str, t: Thresholds) -> Vec<Status> {
        let start = Utc::now();
        let mut s = LocationState::new(1, "eu", start);
        outcomes
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let outcome = match c {
                    'u' => Outcome::Up,
                    'd' => Outcome::Degraded,
                    _ => Outcome::Down,
                };
                let check = Counted {
                    at: start + chrono::Duration::seconds(i as i64),
                    outcome,
                    kind: (outcome != Outcome::Up).then_some("connect"),
                    message: None,
                };
                s.apply(&check, t);
                s.status
            })
            .collect()
    }

    #[test]
    fn thresholds_confirm_changes_and_flapping_changes_nothing() {
        use Status::*;
        assert_eq!(
            walk("uxuxux", T),
            [Passing; 6],
            "flapping inside the thresholds"
        );
        assert_eq!(walk("xxu", T), [Pending, Failing, Passing]);
        assert_eq!(
            walk("uxxxdu", T),
            [Passing, Passing, Failing, Failing, Degraded, Passing]
        );
        assert_eq!(walk("uddu", T), [Passing, Passing, Degraded, Passing]);
        assert_eq!(walk("udxd", T), [Passing, Passing, Degraded, Degraded]);
        let strict = Thresholds {
            failure: 3,
            success: 2,
        };
        assert_eq!(
            walk("uxxxuxuu", strict),
            [Pending, Pending, Pending, Failing, Failing, Failing, Failing, Passing]
        );
    }

    #[test]
    fn the_problem_is_the_first_check_of_the_run_that_confirmed_it() {
        let start = Utc::now();
        let mut s = LocationState::new(1, "eu", start);
        for (i, (outcome, kind)) in [
            (Outcome::Up, None),
            (Outcome::Degraded, Some("slow")),
            (Outcome::Down, Some("timeout")),
            (Outcome::Down, Some("connect")),
        ]
        .into_iter()
        .enumerate()
        {
            let at = start + chrono::Duration::seconds(i as i64);
            s.apply(
                &Counted {
                    at,
                    outcome,
                    kind,
                    message: None,
                },
                T,
            );
        }
        assert_eq!(s.status, Status::Failing);
        let problem = s.problem.clone().unwrap();
        assert_eq!(problem.since, start + chrono::Duration::seconds(2));
        assert_eq!(problem.kind.as_deref(), Some("timeout"));
        assert_eq!(s.status_since, Some(start + chrono::Duration::seconds(3)));
        assert_eq!(s.gap_ms, Some(1000));
    }
}

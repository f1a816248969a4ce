//! A site's verdict from its active locations (not silent): `down` when at least the
//! quorum of them are failing, `degraded` when some are failing or degraded but fewer than
//! the quorum, `up` otherwise, `unknown` when none has a state yet (all `pending`, or none
//! active). A pending location counts among the active ones: one location's failure is not
//! a majority while the others have not decided yet.

use sitewatch_checks::catalog::Quorum;

use super::location::{LocationState, Status};

/// A site's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every voting location passes.
    Up,
    /// Some voting locations fail or are degraded, fewer than the quorum fail.
    Degraded,
    /// At least the quorum of voting locations fail.
    Down,
    /// No location votes.
    Unknown,
}

impl Verdict {
    /// The name stored in `site_verdicts.verdict` and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Degraded => "degraded",
            Verdict::Down => "down",
            Verdict::Unknown => "unknown",
        }
    }

    /// The verdict a stored name stands for.
    pub fn parse(name: &str) -> Option<Verdict> {
        [
            Verdict::Up,
            Verdict::Degraded,
            Verdict::Down,
            Verdict::Unknown,
        ]
        .into_iter()
        .find(|v| v.as_str() == name)
    }
}

/// The outcome of a vote, with who voted how.
#[derive(Debug, Clone)]
pub struct Vote<'a> {
    /// The verdict.
    pub verdict: Verdict,
    /// Failing locations needed for `down`.
    pub required: usize,
    /// Active locations (pending ones included).
    pub voting: usize,
    /// The failing ones, by name.
    pub failing: Vec<&'a LocationState>,
    /// The degraded ones, by name.
    pub degraded: Vec<&'a LocationState>,
}

/// Counts the votes of `locations` under `quorum`.
pub fn vote<'a>(locations: impl Iterator<Item = &'a LocationState>, quorum: Quorum) -> Vote<'a> {
    let voting: Vec<&LocationState> = locations.filter(|l| l.silent_since.is_none()).collect();
    let pick = |status| -> Vec<&'a LocationState> {
        voting
            .iter()
            .copied()
            .filter(|l| l.status == status)
            .collect()
    };
    let (failing, degraded) = (pick(Status::Failing), pick(Status::Degraded));
    let required = quorum.required(voting.len());
    let verdict = if voting.iter().all(|l| l.status == Status::Pending) {
        Verdict::Unknown
    } else if failing.len() >= required {
        Verdict::Down
    } else if !failing.is_empty() || !degraded.is_empty() {
        Verdict::Degraded
    } else {
        Verdict::Up
    };
    Vote {
        verdict,
        required,
        voting: voting.len(),
        failing,
        degraded,
    }
}

impl Vote<'_> {
    /// Why, in words: how many locations fail against the quorum, and each one's error.
    pub fn reason(&self, silence: &str) -> String {
        if self.voting == 0 {
            return format!("no location reported within 3 intervals ({silence})");
        }
        if self.verdict == Verdict::Unknown {
            return format!("no location has a state yet ({} pending)", self.voting);
        }
        let describe = |ls: &[&LocationState]| {
            ls.iter()
                .map(|l| match l.problem.as_ref() {
                    Some(p) => {
                        let what = [p.kind.as_deref(), p.message.as_deref()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(": ");
                        format!("{} ({what})", l.name)
                    }
                    None => l.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = format!(
            "{} of {} locations failing (quorum {})",
            self.failing.len(),
            self.voting,
            self.required
        );
        if !self.failing.is_empty() {
            text.push_str(&format!(": {}", describe(&self.failing)));
        }
        if !self.degraded.is_empty() {
            text.push_str(&format!("; degraded: {}", describe(&self.degraded)));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(status: Status, name: &str) -> LocationState {
        let mut l = LocationState::new(1, name, Utc::now());
        l.status = status;
        l
    }

    #[test]
    fn the_quorum_of_voting_locations_decides() {
        use Status::*;
        let three = |a, b, c| [at(a, "eu"), at(b, "us"), at(c, "ap")];
        let v = |ls: &[LocationState], q| vote(ls.iter(), q).verdict;
        let regional = three(Passing, Passing, Failing);
        assert_eq!(v(&regional, Quorum::Majority), Verdict::Degraded);
        assert_eq!(v(&regional, Quorum::Any), Verdict::Down);
        assert_eq!(
            v(&three(Failing, Passing, Failing), Quorum::Majority),
            Verdict::Down
        );
        assert_eq!(
            v(&three(Failing, Passing, Failing), Quorum::All),
            Verdict::Degraded
        );
        assert_eq!(
            v(&three(Passing, Degraded, Passing), Quorum::Majority),
            Verdict::Degraded
        );
        assert_eq!(
            v(&three(Passing, Pending, Passing), Quorum::All),
            Verdict::Up
        );
        assert_eq!(
            v(&three(Pending, Pending, Pending), Quorum::Any),
            Verdict::Unknown
        );
        // Undecided locations count: one failing location of three is not a majority yet.
        assert_eq!(
            v(&three(Pending, Pending, Failing), Quorum::Majority),
            Verdict::Degraded
        );
        // A silent location leaves the vote: 1 of the 2 left is not a majority.
        let mut silent = three(Failing, Passing, Failing);
        silent[0].silent_since = Some(Utc::now());
        assert_eq!(v(&silent, Quorum::Majority), Verdict::Degraded);
        let vote = vote(regional.iter(), Quorum::Majority);
        assert_eq!(
            vote.reason("90s"),
            "1 of 3 locations failing (quorum 2): ap"
        );
    }
}

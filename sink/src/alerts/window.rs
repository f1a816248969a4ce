//! Maintenance windows from the sink config: which sites one covers (name patterns, tags,
//! groups) and when it is open, one-off (an RFC 3339 start) or recurring (days of the
//! week, a local `HH:MM` start, an IANA time zone). Notifications stay quiet while a
//! window is open; probing continues and the time is marked.
//!
//! Local times that do not exist (a recurring 02:30 on the day clocks spring forward) start
//! when the clock would have shown them had it not jumped, i.e. shifted by the length of
//! the gap (02:30 CET = 03:30 CEST); times that exist twice (autumn) start at the first.
//! A window lasts its `duration` of real time either way.

use std::time::Duration;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::Deserialize;

/// Longest a recurring window may last (longer, it would never close).
const MAX_RECURRING: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most days [`MaintenanceWindowConfig::occurrences`] looks at (about 30 years).
const MAX_DAYS: i64 = 11_000;

/// One maintenance window (`maintenance:` list of the sink config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindowConfig {
    /// Name shown on pages and in logs.
    pub name: String,
    /// Site name patterns the window covers (`*` matches any characters; `*` alone: all).
    #[serde(default)]
    pub sites: Vec<String>,
    /// Sites with any of these tags are covered.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Sites in any of these groups are covered.
    #[serde(default)]
    pub groups: Vec<String>,
    /// One-off: the start as RFC 3339 (`2026-12-01T22:00:00Z`); recurring: local `HH:MM`.
    pub start: String,
    /// How long each occurrence lasts (`30m`, `2h`).
    #[serde(deserialize_with = "super::channel::duration::required")]
    pub duration: Duration,
    /// Recurring: the days it starts on (`mon` .. `sun`); empty for a one-off window.
    #[serde(default)]
    pub days: Vec<String>,
    /// Recurring: IANA time zone of `start` (e.g. `Europe/Berlin`; default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
}

/// What is wrong with a window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maintenance window `{window}`, field `{field}`: {message}")]
pub struct WindowError {
    /// The window's name.
    pub window: String,
    /// The offending field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// When a window is open, parsed.
#[derive(Debug, Clone)]
enum Schedule {
    Once {
        start: DateTime<Utc>,
    },
    Weekly {
        days: Vec<Weekday>,
        at: NaiveTime,
        tz: Tz,
    },
}

impl MaintenanceWindowConfig {
    /// Whether the window applies to a site with this name, tags and group.
    pub fn covers(&self, site: &str, tags: &[String], group: Option<&str>) -> bool {
        self.sites.iter().any(|p| glob(p, site))
            || self.tags.iter().any(|t| tags.contains(t))
            || group.is_some_and(|g| self.groups.iter().any(|x| x == g))
    }

    /// Whether the window is open at `t` (start included, end excluded). An invalid window
    /// (see [`validate`](Self::validate)) is never open.
    pub fn active_at(&self, t: DateTime<Utc>) -> bool {
        !self
            .occurrences(t, t + chrono::Duration::nanoseconds(1))
            .is_empty()
    }

    /// The occurrences overlapping `[from, to)`, as `(start, end)` in order.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let (Ok(schedule), Ok(length)) =
            (self.schedule(), chrono::Duration::from_std(self.duration))
        else {
            return Vec::new();
        };
        if from >= to {
            return Vec::new();
        }
        let overlaps = |s: DateTime<Utc>| s < to && s + length > from;
        match schedule {
            Schedule::Once { start } => {
                if overlaps(start) {
                    vec![(start, start + length)]
                } else {
                    Vec::new()
                }
            }
            Schedule::Weekly { days, at, tz } => {
                // Local dates from one whole window before `from` up to the day after `to`.
                let first = from.with_timezone(&tz).date_naive()
                    - chrono::Duration::days(length.num_days() + 1);
                let last = to.with_timezone(&tz).date_naive() + chrono::Duration::days(1);
                let mut out = Vec::new();
                let mut date = first;
                let mut seen = 0;
                while date <= last && seen < MAX_DAYS {
                    if days.contains(&date.weekday()) {
                        let start = local_to_utc(&tz, date.and_time(at));
                        if overlaps(start) {
                            out.push((start, start + length));
                        }
                    }
                    date = date.succ_opt().unwrap_or(NaiveDate::MAX);
                    seen += 1;
                }
                out
            }
        }
    }

    /// Every problem with the window at once.
    pub fn validate(&self) -> Result<(), Vec<WindowError>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(self.error("name", "is empty"));
        }
        if self.sites.is_empty() && self.tags.is_empty() && self.groups.is_empty() {
            errors.push(self.error(
                "sites",
                "the window covers no site: give sites, tags or groups (sites: [\"*\"] for all)",
            ));
        }
        for (i, p) in self.sites.iter().enumerate() {
            if p.trim().is_empty() {
                errors.push(self.error(&format!("sites[{i}]"), "is empty"));
            }
        }
        if self.duration.is_zero() {
            errors.push(self.error("duration", "must be longer than zero"));
        }
        if let Err(mut e) = self.schedule() {
            errors.append(&mut e);
        }
        if !self.days.is_empty() && self.duration > MAX_RECURRING {
            errors.push(self.error("duration", "a recurring window lasts at most 7 days"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn schedule(&self) -> Result<Schedule, Vec<WindowError>> {
        let mut errors = Vec::new();
        if self.days.is_empty() {
            if self.timezone.is_some() {
                errors.push(self.error(
                    "timezone",
                    "only for recurring windows (a one-off start carries its UTC offset)",
                ));
            }
            return match DateTime::parse_from_rfc3339(self.start.trim()) {
                Ok(start) if errors.is_empty() => Ok(Schedule::Once {
                    start: start.with_timezone(&Utc),
                }),
                Ok(_) => Err(errors),
                Err(e) => {
                    let hint = if NaiveTime::parse_from_str(self.start.trim(), "%H:%M").is_ok() {
                        " (a daily time needs `days`)"
                    } else {
                        ""
                    };
                    errors.push(self.error(
                        "start",
                        &format!("`{}` is not an RFC 3339 time ({e}){hint}", self.start),
                    ));
                    Err(errors)
                }
            };
        }
        let mut days = Vec::new();
        for (i, d) in self.days.iter().enumerate() {
            match d.trim().parse::<Weekday>() {
                Ok(day) => days.push(day),
                Err(_) => errors.push(self.error(
                    &format!("days[{i}]"),
                    &format!("`{d}` is not a day (mon, tue, wed, thu, fri, sat, sun)"),
                )),
            }
        }
        let at = NaiveTime::parse_from_str(self.start.trim(), "%H:%M")
            .map_err(|_| {
                errors.push(self.error(
                    "start",
                    &format!(
                        "`{}` is not a local time HH:MM (recurring window)",
                        self.start
                    ),
                ))
            })
            .ok();
        let tz = match &self.timezone {
            None => Some(Tz::UTC),
            Some(name) => name
                .trim()
                .parse::<Tz>()
                .map_err(|_| {
                    errors.push(self.error(
                        "timezone",
                        &format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)"),
                    ))
                })
                .ok(),
        };
        match (at, tz) {
            (Some(at), Some(tz)) if errors.is_empty() => Ok(Schedule::Weekly { days, at, tz }),
            _ => Err(errors),
        }
    }

    fn error(&self, field: &str, message: &str) -> WindowError {
        WindowError {
            window: self.name.clone(),
            field: field.to_string(),
            message: message.to_string(),
        }
    }
}

/// Validates a list of windows: each one's problems, and duplicate names.
pub fn validate_all(windows: &[MaintenanceWindowConfig]) -> Result<(), Vec<WindowError>> {
    let mut errors = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        if let Err(mut e) = w.validate() {
            errors.append(&mut e);
        }
        if windows[..i].iter().any(|x| x.name == w.name) {
            errors.push(w.error("name", "another window has this name"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The instant a local wall-clock time names in `tz` (see the module doc for gaps and
/// repeated hours).
fn local_to_utc(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return t.with_timezone(&Utc);
    }
    // In a gap: use the offset in force before it (a day earlier is before any gap).
    let before = local - chrono::Duration::days(1);
    let offset = tz
        .from_local_datetime(&before)
        .earliest()
        .map(|t| t.offset().fix().local_minus_utc())
        .unwrap_or(0);
    (local - chrono::Duration::seconds(i64::from(offset))).and_utc()
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Position after the last `*` and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if let Some((after, at)) = star {
            pi = after;
            ti = at + 1;
            star = Some((after, at + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_stars_anywhere() {
        assert!(glob("*", "shop"));
        assert!(glob("shop-*", "shop-eu"));
        assert!(!glob("shop-*", "shop"));
        assert!(glob("*-eu", "shop-eu"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("shop", "shop"));
        assert!(!glob("shop", "shops"));
        assert!(glob("**x", "abx"));
    }
}

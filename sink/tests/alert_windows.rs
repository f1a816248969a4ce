//! Maintenance windows: which sites they cover, one-off and weekly recurring windows in a
//! time zone (summer and winter time, the spring-forward gap and the repeated autumn
//! hour), windows across midnight, and validation reporting every problem at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use sitewatch_sink::alerts::window::{validate_all, MaintenanceWindowConfig};

fn window(v: serde_json::Value) -> MaintenanceWindowConfig {
    let w: MaintenanceWindowConfig = serde_json::from_value(v).unwrap();
    w.validate().unwrap();
    w
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

#[test]
fn covers_sites_by_pattern_tag_or_group() {
    let w = window(
        json!({"name": "db", "sites": ["shop-*", "api"], "tags": ["db"],
                          "groups": ["store"], "start": "2026-12-01T22:00:00Z", "duration": "1h"}),
    );
    let none: Vec<String> = vec![];
    assert!(w.covers("shop-eu", &none, None));
    assert!(w.covers("api", &none, None));
    assert!(!w.covers("api2", &none, None));
    assert!(!w.covers("shop", &none, None));
    assert!(w.covers("blog", &["web".into(), "db".into()], None));
    assert!(w.covers("blog", &none, Some("store")));
    assert!(!w.covers("blog", &["web".into()], Some("news")));
    let all = window(
        json!({"name": "all", "sites": ["*"], "start": "2026-12-01T22:00:00Z", "duration": "1h"}),
    );
    assert!(all.covers("anything", &none, None));
}

#[test]
fn a_one_off_window_is_open_from_its_start_for_its_duration() {
    let w = window(json!({"name": "migration", "sites": ["*"],
                          "start": "2026-12-01T23:00:00+01:00", "duration": "90m"}));
    assert!(!w.active_at(utc(2026, 12, 1, 21, 59)));
    assert!(w.active_at(utc(2026, 12, 1, 22, 0)));
    assert!(w.active_at(utc(2026, 12, 1, 23, 29)));
    assert!(!w.active_at(utc(2026, 12, 1, 23, 30)), "end excluded");
    assert_eq!(
        w.occurrences(utc(2026, 12, 1, 0, 0), utc(2026, 12, 2, 0, 0)),
        vec![(utc(2026, 12, 1, 22, 0), utc(2026, 12, 1, 23, 30))]
    );
    assert!(w
        .occurrences(utc(2026, 12, 2, 0, 0), utc(2026, 12, 3, 0, 0))
        .is_empty());
}

#[test]
fn a_recurring_window_follows_local_time_in_winter_and_summer() {
    let w = window(
        json!({"name": "weekly", "sites": ["*"], "days": ["sat", "Sunday"],
                          "start": "22:00", "duration": "2h", "timezone": "Europe/Berlin"}),
    );
    // Winter (UTC+1): Saturday 2026-12-05 22:00 local = 21:00 UTC.
    assert!(w.active_at(utc(2026, 12, 5, 21, 0)));
    assert!(w.active_at(utc(2026, 12, 5, 22, 59)));
    assert!(!w.active_at(utc(2026, 12, 5, 23, 0)));
    assert!(!w.active_at(utc(2026, 12, 4, 21, 30)), "Friday");
    // Summer (UTC+2): Saturday 2026-07-04 22:00 local = 20:00 UTC.
    assert!(w.active_at(utc(2026, 7, 4, 20, 0)));
    assert!(!w.active_at(utc(2026, 7, 4, 22, 0)));
    // A week has two occurrences, in order.
    let week = w.occurrences(utc(2026, 11, 30, 0, 0), utc(2026, 12, 7, 0, 0));
    assert_eq!(
        week,
        vec![
            (utc(2026, 12, 5, 21, 0), utc(2026, 12, 5, 23, 0)),
            (utc(2026, 12, 6, 21, 0), utc(2026, 12, 6, 23, 0)),
        ]
    );
}

#[test]
fn a_window_across_midnight_is_found_from_the_next_day() {
    let w = window(json!({"name": "night", "sites": ["*"], "days": ["sat"],
                          "start": "23:00", "duration": "3h"}));
    // Sunday 01:00 UTC is inside Saturday's window.
    assert!(w.active_at(utc(2026, 12, 6, 1, 0)));
    assert_eq!(
        w.occurrences(utc(2026, 12, 6, 1, 0), utc(2026, 12, 6, 2, 0)),
        vec![(utc(2026, 12, 5, 23, 0), utc(2026, 12, 6, 2, 0))]
    );
}

#[test]
fn a_start_in_the_spring_forward_gap_moves_by_the_gap() {
    // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist.
    let w = window(
        json!({"name": "dst", "sites": ["*"], "days": ["sun"], "start": "02:30",
                          "duration": "1h", "timezone": "Europe/Berlin"}),
    );
    let got = w.occurrences(utc(2026, 3, 29, 0, 0), utc(2026, 3, 30, 0, 0));
    // 02:30 CET would be 01:30 UTC, shown as 03:30 CEST: one hour of real time from there.
    assert_eq!(
        got,
        vec![(utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2, 30))]
    );
    assert!(!w.active_at(utc(2026, 3, 29, 1, 29)));
    assert!(w.active_at(utc(2026, 3, 29, 1, 30)));
    // The Sundays either side are ordinary: 02:30 CET (01:30 UTC), 02:30 CEST (00:30 UTC).
    assert!(w.active_at(utc(2026, 3, 22, 1, 30)));
    assert!(w.active_at(utc(2026, 4, 5, 0, 30)));
    assert!(!w.active_at(utc(2026, 4, 5, 1, 30)));
}

#[test]
fn a_start_in_the_repeated_autumn_hour_starts_at_the_first() {
    // Europe/Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
    let w = window(
        json!({"name": "dst", "sites": ["*"], "days": ["sun"], "start": "02:30",
                          "duration": "1h", "timezone": "Europe/Berlin"}),
    );
    let got = w.occurrences(utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0));
    assert_eq!(
        got,
        vec![(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30))]
    );
}

#[test]
fn validation_reports_every_problem_at_once() {
    let w: MaintenanceWindowConfig = serde_json::from_value(json!({
        "name": "broken", "days": ["mon", "funday"], "start": "25:00",
        "duration": "0s", "timezone": "Mars/Olympus"
    }))
    .unwrap();
    let errors = w.validate().unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for field in ["sites", "duration", "days[1]", "start", "timezone"] {
        assert!(
            text.iter().any(|e| e.contains(&format!("field `{field}`"))),
            "no error for {field}: {text:#?}"
        );
    }
    assert!(text.iter().all(|e| e.contains("`broken`")), "{text:#?}");
    assert!(
        !w.active_at(utc(2026, 11, 30, 0, 0)),
        "an invalid window is never open"
    );
}

#[test]
fn one_off_and_recurring_forms_are_not_mixed() {
    let daily_without_days: MaintenanceWindowConfig = serde_json::from_value(
        json!({"name": "a", "sites": ["*"], "start": "02:00", "duration": "1h"}),
    )
    .unwrap();
    let e = daily_without_days.validate().unwrap_err()[0].to_string();
    assert!(e.contains("needs `days`"), "{e}");
    let zoned_one_off: MaintenanceWindowConfig = serde_json::from_value(json!({
        "name": "b", "sites": ["*"], "start": "2026-12-01T22:00:00Z", "duration": "1h",
        "timezone": "Europe/Berlin"
    }))
    .unwrap();
    assert!(zoned_one_off.validate().unwrap_err()[0]
        .to_string()
        .contains("timezone"));
    let dup = vec![
        window(
            json!({"name": "x", "sites": ["*"], "start": "2026-12-01T22:00:00Z", "duration": "1h"}),
        ),
        window(
            json!({"name": "x", "sites": ["a"], "start": "2026-12-02T22:00:00Z", "duration": "1h"}),
        ),
    ];
    assert!(validate_all(&dup).unwrap_err()[0]
        .to_string()
        .contains("another window"));
}

#[test]
fn unknown_fields_and_bad_durations_are_errors_naming_them() {
    let e = serde_json::from_value::<MaintenanceWindowConfig>(json!({
        "name": "a", "sites": ["*"], "start": "22:00", "duration": "1h", "day": ["mon"]
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("`day`"), "{e}");
    let e = serde_json::from_value::<MaintenanceWindowConfig>(json!({
        "name": "a", "sites": ["*"], "start": "22:00", "duration": "an hour", "days": ["mon"]
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("an hour"), "{e}");
}

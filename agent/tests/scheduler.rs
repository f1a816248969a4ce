//! Scheduler behaviour under paused tokio time: fixed-rate slots, spread start,
//! no overlapping checks per site, the global concurrency cap, and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sitewatch_agent::scheduler::{self, Limits, SchedulerStats};
use sitewatch_checks::schema::Timings;
use sitewatch_checks::spec::{CheckSpec, StatusSet, DEFAULT_MAX_BODY_BYTES};
use sitewatch_checks::{CheckResult, Outcome, SCHEMA_VERSION};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn spec(name: &str, interval: Duration) -> Arc<CheckSpec> {
    Arc::new(CheckSpec {
        name: name.to_string(),
        url: url::Url::parse("http://127.0.0.1:9/").unwrap(),
        method: http::Method::GET,
        headers: http::HeaderMap::new(),
        body: None,
        interval,
        timeout: Duration::from_secs(5),
        expect_status: StatusSet::default(),
        regex: None,
        regex_absent: None,
        degraded_after: None,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        follow_redirects: 0,
        tls: None,
        plugins: vec![],
    })
}

fn result(spec: &CheckSpec) -> CheckResult {
    CheckResult {
        schema: SCHEMA_VERSION,
        check_id: uuid::Uuid::now_v7(),
        site: spec.name.clone(),
        url: spec.url.to_string(),
        agent: "test".into(),
        location: None,
        started_at: Utc::now(),
        outcome: Outcome::Up,
        error: None,
        http: None,
        timings_ms: Timings::default(),
        tls: None,
        regex: None,
        regex_absent: None,
        plugins: vec![],
    }
}

type Starts = Arc<Mutex<HashMap<String, Vec<u128>>>>;

struct Run {
    /// Start times (ms since the scheduler started) per site.
    starts: HashMap<String, Vec<u128>>,
    /// Results that reached the output channel.
    received: usize,
    stats: Arc<SchedulerStats>,
    /// Most checks seen running at once.
    peak: usize,
}

/// Runs the scheduler for `run_for` of paused time; each check lasts `check_takes`.
async fn run_sites(
    sites: Vec<Arc<CheckSpec>>,
    check_takes: Duration,
    max_concurrency: usize,
    run_for: Duration,
) -> Run {
    let origin = Instant::now();
    let starts: Starts = Arc::default();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let per_site: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let check = {
        let (starts, running, peak, per_site) = (
            starts.clone(),
            running.clone(),
            peak.clone(),
            per_site.clone(),
        );
        move |spec: Arc<CheckSpec>| {
            let (starts, running, peak, per_site) = (
                starts.clone(),
                running.clone(),
                peak.clone(),
                per_site.clone(),
            );
            async move {
                starts
                    .lock()
                    .unwrap()
                    .entry(spec.name.clone())
                    .or_default()
                    .push(origin.elapsed().as_millis());
                {
                    let mut m = per_site.lock().unwrap();
                    let n = m.entry(spec.name.clone()).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "site {} checked twice at once", spec.name);
                }
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(check_takes).await;
                running.fetch_sub(1, Ordering::SeqCst);
                *per_site.lock().unwrap().get_mut(&spec.name).unwrap() -= 1;
                result(&spec)
            }
        }
    };
    let (tx, mut rx) = mpsc::channel(10_000);
    let token = CancellationToken::new();
    let stats = Arc::new(SchedulerStats::default());
    let limits = Limits {
        max_concurrency,
        shutdown_grace: Duration::from_secs(30),
    };
    let handle = tokio::spawn(scheduler::run(
        sites,
        check,
        tx,
        limits,
        token.clone(),
        stats.clone(),
    ));
    let collector = tokio::spawn(async move {
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        n
    });
    tokio::time::sleep(run_for).await;
    token.cancel();
    handle.await.unwrap();
    let received = collector.await.unwrap();
    let starts = starts.lock().unwrap().clone();
    Run {
        starts,
        received,
        stats,
        peak: peak.load(Ordering::SeqCst),
    }
}

/// Starts must be exactly `count` slots `first + k * every`; tokio's timer rounds up to the next ms.
fn assert_slots(starts: &[u128], first: u128, every: u128, count: u128) {
    let expected: Vec<u128> = (0..count).map(|k| first + k * every).collect();
    assert_eq!(
        starts.len(),
        expected.len(),
        "starts {starts:?}, expected {expected:?}"
    );
    for (got, want) in starts.iter().zip(&expected) {
        assert!(
            got.abs_diff(*want) <= 1,
            "starts {starts:?}, expected {expected:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn sites_run_on_spread_fixed_rate_slots_without_drift() {
    let sites = vec![
        spec("a", Duration::from_secs(10)),
        spec("b", Duration::from_secs(10)),
        spec("c", Duration::from_secs(4)),
    ];
    // Each check takes 1.3 s: a drifting scheduler (sleep after finishing) would slip by that much per run.
    let run = run_sites(
        sites,
        Duration::from_millis(1300),
        100,
        Duration::from_millis(60_500),
    )
    .await;
    // Site i of n first runs at interval * i / n, then every interval from there.
    assert_slots(&run.starts["a"], 0, 10_000, 7);
    assert_slots(&run.starts["b"], 3_333, 10_000, 6);
    assert_slots(&run.starts["c"], 2_666, 4_000, 15);
    let started: usize = run.starts.values().map(Vec::len).sum();
    assert_eq!(run.received, started, "every check's result is sent");
    assert_eq!(run.stats.slots_skipped.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn overrunning_check_is_never_run_twice_and_skips_missed_slots() {
    // 25 s checks on a 10 s interval: slots 10 and 20 fall inside the first run and are skipped,
    // 40 and 50 inside the second, 70 and 80 inside the third (which finishes during the shutdown grace).
    let run = run_sites(
        vec![spec("slow", Duration::from_secs(10))],
        Duration::from_secs(25),
        10,
        Duration::from_secs(65),
    )
    .await;
    assert_eq!(run.starts["slow"], vec![0, 30_000, 60_000]);
    assert_eq!(run.stats.slots_skipped.load(Ordering::Relaxed), 6);
}

#[tokio::test(start_paused = true)]
async fn global_concurrency_limit_holds() {
    let sites: Vec<_> = (0..50)
        .map(|i| spec(&format!("s{i}"), Duration::from_millis(100)))
        .collect();
    let run = run_sites(sites, Duration::from_secs(1), 4, Duration::from_secs(5)).await;
    assert_eq!(
        run.peak, 4,
        "at most max_concurrency checks at once, and the cap is reached"
    );
    let total: usize = run.starts.values().map(Vec::len).sum();
    assert!(
        total >= 4 * 5,
        "checks keep flowing under the cap, got {total}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_in_flight_checks_finish_and_publishes_them() {
    // The check takes 3 s and shutdown comes at 1 s: its result is still sent, no new check starts.
    let run = run_sites(
        vec![spec("x", Duration::from_secs(60))],
        Duration::from_secs(3),
        10,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(run.starts["x"].len(), 1);
    assert_eq!(run.received, 1);
    assert_eq!(run.stats.checks_abandoned.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn run_once_checks_every_site_exactly_once() {
    let sites: Vec<_> = (0..20)
        .map(|i| spec(&format!("s{i}"), Duration::from_secs(60)))
        .collect();
    let results =
        scheduler::run_once(sites, |s: Arc<CheckSpec>| async move { result(&s) }, 3).await;
    let mut names: Vec<_> = results.iter().map(|r| r.site.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20);
    assert_eq!(results.len(), 20);
}

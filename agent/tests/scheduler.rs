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
        agent_lag_ms: None,
        agent_stall_ms: None,
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
        move |spec: Arc<CheckSpec>, _started: scheduler::Started| {
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
    let run = sitewatch_agent::once::run_once(
        sites,
        |s: Arc<CheckSpec>| async move { result(&s) },
        3,
        CancellationToken::new(),
        Duration::from_secs(1),
    )
    .await;
    assert!(!run.interrupted);
    let results = run.results;
    let mut names: Vec<_> = results.iter().map(|r| r.site.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20);
    assert_eq!(results.len(), 20);
}

type CheckFuture = std::pin::Pin<Box<dyn std::future::Future<Output = CheckResult> + Send>>;

/// A scheduler whose checks take `check_takes` and record their start (ms) per site.
struct Live<F> {
    scheduler: scheduler::Scheduler<F>,
    starts: Starts,
    results: Arc<Mutex<Vec<(String, String)>>>,
    token: CancellationToken,
}

fn live(
    check_takes: Duration,
) -> Live<impl Fn(Arc<CheckSpec>, scheduler::Started) -> CheckFuture + Clone + Send + Sync + 'static>
{
    let origin = Instant::now();
    let starts: Starts = Arc::default();
    let busy: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let check = {
        let (starts, busy) = (starts.clone(), busy.clone());
        move |spec: Arc<CheckSpec>, _: scheduler::Started| {
            let (starts, busy) = (starts.clone(), busy.clone());
            Box::pin(async move {
                starts
                    .lock()
                    .unwrap()
                    .entry(spec.name.clone())
                    .or_default()
                    .push(origin.elapsed().as_millis());
                {
                    let mut b = busy.lock().unwrap();
                    let n = b.entry(spec.name.clone()).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "site {} checked twice at once", spec.name);
                }
                tokio::time::sleep(check_takes).await;
                *busy.lock().unwrap().get_mut(&spec.name).unwrap() -= 1;
                let mut r = result(&spec);
                r.url = spec.url.to_string();
                r
            }) as CheckFuture
        }
    };
    let (tx, mut rx) = mpsc::channel::<CheckResult>(10_000);
    let results: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let collected = results.clone();
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            collected.lock().unwrap().push((r.site, r.url));
        }
    });
    let token = CancellationToken::new();
    let scheduler = scheduler::Scheduler::new(
        check,
        tx,
        sitewatch_agent::limit::ConcurrencyLimit::new(100),
        token.clone(),
        Arc::new(SchedulerStats::default()),
    );
    Live {
        scheduler,
        starts,
        results,
        token,
    }
}

fn with_url(spec: &CheckSpec, url: &str) -> Arc<CheckSpec> {
    let mut changed = spec.clone();
    changed.url = url::Url::parse(url).unwrap();
    Arc::new(changed)
}

#[tokio::test(start_paused = true)]
async fn reload_adds_removes_restarts_and_leaves_unchanged_sites_alone() {
    let mut live = live(Duration::from_millis(300));
    let (keep, drop_me, change) = (
        spec("keep", Duration::from_secs(1)),
        spec("drop", Duration::from_secs(1)),
        spec("change", Duration::from_secs(1)),
    );
    let first = live
        .scheduler
        .apply(vec![keep.clone(), drop_me.clone(), change.clone()]);
    assert_eq!(first.added, 3);
    // Slots: keep 0, drop 333, change 666 (+ k s). At 2.4 s: drop's third check (2,333)
    // and change's (1,666 done; next 2,666) are where they are.
    tokio::time::sleep(Duration::from_millis(2_400)).await;
    let changes = live.scheduler.apply(vec![
        keep.clone(),
        with_url(&change, "http://127.0.0.1:9/new"),
        spec("new-a", Duration::from_secs(1)),
        spec("new-b", Duration::from_secs(1)),
    ]);
    assert_eq!(
        (
            changes.added,
            changes.removed,
            changes.changed,
            changes.unchanged
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(live.scheduler.sites(), 4);
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    live.token.cancel();
    live.scheduler.drain(Duration::from_secs(5)).await;
    tokio::task::yield_now().await;

    let starts = live.starts.lock().unwrap().clone();
    // The unchanged site kept its slots: 0, 1000, ... 5000.
    assert_slots(&starts["keep"], 0, 1_000, 6);
    // The removed site stopped after its check in flight (started 2,333, sent at 2,633).
    assert_eq!(
        starts["drop"].last().map(|t| t.abs_diff(2_333) <= 1),
        Some(true)
    );
    let results = live.results.lock().unwrap().clone();
    let drop_results = results.iter().filter(|(s, _)| s == "drop").count();
    assert_eq!(
        drop_results,
        starts["drop"].len(),
        "its last result is still sent"
    );
    // Restarted and new sites are spread over their interval from the reload
    // (change, new-a, new-b: +0, +333, +666 ms).
    assert!(
        starts["new-a"][0].abs_diff(2_733) <= 1,
        "{:?}",
        starts["new-a"]
    );
    assert!(
        starts["new-b"][0].abs_diff(3_066) <= 1,
        "{:?}",
        starts["new-b"]
    );
    // The changed site restarted at once with its new definition.
    let change_urls: Vec<&str> = results
        .iter()
        .filter(|(s, _)| s == "change")
        .map(|(_, u)| u.as_str())
        .collect();
    assert_eq!(change_urls.first(), Some(&"http://127.0.0.1:9/"));
    assert_eq!(change_urls.last(), Some(&"http://127.0.0.1:9/new"));
    assert!(starts["change"].contains(&2_400), "{:?}", starts["change"]);
}

#[tokio::test(start_paused = true)]
async fn a_changed_site_waits_for_its_check_in_flight() {
    // Checks take 3 s; the site changes 0.5 s into its first: the new definition's first
    // check starts when the old one ends (the closure asserts no overlap).
    let mut live = live(Duration::from_secs(3));
    let x = spec("x", Duration::from_secs(1));
    live.scheduler.apply(vec![x.clone()]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    live.scheduler
        .apply(vec![with_url(&x, "http://127.0.0.1:9/v2")]);
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    live.token.cancel();
    live.scheduler.drain(Duration::from_secs(10)).await;
    let starts = live.starts.lock().unwrap().clone();
    assert_eq!(starts["x"], vec![0, 3_000]);
}

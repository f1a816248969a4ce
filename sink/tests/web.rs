//! `sitewatch-sink web` over HTTP against real PostgreSQL: pages, the JSON API, badges and
//! `/metrics` show the stored results; hostile names and errors are escaped; unknown sites
//! are 404; ranges are bounded; credentials are required where they should be; the binary
//! works with a database role that may only SELECT.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use sitewatch_checks::catalog::{Quorum, SiteDefinition, CATALOG_SCHEMA_VERSION};
use sitewatch_checks::schema::CheckError;
use sitewatch_checks::{ErrorKind, Outcome};
use sitewatch_sink::database::Database;
use sitewatch_sink::migrations;
use sitewatch_sink::pipeline::{write_batch, Batch, CatalogEntry, Row};
use sitewatch_sink::web::WebArgs;
use sitewatch_tests::fixtures::result;
use sitewatch_tests::http::{get, Response};
use support::TestDb;
use tokio_util::sync::CancellationToken;

const HOSTILE: &str = "<script>alert(1)</script>";
const HOSTILE_ERROR: &str = "<img src=x onerror=alert(2)>";

fn check(site: &str, location: &str, outcome: Outcome, minutes_ago: i64, total_ms: f64) -> Row {
    let mut r = result(site);
    r.agent = format!("agent-{location}");
    r.location = Some(location.into());
    r.outcome = outcome;
    r.started_at = (Utc::now() - chrono::Duration::minutes(minutes_ago)).trunc_subsecs(3);
    r.timings_ms.total = total_ms;
    r.timings_ms.dns = Some(1.5);
    r.timings_ms.connect = Some(2.5);
    if outcome == Outcome::Down {
        r.error = Some(CheckError {
            kind: ErrorKind::HttpStatus,
            message: if site == HOSTILE {
                HOSTILE_ERROR.into()
            } else {
                "expected 200-399, got 503".into()
            },
        });
    }
    Row::new(0, 0, r)
}

fn define(site: &str, public: bool, group: Option<&str>, tags: &[&str]) -> CatalogEntry {
    let at = Utc::now() - chrono::Duration::hours(1);
    CatalogEntry {
        site: site.into(),
        definition: Some(SiteDefinition {
            schema: CATALOG_SCHEMA_VERSION,
            site: site.into(),
            url: format!("http://internal.example/{site}"),
            interval_ms: 600_000,
            timeout_ms: 5000,
            failure_threshold: 2,
            success_threshold: 1,
            quorum: Quorum::Majority,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            group: group.map(str::to_string),
            public,
            agent: "agent-eu".into(),
            location: Some("eu".into()),
            published_at: at,
        }),
        timestamp: at,
    }
}

/// A catalog (10-minute interval, thresholds 2/1, majority) and checks from eu and us:
/// steady is up everywhere; flaky fails in both locations (down), recovers in eu (degraded:
/// incident resolved after 4 minutes) and fails in eu again (down: a second, open incident);
/// the hostile site is down from eu, its only location, with a hostile error; `newcomer`
/// has one failed check (its location is pending: unknown).
async fn filled() -> TestDb {
    let db = TestDb::create().await;
    let mut client = db.client().await;
    migrations::migrate(&mut client).await.unwrap();
    let catalog = vec![
        define("steady", true, Some("Shop"), &["tier-1"]),
        define("flaky", false, None, &["tier-1"]),
        define(HOSTILE, true, Some("<i>grp</i>"), &["<b>t</b>"]),
    ];
    let rows = vec![
        check("steady", "eu", Outcome::Up, 30, 10.0),
        check("steady", "us", Outcome::Up, 29, 20.0),
        check("steady", "eu", Outcome::Up, 10, 30.0),
        check("steady", "us", Outcome::Up, 9, 40.0),
        check("flaky", "eu", Outcome::Up, 30, 5.0),
        check("flaky", "us", Outcome::Up, 25, 6.0),
        check("flaky", "eu", Outcome::Down, 20, 7.0),
        check("flaky", "eu", Outcome::Down, 18, 7.0),
        check("flaky", "us", Outcome::Down, 16, 8.0),
        check("flaky", "us", Outcome::Down, 15, 8.0),
        check("flaky", "eu", Outcome::Up, 12, 9.0),
        check("flaky", "eu", Outcome::Down, 5, 10.0),
        check("flaky", "eu", Outcome::Down, 4, 10.0),
        check(HOSTILE, "eu", Outcome::Down, 5, 3.0),
        check(HOSTILE, "eu", Outcome::Down, 4, 3.0),
        check("newcomer", "eu", Outcome::Down, 1, 3.0),
    ];
    for batch in [
        Batch {
            catalog,
            ..Batch::default()
        },
        Batch {
            rows,
            ..Batch::default()
        },
    ] {
        write_batch(&mut client, &batch).await.unwrap();
    }
    db
}

/// The web role on a free port, on its own runtime thread; stopped when the token is cancelled.
fn start(url: &str, flags: &[&str]) -> (String, CancellationToken) {
    let db = Database::new(url, None, None).unwrap();
    let args = WebArgs::from_flags(flags).unwrap();
    let token = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = token.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            sitewatch_sink::web::serve_on(listener, &db, args, stop)
                .await
                .unwrap();
        });
    });
    (rx.recv_timeout(Duration::from_secs(30)).unwrap(), token)
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

fn site_path(name: &str) -> String {
    format!(
        "/sites/{}",
        name.replace('<', "%3C")
            .replace('>', "%3E")
            .replace('/', "%2F")
            .replace('(', "%28")
            .replace(')', "%29")
    )
}

#[tokio::test]
async fn pages_api_badges_and_metrics_show_the_stored_results_escaped() {
    let db = filled().await;
    let (addr, token) = start(&db.url(), &[]);

    // Dashboard: every site, worst first, hostile text escaped.
    let page = get(&addr, "/", &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(
        !page.body.contains(HOSTILE),
        "unescaped site name on the dashboard"
    );
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for (site, verdict) in [("steady", "up"), ("flaky", "down"), ("newcomer", "unknown")] {
        assert!(
            page.body
                .contains(&format!("data-site=\"{site}\" data-verdict=\"{verdict}\"")),
            "{site} {verdict}: {}",
            page.body
        );
    }
    let order: Vec<usize> = [
        "data-verdict=\"down\"",
        "data-verdict=\"unknown\"",
        "data-verdict=\"up\"",
    ]
    .iter()
    .map(|v| page.body.find(v).unwrap())
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "worst first: {order:?}"
    );
    assert!(page
        .body
        .contains(&HOSTILE_ERROR.replace('<', "&lt;").replace('>', "&gt;")));
    assert!(!page.body.contains(HOSTILE_ERROR) && !page.body.contains("<b>t</b>"));
    assert!(
        page.body.contains("#&lt;b&gt;t&lt;/b&gt;"),
        "hostile tag escaped"
    );

    // Filters by catalog tag and group.
    let tagged = get(&addr, "/?tag=tier-1", &[]).body;
    assert_eq!(tagged.matches("<tr class=\"site\"").count(), 2, "{tagged}");
    assert!(tagged.contains("data-site=\"flaky\"") && tagged.contains("data-site=\"steady\""));
    let grouped = get(&addr, "/?group=%3Ci%3Egrp%3C%2Fi%3E", &[]).body;
    assert_eq!(
        grouped.matches("<tr class=\"site\"").count(),
        1,
        "{grouped}"
    );
    assert!(grouped.contains("&lt;script&gt;"));

    // API: verdicts, locations and figures from the rollups.
    let api = json(&get(&addr, "/api/v1/sites", &[]));
    let sites = api["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 4);
    let flaky = sites.iter().find(|s| s["name"] == "flaky").unwrap();
    assert_eq!(flaky["verdict"], "down");
    assert_eq!(flaky["tags"], serde_json::json!(["tier-1"]));
    let pct = flaky["uptime"]["pct_24h"].as_f64().unwrap();
    assert!((pct - 300.0 / 9.0).abs() < 1e-9, "{pct}");
    assert!((pct - flaky["uptime"]["pct_90d"].as_f64().unwrap()).abs() < 1e-9);
    let locations: Vec<(&str, &str)> = flaky["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["state"].as_str().unwrap()))
        .collect();
    assert_eq!(locations, [("eu", "down"), ("us", "down")]);
    assert!(flaky["open_incident"]["first_error"]
        .as_str()
        .unwrap()
        .contains("503"));
    let steady = sites.iter().find(|s| s["name"] == "steady").unwrap();
    assert_eq!(
        (steady["verdict"].as_str(), steady["group"].as_str()),
        (Some("up"), Some("Shop"))
    );
    assert_eq!(steady["uptime"]["pct_30d"].as_f64(), Some(100.0));
    let p95 = steady["uptime"]["p95_ms_24h"].as_f64().unwrap();
    assert!((p95 - 40.0).abs() <= 40.0 * 0.021, "{p95}");
    let newcomer = sites.iter().find(|s| s["name"] == "newcomer").unwrap();
    assert_eq!(newcomer["locations"][0]["state"], "unknown");

    let uptime = json(&get(&addr, "/api/v1/sites/flaky/uptime?range=1d", &[]));
    assert_eq!(
        (uptime["checks"].as_i64(), uptime["down"].as_i64()),
        (Some(9), Some(6))
    );
    assert_eq!(uptime["source"], "results");
    let uptime = json(&get(&addr, "/api/v1/sites/flaky/uptime?range=30d", &[]));
    assert_eq!(
        (uptime["checks"].as_i64(), uptime["source"].as_str()),
        (Some(9), Some("daily_rollups"))
    );
    let incidents = json(&get(&addr, "/api/v1/incidents?site=flaky&range=1d", &[]));
    let incidents = incidents.as_array().unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert!(incidents[0]["ended_at"].is_null());
    assert_eq!(incidents[0]["locations"], serde_json::json!(["eu", "us"]));
    assert_eq!(
        incidents[1]["duration_seconds"].as_i64(),
        Some(240),
        "{incidents:?}"
    );
    let all = json(&get(&addr, "/api/v1/incidents", &[]));
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    let failures = json(&get(&addr, "/api/v1/sites/flaky/failures", &[]));
    assert_eq!(failures.as_array().unwrap().len(), 6);
    assert_eq!(failures[0]["dns_ms"].as_f64(), Some(1.5));
    assert_eq!(failures[0]["location"], "eu");
    let daily = json(&get(&addr, "/api/v1/sites/steady/daily", &[]));
    assert_eq!(daily["all"]["points"][0]["checks"].as_i64(), Some(4));
    assert_eq!(daily["locations"].as_array().unwrap().len(), 2);

    // Site pages, including the hostile one, and 404s.
    let page = get(&addr, "/sites/flaky?range=24h", &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("expected 200-399, got 503"));
    assert_eq!(page.body.matches("class=\"incident\"").count(), 2);
    assert_eq!(page.body.matches("class=\"failed-check\"").count(), 6);
    assert_eq!(
        page.body.matches("class=\"bar ").count(),
        2 * 90,
        "90 bars per location"
    );
    let page = get(&addr, &site_path(HOSTILE), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains(HOSTILE) && !page.body.contains(HOSTILE_ERROR));
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let missing = get(&addr, &site_path("<b>nope</b>"), &[]);
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("&lt;b&gt;nope&lt;/b&gt;") && !missing.body.contains("<b>nope"));
    assert_eq!(get(&addr, "/nowhere", &[]).status, 404);
    let api_missing = get(&addr, "/api/v1/sites/nope/uptime", &[]);
    assert_eq!(api_missing.status, 404);
    assert!(json(&api_missing)["error"]
        .as_str()
        .unwrap()
        .contains("nope"));
    assert_eq!(get(&addr, "/api/v1/nothing", &[]).status, 404);

    // Ranges are bounded.
    for bad in ["367d", "5m", "forever", "100000000000d"] {
        assert_eq!(
            get(&addr, &format!("/sites/steady?range={bad}"), &[]).status,
            400,
            "{bad}"
        );
        assert_eq!(
            get(
                &addr,
                &format!("/api/v1/sites/steady/uptime?range={bad}"),
                &[]
            )
            .status,
            400,
            "{bad}"
        );
        assert_eq!(
            get(&addr, &format!("/badge/steady/uptime/{bad}.svg"), &[]).status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        get(&addr, "/api/v1/sites/flaky/failures?limit=100000", &[]).status,
        400
    );

    // Badges, with cache headers.
    let badge = get(&addr, "/badge/steady/status.svg", &[]);
    assert_eq!(badge.status, 200);
    assert!(badge
        .header("content-type")
        .unwrap()
        .starts_with("image/svg+xml"));
    assert_eq!(badge.header("cache-control"), Some("public, max-age=60"));
    assert!(badge.body.contains(">up<"), "{}", badge.body);
    let badge = get(&addr, "/badge/flaky/uptime/30d.svg", &[]);
    assert_eq!(badge.header("cache-control"), Some("public, max-age=300"));
    assert!(
        badge.body.contains("33.33%") && badge.body.contains("uptime 30d"),
        "{}",
        badge.body
    );
    assert_eq!(get(&addr, "/badge/nope/status.svg", &[]).status, 404);
    assert_eq!(get(&addr, "/badge/steady/uptime/30d.png", &[]).status, 404);

    // Prometheus.
    let metrics = get(&addr, "/metrics", &[]).body;
    assert!(
        metrics.contains("sitewatch_site_up{site=\"steady\",group=\"Shop\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("sitewatch_site_up{site=\"flaky\",group=\"\"} 0\n"));
    assert!(
        !metrics.contains("sitewatch_site_up{site=\"newcomer\""),
        "unknown has no up series"
    );
    assert!(metrics
        .contains("sitewatch_site_verdict{site=\"newcomer\",group=\"\",verdict=\"unknown\"} 1\n"));
    assert!(metrics.contains(
        "sitewatch_site_uptime_ratio{site=\"steady\",group=\"Shop\",window=\"90d\"} 1\n"
    ));
    assert!(metrics.contains("sitewatch_location_up{site=\"flaky\",location=\"eu\"} 0\n"));
    assert!(metrics.contains("sitewatch_site_incident_open{site=\"flaky\",group=\"\"} 1\n"));
    assert_eq!(get(&addr, "/healthz", &[]).status, 200);

    // The status page: public sites only, grouped, no internal detail.
    let status = get(&addr, "/status", &[]);
    assert_eq!(status.status, 200);
    let body = &status.body;
    assert!(
        body.contains("data-site=\"steady\"") && body.contains("&lt;script&gt;"),
        "{body}"
    );
    assert!(!body.contains("data-site=\"flaky\"") && !body.contains("newcomer"));
    assert!(body.contains("Partial outage"));
    assert!(
        body.contains("data-group=\"Shop\"")
            && body.contains("data-group=\"&lt;i&gt;grp&lt;/i&gt;\"")
    );
    for hidden in ["internal.example", "503", "onerror", "agent-eu"] {
        assert!(!body.contains(hidden), "{hidden} on the status page");
    }
    assert_eq!(
        body.matches("class=\"incident\"").count(),
        1,
        "the hostile site's incident"
    );
    let shop = get(&addr, "/status/Shop", &[]).body;
    assert!(shop.contains("data-site=\"steady\"") && !shop.contains("&lt;script&gt;"));
    assert!(shop.contains("All systems operational"));
    assert_eq!(get(&addr, "/status/nogroup", &[]).status, 404);
    token.cancel();
}

#[tokio::test]
async fn credentials_guard_everything_but_the_status_page_and_public_badges() {
    let db = filled().await;
    let (addr, token) = start(
        &db.url(),
        &["--basic-auth", "ops:s3cret", "--bearer-token", "tok-123"],
    );
    let basic = format!("Basic {}", base64_of("ops:s3cret"));
    let wrong = format!("Basic {}", base64_of("ops:guess"));
    for path in [
        "/",
        "/sites/steady",
        "/api/v1/sites",
        "/metrics",
        "/nowhere",
    ] {
        let r = get(&addr, path, &[]);
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
        assert_eq!(
            get(&addr, path, &[("Authorization", &wrong)]).status,
            401,
            "{path}"
        );
        assert_eq!(
            get(&addr, path, &[("Authorization", "Bearer tok-12")]).status,
            401,
            "{path}"
        );
        let expected = if path == "/nowhere" { 404 } else { 200 };
        assert_eq!(
            get(&addr, path, &[("Authorization", &basic)]).status,
            expected,
            "{path}"
        );
        assert_eq!(
            get(&addr, path, &[("Authorization", "Bearer tok-123")]).status,
            expected,
            "{path}"
        );
    }
    assert_eq!(get(&addr, "/status", &[]).status, 200);
    assert_eq!(get(&addr, "/healthz", &[]).status, 200);
    // A public site's badge is for anyone; a non-public one's needs a credential.
    assert_eq!(get(&addr, "/badge/steady/status.svg", &[]).status, 200);
    assert_eq!(get(&addr, "/badge/flaky/status.svg", &[]).status, 401);
    let with_basic = get(
        &addr,
        "/badge/flaky/status.svg",
        &[("Authorization", &basic)],
    );
    assert_eq!(with_basic.status, 200);
    token.cancel();
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn the_binary_serves_pages_with_a_role_that_may_only_select() {
    let db = filled().await;
    let role = format!("sitewatch_ro_{}", uuid::Uuid::now_v7().simple());
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN;
             GRANT CONNECT ON DATABASE {db} TO {role};
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};",
            db = db.name
        ))
        .await
        .unwrap();
    let port = sitewatch_tests::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sitewatch-sink"))
        .args(["web", "--listen", &addr])
        .env(
            "SITEWATCH_DATABASE_URL",
            format!("postgres://{role}@127.0.0.1:5432/{}", db.name),
        )
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&addr).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let results: Vec<(&str, u16)> = [
        "/",
        "/sites/flaky",
        "/status",
        "/status/Shop",
        "/api/v1/sites",
        "/api/v1/incidents",
        "/metrics",
        "/badge/steady/uptime/90d.svg",
    ]
    .iter()
    .map(|p| (*p, get(&addr, p, &[]).status))
    .collect();
    let _ = child.kill();
    let _ = child.wait();
    // The role really cannot write.
    let ro = support::connect(&format!("host=127.0.0.1 user={role} dbname={}", db.name)).await;
    assert!(ro.execute("DELETE FROM sites", &[]).await.is_err());
    drop(ro);
    drop(admin);
    drop(db);
    let cluster = support::connect(&format!("{} dbname=postgres", support::SERVER)).await;
    cluster
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
    for (path, status) in results {
        assert_eq!(status, 200, "{path}");
    }
}

/// Inserts a maintenance period of `site` (as the sink's alerting pass records them).
async fn maintenance(
    client: &tokio_postgres::Client,
    site: &str,
    window: &str,
    starts_at: chrono::DateTime<Utc>,
    ends_at: chrono::DateTime<Utc>,
) {
    client
        .execute(
            "INSERT INTO maintenance_periods (site_id, window_name, starts_at, ends_at)
             SELECT id, $2, $3, $4 FROM sites WHERE name = $1",
            &[&site, &window, &starts_at, &ends_at],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn maintenance_shows_on_the_site_page_the_status_page_and_the_api() {
    use chrono::{DurationRound, TimeDelta};
    let db = filled().await;
    let client = db.client().await;
    let now = Utc::now().trunc_subsecs(0);
    let past_day = (now - TimeDelta::days(3))
        .duration_trunc(TimeDelta::days(1))
        .unwrap();
    let hour = TimeDelta::hours(1);
    // steady: one ended 3 days ago (2 h), one scheduled in 2 days; the hostile site (down)
    // is in a window with a hostile name now; flaky (not public) has one scheduled.
    let past = (past_day + hour * 10, past_day + hour * 12);
    maintenance(&client, "steady", "db-upgrade", past.0, past.1).await;
    let kernel = (
        now + TimeDelta::days(2),
        now + TimeDelta::days(2) + hour / 2,
    );
    maintenance(&client, "steady", "kernel", kernel.0, kernel.1).await;
    maintenance(&client, HOSTILE, "<b>move</b>", now - hour, now + hour).await;
    let secret = (now + TimeDelta::days(1), now + TimeDelta::days(1) + hour);
    maintenance(&client, "flaky", "secret-flaky-window", secret.0, secret.1).await;
    let (addr, token) = start(&db.url(), &[]);

    // Site page: the range's and the scheduled periods, and the marked day.
    let page = get(&addr, "/sites/steady?range=7d", &[]).body;
    assert!(
        page.contains("data-window=\"db-upgrade\" data-state=\"ended\"")
            && page.contains("data-window=\"kernel\" data-state=\"scheduled\""),
        "{page}"
    );
    assert_eq!(page.matches("<tr class=\"maintenance\"").count(), 2);
    assert!(page.contains(&format!(
        "data-day=\"{}\" data-maintenance-seconds=\"7200\"",
        past_day.format("%Y-%m-%d")
    )));
    assert!(page.contains("maintenance 2h 0m (db-upgrade)"));
    assert_eq!(
        page.matches("data-maintenance-seconds=").count(),
        2,
        "one marked day per location"
    );
    let day = get(&addr, "/sites/steady?range=24h", &[]).body;
    assert!(!day.contains("data-window=\"db-upgrade\"") && day.contains("data-window=\"kernel\""));
    let hostile = get(&addr, &site_path(HOSTILE), &[]).body;
    assert!(
        hostile.contains("data-window=\"&lt;b&gt;move&lt;/b&gt;\" data-state=\"active\""),
        "{hostile}"
    );
    assert!(!hostile.contains("<b>move</b>"));

    // Status page: a down site in maintenance is no outage; scheduled maintenance of public
    // sites only.
    let status = get(&addr, "/status", &[]).body;
    assert!(
        status.contains("data-verdict=\"maintenance\">Maintenance in progress<"),
        "{status}"
    );
    assert!(!status.contains("Partial outage") && !status.contains("Major outage"));
    assert!(status.contains("data-maintenance=\"&lt;b&gt;move&lt;/b&gt;\""));
    assert!(status.contains("Under maintenance") && !status.contains("<b>move</b>"));
    assert!(status.contains(&format!(
        "data-window=\"kernel\" data-starts=\"{}\"",
        kernel.0.to_rfc3339()
    )));
    assert!(status.contains("<span class=\"site\" data-site=\"steady\">steady</span>"));
    assert!(!status.contains("secret-flaky-window"), "not public");
    let shop = get(&addr, "/status/Shop", &[]).body;
    assert!(shop.contains("All systems operational") && shop.contains("data-window=\"kernel\""));

    // API: per site over the range, and all sites.
    let api = json(&get(&addr, "/api/v1/sites/steady?range=7d", &[]));
    let periods = api["maintenance"].as_array().unwrap();
    let seen: Vec<(&str, &str, i64)> = periods
        .iter()
        .map(|m| {
            (
                m["window"].as_str().unwrap(),
                m["state"].as_str().unwrap(),
                m["duration_seconds"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("db-upgrade", "ended", 7200), ("kernel", "scheduled", 1800)]
    );
    let all = json(&get(&addr, "/api/v1/maintenance?range=7d", &[]));
    let windows: Vec<(&str, &str)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["site"].as_str().unwrap(), m["window"].as_str().unwrap()))
        .collect();
    assert_eq!(
        windows,
        [
            ("steady", "db-upgrade"),
            (HOSTILE, "<b>move</b>"),
            ("flaky", "secret-flaky-window"),
            ("steady", "kernel")
        ]
    );
    // Dashboard and metrics: the site in a window now.
    let dashboard = get(&addr, "/", &[]).body;
    assert_eq!(
        dashboard.matches("class=\"pill maintenance\"").count(),
        1,
        "{dashboard}"
    );
    assert!(dashboard.contains("data-maintenance=\"&lt;b&gt;move&lt;/b&gt;\""));
    let metrics = get(&addr, "/metrics", &[]).body;
    assert!(metrics.contains(&format!(
        "sitewatch_site_maintenance{{site=\"{HOSTILE}\",group=\"<i>grp</i>\"}} 1\n"
    )));
    assert!(metrics.contains("sitewatch_site_maintenance{site=\"steady\",group=\"Shop\"} 0\n"));
    let one = json(&get(&addr, "/api/v1/maintenance?site=flaky", &[]));
    assert_eq!(one[0]["state"], "scheduled");
    assert_eq!(get(&addr, "/api/v1/maintenance?site=nope", &[]).status, 404);
    token.cancel();
}

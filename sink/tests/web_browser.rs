//! The web pages in a real headless browser (Debian's chromium) over a database filled by a
//! real pipeline run: the agent library checks local sites from two locations in three
//! rounds into a Tansu topic (with its site catalog: groups, tags, public sites), the sink
//! stores them and judges verdicts, `sitewatch-sink web` serves them. The DOM is asserted
//! (sites and verdicts, location states, daily bars with their figures, incidents, failed
//! checks, the public status page with scheduled maintenance, escaping) and screenshots are kept as artifacts under the
//! target directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sitewatch_sink::database::Database;
use sitewatch_sink::web::WebArgs;
use sitewatch_tests::broker::Broker;
use sitewatch_tests::browser;
use sitewatch_tests::site::welcome;
use support::{create_topic, sink_config, stored, TestDb};
use tokio_util::sync::CancellationToken;

const HOSTILE: &str = "<script>alert(1)</script>";
const ROUNDS: usize = 3;
const LOCATIONS: [&str; 2] = ["eu", "us"];

/// Which page of the local site each site checks in `round` from `location`.
fn path(site: &str, round: usize, location: &str) -> &'static str {
    match site {
        "api" => "error",
        "checkout" if round < 2 => "error",
        "regional" if location == "eu" => "error",
        _ => "",
    }
}

const SITES: [&str; 5] = ["shop", "api", "checkout", "regional", HOSTILE];

/// Each site's catalog fields: all but `regional` are on the public status page.
fn catalog(site: &str) -> &'static str {
    match site {
        "shop" | "checkout" => "    public: true\n    group: Shop\n    tags: [tier-1]\n",
        "api" => "    public: true\n    group: API\n    tags: [tier-1]\n",
        "regional" => "    tags: [internal]\n",
        _ => "    public: true\n",
    }
}

async fn pipeline_run(broker: &Broker, topic: &str, db: &TestDb) {
    let port = welcome();
    let dir = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        for location in LOCATIONS {
            let file = dir.path().join(format!("{location}.yaml"));
            let mut yaml = format!(
                "agent:\n  name: agent-{location}\n  location: {location}\n\
                 kafka:\n  brokers: [\"{}\"]\n  topic: {topic}\n  catalog_topic: {topic}.sites\n\
                 \x20 create_topic: {{ partitions: 2, replication_factor: 1 }}\n\
                 defaults:\n  regex: Welcome\n  timeout: 3s\nsites:\n",
                broker.addr()
            );
            for site in SITES {
                yaml.push_str(&format!(
                    "  - name: '{site}'\n    url: http://127.0.0.1:{port}/{}\n{}",
                    path(site, round, location),
                    catalog(site)
                ));
            }
            std::fs::write(&file, yaml).unwrap();
            let config = sitewatch_agent::config::load(std::slice::from_ref(&file)).unwrap();
            sitewatch_agent::app::run(config, true, CancellationToken::new())
                .await
                .unwrap();
        }
    }
    let token = CancellationToken::new();
    let mut config = sink_config(broker, topic, "web-browser", db);
    config.catalog_topic = format!("{topic}.sites");
    let sink = tokio::spawn(sitewatch_sink::run(config, token.clone()));
    let client = db.client().await;
    let expected = (SITES.len() * ROUNDS * LOCATIONS.len()) as i64;
    let deadline = Instant::now() + Duration::from_secs(90);
    while (stored(&client).await < expected || catalogued(&client).await < SITES.len() as i64)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel();
    sink.await.unwrap().unwrap();
    assert_eq!(stored(&client).await, expected);
}

/// The web role on its own runtime thread.
fn start_web(url: &str) -> (String, CancellationToken) {
    let db = Database::new(url, None, None).unwrap();
    let args = WebArgs::from_flags(&["--refresh", "0s"]).unwrap();
    let token = CancellationToken::new();
    let stop = token.clone();
    let (tx, rx) = std::sync::mpsc::channel();
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

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_site_and_status_pages_in_chromium_after_a_real_pipeline_run() {
    let broker = Broker::start();
    let db = TestDb::create().await;
    let topic = create_topic(&broker, 2).await;
    pipeline_run(&broker, &topic, &db).await;
    let (addr, token) = start_web(&db.url());
    let base = format!("http://{addr}");

    let dom = tokio::task::spawn_blocking({
        let base = base.clone();
        move || browser::dump_dom(&format!("{base}/"))
    })
    .await
    .unwrap();
    assert_eq!(
        dom.matches("<tr class=\"site\"").count(),
        SITES.len(),
        "{dom}"
    );
    for (site, verdict) in [
        ("shop", "up"),
        ("api", "down"),
        ("checkout", "up"),
        ("regional", "degraded"),
    ] {
        assert!(
            dom.contains(&format!("data-site=\"{site}\" data-verdict=\"{verdict}\"")),
            "{site} {verdict}: {dom}"
        );
    }
    // The hostile name is text: our one script element is the only one.
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(dom.matches("<script").count(), 1, "{dom}");
    // api has been down since the first round: an open incident with its first error.
    let api_row = &dom[dom.find("data-site=\"api\"").unwrap()..];
    let api_row = &api_row[..api_row.find("</tr>").unwrap()];
    assert!(
        api_row.contains("open") && api_row.contains("500"),
        "{api_row}"
    );
    assert!(api_row.contains("data-location=\"eu\"") && api_row.contains("data-location=\"us\""));

    let site_dom = tokio::task::spawn_blocking({
        let base = base.clone();
        move || browser::dump_dom(&format!("{base}/sites/checkout?range=24h"))
    })
    .await
    .unwrap();
    // 90 daily bars per location; today's has the day's figures for hovering.
    assert_eq!(
        site_dom.matches("class=\"bar ").count(),
        90 * LOCATIONS.len(),
        "{site_dom}"
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let tip = format!("data-tip=\"{today}: 33.33% up\n3 checks, 2 down, 0 degraded");
    assert_eq!(
        site_dom.matches(&tip).count(),
        LOCATIONS.len(),
        "{tip} in {site_dom}"
    );
    // checkout failed in two rounds and recovered: one closed incident, four failed checks.
    assert_eq!(
        site_dom.matches("class=\"incident\"").count(),
        1,
        "{site_dom}"
    );
    assert!(site_dom.contains("data-open=\"false\""));
    assert_eq!(
        site_dom.matches("class=\"failed-check\"").count(),
        2 * LOCATIONS.len()
    );
    assert!(site_dom.contains("<svg class=\"chart\" id=\"latency\""));

    let regional = tokio::task::spawn_blocking({
        let base = base.clone();
        move || browser::dump_dom(&format!("{base}/sites/regional"))
    })
    .await
    .unwrap();
    assert!(
        regional.contains("<tr data-location=\"eu\"><td>eu</td><td><span class=\"pill down\""),
        "{regional}"
    );
    assert!(regional.contains("<tr data-location=\"us\"><td>us</td><td><span class=\"pill up\""));

    // Maintenance scheduled as the sink records it: shop's is public, regional's is not.
    db.client()
        .await
        .batch_execute(
            "INSERT INTO maintenance_periods (site_id, window_name, starts_at, ends_at)
             SELECT id, name || '-upgrade', now() + interval '1 day', now() + interval '26 hours'
             FROM sites WHERE name IN ('shop', 'regional')",
        )
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking({
        let base = base.clone();
        move || browser::dump_dom(&format!("{base}/status"))
    })
    .await
    .unwrap();
    // Public sites only, grouped, no URLs or error texts; api is down: a partial outage.
    assert!(
        status.contains("data-verdict=\"down\">Partial outage"),
        "{status}"
    );
    assert_eq!(
        status.matches("<div class=\"status-site\"").count(),
        4,
        "{status}"
    );
    assert!(!status.contains("regional"));
    assert!(
        status.contains("data-window=\"shop-upgrade\"")
            && status.contains("<span class=\"site\" data-site=\"shop\">shop</span>"),
        "{status}"
    );
    assert!(status.contains("data-group=\"Shop\"") && status.contains("data-group=\"API\""));
    assert_eq!(status.matches("class=\"bar ").count(), 4 * 90);
    assert_eq!(
        status.matches("class=\"incident\"").count(),
        2,
        "api's and checkout's"
    );
    for hidden in ["127.0.0.1", "expected 200-399", "agent-eu"] {
        assert!(
            !status.contains(hidden),
            "{hidden} on the status page: {status}"
        );
    }
    assert_eq!(status.matches("<script").count(), 1);

    let dir = screenshots();
    tokio::task::spawn_blocking({
        let (base, dir) = (base.clone(), dir.clone());
        move || {
            browser::screenshot(&format!("{base}/"), &dir.join("dashboard.png"), 1280, 720);
            browser::screenshot(
                &format!("{base}/sites/checkout"),
                &dir.join("site.png"),
                1280,
                1400,
            );
            browser::screenshot(
                &format!("{base}/status"),
                &dir.join("status.png"),
                1024,
                700,
            );
        }
    })
    .await
    .unwrap();
    eprintln!("screenshots in {}", dir.display());
    token.cancel();
}

async fn catalogued(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM site_catalog", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

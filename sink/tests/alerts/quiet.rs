//! What keeps notifications quiet or repeats them: silences, maintenance windows (also
//! shown on the pages), reminders and flapping.

use std::time::Duration;

use chrono::Utc;
use sitewatch_checks::Outcome::{Down, Up};
use sitewatch_sink::alerts::silences;

use crate::sim::{count, kinds, pairs, policy, Receiver, Sim};

#[tokio::test]
async fn a_silence_sends_nothing_and_its_end_sends_the_trigger() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    sim.define("shop", &["payments"]).await;
    let silence = silences::add(
        &sim.client,
        "tag:payments",
        Duration::from_secs(3600),
        Some("deploy"),
    )
    .await
    .unwrap();
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    sim.deliver().await;
    assert!(sim.outbox().await.is_empty(), "silenced: nothing written");
    // Expired while the incident is open: the next pass writes the triggers.
    assert!(silences::expire(&sim.client, silence.id).await.unwrap());
    sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    sim.deliver().await;
    assert_eq!(kinds(&receiver.received()).len(), 2);
    sim.write_rows(&rows[18..]).await;
    sim.deliver().await;
    assert_eq!(
        sim.outbox().await,
        pairs(&[
            ("trigger", "a"),
            ("trigger", "b"),
            ("resolve", "a"),
            ("resolve", "b")
        ])
    );
}

#[tokio::test]
async fn an_incident_inside_a_maintenance_window_sends_nothing_and_the_pages_show_it() {
    let (receiver, base) = Receiver::start(0).await;
    let start = (Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let window = format!(
        "maintenance:\n  - {{ name: move, sites: ['shop'], start: '{start}', duration: 4h }}\n  \
         - {{ name: upgrade, tags: [db], start: '{tomorrow}', duration: 1h }}\n"
    );
    let mut sim = Sim::new(policy(&base, &window)).await;
    sim.define("shop", &["db"]).await;
    sim.define("blog", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows).await;
    let blog = sim.round("blog", 0, [Up; 3]);
    sim.write_rows(&blog).await;
    let pass = sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    sim.deliver().await;
    assert_eq!(
        count(&sim.client, "SELECT count(*) FROM incidents").await,
        1
    );
    assert!(sim.outbox().await.is_empty());
    assert!(receiver.received().is_empty());
    // The windows' time is recorded for the site they cover (shop), not for blog: the one
    // in progress and the one scheduled for tomorrow, once however often the pass runs.
    assert_eq!(pass.maintenance, 2);
    sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    let recorded: Vec<(String, String)> = sim
        .client
        .query(
            "SELECT s.name, m.window_name FROM maintenance_periods m JOIN sites s ON s.id = m.site_id
             ORDER BY m.starts_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(recorded, pairs(&[("shop", "move"), ("shop", "upgrade")]));

    // The site page and the public status page list them.
    let url = sim.db.url();
    let addr = tokio::task::spawn_blocking(move || web(&url))
        .await
        .unwrap();
    let get = |path: &'static str| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || sitewatch_tests::http::get(&addr, path, &[]))
    };
    // The site page lists both; the status page shows shop under maintenance and
    // tomorrow's window as scheduled.
    let site = get("/sites/shop").await.unwrap();
    assert_eq!(site.status, 200, "{}", site.body);
    assert!(
        site.body
            .contains("data-site=\"shop\" data-window=\"move\" data-state=\"active\"")
            && site
                .body
                .contains("data-site=\"shop\" data-window=\"upgrade\" data-state=\"scheduled\""),
        "{}",
        site.body
    );
    let status = get("/status").await.unwrap();
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body.contains("data-maintenance=\"move\"")
            && status
                .body
                .contains("<li class=\"scheduled\" data-window=\"upgrade\"")
            && status.body.contains("data-site=\"shop\">shop</span>"),
        "{}",
        status.body
    );
}

/// `sitewatch-sink web` on a free port of its own runtime thread; returns its address.
fn web(url: &str) -> String {
    let db = sitewatch_sink::database::Database::new(url, None, None).unwrap();
    let args = sitewatch_sink::web::WebArgs::from_flags(&[]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            let token = tokio_util::sync::CancellationToken::new();
            sitewatch_sink::web::serve_on(listener, &db, args, token)
                .await
                .unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap()
}

#[tokio::test]
async fn reminders_follow_an_open_incident_and_flapping_sends_one_notice() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(
        &base,
        "reminder_every: 20m\nflapping: { changes: 4, window: 1h }\n",
    ))
    .await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    // Down from about an hour ago: reminder number 2 (of every 20 minutes) is due, only it.
    sim.write_rows(&rows[..18]).await;
    sitewatch_sink::alerts::periodic::pass(&mut sim.client, &sim.alerts)
        .await
        .unwrap();
    sim.deliver().await;
    let got = receiver.received();
    let reminders: Vec<&String> = got
        .iter()
        .filter(|(_, kind, _)| kind == "reminder")
        .map(|(_, _, k)| k)
        .collect();
    assert_eq!(reminders.len(), 2, "{got:?}");
    assert!(reminders.iter().all(|k| k.contains(":reminder-2:")));
    // Recovery, then a second outage: verdict changes 5..8 within the hour make it
    // flapping: one notice per channel, and the second incident's triggers stay quiet.
    sim.write_rows(&rows[18..]).await;
    let mut again = Vec::new();
    for round in 10..20 {
        let o = if (12..17).contains(&round) {
            [Down; 3]
        } else {
            [Up; 3]
        };
        again.extend(sim.round("shop", round, o));
    }
    sim.write_rows(&again).await;
    sim.deliver().await;
    let outbox = sim.outbox().await;
    let flapping = outbox.iter().filter(|(k, _)| k == "flapping").count();
    assert_eq!(flapping, 2, "{outbox:?}");
    let triggers = outbox.iter().filter(|(k, _)| k == "trigger").count();
    assert_eq!(triggers, 2, "only the first incident's: {outbox:?}");
}

//! Outages: one trigger and one resolve per channel (batches redelivered, or resolved by
//! the sweep), none for a regional fault, each sent once by two dispatchers.

use std::collections::BTreeMap;

use chrono::{SubsecRound, Utc};
use sitewatch_checks::Outcome::{Down, Up};
use sitewatch_sink::alerts::{dispatch, AlertMetrics};

use crate::sim::{count, kinds, pairs, policy, Receiver, Sim};
use crate::support;

#[tokio::test]
async fn a_global_outage_sends_one_trigger_and_one_resolve_per_channel() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    // The incident opened in the batch that made the verdict down: its triggers with it.
    assert_eq!(
        sim.outbox().await,
        pairs(&[("trigger", "a"), ("trigger", "b")])
    );
    sim.deliver().await;
    sim.write_rows(&rows[18..]).await;
    // Redelivered batches (Kafka at-least-once) write nothing more.
    sim.write_rows(&rows).await;
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
    let got = receiver.received();
    let expected: BTreeMap<(String, String), usize> = [
        (("a".to_string(), "trigger".to_string()), 1),
        (("a".to_string(), "resolve".to_string()), 1),
        (("b".to_string(), "trigger".to_string()), 1),
        (("b".to_string(), "resolve".to_string()), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds(&got), expected, "{got:?}");
    // One key per (incident, kind, channel), each sent once.
    let mut keys: Vec<&String> = got.iter().map(|(_, _, k)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "{got:?}");
    let incident: i64 = sim
        .client
        .query_one("SELECT id FROM incidents", &[])
        .await
        .unwrap()
        .get(0);
    assert!(got
        .iter()
        .all(|(_, _, k)| k.contains(&format!("incident-{incident}:"))));
    let first = receiver.got.lock().unwrap()[0].1.clone();
    assert_eq!(first["site"], "shop");
    assert_eq!(first["incident_id"], incident);
    assert_eq!(first["first_error"], "refused from us");
    assert_eq!(first["verdict"], "down");
    let got_all = receiver.got.lock().unwrap().clone();
    let resolve = &got_all
        .iter()
        .find(|(_, b)| b["kind"] == "resolve")
        .unwrap()
        .1;
    assert_eq!(resolve["verdict"], "up");
    assert!(resolve["resolved_at"].is_string());
    assert!(
        resolve["summary"]
            .as_str()
            .unwrap()
            .starts_with("shop is up again"),
        "{resolve}"
    );
    // The dispatcher counted them for /metrics.
    let mut text = sitewatch_checks::ops::MetricsText::new();
    sim.metrics.write(&mut text);
    let text = text.finish();
    assert!(
        text.contains("sitewatch_notifications_sent_total{channel=\"a\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_regional_fault_sends_nothing() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    sim.define("shop", &[]).await;
    // Only ap sees the site failing: degraded, never down.
    let rows = sim.outage("shop", [Up, Up, Down]);
    sim.write_rows(&rows).await;
    sim.deliver().await;
    assert_eq!(
        count(&sim.client, "SELECT count(*) FROM incidents").await,
        0
    );
    assert!(sim.outbox().await.is_empty());
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn an_incident_the_sweep_resolves_sends_its_resolve_from_the_sweep() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    // Checks up to now: eu and us fail (a majority: down) until about 35 s ago, then stop
    // reporting; ap passes until about 10 s ago. No batch sees eu and us silent (3 intervals,
    // 30 s, behind ap's latest check), the sweep at the database's clock does.
    sim.start = (Utc::now() - chrono::Duration::seconds(95)).trunc_subsecs(3);
    sim.define("shop", &[]).await;
    let mut rows = Vec::new();
    for round in 0..7 {
        rows.extend(sim.round("shop", round, [Down, Down, Up]));
    }
    for round in 7..9 {
        let ap = sim.round("shop", round, [Up; 3]);
        rows.extend(
            ap.into_iter()
                .filter(|r| r.result.location.as_deref() == Some("ap")),
        );
    }
    sim.write_rows(&rows).await;
    assert_eq!(
        sim.outbox().await,
        pairs(&[("trigger", "a"), ("trigger", "b")])
    );
    let sites = sitewatch_sink::verdicts::sweep_candidates(&sim.client, &[0])
        .await
        .unwrap();
    assert_eq!(sites.len(), 1);
    let saved = sitewatch_sink::verdicts::sweep_with(&mut sim.client, &sites, Some(&sim.alerts))
        .await
        .unwrap();
    assert_eq!(saved.resolved, 1, "eu and us left the vote: ap passing, up");
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
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test]
async fn two_dispatchers_on_one_database_send_each_notification_once() {
    let (receiver, base) = Receiver::start(0).await;
    let mut sim = Sim::new(policy(&base, "")).await;
    // Ten sites' outages: 20 triggers.
    for i in 0..10 {
        let site = format!("site-{i}");
        sim.define(&site, &[]).await;
        let rows = sim.outage(&site, [Down, Down, Down]);
        sim.write_rows(&rows[..18]).await;
    }
    assert_eq!(sim.outbox().await.len(), 20);
    let url = sim.db.url();
    let alerts = sim.alerts.clone();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (url, alerts) = (url.clone(), alerts.clone());
        workers.push(tokio::spawn(async move {
            let mut client = support::connect(&url).await;
            let metrics = AlertMetrics::default();
            let mut claimed = 0;
            for _ in 0..20 {
                claimed += dispatch::round(&mut client, &alerts, &metrics)
                    .await
                    .unwrap()
                    .claimed;
            }
            claimed
        }));
    }
    let mut claimed = 0;
    for w in workers {
        claimed += w.await.unwrap();
    }
    assert_eq!(claimed, 20);
    let got = receiver.received();
    assert_eq!(got.len(), 20, "{got:?}");
    let mut keys: Vec<&String> = got.iter().map(|(_, _, k)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 20, "each key once");
}

//! Through the outbox to Debian's `prometheus-alertmanager`: firing, then resolved.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sitewatch_checks::Outcome::Down;

use crate::sim::{pairs, Sim};

/// Alerts Alertmanager lists for `site` (`query` e.g. `?active=true`).
fn listed(am: &sitewatch_tests::alertmanager::Alertmanager, site: &str, query: &str) -> usize {
    am.alerts(query)
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["site"] == site)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_shows_the_incident_firing_then_resolved() {
    let am = tokio::task::spawn_blocking(sitewatch_tests::alertmanager::Alertmanager::start)
        .await
        .unwrap();
    let yaml = format!(
        "channels:\n  am: {{ type: alertmanager, url: '{}' }}\nroutes:\n  - channels: [am]\n",
        am.url()
    );
    let alerts = sitewatch_sink::alerts::file::parse(Path::new("test.yaml"), &yaml).unwrap();
    let mut sim = Sim::new(alerts).await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    sim.deliver().await;
    let am = Arc::new(am);
    let query = {
        let am = am.clone();
        move |q: &'static str| {
            let am = am.clone();
            tokio::task::spawn_blocking(move || listed(&am, "shop", q))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while query("?active=true").await.unwrap() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(query("?active=true").await.unwrap(), 1, "firing");
    sim.write_rows(&rows[18..]).await;
    sim.deliver().await;
    assert_eq!(
        sim.outbox().await,
        pairs(&[("trigger", "am"), ("resolve", "am")])
    );
    assert_eq!(query("?active=true").await.unwrap(), 0, "resolved");
}

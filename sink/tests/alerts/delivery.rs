//! Delivery: retried until the receiver takes it, or recorded failed after `retry_for`.

use std::path::Path;
use std::sync::atomic::Ordering;

use sitewatch_checks::Outcome::Down;

use crate::sim::{count, policy, Receiver, Sim};

#[tokio::test]
async fn a_receiver_failing_its_first_three_attempts_gets_the_notification_after_retries() {
    let (receiver, base) = Receiver::start(3).await;
    let yaml = format!(
        "channels:\n  a: {{ type: webhook, url: '{base}/a' }}\nroutes:\n  - channels: [a]\n\
         retry_base: 50ms\n"
    );
    let alerts = sitewatch_sink::alerts::file::parse(Path::new("test.yaml"), &yaml).unwrap();
    let mut sim = Sim::new(alerts).await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    sim.deliver().await;
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "trigger");
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 4);
    let r = sim
        .client
        .query_one(
            "SELECT attempts, last_error, delivered_at IS NOT NULL, failed_at IS NULL,
                    delivered_at - created_at >= interval '350 milliseconds'
             FROM notifications",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 4, "3 refused, the 4th delivered");
    assert_eq!(
        r.get::<_, Option<String>>(1),
        None,
        "a delivered row keeps no error"
    );
    assert!(r.get::<_, bool>(2) && r.get::<_, bool>(3));
    assert!(
        r.get::<_, bool>(4),
        "backed off 50 + 100 + 200 ms between the attempts"
    );
}

#[tokio::test]
async fn a_notification_retried_past_retry_for_is_recorded_failed() {
    let (receiver, base) = Receiver::start(usize::MAX).await;
    let mut sim = Sim::new(policy(&base, "retry_for: 300ms")).await;
    sim.define("shop", &[]).await;
    let rows = sim.outage("shop", [Down, Down, Down]);
    sim.write_rows(&rows[..18]).await;
    sim.deliver().await;
    assert!(receiver.received().is_empty());
    assert_eq!(
        count(
            &sim.client,
            "SELECT count(*) FROM notifications WHERE failed_at IS NOT NULL AND attempts > 1
               AND last_error LIKE 'gave up after%'"
        )
        .await,
        2
    );
    let mut text = sitewatch_checks::ops::MetricsText::new();
    sim.metrics.write(&mut text);
    assert!(text
        .finish()
        .contains("sitewatch_notifications_failed_total{channel=\"b\"} 1"));
}

//! The site catalog: the YAML fields the sink judges verdicts by (thresholds, quorum) and
//! readers list sites by (tags, group, public), with `defaults:` and located errors; and
//! their publication to a compacted topic on a real broker (Tansu): definitions at start,
//! tombstones for sites this agent removed, never for sites another agent still defines.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sitewatch_agent::catalog::{definitions, CatalogPublisher, Published};
use sitewatch_agent::config::{self, AgentConfig};
use sitewatch_checks::catalog::{Quorum, SiteDefinition};
use sitewatch_tests::broker::Broker;
use tokio_util::sync::CancellationToken;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const LISTED: &str = r#"
agent: { name: probe-eu, location: eu }
defaults:
  interval: 30s
  failure_threshold: 3
  quorum: all
  tags: [tier-1]
  group: shop
sites:
  - name: home
    url: http://127.0.0.1:9/
  - name: api
    url: http://127.0.0.1:9/api
    failure_threshold: 1
    success_threshold: 2
    quorum: 2
    tags: [api, api, " internal "]
    group: backend
    public: true
  - name: plain
    url: http://127.0.0.1:9/plain
    quorum: any
    tags: []
"#;

#[test]
fn listing_fields_take_defaults_and_overrides_and_show_in_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "sites.yaml", LISTED);
    let config = config::load(&[path]).unwrap();
    let by_name: BTreeMap<&str, _> = config
        .sites
        .iter()
        .map(|s| (s.spec.name.as_str(), &s.listing))
        .collect();
    let home = by_name["home"];
    assert_eq!(
        (home.failure_threshold, home.success_threshold, home.quorum),
        (3, 1, Quorum::All)
    );
    assert_eq!(home.tags, ["tier-1"]);
    assert_eq!(home.group.as_deref(), Some("shop"));
    assert!(!home.public);
    let api = by_name["api"];
    assert_eq!(
        (api.failure_threshold, api.success_threshold, api.quorum),
        (1, 2, Quorum::AtLeast(NonZeroU32::new(2).unwrap()))
    );
    assert_eq!(api.tags, ["api", "internal"], "trimmed, each once");
    assert_eq!(api.group.as_deref(), Some("backend"));
    assert!(api.public);
    assert!(
        by_name["plain"].tags.is_empty(),
        "a site clears the default tags"
    );

    let shown = config::render(&config);
    for line in [
        "failure_threshold: 3",
        "success_threshold: 2",
        "quorum: all",
        "quorum: 2",
        "group: backend",
        "public: true",
    ] {
        assert!(shown.contains(line), "`{line}` missing from:\n{shown}");
    }

    // Without any of them: the documented defaults.
    let bare = write(
        dir.path(),
        "bare.yaml",
        "sites:\n  - name: x\n    url: http://127.0.0.1:9/\n",
    );
    let bare = config::load(&[bare]).unwrap();
    let listing = &bare.sites[0].listing;
    assert_eq!(
        (listing.failure_threshold, listing.success_threshold),
        (2, 1)
    );
    assert_eq!(listing.quorum, Quorum::Majority);
    assert!(!listing.public && listing.tags.is_empty() && listing.group.is_none());

    let defs = definitions(&config, chrono::Utc::now());
    let api = defs.iter().find(|d| d.site == "api").unwrap();
    assert_eq!((api.interval_ms, api.timeout_ms), (30_000, 10_000));
    assert_eq!(
        (api.agent.as_str(), api.location.as_deref()),
        ("probe-eu", Some("eu"))
    );
}

#[test]
fn bad_listing_fields_are_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.yaml",
        "defaults:\n  quorum: most\nsites:\n  - name: a\n    url: http://127.0.0.1:9/\n    failure_threshold: 0\n    tags: [ok, \"\"]\n  - name: b\n    url: http://127.0.0.1:9/\n    quorum: 0\n    success_threshold: 0\n",
    );
    let errors = config::load(std::slice::from_ref(&path)).unwrap_err().0;
    let at = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("no error on {field}: {errors:#?}"))
    };
    let quorum = at("sites[0].quorum");
    assert_eq!(quorum.line, Some(2), "the default's line: {quorum}");
    assert!(quorum.message.contains("majority, any, all"), "{quorum}");
    assert_eq!(at("sites[0].failure_threshold").line, Some(6));
    assert_eq!(at("sites[0].tags").line, Some(7));
    assert_eq!(at("sites[1].quorum").line, Some(10));
    assert_eq!(at("sites[1].success_threshold").line, Some(11));
    assert!(at("sites[1].success_threshold")
        .to_string()
        .starts_with(&format!("{}:11", path.display())));
}

fn kafka_yaml(
    dir: &Path,
    broker: &Broker,
    topic: &str,
    agent: &str,
    sites: &[&str],
) -> AgentConfig {
    let mut yaml = format!(
        "agent: {{ name: {agent}, location: {agent} }}\nkafka:\n  brokers: [\"{}\"]\n  topic: {topic}.results\n  catalog_topic: {topic}\n  create_topic: {{ partitions: 2, replication_factor: 1 }}\nsites:\n",
        broker.addr()
    );
    for site in sites {
        yaml.push_str(&format!(
            "  - name: {site}\n    url: http://127.0.0.1:9/{site}\n    timeout: 1s\n"
        ));
    }
    let path = write(dir, &format!("{agent}.yaml"), &yaml);
    config::load(&[path]).unwrap()
}

/// The topic's latest entry per site: `Some(definition)` or `None` for a tombstone.
fn latest(
    broker: &Broker,
    topic: &str,
    expected: usize,
) -> BTreeMap<String, Option<SiteDefinition>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("group.id", "sitewatch-test-catalog-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut messages = 0;
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages < expected && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        let value = m.payload().map(|v| serde_json::from_slice(v).unwrap());
        out.insert(key, value);
        messages += 1;
    }
    assert_eq!(messages, expected, "messages in the catalog topic: {out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_publish_definitions_and_tombstone_only_their_own_removed_sites() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let topic = format!("sitewatch.test.sites.{}", uuid::Uuid::now_v7().simple());

    // eu starts (through the agent itself, once) with a and b; us defines a too, later.
    let eu = kafka_yaml(dir.path(), &broker, &topic, "eu", &["a", "b"]);
    let code = sitewatch_agent::app::run(eu, true, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(code, std::process::ExitCode::from(1), "the sites are down");
    let after_start = latest(&broker, &topic, 2);
    let a = after_start["a"].as_ref().unwrap();
    assert_eq!((a.agent.as_str(), a.failure_threshold), ("eu", 2));
    assert_eq!(a.url, "http://127.0.0.1:9/a");
    let us = kafka_yaml(dir.path(), &broker, &topic, "us", &["a"]);
    let published = CatalogPublisher::new(us.kafka.as_ref())
        .unwrap()
        .unwrap()
        .publish(&us)
        .await;
    assert_eq!(
        published,
        Published {
            defined: 1,
            removed: 0,
            failed: 0
        }
    );

    // eu restarts with only c: b was its own and goes; a is us's latest and stays.
    let eu = kafka_yaml(dir.path(), &broker, &topic, "eu", &["c"]);
    let catalog = CatalogPublisher::new(eu.kafka.as_ref()).unwrap().unwrap();
    let published = catalog.publish(&eu).await;
    assert_eq!(
        published,
        Published {
            defined: 1,
            removed: 1,
            failed: 0
        }
    );
    let now = latest(&broker, &topic, 5);
    assert_eq!(now["a"].as_ref().unwrap().agent, "us");
    assert_eq!(now["b"], None, "tombstone for the removed site");
    assert_eq!(now["c"].as_ref().unwrap().agent, "eu");

    // Published again unchanged (a reload): definitions only, nothing removed twice.
    let published = catalog.publish(&eu).await;
    assert_eq!(
        published,
        Published {
            defined: 1,
            removed: 0,
            failed: 0
        }
    );
}

//! Nothing lost when Kafka is unreachable: the agent binary with a disk spool, a Tansu
//! broker behind a link the test cuts, and the sink storing into PostgreSQL.
//!
//! - The link is cut for longer than `message.timeout.ms`, then restored: every check
//!   the agent made is in `check_results` exactly once.
//! - The agent is SIGKILLed while the link is down and started again once it is back:
//!   every result that was in its spool at the kill arrives, once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use sitewatch_agent::spool::{self, SpoolSettings};
use sitewatch_sink::SinkConfig;
use sitewatch_tests::broker::Broker;
use sitewatch_tests::db::TestDb;
use sitewatch_tests::free_port;
use sitewatch_tests::link::Link;
use sitewatch_tests::site::{http_get, welcome};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SITES: usize = 8;

/// Broker, link, topic, database and a running sink, all reached through the link.
struct Rig {
    _broker: Broker,
    link: Link,
    topic: String,
    db: TestDb,
    sink: CancellationToken,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        let link_port = free_port();
        // The broker tells clients to come back through the link, so cutting it cuts them all.
        let broker = Broker::start_on(None, Some(link_port));
        let link = Link::start(link_port, broker.addr());
        let topic = format!("sitewatch.outage.{}", Uuid::now_v7().simple());
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", link.addr())
            .create()
            .unwrap();
        admin
            .create_topics(
                [&NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .unwrap();
        let db = TestDb::create().await;
        let sink = CancellationToken::new();
        let config = SinkConfig {
            brokers: link.addr(),
            topic: topic.clone(),
            catalog_topic: "off".into(),
            group: "outage".into(),
            security_protocol: Default::default(),
            ssl_ca: None,
            ssl_cert: None,
            ssl_key: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            kafka_properties: Vec::new(),
            database_url: db.url(),
            database_sslmode: None,
            database_ca: None,
            listen: None,
            batch_max_rows: 50,
            batch_backlog_rows: 50,
            write_connections: sitewatch_sink::config::DEFAULT_WRITE_CONNECTIONS,
            batch_max_wait: Duration::from_millis(100),
            retention_days: 30,
            hourly_retention_days: 180,
            daily_retention_days: None,
            partitions_ahead: 1,
            repack_after: sitewatch_sink::config::RepackAfter(Some(Duration::from_secs(3600))),
        };
        tokio::spawn(sitewatch_sink::run(config, sink.clone()));
        let dir = tempfile::tempdir().unwrap();
        Rig {
            _broker: broker,
            link,
            topic,
            db,
            sink,
            dir,
        }
    }

    fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Site list: the spool in the temp dir, deliveries given up after 2 s.
    fn write_config(&self, metrics_port: u16) -> PathBuf {
        let port = welcome();
        let mut yaml = format!(
            "agent:\n  listen: 127.0.0.1:{metrics_port}\n\
             kafka:\n  brokers: [\"{}\"]\n  topic: {}\n  spool_dir: spool\n  spool_max_bytes: 64MiB\n\
             \x20 properties:\n    message.timeout.ms: \"2000\"\n\
             defaults:\n  interval: 500ms\n  timeout: 2s\n  regex: Welcome\nsites:\n",
            self.link.addr(),
            self.topic
        );
        for i in 0..SITES {
            yaml.push_str(&format!(
                "  - name: site-{i}\n    url: http://127.0.0.1:{port}/\n"
            ));
        }
        let path = self.dir.path().join("sites.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }
}

/// The agent binary, its stderr (JSON logs with every check at debug) going to a file:
/// a pipe nobody reads while the agent runs would fill up and stop it.
struct Agent {
    child: Child,
    log: PathBuf,
}

fn start_agent(config: &Path) -> Agent {
    let log = config.with_file_name(format!("agent-{}.log", Uuid::now_v7().simple()));
    let child = Command::new(env!("CARGO_BIN_EXE_sitewatch-agent"))
        .arg("--log-format")
        .arg("json")
        .arg(config)
        .env("RUST_LOG", "info,sitewatch_agent=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Agent { child, log }
}

/// A stored check: its site and start in milliseconds (one agent per test), which is how
/// the database identifies it.
type Check = (String, i64);

/// SIGTERM, wait, and return the checks the agent logged (every check it finished)
/// and its log lines above debug.
fn stop_agent(mut agent: Agent) -> (BTreeSet<Check>, String) {
    let pid = agent.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The agent flushes for at most 10 s at shutdown; a hang fails here, with its log.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = agent.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = agent.child.kill();
            let logs = std::fs::read_to_string(&agent.log).unwrap();
            panic!("the agent did not exit within 60 s of SIGTERM:\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let logs = std::fs::read_to_string(&agent.log).unwrap();
    assert!(status.success(), "agent exited with {status}: {logs}");
    let notable = logs
        .lines()
        .filter(|l| !l.contains("\"DEBUG\""))
        .collect::<Vec<_>>()
        .join("\n");
    (logged_checks(&logs), notable)
}

fn logged_checks(logs: &str) -> BTreeSet<Check> {
    logs.lines()
        .filter(|l| l.contains("check finished"))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let field = |name: &str| v["fields"][name].as_str().unwrap().to_string();
            (field("site"), field("started_at").parse().unwrap())
        })
        .collect()
}

/// Every check in the spool, confirmed or not (opened after the agent is gone).
fn spooled_checks(dir: &Path) -> BTreeSet<Check> {
    let (_writer, mut reader, _acks) = spool::open(&SpoolSettings {
        dir: dir.to_path_buf(),
        max_bytes: 64 << 20,
    })
    .unwrap();
    let mut ids = BTreeSet::new();
    while let Some(record) = reader.read_next().unwrap() {
        let r: sitewatch_checks::CheckResult = serde_json::from_slice(&record.value).unwrap();
        ids.insert((r.site, r.started_at.timestamp_millis()));
    }
    ids
}

/// One unlabelled value from the agent's /metrics.
fn http_get_metric(port: u16, name: &str) -> f64 {
    let body = http_get(&format!("127.0.0.1:{port}"), "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

async fn stored(client: &Client) -> (i64, BTreeSet<Check>) {
    let rows = client
        .query(
            "SELECT site, (extract(epoch FROM started_at) * 1000)::bigint FROM check_results",
            &[],
        )
        .await
        .unwrap_or_default();
    let ids: BTreeSet<Check> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    (rows.len() as i64, ids)
}

/// Waits until every id in `want` is stored; returns row count and stored ids.
async fn wait_stored(client: &Client, want: &BTreeSet<Check>) -> (i64, BTreeSet<Check>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (rows, ids) = stored(client).await;
        if want.is_subset(&ids) || Instant::now() > deadline {
            return (rows, ids);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_rows(client: &Client, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(client).await.0 < at_least {
        assert!(
            Instant::now() < deadline,
            "the pipeline stored fewer than {at_least} rows"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_unreachable_longer_than_the_queue_timeout_loses_and_duplicates_nothing() {
    let rig = Rig::start().await;
    let metrics_port = free_port();
    let config = rig.write_config(metrics_port);
    let client = rig.db.client().await;
    let agent = start_agent(&config);
    wait_rows(&client, SITES as i64).await;

    rig.link.cut();
    // Longer than message.timeout.ms (2 s): deliveries fail and wait in the spool.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let metrics = http_get_metric(metrics_port, "sitewatch_spool_backlog");
    assert!(
        metrics > SITES as f64,
        "results should wait in the spool, backlog {metrics}"
    );
    rig.link.restore();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (checks, logs) = stop_agent(agent);
    assert!(
        checks.len() > SITES * 10,
        "only {} checks made",
        checks.len()
    );

    let (rows, ids) = wait_stored(&client, &checks).await;
    rig.sink.cancel();
    let missing = checks.difference(&ids).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} checks never reached the database; agent log:\n{logs}",
        checks.len()
    );
    assert_eq!(rows as usize, ids.len(), "duplicates stored");
    assert_eq!(ids, checks, "rows that no check made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_while_kafka_is_down_sends_its_spool_after_restart() {
    let rig = Rig::start().await;
    let metrics_port = free_port();
    let config = rig.write_config(metrics_port);
    let client = rig.db.client().await;
    let mut agent = start_agent(&config);
    wait_rows(&client, SITES as i64).await;

    rig.link.cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    agent.child.kill().unwrap(); // SIGKILL: no flush, no shutdown
    agent.child.wait().unwrap();
    let first_run = logged_checks(&std::fs::read_to_string(&agent.log).unwrap());
    let spooled = spooled_checks(&rig.spool_dir());
    let (_, before) = stored(&client).await;
    let waiting: BTreeSet<Check> = spooled.difference(&before).cloned().collect();
    assert!(
        waiting.len() >= SITES * 3,
        "checks made during the outage should be in the spool: {} are",
        waiting.len()
    );
    assert!(waiting.is_subset(&first_run));

    rig.link.restore();
    let agent = start_agent(&config);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (second_run, logs) = stop_agent(agent);
    let want: BTreeSet<Check> = spooled.union(&second_run).cloned().collect();
    let (rows, ids) = wait_stored(&client, &want).await;
    rig.sink.cancel();
    let missing = want.difference(&ids).count();
    assert_eq!(
        missing, 0,
        "{missing} spooled or later checks never reached the database; agent log:\n{logs}"
    );
    assert_eq!(rows as usize, ids.len(), "duplicates stored");
    let unknown = ids
        .difference(&first_run)
        .filter(|id| !second_run.contains(id))
        .count();
    assert_eq!(unknown, 0, "rows that no check made");
}

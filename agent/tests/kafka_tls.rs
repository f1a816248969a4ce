//! Kafka over mutual TLS, the way Aiven and most managed Kafka run: stunnel (`verify = 2`)
//! terminates TLS in front of Tansu (whose own TLS flags are unusable in 0.6.0). With the
//! CA, client certificate and key, results arrive; without the client certificate, or
//! trusting the wrong CA, nothing is delivered and `close` reports every result as unsent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sitewatch_agent::config::kafka::{CreateTopic, KafkaConfig, SecurityProtocol, SslFiles};
use sitewatch_agent::publisher::KafkaPublisher;
use sitewatch_checks::CheckResult;
use sitewatch_tests::broker::Broker;
use sitewatch_tests::fixtures::result;
use sitewatch_tests::free_port;
use uuid::Uuid;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate for `name` signed by it (with `san` as subjectAltName).
fn make_ca(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ],
    );
}

fn make_cert(dir: &Path, ca: &str, name: &str, san: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName={san}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// Tansu on a plaintext port behind stunnel requiring client certificates; stopped on drop.
struct TlsBroker {
    tls_port: u16,
    stunnel: Child,
    // Dropped after stunnel is stopped.
    _tansu: Broker,
}

impl TlsBroker {
    fn start(dir: &Path) -> TlsBroker {
        let tls_port = free_port();
        let tansu = Broker::start_on(None, Some(tls_port));
        let tansu_port = tansu.port;
        let conf = dir.join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{tansu_port}\ncert = {d}/server.pem\nkey = {d}/server.key\nCAfile = {d}/ca.pem\nverify = 2\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let stunnel = Command::new(if Path::new("/usr/bin/stunnel4").exists() {
            "stunnel4"
        } else {
            "stunnel"
        })
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "stunnel is needed for this test (Debian package stunnel4; scripts/setup installs it)",
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(Instant::now() < deadline, "stunnel did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsBroker {
            tls_port,
            stunnel,
            _tansu: tansu,
        }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.stunnel.kill();
        let _ = self.stunnel.wait();
    }
}

fn tls_config(
    port: u16,
    topic: &str,
    ca: PathBuf,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> KafkaConfig {
    KafkaConfig {
        brokers: vec![format!("127.0.0.1:{port}")],
        topic: topic.to_string(),
        catalog_topic: "off".into(),
        security_protocol: SecurityProtocol::Ssl,
        ssl: Some(SslFiles {
            ca: Some(ca),
            cert,
            key,
        }),
        sasl: None,
        create_topic: Some(CreateTopic {
            partitions: 1,
            replication_factor: 1,
        }),
        properties: Default::default(),
        spool_dir: None,
        spool_max_bytes: None,
        spool: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_delivers_and_missing_or_wrong_credentials_keep_results_unsent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d, "ca");
    make_ca(d, "wrong-ca");
    make_cert(d, "ca", "server", "IP:127.0.0.1,DNS:localhost");
    make_cert(d, "ca", "client", "DNS:sitewatch-agent");
    let broker = TlsBroker::start(d);
    let topic = format!("sitewatch.tls.{}", Uuid::now_v7().simple());
    let (ca, cert, key) = (d.join("ca.pem"), d.join("client.pem"), d.join("client.key"));

    // With CA, client certificate and key: delivered.
    let good = tls_config(
        broker.tls_port,
        &topic,
        ca.clone(),
        Some(cert.clone()),
        Some(key.clone()),
    );
    let publisher = KafkaPublisher::new(&good).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let r = result("secure");
        ids.push(r.check_id);
        publisher.publish(&r).await.unwrap();
    }
    assert_eq!(publisher.close(Duration::from_secs(30)).await, 0);

    let consumer: BaseConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            format!("127.0.0.1:{}", broker.tls_port),
        )
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca.to_string_lossy())
        .set("ssl.certificate.location", cert.to_string_lossy())
        .set("ssl.key.location", key.to_string_lossy())
        .set("group.id", "tls-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < ids.len() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let r: CheckResult = serde_json::from_slice(m.payload().unwrap()).unwrap();
            got.push(r.check_id);
        }
    }
    assert_eq!(got, ids, "results arrive over mutual TLS");

    // No client certificate: stunnel (verify = 2) refuses; nothing is delivered, all reported.
    let no_cert = tls_config(broker.tls_port, &topic, ca.clone(), None, None);
    let publisher = KafkaPublisher::new(&no_cert).await.unwrap();
    publisher.publish(&result("secure")).await.unwrap();
    publisher.publish(&result("secure")).await.unwrap();
    assert_eq!(publisher.close(Duration::from_secs(3)).await, 2);

    // Trusting the wrong CA: the server certificate fails verification.
    let wrong_ca = tls_config(
        broker.tls_port,
        &topic,
        d.join("wrong-ca.pem"),
        Some(cert),
        Some(key),
    );
    let publisher = KafkaPublisher::new(&wrong_ca).await.unwrap();
    publisher.publish(&result("secure")).await.unwrap();
    assert_eq!(publisher.close(Duration::from_secs(3)).await, 1);
}

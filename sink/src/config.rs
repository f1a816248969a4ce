//! Sink settings: flags, each also an environment variable with the `SITEWATCH_` prefix.

use std::time::Duration;

use clap::Args;
use sitewatch_checks::kafka::{KafkaConnection, Sasl, SecurityProtocol, SslFiles};
use sitewatch_checks::ops::units::parse_duration;

/// `--batch-backlog-rows` unless set. A typical result takes ~0.7 KB decoded (measured: 673 B
/// for a 495-byte message), so a batch of this many takes ~67 MB; a sink behind holds two (one
/// being written, one being filled), three while a sweep or rebalance hands one over early.
pub const DEFAULT_BATCH_BACKLOG_ROWS: usize = 100_000;
/// `--write-connections` unless set.
pub const DEFAULT_WRITE_CONNECTIONS: u16 = 2;

/// Where to read from, where to write to, and how to batch.
#[derive(Debug, Clone, Args)]
pub struct SinkConfig {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "SITEWATCH_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic the agents publish to.
    #[arg(long, env = "SITEWATCH_TOPIC", default_value = "sitewatch.checks")]
    pub topic: String,
    /// The site catalog topic the agents publish their site definitions to (compacted);
    /// `off` to judge sites without it (defaults and inferred intervals).
    #[arg(long, env = "SITEWATCH_CATALOG_TOPIC", default_value = sitewatch_checks::catalog::DEFAULT_CATALOG_TOPIC)]
    pub catalog_topic: String,
    /// Consumer group; sinks in one group share the topic's partitions.
    #[arg(long, env = "SITEWATCH_GROUP", default_value = "sitewatch-sink")]
    pub group: String,
    /// Kafka `security.protocol`: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(long, env = "SITEWATCH_SECURITY_PROTOCOL", default_value = "plaintext")]
    pub security_protocol: SecurityProtocol,
    /// CA certificate file for Kafka TLS.
    #[arg(long, env = "SITEWATCH_SSL_CA")]
    pub ssl_ca: Option<std::path::PathBuf>,
    /// Client certificate file for Kafka TLS.
    #[arg(long, env = "SITEWATCH_SSL_CERT")]
    pub ssl_cert: Option<std::path::PathBuf>,
    /// Client key file for Kafka TLS.
    #[arg(long, env = "SITEWATCH_SSL_KEY")]
    pub ssl_key: Option<std::path::PathBuf>,
    /// SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
    #[arg(long, env = "SITEWATCH_SASL_MECHANISM")]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[arg(long, env = "SITEWATCH_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// SASL password (prefer the environment variable; never logged).
    #[arg(long, env = "SITEWATCH_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
    /// Any other librdkafka property, `KEY=VALUE`; repeat the flag, or separate with commas
    /// in the variable. Applied last, as the agent's `kafka.properties`.
    #[arg(long = "kafka-property", env = "SITEWATCH_KAFKA_PROPERTIES", value_name = "KEY=VALUE",
          value_parser = parse_property, value_delimiter = ',')]
    pub kafka_properties: Vec<(String, String)>,
    /// PostgreSQL connection string (never logged).
    #[arg(long, env = "SITEWATCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// TLS to PostgreSQL: disable, prefer, require, verify-ca or verify-full (default: the
    /// URL's `sslmode`, else prefer).
    #[arg(long, env = "SITEWATCH_DATABASE_SSLMODE", value_enum)]
    pub database_sslmode: Option<crate::database::SslMode>,
    /// CA certificate (PEM) for the PostgreSQL server; when set, only it is trusted (as libpq's sslrootcert).
    #[arg(long, env = "SITEWATCH_DATABASE_CA")]
    pub database_ca: Option<std::path::PathBuf>,
    /// Most messages per database transaction.
    #[arg(long, env = "SITEWATCH_BATCH_MAX_ROWS", default_value_t = 5000)]
    pub batch_max_rows: usize,
    /// Most messages per database transaction while a backlog is caught up on: while the
    /// previous batch is still being written and the next one already waits for the writer,
    /// the batch being filled keeps growing past `--batch-max-rows`, up to this many (a
    /// transaction's cost grows with the sites it touches more than with its rows, so fewer,
    /// larger ones drain a backlog faster). Traffic the writer keeps up with is still written
    /// in batches of at most `--batch-max-rows`. Up to three batches are held in memory (one
    /// being written, one waiting, one being filled); at or below `--batch-max-rows`, batches
    /// never grow.
    #[arg(long, env = "SITEWATCH_BATCH_BACKLOG_ROWS", default_value_t = DEFAULT_BATCH_BACKLOG_ROWS)]
    pub batch_backlog_rows: usize,
    /// Database connections a batch is written over: a batch of at least 1,000 results per
    /// connection is split by site into one part per connection, each stored in its own
    /// transaction at the same time (parts touch disjoint sites, so they never wait for each
    /// other); its offsets are committed once every part is stored. 1 writes every batch in
    /// one transaction.
    #[arg(long, env = "SITEWATCH_WRITE_CONNECTIONS", default_value_t = DEFAULT_WRITE_CONNECTIONS,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub write_connections: u16,
    /// Longest a message waits in a batch before it is written.
    #[arg(long, env = "SITEWATCH_BATCH_MAX_WAIT", default_value = "200ms", value_parser = parse_duration)]
    pub batch_max_wait: Duration,
    /// Days of raw results kept; older daily partitions are dropped (rollups keep their figures).
    #[arg(long, env = "SITEWATCH_RETENTION_DAYS", default_value_t = 14)]
    pub retention_days: u64,
    /// Days of hourly rollups kept (whole months are dropped once past it).
    #[arg(long, env = "SITEWATCH_HOURLY_RETENTION_DAYS", default_value_t = 180)]
    pub hourly_retention_days: u64,
    /// Days of daily rollups kept (default: kept for good).
    #[arg(long, env = "SITEWATCH_DAILY_RETENTION_DAYS")]
    pub daily_retention_days: Option<u64>,
    /// Address for `/healthz` and `/metrics`, e.g. `127.0.0.1:9465` (default: not served).
    #[arg(long, env = "SITEWATCH_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Days of partitions created ahead of time.
    #[arg(long, env = "SITEWATCH_PARTITIONS_AHEAD", default_value_t = 3)]
    pub partitions_ahead: u64,
    /// How long after a day (UTC) ends its results partition's index is re-packed (rebuilt
    /// once, compact, without blocking writes); `off` never to.
    #[arg(long, env = "SITEWATCH_REPACK_AFTER", default_value = "1h", value_parser = parse_repack_after)]
    pub repack_after: RepackAfter,
}

/// `--repack-after`: a grace after a day's end, or never (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepackAfter(pub Option<Duration>);

fn parse_repack_after(text: &str) -> Result<RepackAfter, String> {
    match text.trim() {
        "off" => Ok(RepackAfter(None)),
        other => parse_duration(other).map(|d| RepackAfter(Some(d))),
    }
}

impl SinkConfig {
    /// The database connection settings, checked.
    pub fn database(
        &self,
    ) -> Result<crate::database::Database, crate::database::DatabaseConfigError> {
        crate::database::Database::new(
            &self.database_url,
            self.database_sslmode,
            self.database_ca.as_deref(),
        )
    }

    /// The catalog topic, unless it is `off`.
    pub fn catalog_topic(&self) -> Option<&str> {
        match self.catalog_topic.trim() {
            "" | "off" => None,
            topic => Some(topic),
        }
    }

    /// How long each storage tier is kept.
    pub fn retention(&self) -> crate::retention::Retention {
        crate::retention::Retention {
            raw_days: self.retention_days,
            hourly_days: self.hourly_retention_days,
            daily_days: self.daily_retention_days,
        }
    }

    /// How to reach Kafka, in the form shared with the agent; an error names the flags
    /// that do not fit together.
    pub fn connection(&self) -> Result<KafkaConnection, String> {
        let ssl = (self.ssl_ca.is_some() || self.ssl_cert.is_some() || self.ssl_key.is_some())
            .then(|| SslFiles {
                ca: self.ssl_ca.clone(),
                cert: self.ssl_cert.clone(),
                key: self.ssl_key.clone(),
            });
        let sasl = match (
            &self.sasl_mechanism,
            &self.sasl_username,
            &self.sasl_password,
        ) {
            (None, None, None) => None,
            (Some(mechanism), Some(username), Some(password)) => Some(Sasl {
                mechanism: mechanism.clone(),
                username: username.clone(),
                password: password.clone(),
            }),
            _ => {
                return Err(
                    "--sasl-mechanism, --sasl-username and --sasl-password go together: \
                     give all three or none"
                        .into(),
                )
            }
        };
        Ok(KafkaConnection {
            brokers: self
                .brokers
                .split(',')
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_string)
                .collect(),
            security_protocol: self.security_protocol,
            ssl,
            sasl,
            properties: self.kafka_properties.iter().cloned().collect(),
        })
    }

    /// librdkafka consumer settings: the shared connection settings, manual offset
    /// commits and fast group joins, the user's properties last.
    pub fn consumer_config(&self) -> Result<rdkafka::ClientConfig, String> {
        let defaults = [
            ("group.id", self.group.as_str()),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            ("enable.partition.eof", "false"),
            // A subscribed topic created later (the site catalog, by the first agent) is
            // found within this, not librdkafka's default 5 minutes.
            ("topic.metadata.refresh.interval.ms", "30000"),
        ];
        Ok(self.connection()?.client_config(&defaults))
    }
}

/// `KEY=VALUE` of `--kafka-property`.
fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        config: SinkConfig,
    }

    fn parse(args: &[&str]) -> Result<SinkConfig, clap::Error> {
        let mut all = vec!["sink", "--database-url", "postgres://x@y/z"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all).map(|f| f.config)
    }

    #[test]
    fn flags_map_to_the_shared_connection_settings() {
        let config = parse(&[
            "--brokers",
            "a:9093, b:9093",
            "--security-protocol",
            "sasl_ssl",
            "--ssl-ca",
            "/etc/ca.pem",
            "--sasl-mechanism",
            "PLAIN",
            "--sasl-username",
            "u",
            "--sasl-password",
            "p",
            "--kafka-property",
            "fetch.max.bytes=1048576",
            "--kafka-property",
            "session.timeout.ms=10000",
        ])
        .unwrap();
        let c = config.consumer_config().unwrap();
        assert_eq!(c.get("bootstrap.servers"), Some("a:9093,b:9093"));
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(c.get("sasl.username"), Some("u"));
        assert_eq!(c.get("group.id"), Some("sitewatch-sink"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("fetch.max.bytes"), Some("1048576"));
        assert_eq!(
            c.get("session.timeout.ms"),
            Some("10000"),
            "the user's value wins"
        );
    }

    #[test]
    fn repacking_is_on_an_hour_after_midnight_unless_off() {
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(parse(&[]).unwrap().repack_after, RepackAfter(hour));
        let off = parse(&["--repack-after", "off"]).unwrap();
        assert_eq!(off.repack_after, RepackAfter(None));
        let later = parse(&["--repack-after", "6h"]).unwrap();
        assert_eq!(later.repack_after.0, Some(Duration::from_secs(6 * 3600)));
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--security-protocol", "tls"]).is_err());
        assert!(parse(&["--kafka-property", "novalue"]).is_err());
        assert!(parse(&["--batch-max-wait", "soon"]).is_err());
        assert!(parse(&["--repack-after", "never"]).is_err());
        let half_sasl = parse(&["--sasl-username", "u"]).unwrap();
        let e = half_sasl.consumer_config().unwrap_err();
        assert!(e.contains("--sasl-password"), "{e}");
    }
}

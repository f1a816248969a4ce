//! Sink settings: flags, each also an environment variable with the `SITEWATCH_` prefix.

use std::time::Duration;

use clap::Args;

/// Where to read from, where to write to, and how to batch.
#[derive(Debug, Clone, Args)]
pub struct SinkConfig {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "SITEWATCH_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic the agents publish to.
    #[arg(long, env = "SITEWATCH_TOPIC", default_value = "sitewatch.checks")]
    pub topic: String,
    /// Consumer group; sinks in one group share the topic's partitions.
    #[arg(long, env = "SITEWATCH_GROUP", default_value = "sitewatch-sink")]
    pub group: String,
    /// Kafka `security.protocol`: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(long, env = "SITEWATCH_SECURITY_PROTOCOL", default_value = "plaintext")]
    pub security_protocol: String,
    /// CA certificate file for Kafka TLS.
    #[arg(long, env = "SITEWATCH_SSL_CA")]
    pub ssl_ca: Option<String>,
    /// Client certificate file for Kafka TLS.
    #[arg(long, env = "SITEWATCH_SSL_CERT")]
    pub ssl_cert: Option<String>,
    /// Client key file for Kafka TLS.
    #[arg(long, env = "SITEWATCH_SSL_KEY")]
    pub ssl_key: Option<String>,
    /// SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
    #[arg(long, env = "SITEWATCH_SASL_MECHANISM")]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[arg(long, env = "SITEWATCH_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// SASL password (prefer the environment variable; never logged).
    #[arg(long, env = "SITEWATCH_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
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
    /// Longest a message waits in a batch before it is written.
    #[arg(long, env = "SITEWATCH_BATCH_MAX_WAIT", default_value = "200ms", value_parser = humantime::parse_duration)]
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

    /// How long each storage tier is kept.
    pub fn retention(&self) -> crate::retention::Retention {
        crate::retention::Retention {
            raw_days: self.retention_days,
            hourly_days: self.hourly_retention_days,
            daily_days: self.daily_retention_days,
        }
    }

    /// librdkafka consumer settings: manual offset commits, fast group joins.
    pub fn consumer_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            .set("security.protocol", &self.security_protocol)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("enable.partition.eof", "false");
        for (key, value) in [
            ("ssl.ca.location", &self.ssl_ca),
            ("ssl.certificate.location", &self.ssl_cert),
            ("ssl.key.location", &self.ssl_key),
            ("sasl.mechanism", &self.sasl_mechanism),
            ("sasl.username", &self.sasl_username),
            ("sasl.password", &self.sasl_password),
        ] {
            if let Some(v) = value {
                c.set(key, v);
            }
        }
        c
    }
}

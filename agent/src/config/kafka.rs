//! The `kafka:` block of the agent config (publisher settings).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where and how results are published to Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port` (a list, or one comma-separated string).
    pub brokers: Vec<String>,
    /// Topic results are written to.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,
    /// TLS files (Aiven style: ca.pem, service.cert, service.key).
    #[serde(default)]
    pub ssl: Option<SslFiles>,
    /// SASL credentials.
    #[serde(default)]
    pub sasl: Option<Sasl>,
    /// Create the topic at start when it is missing.
    #[serde(default)]
    pub create_topic: Option<CreateTopic>,
    /// Extra librdkafka properties, passed through as is.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Default topic name.
pub fn default_topic() -> String {
    "sitewatch.checks".to_string()
}

/// Kafka `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[default]
    Plaintext,
    /// TLS (optionally with a client certificate).
    Ssl,
    /// SASL over plaintext.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

/// TLS file paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SslFiles {
    /// CA certificate(s) to trust (PEM).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// SASL settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// User name.
    pub username: String,
    /// Password (use `${VAR}`); masked when printed.
    pub password: String,
}

/// Topic creation at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// Partition count.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor.
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
}

fn default_partitions() -> i32 {
    3
}
fn default_replication() -> i32 {
    1
}

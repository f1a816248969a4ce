//! The `kafka:` block of the agent config (publisher settings).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
pub use sitewatch_checks::kafka::{KafkaConnection, Sasl, SecurityProtocol, SslFiles};

use crate::spool::{SpoolSettings, DEFAULT_SPOOL_MAX_BYTES};

/// Where and how results are published to Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port` (a list, or one comma-separated string).
    pub brokers: Vec<String>,
    /// Topic results are written to.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Compacted topic the agent publishes its site definitions to (the site catalog the
    /// sink judges verdicts by); `off` publishes none (default `sitewatch.sites`).
    #[serde(default = "default_catalog_topic")]
    pub catalog_topic: String,
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
    /// Directory where results wait until Kafka confirms them, so broker outages and agent
    /// restarts lose nothing (relative to this file); `off` disables
    /// (default: `$STATE_DIRECTORY/spool` under systemd, else off).
    #[serde(default)]
    pub spool_dir: Option<String>,
    /// Disk the spool may use, e.g. `512MiB`; past it the oldest results are dropped,
    /// counted and logged (default 1GiB, at least 1MiB).
    #[serde(default, deserialize_with = "super::plugin::bytes_opt")]
    pub spool_max_bytes: Option<u64>,
    /// The spool as resolved when the file was loaded (`None`: no spool).
    #[serde(skip)]
    pub spool: Option<SpoolSettings>,
}

/// Smallest `spool_max_bytes` accepted.
const MIN_SPOOL_BYTES: u64 = 1 << 20;

impl KafkaConfig {
    /// How to reach the cluster, in the form shared with the sink.
    pub fn connection(&self) -> KafkaConnection {
        KafkaConnection {
            brokers: self.brokers.clone(),
            security_protocol: self.security_protocol,
            ssl: self.ssl.clone(),
            sasl: self.sasl.clone(),
            properties: self.properties.clone(),
        }
    }

    /// The catalog topic, unless publishing the catalog is `off`.
    pub fn catalog_topic(&self) -> Option<&str> {
        match self.catalog_topic.trim() {
            "off" | "" => None,
            topic => Some(topic),
        }
    }

    /// Resolves `spool_dir` (relative to `file`) and `spool_max_bytes`; an error names the field.
    pub fn resolve_spool(
        &self,
        file: &Path,
    ) -> Result<Option<SpoolSettings>, (&'static str, String)> {
        let max_bytes = self.spool_max_bytes.unwrap_or(DEFAULT_SPOOL_MAX_BYTES);
        if max_bytes < MIN_SPOOL_BYTES {
            return Err((
                "spool_max_bytes",
                format!("{max_bytes} bytes is too small for a spool (at least 1MiB)"),
            ));
        }
        let dir = match self.spool_dir.as_deref().map(str::trim) {
            None => std::env::var_os("STATE_DIRECTORY")
                .filter(|v| !v.is_empty())
                // systemd may pass several directories separated by ':'; the first is ours.
                .and_then(|v| {
                    v.to_str()
                        .and_then(|v| v.split(':').next())
                        .map(PathBuf::from)
                })
                .map(|d| d.join("spool")),
            Some("off") => None,
            Some("") => {
                return Err((
                    "spool_dir",
                    "is empty (write `off` to disable the spool)".into(),
                ))
            }
            Some(dir) => Some(file.parent().unwrap_or(Path::new(".")).join(dir)),
        };
        Ok(dir.map(|dir| SpoolSettings { dir, max_bytes }))
    }
}

/// Default topic name.
pub fn default_topic() -> String {
    "sitewatch.checks".to_string()
}

/// Default catalog topic name.
pub fn default_catalog_topic() -> String {
    sitewatch_checks::catalog::DEFAULT_CATALOG_TOPIC.to_string()
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

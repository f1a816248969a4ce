//! How to reach a Kafka cluster: brokers, security, credentials and extra librdkafka
//! properties, and the one place they become a librdkafka [`ClientConfig`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Settings every Kafka client of sitewatch needs, whatever its role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaConnection {
    /// Bootstrap servers, `host:port`.
    pub brokers: Vec<String>,
    /// `security.protocol`.
    pub security_protocol: SecurityProtocol,
    /// TLS files.
    pub ssl: Option<SslFiles>,
    /// SASL credentials.
    pub sasl: Option<Sasl>,
    /// Extra librdkafka properties, applied last (they override anything set here).
    pub properties: BTreeMap<String, String>,
}

/// How often librdkafka reports statistics (broker state for `/healthz`, consumer lag).
pub const STATISTICS_INTERVAL_MS: &str = "5000";

impl KafkaConnection {
    /// The librdkafka settings: connection first, then the role's own defaults
    /// (`role_defaults`), then the user's `properties`, which win over both.
    pub fn client_config(&self, role_defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","))
            .set("security.protocol", self.security_protocol.as_str())
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        if let Some(ssl) = &self.ssl {
            for (key, path) in [
                ("ssl.ca.location", &ssl.ca),
                ("ssl.certificate.location", &ssl.cert),
                ("ssl.key.location", &ssl.key),
            ] {
                if let Some(path) = path {
                    c.set(key, path.to_string_lossy());
                }
            }
        }
        if let Some(sasl) = &self.sasl {
            c.set("sasl.mechanism", &sasl.mechanism)
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        for (key, value) in role_defaults {
            c.set(*key, *value);
        }
        for (key, value) in &self.properties {
            c.set(key, value);
        }
        c
    }
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

impl SecurityProtocol {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;

    /// Case-insensitive, as librdkafka takes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "plaintext" => Ok(SecurityProtocol::Plaintext),
            "ssl" => Ok(SecurityProtocol::Ssl),
            "sasl_plaintext" => Ok(SecurityProtocol::SaslPlaintext),
            "sasl_ssl" => Ok(SecurityProtocol::SaslSsl),
            other => Err(format!(
                "`{other}` is not a security protocol (plaintext, ssl, sasl_plaintext, sasl_ssl)"
            )),
        }
    }
}

/// TLS file paths (Aiven style: ca.pem, service.cert, service.key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// User name.
    pub username: String,
    /// Password (use `${VAR}` or an environment variable); masked when printed.
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_then_role_defaults_then_user_properties() {
        let connection = KafkaConnection {
            brokers: vec!["a:9093".into(), "b:9093".into()],
            security_protocol: SecurityProtocol::SaslSsl,
            ssl: Some(SslFiles {
                ca: Some("/etc/ca.pem".into()),
                cert: None,
                key: None,
            }),
            sasl: Some(Sasl {
                mechanism: "SCRAM-SHA-256".into(),
                username: "u".into(),
                password: "p".into(),
            }),
            properties: [("acks".to_string(), "1".to_string())].into(),
        };
        let c = connection.client_config(&[("acks", "all"), ("linger.ms", "5")]);
        assert_eq!(c.get("bootstrap.servers"), Some("a:9093,b:9093"));
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(c.get("ssl.key.location"), None);
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(c.get("linger.ms"), Some("5"));
        assert_eq!(c.get("acks"), Some("1"), "the user's properties win");
        assert_eq!(c.get("statistics.interval.ms"), Some("5000"));
    }

    #[test]
    fn security_protocol_names() {
        for p in [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ] {
            assert_eq!(p.as_str().parse::<SecurityProtocol>(), Ok(p));
        }
        assert_eq!("SSL".parse::<SecurityProtocol>(), Ok(SecurityProtocol::Ssl));
        assert!("tls".parse::<SecurityProtocol>().is_err());
    }
}

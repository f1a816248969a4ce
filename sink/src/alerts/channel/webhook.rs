//! Generic webhook: POSTs the notification as JSON (plus `version`), signed with
//! HMAC-SHA256 over `"{timestamp}.{body}"` with a shared secret, so receivers can check
//! origin and freshness, and de-duplicate on `Idempotency-Key`.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Client, Url};
use serde::{Deserialize, Serialize};

use super::secret::{expand, Lookup};
use super::{http, Channel, ChannelConfigError, DeliveryError, DeliveryFuture, Secret};
use crate::alerts::notification::Notification;

/// The `version` field of the JSON body; raised when a field changes meaning.
pub const PAYLOAD_VERSION: u32 = 1;

/// A generic webhook channel (`type: webhook`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// URL the notification is POSTed to; `${VAR}` references are read from the environment.
    pub url: Secret,
    /// Shared secret for the `X-Sitewatch-Signature` header (HMAC-SHA256); without it
    /// requests are not signed.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Extra headers sent with every request (values may use `${VAR}`).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Per-request timeout (default 10s).
    #[serde(default, deserialize_with = "super::duration::optional")]
    pub timeout: Option<Duration>,
}

/// Body of a webhook request.
#[derive(Serialize)]
struct Envelope<'a> {
    version: u32,
    #[serde(flatten)]
    notification: &'a Notification,
}

/// HMAC-SHA256 keyed with the shared secret.
pub type Signer = hmac::Hmac<sha2::Sha256>;

/// A [`Signer`] for `secret` (`None` only if the key were rejected; HMAC takes any length).
pub fn signer(secret: &[u8]) -> Option<Signer> {
    Signer::new_from_slice(secret).ok()
}

/// The signature header's value for `body` sent at `timestamp` (unix seconds):
/// `sha256=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(signer: &Signer, timestamp: i64, body: &[u8]) -> String {
    let mut mac = signer.clone();
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A built webhook channel.
pub struct WebhookChannel {
    name: String,
    url: Url,
    signer: Option<Signer>,
    headers: HeaderMap,
    client: Client,
}

impl WebhookChannel {
    /// Builds the channel, expanding `${VAR}` references with `lookup`.
    pub fn new(
        name: &str,
        config: &WebhookConfig,
        lookup: Lookup<'_>,
    ) -> Result<Self, ChannelConfigError> {
        let url = expand(name, "url", config.url.expose(), lookup)?;
        let url = http::parse_url(name, "url", &url)?;
        let signer = match &config.secret {
            Some(s) => {
                let s = expand(name, "secret", s.expose(), lookup)?;
                if s.is_empty() {
                    return Err(ChannelConfigError::invalid(name, "secret", "is empty"));
                }
                Some(signer(s.as_bytes()).ok_or_else(|| {
                    ChannelConfigError::invalid(name, "secret", "not usable as an HMAC key")
                })?)
            }
            None => None,
        };
        let headers = http::headers(name, &config.headers, lookup)?;
        let client = http::client(name, config.timeout.unwrap_or(http::DEFAULT_TIMEOUT))?;
        Ok(Self {
            name: name.to_string(),
            url,
            signer,
            headers,
            client,
        })
    }

    async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&Envelope {
            version: PAYLOAD_VERSION,
            notification: n,
        })
        .map_err(|e| DeliveryError::Permanent(format!("cannot encode the notification: {e}")))?;
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("X-Sitewatch-Timestamp", timestamp.to_string())
            .header("Idempotency-Key", &n.idempotency_key);
        if let Some(signer) = &self.signer {
            request = request.header("X-Sitewatch-Signature", sign(signer, timestamp, &body));
        }
        http::send(request.body(body)).await
    }
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(self.send(n))
    }
}

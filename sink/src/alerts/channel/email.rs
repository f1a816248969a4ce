//! Email over SMTP (lettre): a plain-text message, subject `[sitewatch] DOWN shop: ...`.
//! The `Message-ID` derives from the idempotency key so mail systems can de-duplicate a
//! notification delivered twice. SMTP 5xx answers are permanent, 4xx and connection
//! failures retried.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use sha2::Digest;
use sitewatch_checks::causes::chain;

use super::secret::{expand, Lookup};
use super::{http, text, Channel, ChannelConfigError, DeliveryError, DeliveryFuture, Secret};
use crate::alerts::notification::Notification;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (only for a relay on the same host or network).
    None,
    /// STARTTLS, required (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (default port 465).
    Tls,
}

/// An SMTP email channel (`type: email`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP port (default 25 with `tls: none`, 587 with `starttls`, 465 with `tls`).
    #[serde(default)]
    pub port: Option<u16>,
    /// Connection security: none, starttls or tls (default starttls).
    #[serde(default)]
    pub tls: SmtpTls,
    /// User name for SMTP authentication (none: no authentication).
    #[serde(default)]
    pub username: Option<String>,
    /// Password for SMTP authentication (a secret: write it as `${VAR}`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender, e.g. `sitewatch <alerts@example.com>`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// PEM file of a CA to trust besides the system's (e.g. a private relay's certificate).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Timeout of each SMTP command (default 10s).
    #[serde(default, deserialize_with = "super::duration::optional")]
    pub timeout: Option<Duration>,
}

/// A built email channel.
pub struct EmailChannel {
    name: String,
    from: Mailbox,
    to: Mailboxes,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl EmailChannel {
    /// Builds the channel, expanding `${VAR}` references with `lookup`.
    pub fn new(
        name: &str,
        config: &EmailConfig,
        lookup: Lookup<'_>,
    ) -> Result<Self, ChannelConfigError> {
        let host = expand(name, "host", &config.host, lookup)?;
        let from: Mailbox = config.from.parse().map_err(|e| {
            ChannelConfigError::invalid(name, "from", format!("not an address ({e})"))
        })?;
        if config.to.is_empty() {
            return Err(ChannelConfigError::invalid(
                name,
                "to",
                "lists no recipient",
            ));
        }
        let mut to = Mailboxes::new();
        for (i, address) in config.to.iter().enumerate() {
            let mailbox: Mailbox = address.parse().map_err(|e| {
                ChannelConfigError::invalid(
                    name,
                    &format!("to[{i}]"),
                    format!("not an address ({e})"),
                )
            })?;
            to.push(mailbox);
        }
        let tls_params = || {
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    ChannelConfigError::invalid(name, "ca_file", format!("{}: {e}", path.display()))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    ChannelConfigError::invalid(
                        name,
                        "ca_file",
                        format!("{}: not a PEM certificate ({})", path.display(), chain(&e)),
                    )
                })?;
                builder = builder.add_root_certificate(cert);
            }
            builder
                .build()
                .map_err(|e| ChannelConfigError::invalid(name, "tls", chain(&e)))
        };
        if config.tls == SmtpTls::None && config.ca_file.is_some() {
            return Err(ChannelConfigError::invalid(
                name,
                "ca_file",
                "is only used with `tls: starttls` or `tls: tls`",
            ));
        }
        let (tls, default_port) = match config.tls {
            SmtpTls::None => (Tls::None, 25),
            SmtpTls::Starttls => (Tls::Required(tls_params()?), 587),
            SmtpTls::Tls => (Tls::Wrapper(tls_params()?), 465),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(config.port.unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(config.timeout.unwrap_or(http::DEFAULT_TIMEOUT)));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                let user = expand(name, "username", user, lookup)?;
                let password = expand(name, "password", password.expose(), lookup)?;
                builder = builder.credentials(Credentials::new(user, password));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(ChannelConfigError::invalid(
                    name,
                    "password",
                    "is missing (username is set)",
                ))
            }
            (None, Some(_)) => {
                return Err(ChannelConfigError::invalid(
                    name,
                    "username",
                    "is missing (password is set)",
                ))
            }
        }
        Ok(Self {
            name: name.to_string(),
            from,
            to,
            transport: builder.build(),
        })
    }

    fn message(&self, n: &Notification) -> Result<Message, DeliveryError> {
        let mut body = text::headline(n);
        body.push_str("\n\n");
        for (label, value) in text::details(n) {
            body.push_str(&format!("{label}: {value}\n"));
        }
        body.push_str(&format!("\nIdempotency key: {}\n", n.idempotency_key));
        let digest = sha2::Sha256::digest(n.idempotency_key.as_bytes());
        let id: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Message::builder()
            .from(self.from.clone())
            .mailbox(lettre::message::header::To::from(self.to.clone()))
            .subject(format!("[sitewatch] {}", text::headline(n)))
            .message_id(Some(format!(
                "<sitewatch.{id}@{}>",
                self.from.email.domain()
            )))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))
    }

    async fn send(&self, n: &Notification) -> Result<(), DeliveryError> {
        let message = self.message(n)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() || e.is_client() => Err(DeliveryError::Permanent(chain(&e))),
            Err(e) => Err(DeliveryError::Retry(chain(&e))),
        }
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a> {
        Box::pin(self.send(n))
    }
}

//! Notification channels: the [`Channel`] contract, their configuration (the sink config
//! file's `channels:` map) and one module per receiver protocol.

mod alertmanager;
mod config;
mod contract;
pub mod duration;
mod email;
mod error;
mod http;
mod pagerduty;
mod secret;
mod slack;
mod text;
mod webhook;

pub use alertmanager::{AlertmanagerChannel, AlertmanagerConfig};
pub use config::{build, build_with, ChannelConfig};
pub use contract::{Channel, DeliveryFuture};
pub use email::{EmailChannel, EmailConfig, SmtpTls};
pub use error::{ChannelConfigError, DeliveryError};
pub use pagerduty::{PagerdutyChannel, PagerdutyConfig};
pub use secret::{process_env, Lookup, Secret};
pub use slack::{SlackChannel, SlackConfig};
pub use webhook::{sign, signer, Signer, WebhookChannel, WebhookConfig, PAYLOAD_VERSION};

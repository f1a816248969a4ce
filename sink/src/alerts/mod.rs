//! Alerts: what a notification is, the channels that deliver it (webhook, Slack, PagerDuty,
//! Alertmanager, email) and when maintenance windows keep sites quiet.
//!
//! The policy (`policy`, read by `file` from the sink's config file) routes sites to
//! channels; `outbox` writes notifications in the transaction of the verdict change that
//! causes them; `dispatch` delivers them (with `periodic` writing reminders and late
//! triggers, `metrics` counting); `silences` holds the ad-hoc silences of the CLI.

pub mod channel;
pub mod commands;
pub mod dispatch;
pub mod file;
mod metrics;
pub mod notification;
pub mod outbox;
pub mod periodic;
pub mod policy;
pub mod silences;
pub mod window;

pub use file::{load, Alerts, FileError, FileErrors};
pub use metrics::AlertMetrics;
pub use policy::{Flapping, Route, SinkFile};

//! Alerts: what a notification is, the channels that deliver it (webhook, Slack, PagerDuty,
//! Alertmanager, email) and when maintenance windows keep sites quiet.

pub mod channel;
pub mod notification;
pub mod window;

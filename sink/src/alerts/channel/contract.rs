//! The contract between the dispatcher and a channel: deliver one notification, or say
//! whether trying again later can help.

use std::future::Future;
use std::pin::Pin;

use super::DeliveryError;
use crate::alerts::notification::Notification;

/// What [`Channel::deliver`] returns (boxed so channels can live behind `dyn Channel`).
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// A configured receiver of notifications.
pub trait Channel: Send + Sync {
    /// The channel's name from the config.
    fn name(&self) -> &str;
    /// Sends one notification. `Ok` once the receiver accepted it (or the channel
    /// deliberately skips this kind, e.g. PagerDuty reminders).
    fn deliver<'a>(&'a self, n: &'a Notification) -> DeliveryFuture<'a>;
}

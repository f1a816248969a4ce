//! Errors of channels: building one from its config, and delivering a notification.

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again later: 5xx, 408, 429, network errors, timeouts.
    #[error("{0}")]
    Retry(String),
    /// Trying again cannot help: other 4xx, a malformed request, bad configuration.
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    /// Whether the dispatcher should try again later.
    pub fn is_retry(&self) -> bool {
        matches!(self, Self::Retry(_))
    }
}

/// A channel's configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChannelConfigError {
    /// A `${VAR}` reference to an environment variable that is not set.
    #[error("channel `{channel}`, field `{field}`: environment variable `{var}` is not set")]
    MissingVariable {
        /// Channel name.
        channel: String,
        /// Config field holding the reference.
        field: String,
        /// The variable's name.
        var: String,
    },
    /// Any other invalid value.
    #[error("channel `{channel}`, field `{field}`: {reason}")]
    Invalid {
        /// Channel name.
        channel: String,
        /// Config field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ChannelConfigError {
    pub(crate) fn invalid(channel: &str, field: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            channel: channel.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

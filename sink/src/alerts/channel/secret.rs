//! Secrets and `${VAR}` references in channel configs: values are read from the
//! environment when a channel is built, and a [`Secret`] never shows in `Debug` output,
//! so configs and channels can be logged.

use serde::Deserialize;

use super::ChannelConfigError;

/// A config value that must not be shown: a shared secret, a token, a password, a URL
/// holding a token (Slack). `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value as written in the config (`${VAR}` references not yet expanded).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Looks up an environment variable (a parameter so tests need not change the process
/// environment).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Replaces each `${NAME}` in `text` by the variable's value; a `$` not followed by `{`
/// stays as it is. An unset variable or an unterminated `${` is an error naming the
/// channel and the field.
pub fn expand(
    channel: &str,
    field: &str,
    text: &str,
    lookup: Lookup<'_>,
) -> Result<String, ChannelConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return Err(ChannelConfigError::invalid(
                channel,
                field,
                "`${` without a closing `}`",
            ));
        };
        let var = &after[..end];
        let valid = !var.is_empty()
            && !var.starts_with(|c: char| c.is_ascii_digit())
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ChannelConfigError::invalid(
                channel,
                field,
                format!("`${{{var}}}` is not a variable name (letters, digits, _)"),
            ));
        }
        let value = lookup(var).ok_or_else(|| ChannelConfigError::MissingVariable {
            channel: channel.to_string(),
            field: field.to_string(),
            var: var.to_string(),
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_string())
    }

    #[test]
    fn expands_references_and_keeps_other_dollars() {
        let got = expand("c", "url", "https://x/${TOKEN}/a$b", &env).unwrap();
        assert_eq!(got, "https://x/s3cr3t/a$b");
    }

    #[test]
    fn unset_and_malformed_references_are_errors_naming_channel_and_field() {
        let e = expand("ops", "secret", "${NOPE}", &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`ops`") && e.contains("`secret`") && e.contains("`NOPE`"),
            "{e}"
        );
        let e = expand("ops", "url", "${TOKEN", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("closing"), "{e}");
        let e = expand("ops", "url", "${A-B}", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a variable name"), "{e}");
    }

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
    }
}

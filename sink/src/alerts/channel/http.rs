//! HTTP plumbing shared by the HTTP channels: a client per channel (its timeout, no
//! redirects), URL checks, and the one mapping of outcomes to [`DeliveryError`]: 2xx
//! delivered; 408, 429 and 5xx or a network failure retried; anything else permanent.
//! Error texts never carry the URL (a Slack URL is itself a secret).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, StatusCode, Url};

use super::secret::{expand, Lookup};
use super::{ChannelConfigError, DeliveryError, Secret};
use sitewatch_checks::causes::chain;

/// Per-request timeout when a channel's config does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most of a receiver's error body kept in an error message.
const BODY_EXCERPT: usize = 200;

/// A client for one channel. Redirects are not followed: a POST redirected would be
/// re-sent as a GET, so a moved receiver is reported instead.
pub fn client(channel: &str, timeout: Duration) -> Result<Client, ChannelConfigError> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sitewatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ChannelConfigError::invalid(channel, "timeout", chain(&e)))
}

/// Parses an http(s) URL from the config.
pub fn parse_url(channel: &str, field: &str, text: &str) -> Result<Url, ChannelConfigError> {
    let url = Url::parse(text)
        .map_err(|e| ChannelConfigError::invalid(channel, field, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ChannelConfigError::invalid(
            channel,
            field,
            format!("scheme `{}` is not http or https", url.scheme()),
        ));
    }
    Ok(url)
}

/// Extra headers from the config (`headers.NAME` in errors), values `${VAR}`-expanded and
/// marked sensitive.
pub fn headers(
    channel: &str,
    config: &BTreeMap<String, Secret>,
    lookup: Lookup<'_>,
) -> Result<HeaderMap, ChannelConfigError> {
    let mut headers = HeaderMap::new();
    for (key, value) in config {
        let field = format!("headers.{key}");
        let name = HeaderName::try_from(key.as_str())
            .map_err(|_| ChannelConfigError::invalid(channel, &field, "not a valid header name"))?;
        let value = expand(channel, &field, value.expose(), lookup)?;
        let mut value = HeaderValue::try_from(value).map_err(|_| {
            ChannelConfigError::invalid(channel, &field, "not a valid header value")
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Sends `request` and maps the outcome.
pub async fn send(request: reqwest::RequestBuilder) -> Result<(), DeliveryError> {
    let response = request.send().await.map_err(|e| {
        let e = e.without_url();
        if e.is_builder() {
            DeliveryError::Permanent(chain(&e))
        } else {
            DeliveryError::Retry(chain(&e))
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    Err(classify(status, &body, location.as_deref()))
}

/// The error for a non-2xx answer.
pub fn classify(status: StatusCode, body: &str, location: Option<&str>) -> DeliveryError {
    let mut text = format!("receiver answered {status}");
    let excerpt: String = body.trim().chars().take(BODY_EXCERPT).collect();
    if !excerpt.is_empty() {
        text.push_str(": ");
        text.push_str(&excerpt);
    }
    if status.is_redirection() {
        text.push_str(&format!(
            " (redirected to {}; configure the final URL)",
            location.unwrap_or("?")
        ));
    }
    let retry = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if retry {
        DeliveryError::Retry(text)
    } else {
        DeliveryError::Permanent(text)
    }
}

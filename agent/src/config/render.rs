//! `--check-config` output: the resolved config as YAML with secrets masked.
//!
//! Masked: every value that came from `${VAR}` interpolation (wherever it ended up),
//! the SASL password, and the values of credential headers.

use std::collections::BTreeMap;

use serde::Serialize;
use sitewatch_checks::ops::units::{format_bytes, format_duration as human};

use super::{AgentConfig, KafkaConfig, PluginUse};

/// What replaces a secret.
pub const MASK: &str = "***";

/// Interpolated values shorter than this are not masked (they would mask every `1` or `on`).
const MIN_SECRET_LEN: usize = 4;

/// Headers whose values are credentials.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "x-auth-token",
];

#[derive(Serialize)]
struct View<'a> {
    agent: AgentView<'a>,
    output: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka: Option<KafkaConfig>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    plugins: BTreeMap<&'a str, PluginView<'a>>,
    sites: Vec<SiteView<'a>>,
}

/// A plugin declaration with its defaults applied.
#[derive(Serialize)]
struct PluginView<'a> {
    path: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    config: &'a BTreeMap<String, String>,
    timeout: String,
    max_memory: String,
}

#[derive(Serialize)]
struct AgentView<'a> {
    name: &'a str,
    location: Option<&'a str>,
    max_concurrency: usize,
    shutdown_grace: String,
    listen: Option<String>,
    plugin_cache: Option<String>,
    watch_config: bool,
    plugin_memory_total: String,
}

#[derive(Serialize)]
struct SiteView<'a> {
    name: &'a str,
    url: &'a str,
    method: &'a str,
    interval: String,
    timeout: String,
    expect_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex_absent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    degraded_after: Option<String>,
    max_body_bytes: usize,
    follow_redirects: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    tls_ca: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    plugins: &'a [PluginUse],
    failure_threshold: u32,
    success_threshold: u32,
    quorum: sitewatch_checks::catalog::Quorum,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    public: bool,
}

/// The resolved config as YAML, secrets masked.
pub fn render(config: &AgentConfig) -> String {
    let kafka = config.kafka.clone().map(|mut k| {
        if let Some(sasl) = k.sasl.as_mut() {
            sasl.password = MASK.to_string();
        }
        // Show the spool as it will be used, defaults applied.
        k.spool_dir = Some(match &k.spool {
            Some(spool) => spool.dir.display().to_string(),
            None => "off".to_string(),
        });
        k.spool_max_bytes = k.spool.as_ref().map(|s| s.max_bytes);
        k
    });
    let sites = config
        .sites
        .iter()
        .map(|s| {
            let spec = &s.spec;
            let headers = spec
                .headers
                .iter()
                .map(|(k, v)| {
                    let value = if SECRET_HEADERS.contains(&k.as_str()) {
                        MASK.to_string()
                    } else {
                        String::from_utf8_lossy(v.as_bytes()).into_owned()
                    };
                    (k.to_string(), value)
                })
                .collect();
            SiteView {
                name: &spec.name,
                url: spec.url.as_str(),
                method: spec.method.as_str(),
                interval: human(spec.interval),
                timeout: human(spec.timeout),
                expect_status: spec.expect_status.to_string(),
                regex: spec.regex.as_deref().map(regex::Regex::as_str),
                regex_absent: spec.regex_absent.as_deref().map(regex::Regex::as_str),
                degraded_after: spec.degraded_after.map(human),
                max_body_bytes: spec.max_body_bytes,
                follow_redirects: spec.follow_redirects,
                headers,
                tls_ca: spec.tls.is_some(),
                plugins: &s.plugins,
                failure_threshold: s.listing.failure_threshold,
                success_threshold: s.listing.success_threshold,
                quorum: s.listing.quorum,
                tags: &s.listing.tags,
                group: s.listing.group.as_deref(),
                public: s.listing.public,
            }
        })
        .collect();
    let view = View {
        agent: AgentView {
            name: &config.agent.name,
            location: config.agent.location.as_deref(),
            max_concurrency: config.agent.max_concurrency,
            shutdown_grace: human(config.agent.shutdown_grace),
            listen: config.agent.listen.map(|a| a.to_string()),
            plugin_cache: config
                .agent
                .plugin_cache
                .as_ref()
                .map(|d| d.display().to_string()),
            watch_config: config.agent.watch_config,
            plugin_memory_total: format_bytes(config.agent.plugin_memory_total),
        },
        output: if config.kafka.is_some() {
            "kafka"
        } else {
            "stdout"
        },
        kafka,
        plugins: config
            .plugins
            .iter()
            .map(|(name, d)| {
                let view = PluginView {
                    path: d.path.display().to_string(),
                    config: &d.config,
                    timeout: human(d.effective_timeout()),
                    max_memory: format_bytes(d.effective_max_memory()),
                };
                (name.as_str(), view)
            })
            .collect(),
        sites,
    };
    let mut text =
        serde_yaml::to_string(&view).unwrap_or_else(|e| format!("# cannot render config: {e}\n"));
    let mut secrets: Vec<&String> = config
        .secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        text = text.replace(secret.as_str(), MASK);
    }
    text
}

//! Turning one site entry (merged with its file's `defaults:`) into a validated [`Site`].
//!
//! Every problem is pushed to the [`Report`]; a site with any problem yields `None`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sitewatch_checks::spec::{CheckSpec, StatusSet, DEFAULT_MAX_BODY_BYTES};
use sitewatch_checks::MAX_SITE_NAME;

use super::locate::{Outline, Span};
use super::raw::{PluginRef, RawSite};
use super::report::Report;
use super::Site;

/// Built-in defaults, used when neither the site nor `defaults:` sets a field.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default whole-check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest accepted interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Where a site came from, for error locations.
pub struct SiteSource<'a> {
    /// The config file.
    pub file: &'a Path,
    /// Its text outline.
    pub outline: &'a Outline<'a>,
    /// The site's `- ` item.
    pub span: Span,
    /// The file's `defaults:` section, if any.
    pub defaults_span: Option<Span>,
    /// Index in the file's `sites:` list.
    pub index: usize,
}

impl SiteSource<'_> {
    /// Line of `field`: in the site if it sets it, else in `defaults:`.
    pub fn line_of(&self, field: &str, set_by_site: bool) -> usize {
        match (set_by_site, self.defaults_span) {
            (false, Some(d)) => self.outline.key(d, field),
            _ => self.outline.key(self.span, field),
        }
    }

    fn field(&self, name: &str) -> String {
        format!("sites[{}].{name}", self.index)
    }
}

/// Parses a humantime duration (`500ms`, `30s`, `5m`, `1h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); use e.g. 500ms, 30s, 5m"))
}

/// `defaults:` under `site`: each field from the site if set, else from the defaults.
pub fn merge(site: RawSite, defaults: &RawSite) -> (RawSite, RawSite) {
    let d = defaults.clone();
    let mut headers = d.headers.clone().unwrap_or_default();
    headers.extend(site.headers.clone().unwrap_or_default());
    let merged = RawSite {
        name: site.name.clone(),
        url: site.url.clone(),
        interval: site.interval.clone().or(d.interval),
        timeout: site.timeout.clone().or(d.timeout),
        method: site.method.clone().or(d.method),
        headers: Some(headers),
        body: site.body.clone(),
        expect_status: site.expect_status.clone().or(d.expect_status),
        regex: site.regex.clone().or(d.regex),
        regex_absent: site.regex_absent.clone().or(d.regex_absent),
        degraded_after: site.degraded_after.clone().or(d.degraded_after),
        max_body_bytes: site.max_body_bytes.clone().or(d.max_body_bytes),
        follow_redirects: site.follow_redirects.or(d.follow_redirects),
        tls_ca: site.tls_ca.clone().or(d.tls_ca),
        plugins: site.plugins.clone().or(d.plugins),
    };
    (merged, site)
}

/// A validated site plus the plugin references still to be checked against the declarations.
pub struct Resolved {
    /// The site (plugins attached later).
    pub site: Site,
    /// Its plugin references, with the line they are on.
    pub plugin_refs: Vec<(PluginRef, usize)>,
    /// Line of its `name:`.
    pub name_line: usize,
}

/// Validates `merged` (the site as written is `own`, to tell where a value came from).
/// Compiled regexes by pattern text: 10,000 sites with the default pattern share one
/// (measured: 10,000 separate copies of `Welcome` cost about 50 MiB of RSS).
pub type Regexes = std::collections::HashMap<String, std::sync::Arc<regex::Regex>>;

pub fn resolve(
    src: &SiteSource<'_>,
    merged: RawSite,
    own: &RawSite,
    regexes: &mut Regexes,
    report: &mut Report,
) -> Option<Resolved> {
    let before = report.len();
    let err = |report: &mut Report, field: &str, set: bool, msg: String| {
        report.push(
            src.file,
            Some(src.line_of(field, set)),
            src.field(field),
            msg,
        );
    };

    let name = match merged.name.as_deref().map(str::trim) {
        Some(n) if n.len() > MAX_SITE_NAME => {
            err(
                report,
                "name",
                true,
                format!("is {} bytes long; at most {MAX_SITE_NAME}", n.len()),
            );
            String::new()
        }
        Some(n) if n.chars().any(char::is_control) => {
            err(
                report,
                "name",
                true,
                "must not contain control characters".into(),
            );
            String::new()
        }
        Some(n) if !n.is_empty() => n.to_string(),
        _ => {
            err(
                report,
                "name",
                true,
                "missing: every site needs a unique `name`".into(),
            );
            String::new()
        }
    };
    let url = match merged.url.as_deref() {
        None => {
            err(
                report,
                "url",
                true,
                "missing: every site needs a `url`".into(),
            );
            None
        }
        Some(text) => match url::Url::parse(text.trim()) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                Some(u)
            }
            Ok(u) => {
                err(report, "url", true, format!("`{text}`: only http and https URLs with a host are supported (got scheme `{}`)", u.scheme()));
                None
            }
            Err(e) => {
                err(
                    report,
                    "url",
                    true,
                    format!("`{text}` is not a valid URL: {e}"),
                );
                None
            }
        },
    };

    let mut duration =
        |field: &str, value: &Option<String>, set: bool, default: Duration| -> Duration {
            match value {
                None => default,
                Some(text) => match parse_duration(text) {
                    Ok(d) => d,
                    Err(e) => {
                        err(report, field, set, e);
                        default
                    }
                },
            }
        };
    let interval = duration(
        "interval",
        &merged.interval,
        own.interval.is_some(),
        DEFAULT_INTERVAL,
    );
    let timeout = duration(
        "timeout",
        &merged.timeout,
        own.timeout.is_some(),
        DEFAULT_TIMEOUT,
    );
    if interval < MIN_INTERVAL {
        err(
            report,
            "interval",
            own.interval.is_some(),
            format!(
                "must be at least {}",
                humantime::format_duration(MIN_INTERVAL)
            ),
        );
    }
    if timeout.is_zero() {
        err(
            report,
            "timeout",
            own.timeout.is_some(),
            "must be greater than zero".into(),
        );
    }
    let degraded_after = match merged
        .degraded_after
        .clone()
        .flatten()
        .filter(|t| !t.trim().is_empty())
    {
        None => None,
        Some(text) => match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                err(report, "degraded_after", own.degraded_after.is_some(), e);
                None
            }
        },
    };

    let method_text = merged
        .method
        .as_deref()
        .unwrap_or("GET")
        .trim()
        .to_ascii_uppercase();
    let method = http::Method::from_bytes(method_text.as_bytes()).unwrap_or_else(|_| {
        err(
            report,
            "method",
            own.method.is_some(),
            format!("`{method_text}` is not an HTTP method"),
        );
        http::Method::GET
    });

    let mut headers = http::HeaderMap::new();
    for (k, v) in merged.headers.iter().flatten() {
        let set = own.headers.as_ref().is_some_and(|h| h.contains_key(k));
        match (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            (Ok(n), Ok(v)) => {
                headers.insert(n, v);
            }
            (Err(_), _) => err(
                report,
                "headers",
                set,
                format!("`{k}` is not a valid header name"),
            ),
            (_, Err(_)) => err(
                report,
                "headers",
                set,
                format!("the value of header `{k}` is not valid in HTTP"),
            ),
        }
    }

    let expect_status = match &merged.expect_status {
        None => StatusSet::default(),
        Some(list) => StatusSet::parse(&list.to_spec_text()).unwrap_or_else(|e| {
            err(report, "expect_status", own.expect_status.is_some(), e);
            StatusSet::default()
        }),
    };

    let mut pattern = |field: &str,
                       value: &Option<Option<String>>,
                       set: bool|
     -> Option<std::sync::Arc<regex::Regex>> {
        let text = value.clone().flatten().filter(|p| !p.is_empty())?;
        if let Some(compiled) = regexes.get(&text) {
            return Some(compiled.clone());
        }
        regex::Regex::new(&text)
            .map(std::sync::Arc::new)
            .inspect(|compiled| {
                regexes.insert(text.clone(), compiled.clone());
            })
            .map_err(|e| {
                err(
                    report,
                    field,
                    set,
                    format!(
                        "invalid regular expression: {}",
                        e.to_string().replace('\n', " ")
                    ),
                )
            })
            .ok()
    };
    let regex = pattern("regex", &merged.regex, own.regex.is_some());
    let regex_absent = pattern(
        "regex_absent",
        &merged.regex_absent,
        own.regex_absent.is_some(),
    );

    let max_body_bytes = match &merged.max_body_bytes {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(size) => match size
            .bytes()
            .and_then(|b| usize::try_from(b).map_err(|_| "too large".to_string()))
        {
            Ok(0) => {
                err(
                    report,
                    "max_body_bytes",
                    own.max_body_bytes.is_some(),
                    "must be greater than zero".into(),
                );
                DEFAULT_MAX_BODY_BYTES
            }
            Ok(b) => b,
            Err(e) => {
                err(report, "max_body_bytes", own.max_body_bytes.is_some(), e);
                DEFAULT_MAX_BODY_BYTES
            }
        },
    };

    let tls_ca = merged.tls_ca.as_ref().and_then(|rel| {
        let path = relative_to(src.file, rel);
        let loaded = std::fs::read(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
            .and_then(|pem| {
                native_tls::Certificate::from_pem(&pem)
                    .map_err(|e| format!("`{}` is not a PEM certificate: {e}", path.display()))
            });
        loaded
            .map_err(|e| err(report, "tls_ca", own.tls_ca.is_some(), e))
            .ok()
    });

    let plugins_line = src.line_of("plugins", own.plugins.is_some());
    let plugin_refs = merged
        .plugins
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r, plugins_line))
        .collect();

    if report.len() > before {
        return None;
    }
    let url = url?;
    let spec = CheckSpec {
        name,
        url,
        method,
        headers,
        body: merged.body.map(bytes::Bytes::from),
        interval,
        timeout,
        expect_status,
        regex,
        regex_absent,
        degraded_after,
        max_body_bytes,
        follow_redirects: merged.follow_redirects.unwrap_or(0),
        tls_ca,
        plugins: Vec::new(),
    };
    Some(Resolved {
        site: Site {
            spec,
            plugins: Vec::new(),
        },
        plugin_refs,
        name_line: src.outline.key(src.span, "name"),
    })
}

/// `rel` resolved against the directory of `file` (absolute paths stay as they are).
pub fn relative_to(file: &Path, rel: &Path) -> PathBuf {
    if rel.is_absolute() {
        return rel.to_path_buf();
    }
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    let joined = dir.join(rel);
    std::path::absolute(&joined).unwrap_or(joined)
}

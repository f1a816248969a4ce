//! Turning one site entry (merged with its file's `defaults:`) into a validated [`Site`].
//!
//! One small function per field; each reports its problems to the [`Report`] at the
//! line that set the value (the site's own, else the `defaults:` block's) and returns a
//! usable fallback so the other fields are still checked. A site with any problem yields
//! `None`. Reloading the config runs exactly this again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sitewatch_checks::catalog::{Quorum, DEFAULT_FAILURE_THRESHOLD, DEFAULT_SUCCESS_THRESHOLD};
use sitewatch_checks::ops::units::{format_duration, parse_duration};
use sitewatch_checks::probe::{TlsClient, TlsClients};
use sitewatch_checks::spec::{CheckSpec, StatusSet, DEFAULT_MAX_BODY_BYTES};
use sitewatch_checks::MAX_SITE_NAME;

use super::locate::{Outline, Span};
use super::raw::{PluginRef, QuorumText, RawSite};
use super::report::Report;
use super::{Listing, Site};

/// Built-in defaults, used when neither the site nor `defaults:` sets a field.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default whole-check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest tag or group name, in bytes.
pub const MAX_LABEL: usize = 100;
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
}

/// What sites share instead of building their own copy.
#[derive(Default)]
pub struct Shared {
    /// Compiled regexes by pattern text: 10,000 sites with the default pattern share one
    /// (measured: 10,000 separate copies of `Welcome` cost about 50 MiB of RSS).
    pub regexes: std::collections::HashMap<String, Arc<regex::Regex>>,
    /// TLS configurations by CA: built once each (building one loads the system roots).
    pub tls: TlsClients,
}

/// `defaults:` under `site`: each field from the site if set, else from the defaults.
/// Returns the merged entry and the site as written (to tell where a value came from).
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
        failure_threshold: site.failure_threshold.or(d.failure_threshold),
        success_threshold: site.success_threshold.or(d.success_threshold),
        quorum: site.quorum.clone().or(d.quorum),
        tags: site.tags.clone().or(d.tags),
        group: site.group.clone().or(d.group),
        public: site.public.or(d.public),
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

/// Reports problems with one site's fields at the line that set them.
struct Fields<'r, 'a> {
    src: &'r SiteSource<'a>,
    /// The site as written, without the defaults.
    own: &'r RawSite,
    report: &'r mut Report,
}

impl Fields<'_, '_> {
    /// Whether the site itself (not `defaults:`) sets `field`.
    fn own(&self, field: &str) -> bool {
        let o = self.own;
        match field {
            // Only ever per site: a missing one is the site's problem.
            "name" | "url" => true,
            "interval" => o.interval.is_some(),
            "timeout" => o.timeout.is_some(),
            "method" => o.method.is_some(),
            "expect_status" => o.expect_status.is_some(),
            "regex" => o.regex.is_some(),
            "regex_absent" => o.regex_absent.is_some(),
            "degraded_after" => o.degraded_after.is_some(),
            "max_body_bytes" => o.max_body_bytes.is_some(),
            "tls_ca" => o.tls_ca.is_some(),
            "plugins" => o.plugins.is_some(),
            "failure_threshold" => o.failure_threshold.is_some(),
            "success_threshold" => o.success_threshold.is_some(),
            "quorum" => o.quorum.is_some(),
            "tags" => o.tags.is_some(),
            "group" => o.group.is_some(),
            _ => true,
        }
    }

    /// A problem with `field`, at the line that set it.
    fn error(&mut self, field: &str, message: impl Into<String>) {
        let set = self.own(field);
        self.error_at(field, set, message);
    }

    /// A problem with `field`, in the site (`set_by_site`) or in `defaults:`.
    fn error_at(&mut self, field: &str, set_by_site: bool, message: impl Into<String>) {
        self.report.push(
            self.src.file,
            Some(self.src.line_of(field, set_by_site)),
            format!("sites[{}].{field}", self.src.index),
            message,
        );
    }

    fn name(&mut self, value: Option<&str>) -> String {
        match value.map(str::trim) {
            Some(n) if n.len() > MAX_SITE_NAME => self.error(
                "name",
                format!("is {} bytes long; at most {MAX_SITE_NAME}", n.len()),
            ),
            Some(n) if n.chars().any(char::is_control) => {
                self.error("name", "must not contain control characters")
            }
            Some(n) if !n.is_empty() => return n.to_string(),
            _ => self.error("name", "missing: every site needs a unique `name`"),
        }
        String::new()
    }

    fn url(&mut self, value: Option<&str>) -> Option<url::Url> {
        let Some(text) = value else {
            self.error("url", "missing: every site needs a `url`");
            return None;
        };
        match url::Url::parse(text.trim()) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                Some(u)
            }
            Ok(u) => {
                self.error(
                    "url",
                    format!(
                        "`{text}`: only http and https URLs with a host are supported (got scheme `{}`)",
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.error("url", format!("`{text}` is not a valid URL: {e}"));
                None
            }
        }
    }

    /// An optional duration field; `None` when unset, or when it does not parse.
    fn duration(&mut self, field: &str, value: Option<&str>) -> Option<Duration> {
        parse_duration(value?)
            .map_err(|e| self.error(field, e))
            .ok()
    }

    fn interval(&mut self, value: Option<&str>) -> Duration {
        let interval = self.duration("interval", value).unwrap_or(DEFAULT_INTERVAL);
        if interval < MIN_INTERVAL {
            self.error(
                "interval",
                format!("must be at least {}", format_duration(MIN_INTERVAL)),
            );
        }
        interval
    }

    fn timeout(&mut self, value: Option<&str>) -> Duration {
        let timeout = self.duration("timeout", value).unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            self.error("timeout", "must be greater than zero");
        }
        timeout
    }

    fn method(&mut self, value: Option<&str>) -> http::Method {
        let text = value.unwrap_or("GET").trim().to_ascii_uppercase();
        http::Method::from_bytes(text.as_bytes()).unwrap_or_else(|_| {
            self.error("method", format!("`{text}` is not an HTTP method"));
            http::Method::GET
        })
    }

    fn headers<'h>(
        &mut self,
        headers: impl Iterator<Item = (&'h String, &'h String)>,
    ) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            // Each header is located where it is written: the site, or `defaults:`.
            let set = self.own.headers.as_ref().is_some_and(|h| h.contains_key(k));
            match (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                (Ok(n), Ok(v)) => {
                    map.insert(n, v);
                }
                (Err(_), _) => {
                    self.error_at("headers", set, format!("`{k}` is not a valid header name"))
                }
                (_, Err(_)) => self.error_at(
                    "headers",
                    set,
                    format!("the value of header `{k}` is not valid in HTTP"),
                ),
            }
        }
        map
    }

    fn expect_status(&mut self, value: Option<&super::raw::StatusList>) -> StatusSet {
        match value {
            None => StatusSet::default(),
            Some(list) => StatusSet::parse(&list.to_spec_text()).unwrap_or_else(|e| {
                self.error("expect_status", e);
                StatusSet::default()
            }),
        }
    }

    /// A compiled pattern, shared with every site using the same text.
    fn pattern(
        &mut self,
        field: &str,
        value: Option<&str>,
        shared: &mut Shared,
    ) -> Option<Arc<regex::Regex>> {
        let text = value.filter(|p| !p.is_empty())?;
        if let Some(compiled) = shared.regexes.get(text) {
            return Some(compiled.clone());
        }
        match regex::Regex::new(text) {
            Ok(compiled) => {
                let compiled = Arc::new(compiled);
                shared.regexes.insert(text.to_string(), compiled.clone());
                Some(compiled)
            }
            Err(e) => {
                let why = e.to_string().replace('\n', " ");
                self.error(field, format!("invalid regular expression: {why}"));
                None
            }
        }
    }

    fn max_body_bytes(&mut self, value: Option<&super::raw::ByteSize>) -> usize {
        let Some(size) = value else {
            return DEFAULT_MAX_BODY_BYTES;
        };
        match size
            .bytes()
            .and_then(|b| usize::try_from(b).map_err(|_| "too large".to_string()))
        {
            Ok(0) => self.error("max_body_bytes", "must be greater than zero"),
            Ok(b) => return b,
            Err(e) => self.error("max_body_bytes", e),
        }
        DEFAULT_MAX_BODY_BYTES
    }

    /// A threshold: `default` when unset; at least 1.
    fn threshold(&mut self, field: &str, value: Option<u32>, default: u32) -> u32 {
        match value {
            None => default,
            Some(0) => {
                self.error(field, "must be at least 1");
                default
            }
            Some(n) => n,
        }
    }

    fn quorum(&mut self, value: Option<&QuorumText>) -> Quorum {
        let Some(text) = value else {
            return Quorum::default();
        };
        text.as_text().parse().unwrap_or_else(|e: String| {
            self.error("quorum", e);
            Quorum::default()
        })
    }

    /// Tags and group: trimmed, not empty, no control characters.
    fn label(&mut self, field: &str, text: &str) -> Option<String> {
        let t = text.trim();
        if t.is_empty() || t.len() > MAX_LABEL || t.chars().any(char::is_control) {
            self.error(
                field,
                format!("`{text}`: a {field} is 1 to {MAX_LABEL} bytes without control characters"),
            );
            return None;
        }
        Some(t.to_string())
    }

    fn listing(&mut self, merged: &RawSite) -> Listing {
        let failure_threshold = self.threshold(
            "failure_threshold",
            merged.failure_threshold,
            DEFAULT_FAILURE_THRESHOLD,
        );
        let success_threshold = self.threshold(
            "success_threshold",
            merged.success_threshold,
            DEFAULT_SUCCESS_THRESHOLD,
        );
        let quorum = self.quorum(merged.quorum.as_ref());
        let mut tags = Vec::new();
        for tag in merged.tags.iter().flatten() {
            if let Some(t) = self.label("tags", tag) {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
        }
        let group = merged.group.as_deref().and_then(|g| self.label("group", g));
        Listing {
            failure_threshold,
            success_threshold,
            quorum,
            tags,
            group,
            public: merged.public.unwrap_or(false),
        }
    }

    /// The TLS configuration trusting `tls_ca` besides the system roots, shared with every
    /// site trusting the same CA; `None` without one (the system roots alone).
    fn tls(&mut self, tls_ca: Option<&Path>, shared: &mut Shared) -> Option<TlsClient> {
        let path = relative_to(self.src.file, tls_ca?);
        let loaded = std::fs::read(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
            .and_then(|pem| {
                shared
                    .tls
                    .with_extra_roots_pem(&pem)
                    .map_err(|e| format!("`{}`: {e}", path.display()))
            });
        loaded.map_err(|e| self.error("tls_ca", e)).ok()
    }
}

/// Validates `merged` (the site as written is `own`, to tell where a value came from).
pub fn resolve(
    src: &SiteSource<'_>,
    merged: RawSite,
    own: &RawSite,
    shared: &mut Shared,
    report: &mut Report,
) -> Option<Resolved> {
    let before = report.len();
    let mut f = Fields { src, own, report };
    let name = f.name(merged.name.as_deref());
    let url = f.url(merged.url.as_deref());
    let interval = f.interval(merged.interval.as_deref());
    let timeout = f.timeout(merged.timeout.as_deref());
    // `degraded_after: null` or `""` clears the default's.
    let degraded_after = f.duration(
        "degraded_after",
        merged
            .degraded_after
            .as_ref()
            .and_then(Option::as_deref)
            .filter(|t| !t.trim().is_empty()),
    );
    let method = f.method(merged.method.as_deref());
    let headers = f.headers(merged.headers.iter().flatten());
    let expect_status = f.expect_status(merged.expect_status.as_ref());
    let regex = f.pattern(
        "regex",
        merged.regex.as_ref().and_then(Option::as_deref),
        shared,
    );
    let regex_absent = f.pattern(
        "regex_absent",
        merged.regex_absent.as_ref().and_then(Option::as_deref),
        shared,
    );
    let max_body_bytes = f.max_body_bytes(merged.max_body_bytes.as_ref());
    let tls = f.tls(merged.tls_ca.as_deref(), shared);
    let listing = f.listing(&merged);
    let plugins_line = src.line_of("plugins", f.own("plugins"));
    let plugin_refs = merged
        .plugins
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r, plugins_line))
        .collect();

    if report.len() > before {
        return None;
    }
    let spec = CheckSpec {
        name,
        url: url?,
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
        tls,
        plugins: Vec::new(),
    };
    Some(Resolved {
        site: Site {
            spec,
            plugins: Vec::new(),
            listing,
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

//! Reading site-list files into an [`AgentConfig`]: discovery, interpolation, parsing,
//! per-file sections, and the checks that span files (unique names, plugin references).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::interpolate::interpolate;
use super::locate::{Outline, Span};
use super::raw::{PluginRef, RawAgent, RawFile, RawSite};
use super::report::Report;
use super::resolve::{self, parse_duration, Resolved, SiteSource};
use super::{AgentConfig, AgentSettings, ConfigErrors, KafkaConfig, PluginDecl, PluginUse};

/// Default for `agent.max_concurrency`.
pub const DEFAULT_MAX_CONCURRENCY: usize = 256;
/// Default for `agent.shutdown_grace`.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything gathered from the files before the cross-file checks.
#[derive(Default)]
struct Gathered {
    agent: Option<(AgentSettings, PathBuf)>,
    kafka: Option<(KafkaConfig, PathBuf)>,
    plugins: BTreeMap<String, (PluginDecl, PathBuf, usize)>,
    sites: Vec<(Resolved, PathBuf)>,
    secrets: Vec<String>,
    /// Compiled patterns by text: sites sharing a pattern share one compiled regex.
    regexes: resolve::Regexes,
}

/// Loads and validates the given files and directories (every `*.yaml` / `*.yml` in a directory).
pub fn load(paths: &[PathBuf]) -> Result<AgentConfig, ConfigErrors> {
    let mut report = Report::default();
    let mut gathered = Gathered::default();
    for file in discover(paths, &mut report) {
        load_file(&file, &mut gathered, &mut report);
    }
    finish(gathered, paths, report)
}

fn discover(paths: &[PathBuf], report: &mut Report) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    })
                    .collect(),
                Err(e) => {
                    report.push(path, None, "", format!("cannot read directory: {e}"));
                    continue;
                }
            };
            found.sort();
            if found.is_empty() {
                report.push(path, None, "", "directory has no *.yaml or *.yml files");
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
}

/// Decodes `value` as `T`, reporting a failure at the line of the offending field.
fn decode<T: DeserializeOwned>(
    value: Value,
    file: &Path,
    outline: &Outline<'_>,
    span: Span,
    prefix: &str,
    report: &mut Report,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // Unknown fields are named in the message, not the path.
            let key = inner
                .split('`')
                .nth(1)
                .filter(|_| inner.starts_with("unknown field"))
                .map(str::to_string)
                .or_else(|| path.split('.').find(|p| *p != "?").map(str::to_string));
            let line = key.as_deref().map_or(span.0, |k| outline.key(span, k));
            let field = match (path.as_str(), key.as_deref()) {
                (".", Some(k)) | ("", Some(k)) => format!("{prefix}.{k}"),
                (".", None) | ("", None) => prefix.to_string(),
                (p, _) => format!("{prefix}.{p}"),
            };
            report.push(file, Some(line), field, inner);
            None
        }
    }
}

fn load_file(file: &Path, acc: &mut Gathered, report: &mut Report) {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            report.push(file, None, "", format!("cannot read: {e}"));
            return;
        }
    };
    let text = match String::from_utf8(bytes) {
        // Editors on Windows start files with a byte-order mark; YAML does not want it.
        Ok(t) => match t.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_string(),
            None => t,
        },
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let column =
                good.len() - good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
            report.push(
                file,
                Some(line),
                "",
                format!("not UTF-8 text: invalid byte at column {column}"),
            );
            return;
        }
    };
    let (interpolated, missing) = interpolate(&text, |name| std::env::var(name).ok());
    for m in missing {
        report.push(file, Some(m.line), "${…}", m.message);
    }
    acc.secrets.extend(interpolated.secrets);
    let text = interpolated.text;
    let raw: RawFile = if text.trim().is_empty() {
        RawFile::default()
    } else {
        match serde_yaml::from_str(&text) {
            Ok(raw) => raw,
            Err(e) => {
                // "More than one document" comes without a location: point at the marker.
                let line = e.location().map(|l| l.line()).or_else(|| {
                    text.lines()
                        .enumerate()
                        .filter(|(_, l)| {
                            // Document markers, directives, or a stray byte-order mark.
                            ["---", "...", "%"].iter().any(|m| l.starts_with(m))
                                || l.contains('\u{feff}')
                        })
                        .last()
                        .map(|(i, _)| i + 1)
                });
                report.push(file, line, "", e.to_string());
                return;
            }
        }
    };
    let outline = Outline::new(&text);
    let section = |key: &str| outline.section(key).unwrap_or(outline.all());

    if let Some(value) = raw.agent {
        let span = section("agent");
        if let Some((_, first)) = &acc.agent {
            report.push(
                file,
                Some(span.0),
                "agent",
                format!(
                    "already given in {}: only one file may have an `agent:` block",
                    first.display()
                ),
            );
        } else if let Some(a) = decode::<RawAgent>(value, file, &outline, span, "agent", report) {
            if let Some(settings) = agent_settings(a, file, &outline, span, report) {
                acc.agent = Some((settings, file.to_path_buf()));
            }
        }
    }
    if let Some(mut value) = raw.kafka {
        let span = section("kafka");
        // `brokers: "a:9092,b:9092"` is accepted as well as a list.
        if let Some(Value::String(list)) = value.get("brokers").cloned() {
            let brokers = list
                .split(',')
                .map(|b| Value::String(b.trim().to_string()))
                .collect();
            value["brokers"] = Value::Sequence(brokers);
        }
        if let Some((_, first)) = &acc.kafka {
            report.push(
                file,
                Some(span.0),
                "kafka",
                format!(
                    "already given in {}: only one file may have a `kafka:` block",
                    first.display()
                ),
            );
        } else if let Some(mut k) =
            decode::<KafkaConfig>(value, file, &outline, span, "kafka", report)
        {
            match k.resolve_spool(file) {
                Ok(spool) => k.spool = spool,
                Err((field, message)) => report.push(
                    file,
                    Some(outline.key(span, field)),
                    format!("kafka.{field}"),
                    message,
                ),
            }
            if k.brokers.iter().all(|b| b.trim().is_empty()) {
                report.push(
                    file,
                    Some(outline.key(span, "brokers")),
                    "kafka.brokers",
                    "at least one broker is needed",
                );
            }
            acc.kafka = Some((k, file.to_path_buf()));
        }
    }
    if let Some(plugins) = raw.plugins {
        let entries: HashMap<String, Span> =
            outline.entries(section("plugins")).into_iter().collect();
        for (name, value) in plugins {
            let span = entries.get(&name).copied().unwrap_or(section("plugins"));
            if let Some((_, first, line)) = acc.plugins.get(&name) {
                report.push(
                    file,
                    Some(span.0),
                    format!("plugins.{name}"),
                    format!(
                        "plugin `{name}` is already declared at {}:{line}",
                        first.display()
                    ),
                );
                continue;
            }
            if let Some(mut decl) = decode::<PluginDecl>(
                value,
                file,
                &outline,
                span,
                &format!("plugins.{name}"),
                report,
            ) {
                decl.path = resolve::relative_to(file, &decl.path);
                decl.declared_at = Some((file.to_path_buf(), outline.key(span, "path")));
                if !decl.path.is_file() {
                    report.push(
                        file,
                        Some(outline.key(span, "path")),
                        format!("plugins.{name}.path"),
                        format!("component file `{}` does not exist", decl.path.display()),
                    );
                }
                acc.plugins.insert(name, (decl, file.to_path_buf(), span.0));
            }
        }
    }

    let defaults_span = outline.section("defaults");
    let defaults: RawSite = match raw.defaults {
        None => RawSite::default(),
        Some(value) => {
            let span = defaults_span.unwrap_or(outline.all());
            let d = decode::<RawSite>(value, file, &outline, span, "defaults", report)
                .unwrap_or_default();
            for (field, set) in [
                ("name", d.name.is_some()),
                ("url", d.url.is_some()),
                ("body", d.body.is_some()),
            ] {
                if set {
                    report.push(
                        file,
                        Some(outline.key(span, field)),
                        format!("defaults.{field}"),
                        format!("`{field}` is per site and cannot be a default"),
                    );
                }
            }
            d
        }
    };

    let sites_span = section("sites");
    let items = outline.items(sites_span);
    for (index, value) in raw.sites.into_iter().flatten().enumerate() {
        let span = items.get(index).copied().unwrap_or(sites_span);
        let prefix = format!("sites[{index}]");
        let Some(own) = decode::<RawSite>(value, file, &outline, span, &prefix, report) else {
            continue;
        };
        let (merged, own) = resolve::merge(own, &defaults);
        let src = SiteSource {
            file,
            outline: &outline,
            span,
            defaults_span,
            index,
        };
        if let Some(resolved) = resolve::resolve(&src, merged, &own, &mut acc.regexes, report) {
            acc.sites.push((resolved, file.to_path_buf()));
        }
    }
}

fn agent_settings(
    a: RawAgent,
    file: &Path,
    outline: &Outline<'_>,
    span: Span,
    report: &mut Report,
) -> Option<AgentSettings> {
    let before = report.len();
    let shutdown_grace = match a.shutdown_grace.as_deref().map(parse_duration) {
        None => DEFAULT_SHUTDOWN_GRACE,
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            report.push(
                file,
                Some(outline.key(span, "shutdown_grace")),
                "agent.shutdown_grace",
                e,
            );
            DEFAULT_SHUTDOWN_GRACE
        }
    };
    let listen = a
        .listen
        .as_deref()
        .and_then(|text| match text.trim().parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                report.push(
                    file,
                    Some(outline.key(span, "listen")),
                    "agent.listen",
                    format!("`{text}` is not an address like 127.0.0.1:9464"),
                );
                None
            }
        });
    let max_concurrency = a.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 {
        report.push(
            file,
            Some(outline.key(span, "max_concurrency")),
            "agent.max_concurrency",
            "must be at least 1",
        );
    }
    let plugin_cache = match a.plugin_cache.as_deref().map(str::trim) {
        None => default_plugin_cache(),
        Some("off") | Some("") => None,
        Some(dir) => Some(file.parent().unwrap_or(Path::new(".")).join(dir)),
    };
    (report.len() == before).then(|| AgentSettings {
        name: a
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(host_name),
        location: a.location,
        max_concurrency,
        shutdown_grace,
        listen,
        plugin_cache,
    })
}

/// `agent.plugin_cache` when not set: systemd's `CacheDirectory=`, else the XDG cache.
fn default_plugin_cache() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("CACHE_DIRECTORY")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("sitewatch")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("sitewatch")))
        .filter(|d| d.is_absolute())
}

/// The machine's host name, for the default agent name.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sitewatch-agent".to_string())
}

fn finish(g: Gathered, paths: &[PathBuf], mut report: Report) -> Result<AgentConfig, ConfigErrors> {
    let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
    let mut sites = Vec::with_capacity(g.sites.len());
    for (resolved, file) in g.sites {
        let name = resolved.site.spec.name.clone();
        if let Some((first, line)) = seen.get(&name) {
            report.push(
                &file,
                Some(resolved.name_line),
                "name",
                format!(
                    "duplicate site name `{name}` (first at {}:{line})",
                    first.display()
                ),
            );
            continue;
        }
        seen.insert(name, (file.clone(), resolved.name_line));
        let mut site = resolved.site;
        for (reference, line) in resolved.plugin_refs {
            let Some((decl, _, _)) = g.plugins.get(reference.name()) else {
                report.push(
                    &file,
                    Some(line),
                    format!("plugins ({})", site.spec.name),
                    format!(
                        "plugin `{}` is not declared under `plugins:`",
                        reference.name()
                    ),
                );
                continue;
            };
            let mut config = decl.config.clone();
            if let PluginRef::WithConfig(c) = reference.clone() {
                config.extend(c.config);
            }
            site.plugins.push(PluginUse {
                name: reference.name().to_string(),
                config,
            });
        }
        sites.push(site);
    }
    if sites.is_empty() && report.is_empty() {
        let file = paths.first().cloned().unwrap_or_default();
        report.push(
            &file,
            None,
            "sites",
            "no sites configured: add at least one entry under `sites:`",
        );
    }
    let agent = g.agent.map(|(a, _)| a).unwrap_or_else(|| AgentSettings {
        name: host_name(),
        location: None,
        max_concurrency: DEFAULT_MAX_CONCURRENCY,
        shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        listen: None,
        plugin_cache: default_plugin_cache(),
    });
    report.finish(AgentConfig {
        agent,
        kafka: g.kafka.map(|(k, _)| k),
        plugins: g.plugins.into_iter().map(|(n, (d, _, _))| (n, d)).collect(),
        sites,
        secrets: g.secrets,
    })
}

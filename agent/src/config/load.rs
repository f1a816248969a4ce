//! Reading site-list files into an [`AgentConfig`]: discovery, interpolation, parsing,
//! per-file sections, and the checks that span files (unique names, plugin references).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::locate::{Outline, Span};
use super::raw::{PluginRef, RawAgent, RawSite};
use super::report::Report;
use super::resolve::{self, Resolved, SiteSource};
use super::settings::agent_settings;
use super::source::{discover, parse_sections, read_text};
use super::{AgentConfig, AgentSettings, ConfigErrors, KafkaConfig, PluginDecl, PluginUse};

/// Everything gathered from the files before the cross-file checks.
#[derive(Default)]
struct Gathered {
    agent: Option<(AgentSettings, PathBuf)>,
    kafka: Option<(KafkaConfig, PathBuf)>,
    plugins: BTreeMap<String, (PluginDecl, PathBuf, usize)>,
    sites: Vec<(Resolved, PathBuf)>,
    secrets: Vec<String>,
    /// Compiled patterns and TLS configurations that sites share.
    shared: resolve::Shared,
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
            // Each key of the path is looked for below the one before it, so a nested
            // field (`config.hosts`) is found on its own line, not its parent's.
            let mut line = span.0;
            for segment in path.split('.').filter_map(|p| p.split('[').next()) {
                if !segment.is_empty() && segment != "?" {
                    line = outline.key((line, span.1), segment);
                }
            }
            if inner.starts_with("unknown field") {
                line = key
                    .as_deref()
                    .map_or(line, |k| outline.key((line, span.1), k));
            }
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

/// One file of the config: each section on its own, so one bad section does not hide
/// problems in another.
fn load_file(file: &Path, acc: &mut Gathered, report: &mut Report) {
    let Some(text) = read_text(file, &mut acc.secrets, report) else {
        return;
    };
    let Some(raw) = parse_sections(file, &text, report) else {
        return;
    };
    let outline = Outline::new(&text);
    let here = Here {
        file,
        outline: &outline,
    };
    if let Some(value) = raw.agent {
        agent_section(&here, value, acc, report);
    }
    if let Some(value) = raw.kafka {
        kafka_section(&here, value, acc, report);
    }
    if let Some(plugins) = raw.plugins {
        plugins_section(&here, plugins, acc, report);
    }
    let defaults = defaults_section(&here, raw.defaults, report);
    sites_section(&here, raw.sites.unwrap_or_default(), &defaults, acc, report);
}

/// The file being read and its outline, for locating problems.
struct Here<'a> {
    file: &'a Path,
    outline: &'a Outline<'a>,
}

impl Here<'_> {
    /// Lines of top-level `key:` (the whole file when it cannot be found).
    fn section(&self, key: &str) -> Span {
        self.outline.section(key).unwrap_or(self.outline.all())
    }

    /// Reports that `key` was already given in another file.
    fn only_once(&self, key: &str, first: &Path, report: &mut Report) {
        report.push(
            self.file,
            Some(self.section(key).0),
            key,
            format!(
                "already given in {}: only one file may have a `{key}:` block",
                first.display()
            ),
        );
    }
}

fn agent_section(here: &Here<'_>, value: Value, acc: &mut Gathered, report: &mut Report) {
    if let Some((_, first)) = &acc.agent {
        return here.only_once("agent", first, report);
    }
    let (file, span) = (here.file, here.section("agent"));
    if let Some(a) = decode::<RawAgent>(value, file, here.outline, span, "agent", report) {
        if let Some(settings) = agent_settings(a, file, here.outline, span, report) {
            acc.agent = Some((settings, file.to_path_buf()));
        }
    }
}

fn kafka_section(here: &Here<'_>, mut value: Value, acc: &mut Gathered, report: &mut Report) {
    if let Some((_, first)) = &acc.kafka {
        return here.only_once("kafka", first, report);
    }
    let (file, outline, span) = (here.file, here.outline, here.section("kafka"));
    // `brokers: "a:9092,b:9092"` is accepted as well as a list.
    if let Some(Value::String(list)) = value.get("brokers").cloned() {
        let brokers = list
            .split(',')
            .map(|b| Value::String(b.trim().to_string()))
            .collect();
        value["brokers"] = Value::Sequence(brokers);
    }
    let Some(mut k) = decode::<KafkaConfig>(value, file, outline, span, "kafka", report) else {
        return;
    };
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

fn plugins_section(
    here: &Here<'_>,
    plugins: BTreeMap<String, Value>,
    acc: &mut Gathered,
    report: &mut Report,
) {
    let (file, outline) = (here.file, here.outline);
    let entries: HashMap<String, Span> = outline
        .entries(here.section("plugins"))
        .into_iter()
        .collect();
    for (name, value) in plugins {
        let span = entries
            .get(&name)
            .copied()
            .unwrap_or(here.section("plugins"));
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
            outline,
            span,
            &format!("plugins.{name}"),
            report,
        ) {
            decl.path = resolve::relative_to(file, &decl.path);
            decl.declared_at = Some((file.to_path_buf(), outline.key(span, "path")));
            decl.max_memory_line = Some(outline.key(span, "max_memory"));
            super::plugin::check_declaration(&name, &decl, file, outline, span, report);
            acc.plugins.insert(name, (decl, file.to_path_buf(), span.0));
        }
    }
}

/// The file's `defaults:` (empty when absent or unusable).
fn defaults_section(here: &Here<'_>, value: Option<Value>, report: &mut Report) -> RawSite {
    let Some(value) = value else {
        return RawSite::default();
    };
    let (file, outline, span) = (here.file, here.outline, here.section("defaults"));
    let d = decode::<RawSite>(value, file, outline, span, "defaults", report).unwrap_or_default();
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

fn sites_section(
    here: &Here<'_>,
    sites: Vec<Value>,
    defaults: &RawSite,
    acc: &mut Gathered,
    report: &mut Report,
) {
    let (file, outline) = (here.file, here.outline);
    let sites_span = here.section("sites");
    let items = outline.items(sites_span);
    for (index, value) in sites.into_iter().enumerate() {
        let span = items.get(index).copied().unwrap_or(sites_span);
        let prefix = format!("sites[{index}]");
        let Some(own) = decode::<RawSite>(value, file, outline, span, &prefix, report) else {
            continue;
        };
        let (merged, own) = resolve::merge(own, defaults);
        let src = SiteSource {
            file,
            outline,
            span,
            defaults_span: outline.section("defaults"),
            index,
        };
        if let Some(resolved) = resolve::resolve(&src, merged, &own, &mut acc.shared, report) {
            acc.sites.push((resolved, file.to_path_buf()));
        }
    }
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
    let agent = g
        .agent
        .map(|(a, _)| a)
        .unwrap_or_else(AgentSettings::defaults);
    // A plugin whose calls could never fit in the budget would never run.
    for (name, (decl, file, line)) in &g.plugins {
        let max_memory = decl.effective_max_memory();
        if max_memory > agent.plugin_memory_total {
            report.push(
                file,
                Some(decl.max_memory_line.unwrap_or(*line)),
                format!("plugins.{name}.max_memory"),
                format!(
                    "{} is above agent.plugin_memory_total ({}): no call of this plugin could \
                     start; lower max_memory or raise the budget",
                    sitewatch_checks::ops::units::format_bytes(max_memory),
                    sitewatch_checks::ops::units::format_bytes(agent.plugin_memory_total)
                ),
            );
        }
    }
    report.finish(AgentConfig {
        agent,
        kafka: g.kafka.map(|(k, _)| k),
        plugins: g.plugins.into_iter().map(|(n, (d, _, _))| (n, d)).collect(),
        sites,
        secrets: g.secrets,
    })
}

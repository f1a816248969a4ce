//! Hot reload: on SIGHUP, or when a config file changes and `agent.watch_config` is on,
//! the config is loaded and validated again exactly as at start (plugins included).
//! An invalid one changes nothing: every problem is logged with file:line and counted.
//! A valid one is compared site by site with what runs: unchanged sites keep their
//! timeline, others are added, removed or restarted; `agent:` settings that can change
//! live do, and settings that need a restart (Kafka, the listen address, the plugin
//! cache) are logged as such.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sitewatch_checks::ops::{Counter, Gauge};
use sitewatch_checks::probe::TlsClient;
use sitewatch_checks::spec::CheckSpec;

use crate::config::{self, AgentConfig, ConfigErrors, PluginDecl, Site};

/// Reload counters, as Prometheus reports its own.
#[derive(Debug, Default)]
pub struct ReloadMetrics {
    /// Reloads refused because the new config was invalid.
    pub failures: Counter,
    /// Unix time (seconds) the config was last loaded successfully (start included).
    pub last_success: AtomicU64,
    /// 1 when the last attempt succeeded, 0 when it was refused.
    pub last_successful: Gauge,
}

impl ReloadMetrics {
    fn succeeded(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_success.store(now, Ordering::Relaxed);
        self.last_successful.set(1);
    }
}

/// Everything that makes two definitions of a site check the same way. Regexes compare
/// by pattern, TLS configurations by the CAs they trust, plugins by declaration and by
/// the component file's size and modification time.
#[derive(Debug, PartialEq)]
struct SiteKey {
    url: String,
    method: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<bytes::Bytes>,
    interval: Duration,
    timeout: Duration,
    expect_status: String,
    regex: Option<String>,
    regex_absent: Option<String>,
    degraded_after: Option<Duration>,
    max_body_bytes: usize,
    follow_redirects: u32,
    tls: Option<TlsClient>,
    plugins: Vec<PluginKey>,
}

#[derive(Debug, PartialEq)]
struct PluginKey {
    name: String,
    config: BTreeMap<String, String>,
    path: PathBuf,
    timeout: Option<Duration>,
    max_memory: Option<u64>,
    file: Option<(u64, SystemTime)>,
}

fn site_key(site: &Site, decls: &BTreeMap<String, PluginDecl>) -> SiteKey {
    let s = &site.spec;
    SiteKey {
        url: s.url.to_string(),
        method: s.method.to_string(),
        headers: s
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: s.body.clone(),
        interval: s.interval,
        timeout: s.timeout,
        expect_status: s.expect_status.to_string(),
        regex: s.regex.as_ref().map(|r| r.as_str().to_string()),
        regex_absent: s.regex_absent.as_ref().map(|r| r.as_str().to_string()),
        degraded_after: s.degraded_after,
        max_body_bytes: s.max_body_bytes,
        follow_redirects: s.follow_redirects,
        tls: s.tls.clone(),
        plugins: site
            .plugins
            .iter()
            .map(|u| {
                let decl = decls.get(&u.name);
                PluginKey {
                    name: u.name.clone(),
                    config: u.config.clone(),
                    path: decl.map(|d| d.path.clone()).unwrap_or_default(),
                    timeout: decl.and_then(|d| d.timeout),
                    max_memory: decl.and_then(|d| d.max_memory),
                    file: decl
                        .and_then(|d| std::fs::metadata(&d.path).ok())
                        .and_then(|m| Some((m.len(), m.modified().ok()?))),
                }
            })
            .collect(),
    }
}

/// The sites running, each with the definition it runs and how to recognise it.
#[derive(Default)]
pub struct RunningSites {
    sites: HashMap<String, (Arc<CheckSpec>, SiteKey)>,
}

impl RunningSites {
    /// The specs to run for `config`: the running `Arc` for each site whose definition
    /// is unchanged (so the scheduler leaves it alone), a new one otherwise.
    pub fn update(&mut self, config: &AgentConfig) -> Vec<Arc<CheckSpec>> {
        let mut next = HashMap::with_capacity(config.sites.len());
        let mut specs = Vec::with_capacity(config.sites.len());
        for site in &config.sites {
            let key = site_key(site, &config.plugins);
            let spec = match self.sites.remove(&site.spec.name) {
                Some((running, old)) if old == key => running,
                _ => Arc::new(site.spec.clone()),
            };
            specs.push(spec.clone());
            next.insert(site.spec.name.clone(), (spec, key));
        }
        self.sites = next;
        specs
    }
}

/// Loads, validates and prepares the config (plugins compiled and attached), as at start.
pub fn load(paths: &[PathBuf]) -> Result<AgentConfig, ConfigErrors> {
    let mut config = config::load(paths)?;
    crate::plugins::attach(&mut config)?;
    Ok(config)
}

/// Reloads: loads `paths` again; on success returns the new config, having logged what
/// needs a restart; on failure logs every problem, counts it, and returns `None`.
pub fn reload(
    paths: &[PathBuf],
    current: &AgentConfig,
    metrics: &ReloadMetrics,
) -> Option<AgentConfig> {
    match load(paths) {
        Ok(new) => {
            metrics.succeeded();
            for what in needs_restart(current, &new) {
                tracing::warn!(
                    "config reload: `{what}` changed; that takes effect only after a restart (still using the old value)"
                );
            }
            Some(new)
        }
        Err(errors) => {
            metrics.failures.inc();
            metrics.last_successful.set(0);
            tracing::error!(
                problems = errors.0.len(),
                "config reload refused: the running config stays in effect"
            );
            for e in &errors.0 {
                tracing::error!("config reload: {e}");
            }
            None
        }
    }
}

/// Records the config loaded at start as a successful load.
pub fn loaded_at_start(metrics: &ReloadMetrics) {
    metrics.succeeded();
}

/// Settings that a running agent cannot change.
fn needs_restart(current: &AgentConfig, new: &AgentConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if current.kafka != new.kafka {
        out.push("kafka");
    }
    if current.agent.listen != new.agent.listen {
        out.push("agent.listen");
    }
    if current.agent.plugin_cache != new.agent.plugin_cache {
        out.push("agent.plugin_cache");
    }
    out
}

/// How often `agent.watch_config` looks at the config files.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What the config files look like on disk: which there are, and each one's size and
/// modification time (a rename over the file, as editors and Kubernetes do, changes it).
fn snapshot(paths: &[PathBuf]) -> Vec<(PathBuf, Option<(u64, SystemTime)>)> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            found.retain(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"));
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (f, meta)
        })
        .collect()
}

/// Asks for a reload (through `reload`) whenever the config files change while
/// `enabled` is set; runs until `reload` is closed. A change is acted on once the files
/// have stayed the same for one more look, so a file still being written is not read.
pub async fn watch_files(
    paths: Vec<PathBuf>,
    enabled: Arc<std::sync::atomic::AtomicBool>,
    reload: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let mut seen = snapshot(&paths);
    let mut changed = false;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if reload.is_closed() {
            return;
        }
        let now = snapshot(&paths);
        if now != seen {
            seen = now;
            changed = true;
        } else if std::mem::take(&mut changed) && enabled.load(Ordering::Relaxed) {
            tracing::info!("config files changed: reloading");
            let _ = reload.send(());
        }
    }
}

//! One check as the agent makes it: the probe (whose deadlines allow for the agent's own
//! stalls), stamped with the agent's identity (which a reload may change), marked with
//! how late it started, and noted for the agent's overload accounting.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use sitewatch_checks::probe::Prober;
use sitewatch_checks::spec::CheckSpec;
use sitewatch_checks::CheckResult;

use crate::config::AgentSettings;
use crate::overload::Overload;
use crate::scheduler::Started;

/// Makes checks; shared by every site timeline.
pub struct Checker {
    prober: RwLock<Arc<Prober>>,
    overload: Arc<Overload>,
    /// For the overload warning.
    max_concurrency: AtomicUsize,
}

impl Checker {
    /// A checker stamping results with `agent`'s name and location (starts the stall
    /// monitor on the current runtime).
    pub fn new(agent: &AgentSettings) -> Arc<Self> {
        let overload = Overload::start();
        Arc::new(Checker {
            prober: RwLock::new(Self::prober(agent, &overload)),
            max_concurrency: AtomicUsize::new(agent.max_concurrency),
            overload,
        })
    }

    fn prober(agent: &AgentSettings, overload: &Arc<Overload>) -> Arc<Prober> {
        Arc::new(
            Prober::new(agent.name.clone(), agent.location.clone())
                .with_stall_clock(overload.stall.clone()),
        )
    }

    /// The agent's load, as measured by its checks.
    pub fn overload(&self) -> Arc<Overload> {
        self.overload.clone()
    }

    /// Applies `agent`'s name, location and concurrency to checks started from now on.
    pub fn apply(&self, agent: &AgentSettings) {
        *self.prober.write().unwrap_or_else(|e| e.into_inner()) =
            Self::prober(agent, &self.overload);
        self.max_concurrency
            .store(agent.max_concurrency, Ordering::Relaxed);
    }

    /// Checks `spec`; `started` is what the scheduler knows of the start (`None` in
    /// `--once`).
    pub fn check(
        self: &Arc<Self>,
        spec: Arc<CheckSpec>,
        started: Option<Started>,
    ) -> impl Future<Output = CheckResult> + Send + 'static {
        let prober = self
            .prober
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let this = self.clone();
        async move {
            let mut result = prober.check(&spec).await;
            let max_concurrency = this.max_concurrency.load(Ordering::Relaxed);
            this.overload
                .note(&mut result, started.map(|s| s.lag), max_concurrency);
            result
        }
    }
}

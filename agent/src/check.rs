//! One check as the agent makes it: the probe, stamped with the agent's identity (which
//! a reload may change).

use std::future::Future;
use std::sync::{Arc, RwLock};

use sitewatch_checks::probe::Prober;
use sitewatch_checks::spec::CheckSpec;
use sitewatch_checks::CheckResult;

use crate::config::AgentSettings;
use crate::scheduler::Started;

/// Makes checks; shared by every site timeline.
pub struct Checker {
    prober: RwLock<Arc<Prober>>,
}

impl Checker {
    /// A checker stamping results with `agent`'s name and location.
    pub fn new(agent: &AgentSettings) -> Arc<Self> {
        Arc::new(Checker {
            prober: RwLock::new(Self::prober(agent)),
        })
    }

    fn prober(agent: &AgentSettings) -> Arc<Prober> {
        Arc::new(Prober::new(agent.name.clone(), agent.location.clone()))
    }

    /// Stamps checks started from now on with `agent`'s name and location.
    pub fn set_identity(&self, agent: &AgentSettings) {
        *self.prober.write().unwrap_or_else(|e| e.into_inner()) = Self::prober(agent);
    }

    /// Checks `spec`; `started` is what the scheduler knows of the start (`None` in
    /// `--once`).
    pub fn check(
        &self,
        spec: Arc<CheckSpec>,
        started: Option<Started>,
    ) -> impl Future<Output = CheckResult> + Send + 'static {
        let prober = self
            .prober
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let _ = started;
        async move { prober.check(&spec).await }
    }
}

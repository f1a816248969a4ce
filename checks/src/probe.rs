//! HTTP probe (placeholder until the probe lands).

use crate::schema::CheckResult;
use crate::spec::CheckSpec;

/// Runs checks.
pub struct Prober {
    agent: String,
    location: Option<String>,
}

impl Prober {
    /// A prober that stamps results with this agent name and location.
    pub fn new(agent: String, location: Option<String>) -> Self {
        Prober { agent, location }
    }

    /// Checks one site. A site being down is a result, never an error.
    pub async fn check(&self, _spec: &CheckSpec) -> CheckResult {
        let _ = (&self.agent, &self.location);
        unimplemented!()
    }
}

//! Step: location states, verdicts, events and incidents from the results the batch
//! stored (`crate::verdicts` has the rules). Each site's results are applied in
//! `started_at` order across its locations; redelivered results never reach this step.

use std::sync::Arc;

use tokio_postgres::Transaction;

use super::step::{Step, StepError, StepFuture, Stored, StoredResult};
use crate::alerts::Alerts;
use crate::verdicts::{self, Observation, SiteJudge, VerdictError};

/// Judges the batch's sites; with an alerting policy, writes the notifications the
/// verdict changes cause (`crate::alerts::outbox`) in the same transaction.
#[derive(Default)]
pub(super) struct Verdicts {
    pub(super) alerts: Option<Arc<Alerts>>,
}

impl Step for Verdicts {
    fn name(&self) -> &'static str {
        "verdicts"
    }

    /// Returns the events written.
    fn apply<'a>(&'a self, tx: &'a Transaction<'a>, stored: &'a Stored<'a>) -> StepFuture<'a> {
        Box::pin(async move {
            judge(tx, stored, self.alerts.as_deref())
                .await
                .map_err(step_error)
        })
    }
}

fn step_error(e: VerdictError) -> StepError {
    match e {
        VerdictError::Db(e) => StepError::Db(e),
        VerdictError::Data(text) => StepError::Data(text),
    }
}

async fn judge(
    tx: &Transaction<'_>,
    stored: &Stored<'_>,
    alerts: Option<&Alerts>,
) -> Result<u64, VerdictError> {
    if stored.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i32> = stored.by_site().map(|run| run[0].site_id).collect();
    let mut sites = verdicts::load(tx, &ids).await?;
    let now = tx.query_one("SELECT now()", &[]).await?.get(0);
    for run in stored.by_site() {
        let Some(site) = sites.get_mut(&run[0].site_id) else {
            return Err(VerdictError::Data(format!(
                "site {} is not in `sites`",
                run[0].result.site
            )));
        };
        // Every location's results, in time order (each location's already is).
        let mut results: Vec<&StoredResult<'_>> = run.iter().collect();
        results.sort_by_key(|s| (s.result.started_at, s.location_id, s.agent_id));
        for s in results {
            site.observe(&observation(s), now);
        }
    }
    let mut judged: Vec<SiteJudge> = sites.into_values().collect();
    let saved = verdicts::save(tx, &mut judged).await?;
    if let Some(alerts) = alerts {
        crate::alerts::outbox::write(tx, alerts, &saved).await?;
    }
    Ok(saved.events)
}

fn observation<'a>(s: &StoredResult<'a>) -> Observation<'a> {
    let r = s.result;
    Observation {
        location_id: s.location_id,
        location: s.location,
        at: crate::codes::as_stored(r.started_at),
        outcome: r.outcome,
        kind: s.error_kind,
        message: r.error.as_ref().map(|e| e.message.as_str()),
        check_id: r.check_id,
        partition: s.partition,
    }
}

//! Step: rollups per (site, location), hourly and daily, and per site daily, from the
//! results the batch stored (`crate::rollups` does the work).

use tokio_postgres::Transaction;

use super::step::{Step, StepError, StepFuture, Stored};
use crate::codes;
use crate::rollups::{self, Check, NewChecks, RollupError};

/// Adds the batch's new results to `rollup_hourly`, `rollup_daily` and `rollup_site_daily`.
pub(super) struct Rollups;

impl Step for Rollups {
    fn name(&self) -> &'static str {
        "rollups"
    }

    fn apply<'a>(&'a self, tx: &'a Transaction<'a>, stored: &'a Stored<'a>) -> StepFuture<'a> {
        Box::pin(async move {
            let new: Vec<NewChecks> = stored
                .by_location()
                .map(|run| {
                    let mut checks: Vec<Check> = run
                        .iter()
                        .map(|s| Check {
                            started_at: codes::as_stored(s.result.started_at),
                            agent_id: s.agent_id,
                            outcome: codes::outcome(s.result.outcome),
                            total_us: codes::micros(s.result.timings_ms.total),
                        })
                        .collect();
                    // The run is in the order of the times as sent; as stored (whole µs)
                    // two agents' checks may swap.
                    checks.sort_by_key(Check::order);
                    NewChecks {
                        site_id: run[0].site_id,
                        location_id: run[0].location_id,
                        checks,
                    }
                })
                .collect();
            rollups::apply(tx, &new).await.map_err(|e| match e {
                RollupError::Db(e) => StepError::Db(e),
                other => StepError::Data(other.to_string()),
            })
        })
    }
}

//! One loaded plugin and its per-call sandbox: a fresh store and instance per
//! check from the pre-linked component, a wall-clock deadline, a memory cap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::bindings::sitewatch::check::types;
use super::bindings::CheckerPre;
use super::error::CallError;
use super::host::Shared;
use super::state::{truncate, CallState};
use crate::plugin_limits::PluginLimits;
use crate::schema::{Label, Metric, PluginOutcome, PluginResult};
use crate::spec::{ResponsePlugin, ResponseView};

/// Unit of the agent-wide memory budget: a WebAssembly page.
pub(crate) const BUDGET_UNIT: usize = 64 * 1024;

/// Bytes of a verdict or error message kept.
const MAX_MESSAGE: usize = 1024;
/// Metrics, and labels, kept per verdict.
const MAX_ITEMS: usize = 64;
/// Bytes of a metric name, label key or label value kept.
const MAX_NAME: usize = 256;
/// Extra time past the deadline before the host gives up on a guest stuck in a
/// host call (the epoch check normally ends it at the deadline itself).
const DEADLINE_SLACK: Duration = Duration::from_millis(20);

/// A compiled, linked plugin ready to be called any number of times, concurrently.
pub struct WasmPlugin {
    name: Arc<str>,
    engine: Engine,
    pre: CheckerPre<CallState>,
    limits: PluginLimits,
    shared: Arc<Shared>,
}

impl WasmPlugin {
    pub(crate) fn new(
        name: &str,
        engine: Engine,
        pre: CheckerPre<CallState>,
        limits: PluginLimits,
        shared: Arc<Shared>,
    ) -> Self {
        WasmPlugin {
            name: name.into(),
            engine,
            pre,
            limits,
            shared,
        }
    }

    /// The limits each call runs under.
    pub fn limits(&self) -> PluginLimits {
        self.limits
    }

    /// Runs the plugin on one response; every failure is an `error` result.
    pub async fn run(
        &self,
        name: &str,
        response: &ResponseView<'_>,
        config: &[(String, String)],
    ) -> PluginResult {
        let started = Instant::now();
        let verdict = self.call(response, config).await;
        let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
        match verdict {
            Ok(v) => verdict_result(name, v, duration_ms),
            Err(e) => PluginResult {
                name: name.to_string(),
                outcome: PluginOutcome::Error,
                message: e.to_string(),
                metrics: Vec::new(),
                labels: Vec::new(),
                duration_ms,
            },
        }
    }

    /// Instantiates the component in a fresh store and calls `check`.
    pub async fn call(
        &self,
        response: &ResponseView<'_>,
        config: &[(String, String)],
    ) -> Result<types::Verdict, CallError> {
        // One pooled instance slot per call, then the call's share of the agent-wide
        // memory budget (always slot first, so waiting calls cannot deadlock). The
        // semaphores are never closed.
        let Ok(_slot) = self.shared.slots.acquire().await else {
            return Err(CallError::NoRuntime);
        };
        let _memory = match &self.shared.memory {
            Some(budget) => {
                let pages = self.limits.max_memory.div_ceil(BUDGET_UNIT);
                let pages = u32::try_from(pages).unwrap_or(u32::MAX);
                match budget.acquire_many(pages).await {
                    Ok(permit) => Some(permit),
                    Err(_) => return Err(CallError::NoRuntime),
                }
            }
            None => None,
        };
        let mut store = Store::new(
            &self.engine,
            CallState::new(self.name.clone(), self.limits.max_memory),
        );
        store.limiter(|s| &mut s.limiter);
        let deadline = Instant::now() + self.limits.timeout;
        // Check the clock at every tick; yielding lets a cancelled call be dropped.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let request = to_wit(response);
        let outcome = tokio::time::timeout(self.limits.timeout + DEADLINE_SLACK, async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance.call_check(&mut store, &request, config).await
        })
        .await;
        let limiter = &store.data().limiter;
        let dropped = store.data().logs_dropped;
        if dropped > 0 {
            tracing::warn!(plugin = %self.name, dropped, "plugin log lines over the per-call budget were dropped");
        }
        match outcome {
            Err(_elapsed) => Err(CallError::Deadline(self.limits.timeout)),
            Ok(Ok(Ok(verdict))) => Ok(verdict),
            Ok(Ok(Err(message))) => Err(CallError::Returned(
                truncate(&message, MAX_MESSAGE).to_string(),
            )),
            Ok(Err(e)) => Err(match (limiter.exceeded, e.downcast_ref::<Trap>()) {
                (Some(wanted), _) => CallError::Memory {
                    limit: limiter.limit(),
                    wanted,
                },
                (None, Some(Trap::Interrupt)) => CallError::Deadline(self.limits.timeout),
                _ => CallError::Trap(truncate(&format!("{e:#}"), MAX_MESSAGE).to_string()),
            }),
        }
    }
}

impl ResponsePlugin for WasmPlugin {
    /// Runs on a blocking thread (see `probe::evaluate`): drives the async call to
    /// completion there so a busy guest never holds a runtime worker. It is driven
    /// on the host's own runtime, whose timer outlives the caller's: a call still
    /// running when the agent's runtime shuts down (abandoned past the shutdown
    /// grace) runs on to its deadline instead of panicking.
    fn check(
        &self,
        name: &str,
        response: &ResponseView<'_>,
        config: &[(String, String)],
    ) -> PluginResult {
        match self
            .shared
            .runtime
            .block_on(self.run(name, response, config))
        {
            Some(result) => result,
            None => PluginResult {
                name: name.to_string(),
                outcome: PluginOutcome::Error,
                message: CallError::NoRuntime.to_string(),
                metrics: Vec::new(),
                labels: Vec::new(),
                duration_ms: 0.0,
            },
        }
    }
}

fn to_wit(r: &ResponseView<'_>) -> types::Response {
    types::Response {
        url: r.url.to_string(),
        status: r.status,
        http_version: r.version.to_string(),
        headers: r.headers.to_vec(),
        body: r.body.to_vec(),
        timings: types::Timings {
            dns: r.timings.dns,
            connect: r.timings.connect,
            tls: r.timings.tls,
            ttfb: r.timings.ttfb,
            total: r.timings.total,
        },
    }
}

/// The guest's verdict, bounded: long text cut, at most [`MAX_ITEMS`] metrics and
/// labels, and non-finite numbers dropped (JSON cannot carry them).
fn verdict_result(name: &str, v: types::Verdict, duration_ms: f64) -> PluginResult {
    let outcome = match v.outcome {
        types::Outcome::Pass => PluginOutcome::Pass,
        types::Outcome::Warn => PluginOutcome::Warn,
        types::Outcome::Fail => PluginOutcome::Fail,
    };
    let metrics = v
        .metrics
        .into_iter()
        .filter(|m| m.value.is_finite())
        .take(MAX_ITEMS)
        .map(|m| Metric {
            name: truncate(&m.name, MAX_NAME).to_string(),
            value: m.value,
        })
        .collect();
    let labels = v
        .labels
        .into_iter()
        .take(MAX_ITEMS)
        .map(|(key, value)| Label {
            key: truncate(&key, MAX_NAME).to_string(),
            value: truncate(&value, MAX_NAME).to_string(),
        })
        .collect();
    PluginResult {
        name: name.to_string(),
        outcome,
        message: truncate(&v.message, MAX_MESSAGE).to_string(),
        metrics,
        labels,
        duration_ms,
    }
}

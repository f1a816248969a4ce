//! The cap on checks running at once, which can change while checks hold permits
//! (a reloaded `agent.max_concurrency`).

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A concurrency cap whose size can be changed at any time. Shrinking takes effect as
/// running checks finish: their permits are retired instead of handed on.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limit: usize,
    /// Permits still to retire as they come back (the cap shrank while they were held).
    debt: usize,
}

/// Leave to run one check; returned (or retired) when dropped.
#[derive(Debug)]
pub struct Permit {
    inner: Option<OwnedSemaphorePermit>,
    limit: Arc<ConcurrencyLimit>,
}

impl ConcurrencyLimit {
    /// A cap of `limit` (at least 1).
    pub fn new(limit: usize) -> Arc<Self> {
        let limit = limit.max(1);
        Arc::new(ConcurrencyLimit {
            semaphore: Arc::new(Semaphore::new(limit)),
            state: Mutex::new(State { limit, debt: 0 }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current cap.
    pub fn limit(&self) -> usize {
        self.state().limit
    }

    /// Checks running now.
    pub fn in_use(&self) -> usize {
        let state = self.state();
        (state.limit + state.debt).saturating_sub(self.semaphore.available_permits())
    }

    /// Changes the cap to `limit` (at least 1).
    pub fn set_limit(&self, limit: usize) {
        let limit = limit.max(1);
        let mut state = self.state();
        if limit > state.limit {
            let grow = limit - state.limit;
            let repaid = grow.min(state.debt);
            state.debt -= repaid;
            self.semaphore.add_permits(grow - repaid);
        } else {
            let shrink = state.limit - limit;
            let retired = self.semaphore.forget_permits(shrink);
            state.debt += shrink - retired;
        }
        state.limit = limit;
    }

    /// Waits for leave to run a check.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        // The semaphore is never closed, so acquiring cannot fail; should it ever, the
        // check runs without a permit rather than never.
        let inner = self.semaphore.clone().acquire_owned().await.ok();
        Permit {
            inner,
            limit: self.clone(),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(permit) = self.inner.take() else {
            return;
        };
        let mut state = self.limit.state();
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shrinking_below_the_permits_held_retires_them_as_they_return() {
        let limit = ConcurrencyLimit::new(3);
        let held: Vec<Permit> = vec![
            limit.acquire().await,
            limit.acquire().await,
            limit.acquire().await,
        ];
        assert_eq!(limit.in_use(), 3);
        limit.set_limit(1);
        assert_eq!(limit.limit(), 1);
        drop(held);
        assert_eq!(limit.in_use(), 0);
        let one = limit.acquire().await;
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), limit.acquire())
                .await
                .is_err(),
            "only one permit is left"
        );
        drop(one);
    }

    #[tokio::test]
    async fn growing_cancels_debt_first() {
        let limit = ConcurrencyLimit::new(2);
        let a = limit.acquire().await;
        let b = limit.acquire().await;
        limit.set_limit(1); // one permit owed
        limit.set_limit(3); // owes nothing, one more permit
        assert_eq!(limit.in_use(), 2);
        let c = limit.acquire().await; // the third
        drop((a, b, c));
        assert_eq!(limit.in_use(), 0);
        assert_eq!(limit.semaphore.available_permits(), 3);
    }
}

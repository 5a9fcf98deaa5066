//! Helpers for the end-to-end tests.

use std::future::Future;
use std::time::{Duration, Instant};

/// Poll `check` until it yields `Some`, or fail after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The event's decision record once it reaches a terminal state (done, in review, failed).
pub async fn settled(
    stack: &switchyard_infra::stack::LocalStack,
    event_id: &str,
) -> switchyard::decisions::DecisionRecord {
    settled_within(stack, event_id, Duration::from_secs(30)).await
}

/// [`settled`], waiting up to `timeout`.
pub async fn settled_within(
    stack: &switchyard_infra::stack::LocalStack,
    event_id: &str,
    timeout: Duration,
) -> switchyard::decisions::DecisionRecord {
    let decisions = stack.decisions().unwrap();
    wait_for("the event's decision record to settle", timeout, || {
        let decisions = decisions.clone();
        async move {
            decisions
                .get(event_id)
                .await
                .unwrap()
                .filter(|r| matches!(r.status.as_str(), "done" | "in_review" | "failed"))
        }
    })
    .await
}

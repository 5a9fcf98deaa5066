//! Metrics as CloudWatch Embedded Metric Format (EMF) through `metrics_cloudwatch_embedded`:
//! counters and latencies are recorded with the `metrics` crate's macros anywhere in the code,
//! aggregated in the process, and written as EMF lines once per invocation ([`flush`]) — Lambda's
//! log stream turns them into metrics (namespace `switchyard`) with no API call.
//!
//! Dimensions are few on purpose (each distinct set is a billed custom metric): one label
//! (`source`, `connector`, `category`…) and, for the metrics an alarm watches, a total without
//! dimensions beside it. docs/observability.md says what each metric means.
//!
//! Outside Lambda (tests, the local stack) [`flush`] hands the lines to the caller instead of
//! stdout, so the local runner can show and collect them.

use std::sync::OnceLock;

use metrics::{describe_histogram, Unit};
use metrics_cloudwatch_embedded::Collector;

/// The CloudWatch namespace every metric is published under.
pub const NAMESPACE: &str = "switchyard";

// intake
/// Webhook requests that reached intake, per `source` (an unknown path counts as `unknown`).
pub const WEBHOOKS_RECEIVED: &str = "WebhooksReceived";
/// Events accepted and queued, per `source` and in total (the volume alarm watches the total).
pub const EVENTS_ACCEPTED: &str = "EventsAccepted";
/// Requests refused, per `reason` (signature, too_large, …) and in total.
pub const WEBHOOKS_REJECTED: &str = "WebhooksRejected";
/// Redeliveries acknowledged without queueing again, per `source`.
pub const DUPLICATES: &str = "Duplicates";
// classify
/// Events classified, per `category` and `backend` (rules, model, llm).
pub const EVENTS_CLASSIFIED: &str = "EventsClassified";
/// Events sent to human review, in total (the review-rate alarm watches it).
pub const SENT_TO_REVIEW: &str = "SentToReview";
/// The LLM did not decide (down, slow, rate limited): the embedded model did.
pub const LLM_FALLBACKS: &str = "LlmFallbacks";
/// Attached documents classify handled, per `kind` (text, scanned, encrypted, corrupt, image,
/// unsupported, not_fetched, skipped) and in total.
pub(crate) const DOCUMENTS_READ: &str = "DocumentsRead";
/// Pages sent to OCR (Textract bills each one), in total.
pub(crate) const OCR_PAGES: &str = "OcrPages";
/// Decisions people made from the review message's buttons (dimension `choice`).
pub(crate) const HUMAN_DECISIONS: &str = "HumanDecisions";
/// Approvals still undecided at their `remind_after` (a reminder was sent).
pub(crate) const APPROVAL_REMINDERS: &str = "ApprovalReminders";
// act
/// Actions performed, per `connector` and in total.
pub const ACTIONS_DONE: &str = "ActionsDone";
/// Actions that failed: retried by SQS, sent to review or dead-lettered; per `connector` and total.
pub const ACTIONS_FAILED: &str = "ActionsFailed";
/// Work handed back to the queue to wait (budget, vendor limit, open circuit), per `connector`.
pub const BUDGET_WAITS: &str = "BudgetWaits";
/// Work parked while its connection needs reconnecting, per `connector`.
pub const ACTIONS_PARKED: &str = "ActionsParked";
/// Received at intake → its last action done, in milliseconds.
pub const END_TO_END_LATENCY: &str = "EndToEndLatency";
// every external call
/// Latency of one vendor, token-endpoint or LLM call, per `connector` and `operation` (ms).
pub const VENDOR_LATENCY: &str = "VendorLatency";
/// Vendor answers that were errors (any triage outcome but ok and rate limited), per `connector`.
pub const VENDOR_ERRORS: &str = "VendorErrors";
/// Vendor answers that asked us to slow down (429, Slack `ratelimited`, …), per `connector`.
pub const VENDOR_RATE_LIMITED: &str = "VendorRateLimited";
// auth and canary
/// A credential was rejected and could not be refreshed (or needs a human), per `connector`.
pub const AUTH_FAILURES: &str = "AuthFailures";
/// A canary probe failed, per `connector` and in total.
pub const CANARY_FAILURES: &str = "CanaryFailures";
/// API drift findings raised for the first time (or back after being resolved), per `severity`.
pub const DRIFT_FINDINGS: &str = "DriftFindings";

static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();

/// Install the process's metrics recorder (once; later calls keep the first). `emit_zeros`
/// writes every registered counter at each flush even when it did not move, which a volume alarm
/// needs: intake sets it, so a quiet hour reads as zeros, and no invocation at all as missing.
pub fn init(emit_zeros: bool) {
    COLLECTOR.get_or_init(|| {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .emit_zeros(emit_zeros)
            .init()
            .ok()?;
        describe_histogram!(VENDOR_LATENCY, Unit::Milliseconds, "");
        describe_histogram!(END_TO_END_LATENCY, Unit::Milliseconds, "");
        Some(collector)
    });
}

/// Write what was recorded since the last flush: to stdout inside Lambda (where the log stream
/// makes metrics of it); elsewhere the EMF lines are returned for the caller to keep or show.
pub fn flush() -> Vec<String> {
    let Some(Some(collector)) = COLLECTOR.get() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if collector.flush(&mut out).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&out);
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        print!("{text}");
        return Vec::new();
    }
    text.lines().map(str::to_owned).collect()
}

/// A count with one dimension and, beside it, the total without dimensions.
pub fn count(metric: &'static str, dimension: &'static str, value: &str) {
    add(metric, dimension, value, 1);
}

/// Add `n` to a count under one dimension and, beside it, to its total without dimensions.
pub fn add(metric: &'static str, dimension: &'static str, value: &str, n: u64) {
    metrics::counter!(metric, dimension => value.to_owned()).increment(n);
    metrics::counter!(metric).increment(n);
}

/// Register a count at zero so it is emitted even when nothing happens (see [`init`]).
pub(crate) fn register(metric: &'static str) {
    metrics::counter!(metric).increment(0);
}

/// A latency in milliseconds with the given dimensions.
pub fn latency_ms(metric: &'static str, labels: &[(&'static str, String)], ms: f64) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::histogram!(metric, labels).record(ms);
}

/// Run a Lambda handler and flush the metrics it recorded when it returns (one EMF document per
/// dimension set and invocation).
pub async fn flushed<F: std::future::Future>(invocation: F) -> F::Output {
    let out = invocation.await;
    flush();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One process-wide recorder: this is the only unit test that installs it.
    #[test]
    fn counts_and_latencies_flush_as_emf_with_a_total_beside_each_dimension() {
        init(false);
        // Other unit tests may record at the same time: this one's values are its own.
        count(AUTH_FAILURES, "connector", "metrics-test");
        count(AUTH_FAILURES, "connector", "metrics-test");
        latency_ms(
            VENDOR_LATENCY,
            &[
                ("connector", "metrics-test".into()),
                ("operation", "probe".into()),
            ],
            12.5,
        );
        let docs: Vec<serde_json::Value> = flush()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let find = |metric: &str, dims: &[&str]| {
            docs.iter()
                .find(|d| {
                    let cw = &d["_aws"]["CloudWatchMetrics"][0];
                    cw["Metrics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m["Name"] == metric)
                        && cw["Dimensions"][0] == serde_json::json!(dims)
                        && (dims.is_empty() || d["connector"] == "metrics-test")
                })
                .unwrap_or_else(|| panic!("no {metric} {dims:?} in {docs:?}"))
                .clone()
        };
        let by_connector = find(AUTH_FAILURES, &["connector"]);
        assert_eq!(by_connector["AuthFailures"], 2);
        assert_eq!(
            by_connector["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            NAMESPACE
        );
        assert!(find(AUTH_FAILURES, &[])["AuthFailures"].as_u64().unwrap() >= 2);
        let latency = find(VENDOR_LATENCY, &["connector", "operation"]);
        assert_eq!(latency["VendorLatency"], serde_json::json!([12.5]));
        assert_eq!(
            latency["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        // Flushed once: nothing is written twice.
        assert!(!flush().iter().any(|l| l.contains("metrics-test")));
    }
}

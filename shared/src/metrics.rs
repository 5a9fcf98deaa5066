//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per data point, which
//! Lambda's log stream turns into a metric (namespace `switchyard`) with no API call. Each point
//! is recorded per `connection` and in total, so one alarm covers every connection.
//!
//! Outside Lambda (tests, the local stack) the line goes to the debug log instead of stdout.

use serde_json::{json, Value};

pub const NAMESPACE: &str = "switchyard";

/// A credential was rejected and could not be refreshed (or needs a human).
pub const AUTH_FAILURES: &str = "AuthFailures";
/// Work handed back to wait for budget, a vendor's rate limit or an open circuit.
pub const BUDGET_WAITS: &str = "BudgetWaits";
/// A canary probe failed.
pub const CANARY_FAILURES: &str = "CanaryFailures";

/// The EMF document for one count.
pub fn emf(metric: &str, connection: &str, value: f64, timestamp_ms: i64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["connection"], []],
                "Metrics": [{"Name": metric, "Unit": "Count"}]
            }]
        },
        "connection": connection,
        metric: value
    })
}

pub fn count(metric: &str, connection: &str) {
    let doc = emf(
        metric,
        connection,
        1.0,
        chrono::Utc::now().timestamp_millis(),
    );
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!("{doc}");
    } else {
        tracing::debug!(metric, connection, "metric");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_name_the_metric_and_both_dimension_sets() {
        let d = emf(AUTH_FAILURES, "slack", 1.0, 1_795_867_200_000);
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "switchyard");
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "AuthFailures"
        );
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["connection"], []])
        );
        assert_eq!(d["AuthFailures"], 1.0);
        assert_eq!(d["connection"], "slack");
    }
}

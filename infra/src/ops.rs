//! Ops commands that read a deployment — `switchyard explain` (the story of one event) and
//! `switchyard stats` (what happened in a window) — the same against AWS and against the local
//! stack: both read the decision records (DynamoDB, `DECISIONS_TABLE`) and intake's metrics
//! (CloudWatch, namespace `switchyard`; locally the EMF file `SWITCHYARD_METRICS_FILE`, since the
//! emulator cannot take CloudWatch's CBOR protocol) through the settings in the environment.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use switchyard::decisions::{state, DecisionRecord, DecisionStore};

/// Where the ops commands read from.
pub struct Deployment {
    pub decisions: DecisionStore,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// EMF lines as the local stack writes them, read instead of CloudWatch when set.
    pub metrics_file: Option<std::path::PathBuf>,
}

/// The settings an ops command needs, named for a user who has none set.
pub const NEEDS: &str =
    "DECISIONS_TABLE (the stack output DecisionsTableName) and AWS credentials \
with a region (AWS_PROFILE or AWS_ACCESS_KEY_ID…, AWS_REGION); for the local stack, paste the \
`export` lines `switchyard local --stay-up` prints";

impl Deployment {
    pub async fn from_env() -> Result<Self> {
        let Some(table) = std::env::var("DECISIONS_TABLE")
            .ok()
            .filter(|t| !t.is_empty())
        else {
            bail!("no deployment configured: set {NEEDS}");
        };
        let config = switchyard::aws::config_loader().load().await;
        if config.region().is_none() {
            bail!("no AWS region configured: set {NEEDS}");
        }
        Ok(Deployment {
            decisions: DecisionStore::new(aws_sdk_dynamodb::Client::new(&config), table),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            metrics_file: std::env::var_os("SWITCHYARD_METRICS_FILE").map(Into::into),
        })
    }
}

/// The UTC days from `since` to now, newest first.
pub fn days_since(since: DateTime<Utc>) -> Vec<String> {
    let mut days = Vec::new();
    let mut d = Utc::now().date_naive();
    while d >= since.date_naive() {
        days.push(d.format("%Y-%m-%d").to_string());
        d -= Duration::days(1);
    }
    days
}

/// The record of an event id, or of the event a vendor delivery id became (last 7 days).
pub async fn find(store: &DecisionStore, id: &str) -> Result<Option<DecisionRecord>> {
    if let Some(r) = store.get(id).await? {
        return Ok(Some(r));
    }
    Ok(store
        .find_by_delivery(id, &days_since(Utc::now() - Duration::days(7)))
        .await?)
}

/// The story of one event as JSON, in the order things happened.
pub fn story_json(r: &DecisionRecord) -> Value {
    let parse = |s: &Option<String>| -> Value {
        s.as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null)
    };
    json!({
        "event_id": r.event_id,
        "arrived": {
            "source": r.source, "event_type": r.event_type, "delivery_id": r.delivery_id,
            "received_at": r.received_at, "correlation_id": r.correlation_id,
            "input": r.input, "signature": "verified", "dedupe": "first delivery",
            "redeliveries_acknowledged": r.duplicates,
            "documents": r.documents,
        },
        "classification": (!r.category.is_empty()).then(|| json!({
            "backend": r.backend, "category": r.category, "confidence": r.confidence,
            "threshold": r.threshold, "top_scores": top_scores(r, 3), "signals": r.signals,
            "language": r.language, "fallback": r.fallback, "decided_at": r.decided_at,
        })),
        "route": r.route, "path": (!r.path.is_empty()).then_some(&r.path),
        "planned_actions": parse(&r.actions),
        "attempts": r.attempts,
        "waits_on": r.note, "handed_back": r.held,
        "state": r.status, "reason": r.reason, "last_change": r.acted_at.as_ref().or(r.decided_at.as_ref()),
    })
}

/// The `n` highest scores, best first.
fn top_scores(r: &DecisionRecord, n: usize) -> Vec<(String, f64)> {
    let mut scores: Vec<(String, f64)> = r
        .scores
        .as_deref()
        .and_then(|s| serde_json::from_str::<BTreeMap<String, f64>>(s).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    scores.truncate(n);
    scores
}

/// The story of one event, for a person.
pub fn render_story(r: &DecisionRecord) -> String {
    let mut out = format!("event {}\n", r.event_id);
    let redeliveries = match r.duplicates {
        0 => String::new(),
        n => format!("; {n} redelivery(ies) acknowledged, not queued again"),
    };
    line(
        &mut out,
        "arrived",
        format!(
            "{} {} from {} (delivery {}), signature verified, first delivery{redeliveries}",
            r.received_at.as_deref().unwrap_or("?"),
            r.event_type,
            r.source,
            r.delivery_id,
        ),
    );
    if let Some(input) = &r.input {
        line(&mut out, "input", format!("{input:?} (PII-redacted)"));
    }
    for d in &r.documents {
        line(&mut out, "document", d.describe());
    }
    if !r.category.is_empty() {
        render_classification(&mut out, r);
    }
    for a in &r.attempts {
        line(&mut out, "action", render_attempt(a));
    }
    if !r.held.is_empty() {
        let held: Vec<String> = r.held.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        line(&mut out, "handed back", held.join(", "));
    }
    if let Some(note) = &r.note {
        line(&mut out, "waits on", render_attempt(note));
    }
    for (what, text) in crate::people::story_lines(r) {
        line(&mut out, what, text);
    }
    let not_yet = if r.category.is_empty() && r.attempts.is_empty() && r.note.is_none() {
        " (not classified yet)"
    } else {
        ""
    };
    let reason = r
        .reason
        .as_deref()
        .map(|x| format!(": {x}"))
        .unwrap_or_default();
    line(&mut out, "state", format!("{}{not_yet}{reason}", r.status));
    out
}

fn line(out: &mut String, what: &str, text: String) {
    out.push_str(&format!("  {what:<12}{text}\n"));
}

/// What the classifier saw and decided, and the route that followed.
fn render_classification(out: &mut String, r: &DecisionRecord) {
    let top = top_scores(r, 3)
        .iter()
        .map(|(c, s)| format!("{c} {s:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    let threshold = r.threshold.map_or("?".into(), |t| format!("{t:.2}"));
    line(
        out,
        "classified",
        format!(
            "{} by {} with confidence {:.2} (review threshold {threshold}); top scores: {top}",
            r.category,
            r.backend.as_deref().unwrap_or("?"),
            r.confidence,
        ),
    );
    let signals = r
        .signals
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("none");
    let fallback = r
        .fallback
        .as_deref()
        .map(|f| format!("; LLM not used: {f}"))
        .unwrap_or_default();
    line(
        out,
        "signals",
        format!(
            "{signals}; language {}{fallback}",
            r.language
                .as_deref()
                .unwrap_or("- (not sure enough to say)"),
        ),
    );
    if let Some(route) = &r.route {
        line(out, "route", format!("{route} -> {}", r.path));
    }
}

fn render_attempt(a: &Value) -> String {
    let text = |k: &str| {
        a.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let calls: Vec<String> = a
        .get("calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {} -> {} in {} ms",
                c["method"].as_str().unwrap_or(""),
                c["path"].as_str().unwrap_or(""),
                c["status"]
                    .as_u64()
                    .map_or("no answer".into(), |s| s.to_string()),
                c["latency_ms"]
            )
        })
        .collect();
    let mut s = format!("{} {}", text("action"), text("status"));
    if let Some(id) = a.get("object_id").and_then(Value::as_str) {
        s.push_str(&format!(" (object {id})"));
    }
    if let Some(w) = a.get("wait_ms").and_then(Value::as_u64) {
        s.push_str(&format!(", waits {w} ms: {}", text("why")));
    }
    if let Some(e) = a.get("error").and_then(Value::as_str) {
        s.push_str(&format!(": {e}"));
    }
    if !calls.is_empty() {
        s.push_str(&format!(" [{}]", calls.join("; ")));
    }
    s
}

/// What happened in a window, from the decision records and intake's metrics.
pub async fn stats(dep: &Deployment, since: DateTime<Utc>) -> Result<Value> {
    let since_text = since.to_rfc3339();
    let mut records = Vec::new();
    for day in days_since(since) {
        records.extend(dep.decisions.list_day(&day, Some(&since_text)).await?);
    }
    let mut by_source: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_connector: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut latencies: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let (mut auto_routed, mut reviewed, mut failed, mut done, mut duplicates) = (0, 0, 0, 0, 0);
    for r in &records {
        duplicates += r.duplicates;
        let s = by_source.entry(r.source.clone()).or_default();
        *s.entry("accepted").or_default() += 1;
        if !r.category.is_empty() {
            *by_category.entry(r.category.clone()).or_default() += 1;
        }
        if r.path == switchyard::decisions::PATH_ACT {
            auto_routed += 1;
        }
        if r.path == switchyard::decisions::PATH_REVIEW || r.status == state::IN_REVIEW {
            reviewed += 1;
            *s.entry("reviewed").or_default() += 1;
        }
        match r.status.as_str() {
            state::FAILED => {
                failed += 1;
                *s.entry("failed").or_default() += 1;
            }
            state::DONE => done += 1,
            _ => {}
        }
        // Hand-backs without a vendor call are counted on the record; older records (and
        // hand-backs after a call) have them as attempts, counted below.
        for (kind, n) in &r.held {
            let (kind, connector) = kind.split_once(' ').unwrap_or((kind, ""));
            let status = match kind {
                "waiting" => "handed_back",
                "parked" => "parked",
                _ => continue,
            };
            *by_connector
                .entry(connector.to_owned())
                .or_default()
                .entry(status)
                .or_default() += n;
        }
        for a in &r.attempts {
            let action = a["action"].as_str().unwrap_or_default();
            let connector = action.split('.').next().unwrap_or_default().to_owned();
            let status = match a["status"].as_str().unwrap_or_default() {
                "done" => "done",
                "failed" => "failed",
                "waiting" => "handed_back",
                "parked" => "parked",
                _ => continue,
            };
            *by_connector
                .entry(connector.clone())
                .or_default()
                .entry(status)
                .or_default() += 1;
            for c in a["calls"].as_array().into_iter().flatten() {
                if let Some(ms) = c["latency_ms"].as_f64() {
                    latencies.entry(connector.clone()).or_default().push(ms);
                }
            }
        }
    }
    let (received, rejected) = intake_counts(dep, since).await;
    let accepted = records.len() as u64;
    let rejected_total: u64 = rejected.values().sum();
    let actions: u64 = by_connector
        .values()
        .map(|m| m.get("done").unwrap_or(&0) + m.get("failed").unwrap_or(&0))
        .sum();
    let action_failures: u64 = by_connector
        .values()
        .map(|m| m.get("failed").unwrap_or(&0))
        .sum();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let vendor_latency: BTreeMap<String, Value> = latencies
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
            (
                k,
                json!({"calls": v.len(), "p50_ms": q(0.5), "p95_ms": q(0.95)}),
            )
        })
        .collect();
    Ok(json!({
        "since": since_text,
        "received": received.unwrap_or(accepted + duplicates + rejected_total),
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected_total,
        "rejected_by_reason": rejected,
        "auto_routed": auto_routed,
        "reviewed": reviewed,
        "failed": failed,
        "done": done,
        "review_rate": ratio(reviewed, accepted),
        "error_rate": ratio(action_failures, actions),
        "by_source": by_source,
        "by_category": by_category,
        "by_connector": by_connector,
        "vendor_latency_ms": vendor_latency,
        "people": crate::people::stats(&records),
    }))
}

/// Requests received and refused by reason, from intake's metrics; `None`/empty where the
/// metrics cannot be read (then received is counted from the records).
async fn intake_counts(
    dep: &Deployment,
    since: DateTime<Utc>,
) -> (Option<u64>, BTreeMap<String, u64>) {
    if let Some(path) = &dep.metrics_file {
        return file_counts(path, since);
    }
    let sum = |name: &'static str, dimension: Option<(&'static str, String)>| {
        let cw = dep.cloudwatch.clone();
        async move {
            // One period covering the whole window, starting a minute early so the window's
            // last seconds fall inside it (a partial last period is not answered).
            let now = Utc::now();
            let start = since.timestamp() - 60;
            let period = ((now.timestamp() + 60 - start) + 59) / 60 * 60;
            let mut req = cw
                .get_metric_statistics()
                .namespace(switchyard::metrics::NAMESPACE)
                .metric_name(name)
                .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(start))
                .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                    start + period,
                ))
                .period(period as i32)
                .statistics(aws_sdk_cloudwatch::types::Statistic::Sum);
            if let Some((k, v)) = dimension {
                req = req.dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name(k)
                        .value(v)
                        .build(),
                );
            }
            let out = req.send().await.ok()?;
            Some(out.datapoints().iter().filter_map(|d| d.sum).sum::<f64>() as u64)
        }
    };
    let received = sum(switchyard::metrics::WEBHOOKS_RECEIVED, None).await;
    let mut rejected = BTreeMap::new();
    let reasons = dep
        .cloudwatch
        .list_metrics()
        .namespace(switchyard::metrics::NAMESPACE)
        .metric_name(switchyard::metrics::WEBHOOKS_REJECTED)
        .send()
        .await
        .map(|o| o.metrics.unwrap_or_default())
        .unwrap_or_default();
    for m in reasons {
        for d in m.dimensions() {
            if d.name() == Some("reason") {
                let reason = d.value().unwrap_or_default().to_owned();
                let n = sum(
                    switchyard::metrics::WEBHOOKS_REJECTED,
                    Some(("reason", reason.clone())),
                )
                .await
                .unwrap_or(0);
                if n > 0 {
                    rejected.insert(reason, n);
                }
            }
        }
    }
    (received, rejected)
}

/// `stats` for a person.
pub fn render_stats(s: &Value) -> String {
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    let mut out = format!(
        "switchyard stats since {}\n",
        s["since"].as_str().unwrap_or("")
    );
    out.push_str(&format!(
        "  received {}  accepted {}  duplicates {}  rejected {}\n",
        n("received"),
        n("accepted"),
        n("duplicates"),
        n("rejected")
    ));
    if let Some(reasons) = s["rejected_by_reason"].as_object() {
        for (reason, count) in reasons {
            out.push_str(&format!("    rejected {reason:<16}{count}\n"));
        }
    }
    out.push_str(&format!(
        "  auto-routed {}  sent to review {}  failed {}  done {}\n  review rate {:.1} %  action error rate {:.1} %\n",
        n("auto_routed"),
        n("reviewed"),
        n("failed"),
        n("done"),
        s["review_rate"].as_f64().unwrap_or(0.0) * 100.0,
        s["error_rate"].as_f64().unwrap_or(0.0) * 100.0
    ));
    for (title, key) in [
        ("per source", "by_source"),
        ("per category", "by_category"),
        ("per connector", "by_connector"),
        ("vendor latency", "vendor_latency_ms"),
    ] {
        if let Some(map) = s[key].as_object().filter(|m| !m.is_empty()) {
            out.push_str(&format!("  {title}\n"));
            for (k, v) in map {
                out.push_str(&format!("    {k:<16}{}\n", compact(v)));
            }
        }
    }
    let people = &s["people"];
    if people["by_choice"]
        .as_object()
        .is_some_and(|m| !m.is_empty())
        || people["awaiting"].as_u64().unwrap_or(0) > 0
        || people["expired"].as_u64().unwrap_or(0) > 0
    {
        let secs = |q: &str| {
            people["time_to_decision_s"][q]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.0} s"))
        };
        out.push_str(&format!(
            "  people           {}; waiting {}, refused {}, expired {}; time to decision p50 {} p95 {}\n",
            compact(&people["by_choice"]),
            people["awaiting"],
            people["refused"],
            people["expired"],
            secs("p50"),
            secs("p95")
        ));
        if let Some(map) = people["by_category"].as_object() {
            for (k, v) in map {
                out.push_str(&format!("    {k:<16}{}\n", compact(v)));
            }
        }
    }
    out
}

fn compact(v: &Value) -> String {
    match v.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        None => v.to_string(),
    }
}

/// `24h`, `90m`, `7d`, `3600s` as a duration.
pub fn parse_since(text: &str) -> Result<Duration> {
    let d = switchyard::settings::parse_interval(text).map_err(|e| anyhow::anyhow!(e))?;
    Duration::from_std(d).context("the window is too long")
}

/// The same counts from EMF lines (the local stack's metrics file).
fn file_counts(
    path: &std::path::Path,
    since: DateTime<Utc>,
) -> (Option<u64>, BTreeMap<String, u64>) {
    use switchyard::metrics::{WEBHOOKS_RECEIVED, WEBHOOKS_REJECTED};
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, BTreeMap::new());
    };
    let (mut received, mut rejected) = (0, BTreeMap::new());
    for doc in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if doc["_aws"]["Timestamp"].as_i64().unwrap_or(0) < since.timestamp_millis() {
            continue;
        }
        let dims = &doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
        let value = |name: &str| doc[name].as_u64().unwrap_or(0);
        if dims.as_array().is_some_and(Vec::is_empty) {
            received += value(WEBHOOKS_RECEIVED);
        } else if *dims == json!(["reason"]) && value(WEBHOOKS_REJECTED) > 0 {
            let reason = doc["reason"].as_str().unwrap_or_default().to_owned();
            *rejected.entry(reason).or_default() += value(WEBHOOKS_REJECTED);
        }
    }
    (Some(received), rejected)
}

//! `switchyard bench cost`: what one event costs in AWS requests and dollars. N signed Zendesk
//! billing tickets (each → one Zendesk update) go through the local stack at a steady rate, or
//! all at once (`--burst`) against a Zendesk budget they overrun; the emulator counts every AWS
//! request by service and operation, DynamoDB write and read units by item size, and the SQS
//! receives that brought messages. A quiet spell before the events measures what polling costs
//! with nothing to do, which is subtracted as fixed cost. Lambda invocations and their billed
//! milliseconds come from the local runner, at the template's memory sizes.
//!
//! Prices: us-east-1, as published (on-demand DynamoDB since the November 2024 reduction).
//! Durations are measured here, against the emulator, not in Lambda: the dollar figure for
//! Lambda time is an estimate, the request counts are exact.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::Utc;
use serde::Serialize;

use crate::emulator::Usage;
use crate::fixtures;
use crate::stack::LocalStack;
use switchyard::metrics::ACTIONS_DONE;

/// Published us-east-1 prices, in dollars.
pub mod price {
    /// Lambda on arm64, per GB-second.
    pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
    /// SQS standard queues, per request (a 64 KB chunk of payload each).
    pub const SQS_PER_REQUEST: f64 = 0.40 / 1e6;
    /// DynamoDB on-demand, per write request unit and per read request unit.
    pub const DDB_PER_WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const DDB_PER_READ_UNIT: f64 = 0.125 / 1e6;
    /// Secrets Manager, per API call.
    pub const SECRETS_PER_CALL: f64 = 0.05 / 10_000.0;
}

/// The Zendesk budget the bench runs under, per minute: slow enough for the burst (6× its pace)
/// to meet it with a few dozen events, on an emulator that serves a few hundred requests a second.
pub const BENCH_ZENDESK_PER_MINUTE: u32 = 60;

#[derive(Clone, Debug)]
pub struct CostOptions {
    pub events: usize,
    /// Events per second when steady; ignored with `burst`.
    pub rate: f64,
    /// Send at six times the Zendesk budget's pace instead.
    pub burst: bool,
    /// The quiet spell that measures idle polling.
    pub idle: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct CostReport {
    pub events: usize,
    pub burst: bool,
    pub seconds: f64,
    /// Per event: AWS requests by `service.Operation`, idle polling taken out.
    pub requests_by_operation: BTreeMap<String, f64>,
    pub requests_per_event: f64,
    pub write_units_per_event: f64,
    /// By table and operation (`DecisionsTable UpdateItem`).
    pub write_units_by_table: BTreeMap<String, f64>,
    pub read_units_per_event: f64,
    pub read_units_by_table: BTreeMap<String, f64>,
    /// The largest item written, in bytes, by table and operation (a unit per started KB).
    pub largest_item_bytes: BTreeMap<String, u64>,
    pub lambda_invocations_per_event: f64,
    pub lambda_ms_per_event: BTreeMap<String, f64>,
    /// Hand-backs to the act queue (work that waited for budget) per effect made.
    pub handbacks_per_effect: f64,
    /// Idle polling, in requests per second of the local stack (the pollers' empty receives).
    pub idle_receives_per_second: f64,
    pub usd_per_million_by_service: BTreeMap<String, f64>,
    pub usd_per_million: f64,
}

fn per(n: f64, events: usize) -> f64 {
    n / events.max(1) as f64
}

/// Run the bench: its own stack, its own events; the report's figures are per event.
pub async fn cost(o: &CostOptions) -> Result<CostReport> {
    let limit = format!("zendesk={BENCH_ZENDESK_PER_MINUTE}/minute");
    let stack = LocalStack::start_with(&[("RateLimits".into(), limit)]).await?;
    // The canary's first run (at start) is not per-event work: let it finish, then measure idle.
    let started = Instant::now();
    while stack.canary_results.lock().expect("canary").is_empty() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the canary's first run did not finish within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.emulator.take_usage().await?;
    tokio::time::sleep(o.idle).await;
    let idle = stack.emulator.take_usage().await?;
    let idle_rate = empty_receives(&idle) as f64 / o.idle.as_secs_f64();
    let idle_other: u64 = idle
        .requests
        .iter()
        .filter(|(k, _)| !k.starts_with("sqs.Receive"))
        .map(|(_, v)| v)
        .sum();
    if idle_other > 0 {
        bail!(
            "the stack called AWS while idle, besides polling: {:?}",
            idle.requests
        );
    }
    stack.stats.billed.lock().expect("stats").clear();
    let metrics_before = stack.stats.metrics.lock().expect("stats").len();

    let http = reqwest::Client::new();
    let interval = if o.burst {
        Duration::from_secs_f64(60.0 / f64::from(BENCH_ZENDESK_PER_MINUTE) / 6.0)
    } else {
        Duration::from_secs_f64(1.0 / o.rate.max(0.01))
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let began = Instant::now();
    let mut ids = Vec::new();
    for i in 0..o.events {
        let ticket = 70_000 + i as u64;
        stack
            .sandbox
            .seed_zendesk_ticket(ticket, "Refund for a double charge");
        let hook = fixtures::zendesk_ticket_created(
            &stack.signing.zendesk,
            &format!("cost-{run}-{i}"),
            ticket,
            "Refund for a double charge",
            "My card was charged twice for the March invoice; please refund one payment.",
            Utc::now(),
        );
        let (status, body) = hook.send(&http, &stack.webhook_base).await?;
        if status != 202 {
            bail!("webhook {i} got {status}: {body}");
        }
        ids.push(body["event_id"].as_str().unwrap_or_default().to_owned());
        tokio::time::sleep_until((began + interval * (i as u32 + 1)).into()).await;
    }
    // Watched through the runner's metrics, not DynamoDB: the bench's own reads are not the work's.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = counted(
            &stack.stats.metrics.lock().expect("stats")[metrics_before..],
            ACTIONS_DONE,
        );
        if done >= o.events as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {done} of {} actions finished within 10 minutes",
                o.events
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The last deletes and records land just after the action is done.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seconds = began.elapsed().as_secs_f64();
    let used = stack.emulator.take_usage().await?;
    settle(&stack, &ids).await?;
    let effects = stack.sandbox.ledger().len().max(1);

    let handbacks = budget_waits(&stack.stats.metrics.lock().expect("stats")[metrics_before..]);
    let billed = stack.stats.billed.lock().expect("stats").clone();
    let memory: BTreeMap<String, u64> = billed
        .keys()
        .map(|f| {
            (
                f.clone(),
                stack.template.function(f).map_or(128, |d| d.memory_mb),
            )
        })
        .collect();
    stack.stop();
    Ok(report(
        o, &memory, used, idle_rate, seconds, billed, handbacks, effects,
    ))
}

/// Check that every event's record is done (after the measurement: these reads are the bench's).
async fn settle(stack: &LocalStack, ids: &[String]) -> Result<()> {
    let decisions = stack.decisions()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut pending: Vec<&String> = ids.iter().collect();
    while !pending.is_empty() {
        let mut left = Vec::new();
        for id in pending {
            match decisions.get(id).await? {
                Some(r) if matches!(r.status.as_str(), "done" | "in_review" | "failed") => {
                    if r.status != "done" {
                        bail!("event {id} ended {}: {:?}", r.status, r.reason);
                    }
                }
                _ => left.push(id),
            }
        }
        pending = left;
        if Instant::now() > deadline {
            bail!("{} events did not finish within 10 minutes", pending.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The last deletes and records land just after the state turns done.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

fn empty_receives(u: &Usage) -> u64 {
    let all = u.requests.get("sqs.ReceiveMessage").copied().unwrap_or(0);
    all.saturating_sub(
        u.requests
            .get("sqs.ReceiveMessage(with messages)")
            .copied()
            .unwrap_or(0),
    )
}

/// `BudgetWaits` from the EMF lines, per connector (each hand-back counts once there).
pub fn budget_waits(lines: &[String]) -> u64 {
    counted(lines, switchyard::metrics::BUDGET_WAITS)
}

/// A per-connector metric's sum over EMF lines (the lines with the `connector` dimension).
fn counted(lines: &[String], metric: &str) -> u64 {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|d| {
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == serde_json::json!(["connector"])
        })
        .filter_map(|d| d[metric].as_u64())
        .sum()
}

#[allow(clippy::too_many_arguments)]
fn report(
    o: &CostOptions,
    memory_mb: &BTreeMap<String, u64>,
    used: Usage,
    idle_rate: f64,
    seconds: f64,
    billed: BTreeMap<String, (u64, u64)>,
    handbacks: u64,
    effects: usize,
) -> CostReport {
    use price::*;
    let n = o.events;
    // A receive that brought messages is the work's; empty ones are the pollers' fixed cost,
    // paid whether events come or not (on AWS: the event source mappings' long polls).
    let mut requests = used.requests.clone();
    let with_messages = requests
        .remove("sqs.ReceiveMessage(with messages)")
        .unwrap_or(0);
    requests.insert("sqs.ReceiveMessage".into(), with_messages);
    let requests_by_operation: BTreeMap<String, f64> = requests
        .iter()
        .map(|(k, v)| (k.clone(), per(*v as f64, n)))
        .collect();
    let by_service = |prefix: &str| -> f64 {
        requests
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| *v as f64)
            .sum()
    };
    let write_units: f64 = used.write_units.values().sum();
    let read_units: f64 = used.read_units.values().sum();
    let invocations: u64 = billed.values().map(|(i, _)| i).sum();
    let gb_seconds: f64 = billed
        .iter()
        .map(|(f, (_, ms))| {
            let memory = memory_mb.get(f).copied().unwrap_or(128);
            *ms as f64 / 1000.0 * memory as f64 / 1024.0
        })
        .sum();
    let million = 1e6 / n.max(1) as f64;
    let mut usd = BTreeMap::new();
    usd.insert(
        "dynamodb".to_owned(),
        million * (write_units * DDB_PER_WRITE_UNIT + read_units * DDB_PER_READ_UNIT),
    );
    usd.insert(
        "sqs".to_owned(),
        million * by_service("sqs.") * SQS_PER_REQUEST,
    );
    usd.insert(
        "secretsmanager".to_owned(),
        million * by_service("secretsmanager.") * SECRETS_PER_CALL,
    );
    usd.insert(
        "lambda".to_owned(),
        million * (invocations as f64 * LAMBDA_PER_REQUEST + gb_seconds * LAMBDA_ARM_GB_SECOND),
    );
    CostReport {
        events: n,
        burst: o.burst,
        seconds,
        requests_per_event: requests_by_operation.values().sum::<f64>()
            + per(invocations as f64, n),
        requests_by_operation,
        write_units_per_event: per(write_units, n),
        write_units_by_table: used
            .write_units
            .iter()
            .map(|(k, v)| (k.clone(), per(*v, n)))
            .collect(),
        read_units_per_event: per(read_units, n),
        read_units_by_table: used
            .read_units
            .iter()
            .map(|(k, v)| (k.clone(), per(*v, n)))
            .collect(),
        largest_item_bytes: used.largest_item.clone(),
        lambda_invocations_per_event: per(invocations as f64, n),
        lambda_ms_per_event: billed
            .iter()
            .map(|(f, (_, ms))| (f.clone(), per(*ms as f64, n)))
            .collect(),
        handbacks_per_effect: handbacks as f64 / effects as f64,
        idle_receives_per_second: idle_rate,
        usd_per_million: usd.values().sum(),
        usd_per_million_by_service: usd,
    }
}

/// The human-readable report.
pub fn render(r: &CostReport) -> String {
    let mut out = format!(
        "cost benchmark: {} Zendesk billing tickets ({}), each one Zendesk update; {:.1} s\n",
        r.events,
        if r.burst {
            "burst at 6x the Zendesk budget"
        } else {
            "steady"
        },
        r.seconds
    );
    out += &format!(
        "per event: {:.2} AWS requests (Lambda invocations {:.2}), {:.2} DynamoDB write units, {:.2} read units; hand-backs per effect {:.2}\n",
        r.requests_per_event, r.lambda_invocations_per_event, r.write_units_per_event, r.read_units_per_event, r.handbacks_per_effect
    );
    out += "requests per event:\n";
    for (op, v) in &r.requests_by_operation {
        out += &format!("  {op:<40} {v:>6.2}\n");
    }
    out += "write units per event, by table and operation:\n";
    for (t, v) in &r.write_units_by_table {
        out += &format!("  {t:<40} {v:>6.2}\n");
    }
    out += "largest item written, by table and operation (bytes; a write unit per started KB):\n";
    for (t, v) in &r.largest_item_bytes {
        out += &format!("  {t:<40} {v:>6}\n");
    }
    out += "read units per event, by table and operation:\n";
    for (t, v) in &r.read_units_by_table {
        out += &format!("  {t:<40} {v:>6.2}\n");
    }
    out += "billed Lambda ms per event (measured locally):\n";
    for (f, v) in &r.lambda_ms_per_event {
        out += &format!("  {f:<40} {v:>6.1}\n");
    }
    out += &format!(
        "idle polling (fixed, not per event): {:.1} empty receives per second locally\n",
        r.idle_receives_per_second
    );
    out += "USD per million events (us-east-1):";
    for (s, v) in &r.usd_per_million_by_service {
        out += &format!(" {s} {v:.2};");
    }
    out += &format!(" total {:.2}\n", r.usd_per_million);
    out
}

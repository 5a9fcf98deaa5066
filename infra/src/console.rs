//! The console: a read-only web page the local stack serves on loopback while it stays up —
//! recent events with their state, each event's `explain` story, health (queue and DLQ depths,
//! budgets and circuits, the last canary results), and small charts of throughput and vendor
//! latency. Server-rendered HTML and inline SVG (askama templates, axum): no JavaScript, and
//! never deployed — it reads the stack's tables with the stack's own credentials.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use switchyard::decisions::DecisionRecord;
use tokio::task::JoinHandle;

use crate::ops;

/// What the console reads: the stack's decision records, queues, pacing table and canary
/// results (cloned out of [`ConsoleState::of`]).
#[derive(Clone)]
pub struct ConsoleState {
    pub decisions: switchyard::decisions::DecisionStore,
    pub sqs: aws_sdk_sqs::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub pacing_table: Option<String>,
    /// (logical id, URL) of each queue shown.
    pub queues: Vec<(String, String)>,
    pub canary: Arc<std::sync::Mutex<Vec<switchyard::handlers::canary::ProbeResult>>>,
}

impl ConsoleState {
    /// What the console reads, cloned out of the local stack.
    pub fn of(stack: &crate::stack::LocalStack) -> Result<Self> {
        let queues = QUEUES
            .iter()
            .map(|q| Ok((q.to_string(), stack.provisioned.queue_url(q)?.to_owned())))
            .collect::<Result<_>>()?;
        Ok(ConsoleState {
            decisions: stack.decisions()?,
            sqs: stack.aws.sqs.clone(),
            ddb: stack.aws.ddb.clone(),
            pacing_table: stack.provisioned.refs.get("PacingTable").cloned(),
            queues,
            canary: stack.canary_results.clone(),
        })
    }
}

pub const QUEUES: [&str; 6] = [
    "ClassifyQueue",
    "ActQueue",
    "ReviewQueue",
    "ClassifyDLQ",
    "ActDLQ",
    "ReviewDLQ",
];

pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub value: String,
    pub label: String,
    pub class: &'static str,
}

pub struct Label {
    pub x: f64,
    pub text: String,
}

pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub max: String,
    pub minutes: i64,
    pub bars: Vec<Bar>,
    pub labels: Vec<Label>,
}

pub struct QueueRow {
    pub name: String,
    pub depth: u64,
    pub bad: bool,
}

pub struct PacingRow {
    pub key: String,
    pub state: String,
    pub bad: bool,
}

/// An event waiting for a person, and for how long.
pub struct WaitingRow {
    pub age: String,
    pub source: String,
    pub guess: String,
    pub why: String,
    pub id: String,
}

pub struct EventRow {
    pub received: String,
    pub source: String,
    pub category: String,
    pub confidence: String,
    pub path: String,
    pub state: String,
    pub id: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    now: String,
    throughput: Chart,
    latency: Chart,
    queues: Vec<QueueRow>,
    canary: Vec<switchyard::handlers::canary::ProbeResult>,
    pacing: Vec<PacingRow>,
    waiting: Vec<WaitingRow>,
    events: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    id: String,
    story: String,
}

/// Serve the console on a free loopback port (never on another interface).
pub async fn serve(stack: ConsoleState) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/", axum::routing::get(overview))
        .route("/events/{id}", axum::routing::get(event))
        .layer(axum::middleware::from_fn(
            switchyard_sandbox::loopback_host_only,
        ))
        .with_state(stack);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}

fn page(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn failed(e: anyhow::Error) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the local stack did not answer: {e}"),
    )
        .into_response()
}

async fn event(State(stack): State<ConsoleState>, Path(id): Path<String>) -> Response {
    match ops::find(&stack.decisions, &id).await {
        Ok(Some(r)) => page(EventPage {
            id: r.event_id.clone(),
            story: ops::render_story(&r),
        }),
        Ok(None) => (StatusCode::NOT_FOUND, "no such event").into_response(),
        Err(e) => failed(e),
    }
}

async fn overview(State(stack): State<ConsoleState>) -> Response {
    match gather(&stack).await {
        Ok(o) => page(o),
        Err(e) => failed(e),
    }
}

async fn gather(stack: &ConsoleState) -> Result<Overview> {
    let now = Utc::now();
    let decisions = &stack.decisions;
    let mut records = Vec::new();
    for day in [now - chrono::Duration::days(1), now] {
        records.extend(
            decisions
                .list_day(&day.format("%Y-%m-%d").to_string(), None)
                .await?,
        );
    }
    records.sort_by(|a, b| b.received_at.cmp(&a.received_at));
    let mut queues = Vec::new();
    for (name, url) in &stack.queues {
        let depth = crate::stack::queue_depth(&stack.sqs, url).await?;
        queues.push(QueueRow {
            name: name.clone(),
            depth,
            bad: name.ends_with("DLQ") && depth > 0,
        });
    }
    Ok(Overview {
        now: now.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        throughput: throughput(&records, now, 60),
        latency: latency(&records),
        queues,
        canary: stack.canary.lock().map(|c| c.clone()).unwrap_or_default(),
        pacing: pacing(stack, now).await?,
        waiting: waiting(&records, now),
        events: records.iter().take(50).map(event_row).collect(),
    })
}

/// Events waiting for a person's decision, the longest-waiting first.
fn waiting(records: &[DecisionRecord], now: DateTime<Utc>) -> Vec<WaitingRow> {
    let mut rows: Vec<(i64, WaitingRow)> = records
        .iter()
        .filter(|r| r.status == switchyard::decisions::state::IN_REVIEW)
        .map(|r| {
            let since = r
                .decided_at
                .as_deref()
                .or(r.received_at.as_deref())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or(0, |t| (now - t.with_timezone(&Utc)).num_seconds().max(0));
            let age = match since {
                s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
                s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
                s => format!("{s}s"),
            };
            let expired = r
                .approval_expired
                .as_ref()
                .map_or("", |_| " (approval expired)");
            let row = WaitingRow {
                age,
                source: r.source.clone(),
                guess: format!("{} {:.2}", r.category, r.confidence),
                why: format!("{}{expired}", r.reason.as_deref().unwrap_or("")),
                id: r.event_id.clone(),
            };
            (since, row)
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.into_iter().map(|(_, r)| r).collect()
}

fn event_row(r: &DecisionRecord) -> EventRow {
    let received = r
        .received_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default();
    EventRow {
        received,
        source: r.source.clone(),
        category: r.category.clone(),
        confidence: if r.category.is_empty() {
            String::new()
        } else {
            format!("{:.2}", r.confidence)
        },
        path: r.path.clone(),
        state: r.status.clone(),
        id: r.event_id.clone(),
    }
}

const W: f64 = 480.0;
const H: f64 = 120.0;

/// Accepted events per minute over the last `minutes`.
fn throughput(records: &[DecisionRecord], now: DateTime<Utc>, minutes: i64) -> Chart {
    let mut counts = vec![0u64; minutes as usize];
    for r in records {
        let Some(t) = r
            .received_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        let ago = (now - t.with_timezone(&Utc)).num_minutes();
        if (0..minutes).contains(&ago) {
            counts[(minutes - 1 - ago) as usize] += 1;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let w = W / minutes as f64;
    let bars = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| {
            let h = H * *c as f64 / max as f64;
            Bar {
                x: i as f64 * w,
                y: H - h,
                w: (w - 1.0).max(1.0),
                h,
                value: c.to_string(),
                label: format!("{} min ago", minutes - 1 - i as i64),
                class: "bar",
            }
        })
        .collect();
    Chart {
        width: W as u32,
        height: H as u32,
        max: max.to_string(),
        minutes,
        bars,
        labels: Vec::new(),
    }
}

/// p50 and p95 of every recorded vendor call, per connector.
fn latency(records: &[DecisionRecord]) -> Chart {
    let mut per: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in records {
        for a in &r.attempts {
            let connector = a["action"]
                .as_str()
                .and_then(|s| s.split('.').next())
                .unwrap_or_default()
                .to_owned();
            for c in a["calls"].as_array().into_iter().flatten() {
                if let Some(ms) = c["latency_ms"].as_f64() {
                    per.entry(connector.clone()).or_default().push(ms);
                }
            }
        }
    }
    let quantiles: Vec<(String, f64, f64)> = per
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
            (k, q(0.5), q(0.95))
        })
        .collect();
    let max = quantiles
        .iter()
        .map(|(_, _, p95)| *p95)
        .fold(1.0_f64, f64::max);
    let slot = W / quantiles.len().max(1) as f64;
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    for (i, (k, p50, p95)) in quantiles.iter().enumerate() {
        let x = i as f64 * slot;
        for (j, (v, class, what)) in [(p50, "bar", "p50"), (p95, "bar95", "p95")]
            .into_iter()
            .enumerate()
        {
            let h = (H * v / max).max(1.0);
            bars.push(Bar {
                x: x + 4.0 + j as f64 * (slot / 2.0 - 4.0),
                y: H - h,
                w: slot / 2.0 - 8.0,
                h,
                value: format!("{v:.1}"),
                label: format!("{k} {what}"),
                class,
            });
        }
        labels.push(Label {
            x: x + 4.0,
            text: k.clone(),
        });
    }
    Chart {
        width: W as u32,
        height: H as u32,
        max: format!("{max:.1}"),
        minutes: 0,
        bars,
        labels,
    }
}

/// Budgets (the next free slot) and circuits (open or closed) from the pacing table.
async fn pacing(stack: &ConsoleState, now: DateTime<Utc>) -> Result<Vec<PacingRow>> {
    let Some(table) = &stack.pacing_table else {
        return Ok(Vec::new());
    };
    // The console runs on the local stack only: a scan of its small pacing table is fine.
    let out = stack.ddb.scan().table_name(table).send().await?;
    let now_us = now.timestamp_micros();
    let num =
        |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
         k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<f64>().ok())
        };
    let mut rows = Vec::new();
    for item in out.items() {
        let Some(id) = item.get("id").and_then(|v| v.as_s().ok()) else {
            continue;
        };
        let key = id.split('#').take(2).collect::<Vec<_>>().join(" ");
        if id.starts_with("budget#") {
            let wait_ms = num(item, "tat").map_or(0.0, |t| (t - now_us as f64) / 1000.0);
            rows.push(PacingRow {
                key,
                state: if wait_ms > 0.0 {
                    format!("next free slot in {wait_ms:.0} ms")
                } else {
                    "a slot is free now".into()
                },
                bad: wait_ms > 60_000.0,
            });
        } else if id.starts_with("breaker#") {
            let open_ms = num(item, "open_until").map_or(0.0, |t| (t - now_us as f64) / 1000.0);
            let failures = num(item, "failures").unwrap_or(0.0);
            rows.push(PacingRow {
                key,
                state: if open_ms > 0.0 {
                    format!("circuit OPEN for {open_ms:.0} ms more")
                } else {
                    format!("circuit closed ({failures} consecutive failures)")
                },
                bad: open_ms > 0.0,
            });
        }
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

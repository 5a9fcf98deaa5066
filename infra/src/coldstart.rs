//! `switchyard bench cold-start`: each real function binary started under a Lambda Runtime API
//! emulator (the documented 2018-06-01 API: `invocation/next`, `…/response`, `…/error`,
//! `init/error`), against the local stack's emulator and sandbox. For each function: **init**
//! (process start → its first `invocation/next`, i.e. ready for an event), the **first**
//! invocation (event handed over → its response) and **warm** ones, and the binary's size.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use tokio::sync::{mpsc, Notify};

use crate::stack::LocalStack;

/// One function's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ColdStart {
    pub function: String,
    pub binary_bytes: u64,
    pub init_ms: f64,
    pub first_ms: f64,
    pub warm_median_ms: f64,
    pub warm: usize,
    /// Process starts measured (each figure is their median).
    pub starts: usize,
    /// Error responses (`invocation/{id}/error`, `init/error`), which make the figures suspect.
    pub errors: Vec<String>,
}

/// What the runtime API saw.
enum Seen {
    Next,
    Response { ok: bool, body: String },
    InitError(String),
}

struct Runtime {
    queue: Mutex<VecDeque<(String, String)>>,
    arrived: Notify,
    seen: mpsc::UnboundedSender<(Instant, Seen)>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> Response {
    let _ = rt.seen.send((Instant::now(), Seen::Next));
    loop {
        let waiting = rt.arrived.notified();
        if let Some((id, body)) = rt.queue.lock().expect("runtime queue").pop_front() {
            let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
            return (
                StatusCode::OK,
                [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
                    ),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000".to_owned(),
                    ),
                    ("content-type", "application/json".to_owned()),
                ],
                body,
            )
                .into_response();
        }
        waiting.await;
    }
}

async fn response(rt: State<Arc<Runtime>>, _id: UrlPath<String>, body: String) -> StatusCode {
    answered(&rt, true, body)
}

async fn error(rt: State<Arc<Runtime>>, _id: UrlPath<String>, body: String) -> StatusCode {
    answered(&rt, false, body)
}

/// An invocation's answer, a response or an error, as the runtime API saw it.
fn answered(rt: &Runtime, ok: bool, body: String) -> StatusCode {
    let _ = rt.seen.send((Instant::now(), Seen::Response { ok, body }));
    StatusCode::ACCEPTED
}

async fn init_error(State(rt): State<Arc<Runtime>>, body: String) -> StatusCode {
    let _ = rt.seen.send((Instant::now(), Seen::InitError(body)));
    StatusCode::ACCEPTED
}

/// The next thing the runtime API saw, within a minute.
async fn next_seen(seen: &mut mpsc::UnboundedReceiver<(Instant, Seen)>) -> Result<(Instant, Seen)> {
    tokio::time::timeout(Duration::from_secs(60), seen.recv())
        .await
        .context("the function said nothing for 60 s")?
        .context("the runtime API stopped")
}

/// The function binaries beside the running one (`cargo build --release --bins` builds them).
pub fn binary(function: &str) -> Result<PathBuf> {
    let dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .context("the running binary has no folder")?;
    let path = dir.join(function);
    if !path.exists() {
        bail!(
            "{} is not built: run `cargo build --release --bins` first (infra/bench-coldstart.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// Run `function`'s binary under the runtime API: init, then `events` one at a time.
pub async fn measure(stack: &LocalStack, function: &str, events: Vec<String>) -> Result<ColdStart> {
    let exe = binary(function)?;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let rt = Arc::new(Runtime {
        queue: Mutex::default(),
        arrived: Notify::new(),
        seen: tx,
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let f = stack.template.function(function)?;
    let mut env = stack.provisioned.function_env(&stack.template, f)?;
    let key = stack
        .provisioned
        .keys
        .get(function)
        .with_context(|| format!("no IAM user for {function}"))?;
    env.extend([
        ("AWS_LAMBDA_RUNTIME_API".to_owned(), addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), function.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_VERSION".to_owned(),
            "$LATEST".to_owned(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
            f.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".to_owned(),
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), "bench".to_owned()),
        (
            "AWS_ENDPOINT_URL".to_owned(),
            stack.emulator.endpoint.clone(),
        ),
        // The function's own key: it runs with its role's grants, as on AWS.
        ("AWS_ACCESS_KEY_ID".to_owned(), key.id.clone()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), key.secret.clone()),
        ("AWS_REGION".to_owned(), crate::emulator::REGION.to_owned()),
        ("RUST_LOG".to_owned(), "error".to_owned()),
    ]);
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&exe)
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut errors = Vec::new();
    // Init: until the process first asks for an event.
    let init = match next_seen(&mut seen).await? {
        (at, Seen::Next) => at - started,
        (_, Seen::InitError(body)) => bail!("{function} failed to start: {body}"),
        (_, Seen::Response { .. }) => bail!("{function} answered before asking for an event"),
    };
    let mut durations = Vec::new();
    for (i, body) in events.into_iter().enumerate() {
        let handed = Instant::now();
        rt.queue
            .lock()
            .expect("runtime queue")
            .push_back((format!("bench-{function}-{i}"), body));
        rt.arrived.notify_waiters();
        let answered = loop {
            match next_seen(&mut seen).await? {
                (at, Seen::Response { ok, body }) => {
                    if !ok {
                        errors.push(switchyard::connectors::excerpt(&body));
                    }
                    break at;
                }
                (_, Seen::InitError(body)) => bail!("{function}: init error {body}"),
                (_, Seen::Next) => continue,
            }
        };
        durations.push(answered - handed);
    }
    let _ = child.kill().await;
    server.abort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut warm: Vec<f64> = durations.iter().skip(1).map(|d| ms(*d)).collect();
    warm.sort_by(f64::total_cmp);
    Ok(ColdStart {
        function: function.to_owned(),
        binary_bytes: std::fs::metadata(&exe)?.len(),
        init_ms: ms(init),
        first_ms: durations.first().map_or(f64::NAN, |d| ms(*d)),
        warm_median_ms: warm.get(warm.len() / 2).copied().unwrap_or(f64::NAN),
        warm: warm.len(),
        starts: 1,
        errors,
    })
}

/// The functions measured, and the events each gets (`n` of them: the first cold, the rest warm).
fn events(stack: &LocalStack, function: &str, n: usize) -> Result<Vec<String>> {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    let sqs = |bodies: Vec<String>| -> Result<Vec<String>> {
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("bench-{i}"));
                m.receipt_handle = Some(format!("bench-{i}"));
                m.body = Some(body);
                m.event_source = Some("aws:sqs".into());
                m.aws_region = Some(crate::emulator::REGION.into());
                m.attributes
                    .insert("ApproximateReceiveCount".into(), "1".into());
                let mut e = SqsEvent::default();
                e.records = vec![m];
                Ok(serde_json::to_string(&e)?)
            })
            .collect()
    };
    let now = chrono::Utc::now();
    let event = |i: usize| {
        serde_json::json!({
            "id": format!("bench-{}-{i}", uuid::Uuid::new_v4().simple()), "source": "zendesk",
            "event_type": "zen:event-type:ticket.created", "delivery_id": format!("bench-{i}"),
            "object_id": "35436", "subject": "Refund for a double charge",
            "text": "My card was charged twice for the March invoice; please refund one payment.",
            "requester": null, "occurred_at": null, "received_at": now.to_rfc3339(), "raw": {}
        })
    };
    Ok(match function {
        "intake" => (0..n)
            .map(|i| {
                let hook = crate::fixtures::zendesk_ticket_created(
                    &stack.signing.zendesk,
                    &format!("bench-{}-{i}", uuid::Uuid::new_v4().simple()),
                    35436,
                    "Refund for a double charge",
                    "My card was charged twice for the March invoice; please refund one payment.",
                    now,
                );
                Ok(serde_json::to_string(&hook.function_url_event())?)
            })
            .collect::<Result<_>>()?,
        "classify" => sqs((0..n).map(|i| event(i).to_string()).collect())?,
        "act" => sqs((0..n)
            .map(|i| {
                serde_json::json!({
                    "event": event(i), "category": "billing", "confidence": 0.9,
                    "actions": [{"connector": "zendesk", "action": "update_ticket",
                                 "params": {"ticket_id": "35436", "comment": "switchyard: routed to Billing.", "public": "false"}}]
                })
                .to_string()
            })
            .collect())?,
        "canary" => vec![serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}).to_string(); n],
        "rotate" => vec![serde_json::json!({"refresh_within_minutes": 45}).to_string(); n],
        other => bail!("no bench event for {other}"),
    })
}

/// The functions measured (sync needs a customers file in its bucket; it is left out).
pub const FUNCTIONS: [&str; 5] = ["intake", "classify", "act", "canary", "rotate"];

/// Start the local stack (classify and act left to the binaries) and measure every function:
/// one cold invocation, then `warm` more.
pub async fn run(cold: usize, warm: usize) -> Result<Vec<ColdStart>> {
    for f in FUNCTIONS {
        binary(f)?;
    }
    // A budget act never waits on, so its invocations measure the function, not the pacing.
    let budget = [("RateLimits".to_owned(), "zendesk=100000/minute".to_owned())];
    let stack = LocalStack::start_hosting(&budget, &["classify", "act"]).await?;
    stack
        .sandbox
        .seed_zendesk_ticket(35436, "Refund for a double charge");
    let mut out = Vec::new();
    for f in FUNCTIONS {
        // Several processes per function: one start is one noisy sample.
        let mut starts = Vec::new();
        for _ in 0..cold.max(1) {
            let events = events(&stack, f, warm + 1)?;
            starts.push(
                measure(&stack, f, events)
                    .await
                    .with_context(|| format!("measuring {f}"))?,
            );
        }
        out.push(median_of(starts));
    }
    stack.stop();
    Ok(out)
}

/// One row from several starts: the median init and first invocation, the warm medians' median.
fn median_of(mut starts: Vec<ColdStart>) -> ColdStart {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let init = median(starts.iter().map(|s| s.init_ms).collect());
    let first = median(starts.iter().map(|s| s.first_ms).collect());
    let warm = median(starts.iter().map(|s| s.warm_median_ms).collect());
    let errors = starts.iter().flat_map(|s| s.errors.clone()).collect();
    let cold = starts.len();
    let mut row = starts.swap_remove(0);
    row.init_ms = init;
    row.first_ms = first;
    row.warm_median_ms = warm;
    row.errors = errors;
    row.starts = cold;
    row
}

pub fn render(runs: &[ColdStart]) -> String {
    let mut o =
        String::from("function   binary     init      first invocation   warm      (medians)\n");
    for r in runs {
        o.push_str(&format!(
            "{:<10} {:>5.1} MB  {:>6.1} ms  {:>9.1} ms       {:>6.2} ms  ({} starts, {} warm each){}\n",
            r.function,
            r.binary_bytes as f64 / 1e6,
            r.init_ms,
            r.first_ms,
            r.warm_median_ms,
            r.starts,
            r.warm,
            if r.errors.is_empty() {
                String::new()
            } else {
                format!("  errors: {}", r.errors.join("; "))
            }
        ));
    }
    o
}

//! The local runner plays the Lambda service around the unchanged handlers: a function URL
//! (HTTP → `LambdaFunctionUrlRequest`), SQS event source mappings (batch size, concurrency,
//! partial batch responses; visibility timeout and redrive to the DLQ are the queue's own), and
//! the EventBridge schedule.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::{engine::general_purpose::STANDARD, Engine};
use lambda_runtime::{Context, LambdaEvent};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub type SqsHandler = Arc<
    dyn Fn(LambdaEvent<SqsEvent>) -> BoxFut<Result<SqsBatchResponse, lambda_runtime::Error>>
        + Send
        + Sync,
>;
pub type UrlHandler = Arc<
    dyn Fn(
            LambdaEvent<LambdaFunctionUrlRequest>,
        ) -> BoxFut<Result<LambdaFunctionUrlResponse, lambda_runtime::Error>>
        + Send
        + Sync,
>;

/// Webhook bodies above this are refused with 413, as a function URL refuses > 6 MB payloads.
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// What the runner saw, for the demo's summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub intake_status: Mutex<BTreeMap<u16, u64>>,
    pub batches: Mutex<BTreeMap<String, u64>>,
    pub failed_records: Mutex<BTreeMap<String, u64>>,
    /// Per function: invocations and their durations, each rounded up to the millisecond as
    /// Lambda bills them (`switchyard bench cost` prices them).
    pub billed: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Every EMF line the functions wrote, in order (what CloudWatch would make metrics of).
    pub metrics: Mutex<Vec<String>>,
    /// The file the EMF lines are appended to: locally it plays CloudWatch (moto cannot take
    /// CloudWatch's CBOR protocol), and `switchyard stats` reads it (`SWITCHYARD_METRICS_FILE`).
    pub metrics_file: std::sync::OnceLock<std::path::PathBuf>,
}

impl Stats {
    fn bill(&self, function: &str, took: Duration) {
        let mut billed = self.billed.lock().expect("stats");
        let (n, ms) = billed.entry(function.to_owned()).or_default();
        *n += 1;
        *ms += took.as_micros().div_ceil(1000) as u64;
    }

    /// Run one invocation and keep the metrics it recorded, as Lambda's log stream would.
    pub async fn flushed<F: Future>(&self, invocation: F) -> F::Output {
        let (out, _) = self.flushed_lines(invocation).await;
        out
    }

    /// [`flushed`](Self::flushed), and the invocation's lines (its EMF and an `END` line, as
    /// Lambda's platform writes one) put in the function's log group with the function's key.
    pub async fn logged<F: Future>(&self, sink: Option<&LogSink>, invocation: F) -> F::Output {
        let (out, mut lines) = self.flushed_lines(invocation).await;
        if let Some(sink) = sink {
            lines.push(format!("END RequestId: {}", uuid::Uuid::new_v4()));
            sink.put(lines).await;
        }
        out
    }

    async fn flushed_lines<F: Future>(&self, invocation: F) -> (F::Output, Vec<String>) {
        let out = invocation.await;
        let lines = switchyard::metrics::flush();
        for line in &lines {
            tracing::debug!(target: "emf", "{line}");
        }
        if let Some(path) = self.metrics_file.get().filter(|_| !lines.is_empty()) {
            use std::io::Write as _;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            if let Ok(mut f) = file {
                let _ = f.write_all(format!("{}\n", lines.join("\n")).as_bytes());
            }
        }
        self.metrics.lock().expect("stats").extend(lines.clone());
        (out, lines)
    }

    pub fn intake_count(&self, status: u16) -> u64 {
        self.intake_status
            .lock()
            .expect("stats")
            .get(&status)
            .copied()
            .unwrap_or(0)
    }
}

/// A function's log group, written as Lambda writes it: with the function's own role (its
/// `*LogsPolicy`), one stream per process. Locally this is what `switchyard smoke` reads.
#[derive(Clone, Debug)]
pub struct LogSink {
    logs: aws_sdk_cloudwatchlogs::Client,
    group: String,
    stream: String,
}

impl LogSink {
    /// A new stream in `group`, with the function's SDK configuration.
    pub async fn open(config: &aws_config::SdkConfig, group: &str) -> anyhow::Result<Self> {
        let logs = aws_sdk_cloudwatchlogs::Client::new(config);
        let stream = format!(
            "{}/[$LATEST]{}",
            chrono::Utc::now().format("%Y/%m/%d"),
            uuid::Uuid::new_v4().simple()
        );
        logs.create_log_stream()
            .log_group_name(group)
            .log_stream_name(&stream)
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata as _;
                anyhow::anyhow!(
                    "creating a stream in {group}: {} (a refusal means the function's logs \
                     permission names another group)",
                    e.code().unwrap_or("no answer")
                )
            })?;
        Ok(Self {
            logs,
            group: group.to_owned(),
            stream,
        })
    }

    /// Put `lines`; a refusal is logged, as Lambda drops what it cannot write.
    pub async fn put(&self, lines: Vec<String>) {
        let now = chrono::Utc::now().timestamp_millis();
        let events = lines.into_iter().filter_map(|message| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now)
                .message(message)
                .build()
                .ok()
        });
        let put = self
            .logs
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .set_log_events(Some(events.collect()))
            .send()
            .await;
        if let Err(e) = put {
            warn!(group = %self.group, error = %switchyard::aws::error_message(&e), "log lines not written");
        }
    }
}

/// A Lambda context with the function's real deadline.
pub fn context(function: &str, timeout: Duration) -> Context {
    let mut ctx = Context::default();
    ctx.request_id = uuid::Uuid::new_v4().to_string();
    ctx.deadline = (chrono::Utc::now() + timeout).timestamp_millis() as u64;
    ctx.invoked_function_arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function}");
    ctx
}

/// The function URL: every HTTP request becomes one intake invocation.
pub async fn serve_function_url(
    handler: UrlHandler,
    timeout: Duration,
    stats: Arc<Stats>,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let handler = handler.clone();
        let stats = stats.clone();
        async move {
            let started = std::time::Instant::now();
            let response = invoke_url(handler, req, timeout).await;
            stats.bill("intake", started.elapsed());
            *stats
                .intake_status
                .lock()
                .expect("stats")
                .entry(response.status().as_u16())
                .or_default() += 1;
            response
        }
    });
    let task = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}

async fn invoke_url(handler: UrlHandler, req: Request<Body>, timeout: Duration) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body over 6 MB").into_response();
    };
    let mut event = LambdaFunctionUrlRequest::default();
    event.version = Some("2.0".into());
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = Some(parts.uri.query().unwrap_or_default().to_owned());
    event.headers = parts.headers;
    event.request_context.http.method = Some(parts.method.to_string());
    event.request_context.http.path = Some(parts.uri.path().to_owned());
    // As the function URL fills them: the caller's address, and the domain it called.
    event.request_context.http.source_ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    event.request_context.domain_name = event
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    event.request_context.time_epoch = chrono::Utc::now().timestamp_millis();
    // Like the real service: text bodies as they are, anything else base64-encoded.
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => event.body = Some(text),
        Err(_) => {
            event.body = Some(STANDARD.encode(&bytes));
            event.is_base64_encoded = true;
        }
    }
    match handler(LambdaEvent::new(event, context("intake", timeout))).await {
        Ok(r) => {
            let mut resp = Response::new(Body::from(r.body.unwrap_or_default()));
            *resp.status_mut() =
                StatusCode::from_u16(r.status_code as u16).unwrap_or(StatusCode::BAD_GATEWAY);
            *resp.headers_mut() = r.headers;
            resp
        }
        // A function error surfaces as 502 from a real function URL.
        Err(e) => (StatusCode::BAD_GATEWAY, format!("function error: {e}")).into_response(),
    }
}

/// One SQS event source mapping.
#[derive(Clone)]
pub struct Mapping {
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub concurrency: u32,
    pub timeout: Duration,
    pub handler: SqsHandler,
}

/// Start `concurrency` pollers for a mapping.
pub fn start_mapping(
    sqs: aws_sdk_sqs::Client,
    m: Mapping,
    stats: Arc<Stats>,
) -> Vec<JoinHandle<()>> {
    (0..m.concurrency.max(1))
        .map(|_| {
            let (sqs, m, stats) = (sqs.clone(), m.clone(), stats.clone());
            tokio::spawn(async move {
                loop {
                    if let Err(e) = poll_once(&sqs, &m, &stats).await {
                        warn!(function = %m.function, error = %e, "poller error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            })
        })
        .collect()
}

async fn poll_once(sqs: &aws_sdk_sqs::Client, m: &Mapping, stats: &Stats) -> Result<()> {
    let out = sqs
        .receive_message()
        .queue_url(&m.queue_url)
        .max_number_of_messages(m.batch_size.clamp(1, 10))
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await?;
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(());
    }
    let mut event = SqsEvent::default();
    let mut receipts = BTreeMap::new();
    for msg in messages {
        let mut record = SqsMessage::default();
        record.message_id = msg.message_id.clone();
        record.receipt_handle = msg.receipt_handle.clone();
        record.body = msg.body.clone();
        record.md5_of_body = msg.md5_of_body.clone();
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(m.queue_arn.clone());
        record.aws_region = Some(crate::emulator::REGION.into());
        for (k, v) in msg.attributes.unwrap_or_default() {
            record.attributes.insert(k.as_str().to_owned(), v);
        }
        for (k, v) in msg.message_attributes.unwrap_or_default() {
            let mut a = SqsMessageAttribute::default();
            a.string_value = v.string_value;
            a.data_type = Some(v.data_type);
            record.message_attributes.insert(k, a);
        }
        if let (Some(id), Some(rh)) = (msg.message_id, msg.receipt_handle) {
            receipts.insert(id, rh);
        }
        event.records.push(record);
    }
    *stats
        .batches
        .lock()
        .expect("stats")
        .entry(m.function.clone())
        .or_default() += 1;
    let started = std::time::Instant::now();
    let answer = (m.handler)(LambdaEvent::new(event, context(&m.function, m.timeout))).await;
    stats.bill(&m.function, started.elapsed());
    let failed: Vec<String> = match answer {
        Ok(resp) => {
            let ids: Vec<String> = resp
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect();
            // Lambda fails the whole batch when a reported id is empty or not in the batch.
            if ids.iter().any(|id| !receipts.contains_key(id)) {
                receipts.keys().cloned().collect()
            } else {
                ids
            }
        }
        Err(e) => {
            warn!(function = %m.function, error = %e, "invocation failed; the whole batch returns to the queue");
            receipts.keys().cloned().collect()
        }
    };
    if !failed.is_empty() {
        *stats
            .failed_records
            .lock()
            .expect("stats")
            .entry(m.function.clone())
            .or_default() += failed.len() as u64;
    }
    // Successful records are deleted; failed ones reappear after the visibility timeout and, past
    // maxReceiveCount, the queue's redrive policy moves them to the DLQ.
    let entries: Vec<_> = receipts
        .iter()
        .filter(|(id, _)| !failed.contains(id))
        .enumerate()
        .map(|(i, (_, rh))| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(rh)
                .build()
        })
        .collect::<Result<_, _>>()?;
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(&m.queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    Ok(())
}

/// `rate(N unit)` as a duration; cron expressions are not played locally.
pub fn parse_rate(expression: &str) -> Result<Duration> {
    let inner = expression
        .trim()
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| {
            anyhow::anyhow!("only rate(...) schedules run locally, not {expression:?}")
        })?;
    let (n, unit) = inner
        .trim()
        .split_once(' ')
        .ok_or_else(|| anyhow::anyhow!("bad rate {expression:?}"))?;
    let n: u64 = n.parse()?;
    let secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        other => bail!("unknown rate unit {other:?}"),
    };
    Ok(Duration::from_secs(n * secs))
}

/// Fire `run` now and then at every tick, like an EventBridge schedule.
pub fn start_schedule<F>(name: &str, every: Duration, run: F) -> JoinHandle<()>
where
    F: Fn() -> BoxFut<()> + Send + Sync + 'static,
{
    start_schedule_after(name, Duration::ZERO, every, run)
}

/// [`start_schedule`] whose first invocation comes `first` from now.
pub fn start_schedule_after<F>(
    name: &str,
    first: Duration,
    every: Duration,
    run: F,
) -> JoinHandle<()>
where
    F: Fn() -> BoxFut<()> + Send + Sync + 'static,
{
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
        loop {
            tick.tick().await;
            info!(schedule = %name, "scheduled invocation");
            run().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            parse_rate("rate(15 minutes)").unwrap(),
            Duration::from_secs(900)
        );
        assert_eq!(
            parse_rate("rate(1 hour)").unwrap(),
            Duration::from_secs(3600)
        );
        assert!(parse_rate("cron(0 12 * * ? *)").is_err());
    }
}

//! One record per external call: every vendor API, token-endpoint and LLM request goes through
//! [`send`], which times it and logs it **once** — when its [`Call`] is finished with the triage
//! outcome, or dropped — as a structured `external call` line: connector, operation, method,
//! path template, status, latency, attempt, outcome, the rate-limit headers the vendor sent, and
//! the event and correlation ids of the work it was made for. The same figures feed the
//! `VendorLatency`, `VendorErrors` and `VendorRateLimited` metrics.
//!
//! The path is logged as a template: segments that could be ids, keys, e-mail addresses or
//! tokens (anything with a digit, `@`, `%`, `=` or over 40 characters) become `{id}`, and the
//! query string and host are never logged (Teams and webhook URLs carry their secret there).

use std::cell::{Cell, RefCell};
use std::time::Instant;

use reqwest::header::HeaderMap;
use tracing::info;

/// What a call is made for; act sets it around each action, other callers around their work.
#[derive(Debug, Default)]
pub(crate) struct CallContext {
    /// The action (`create_ticket`), or `probe`, `token`, `chat.completions`, `bulk_upsert`…
    pub operation: String,
    pub event_id: Option<String>,
    pub correlation_id: Option<String>,
    attempt: Cell<u32>,
    /// What each call made inside the context did, for the decision record (only when
    /// [`within_collecting`] asked for it).
    made: Option<RefCell<Vec<serde_json::Value>>>,
}

impl CallContext {
    pub fn new(operation: impl Into<String>) -> Self {
        CallContext {
            operation: operation.into(),
            attempt: Cell::new(1),
            ..Default::default()
        }
    }

    pub(crate) fn for_event(mut self, event_id: &str, correlation_id: &str) -> Self {
        self.event_id = Some(event_id.to_owned());
        self.correlation_id = Some(correlation_id.to_owned());
        self
    }
}

tokio::task_local! {
    static CONTEXT: CallContext;
}

/// Run `work` with every external call inside it attributed to `context`.
pub async fn within<F: std::future::Future>(context: CallContext, work: F) -> F::Output {
    CONTEXT.scope(context, work).await
}

/// Like [`within`], and also return a summary of each call made (method, path template,
/// status, latency, attempt, outcome), oldest first.
pub(crate) async fn within_collecting<F: std::future::Future>(
    context: CallContext,
    work: F,
) -> (F::Output, Vec<serde_json::Value>) {
    let context = CallContext {
        made: Some(RefCell::default()),
        ..context
    };
    CONTEXT
        .scope(context, async {
            let out = work.await;
            let made = CONTEXT.with(|c| c.made.as_ref().map(RefCell::take));
            (out, made.unwrap_or_default())
        })
        .await
}

/// The next calls are a retry: their records say attempt 2, 3, …
pub(crate) fn next_attempt() {
    let _ = CONTEXT.try_with(|c| c.attempt.set(c.attempt.get() + 1));
}

/// A received answer, body read.
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// One external call's record, written when it is finished (or dropped).
#[must_use = "finish the call with its outcome so its record says how it ended"]
#[derive(Debug)]
pub struct Call {
    connector: String,
    method: String,
    path: String,
    started: Instant,
    status: Option<u16>,
    rate: Vec<(String, String)>,
    outcome: &'static str,
}

impl Call {
    /// Whether the request can have changed something at the vendor (not GET, HEAD or OPTIONS).
    pub fn writes(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "")
    }

    /// Record how the answer was triaged (`ok`, `rate_limited`, `auth`, `transient`, …).
    pub fn finish(mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let latency = (latency_ms * 10.0).round() / 10.0;
        let (operation, attempt, event_id, correlation_id) = CONTEXT
            .try_with(|c| {
                if let Some(made) = &c.made {
                    made.borrow_mut().push(serde_json::json!({
                        "method": self.method, "path": self.path, "status": self.status,
                        "latency_ms": latency, "attempt": c.attempt.get(), "outcome": self.outcome,
                    }));
                }
                (
                    c.operation.clone(),
                    c.attempt.get(),
                    c.event_id.clone(),
                    c.correlation_id.clone(),
                )
            })
            .unwrap_or_else(|_| ("call".into(), 1, None, None));
        let rate = self
            .rate
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        info!(
            connector = %self.connector,
            operation = %operation,
            method = %self.method,
            path = %self.path,
            status = self.status.unwrap_or(0),
            latency_ms = latency,
            attempt,
            outcome = self.outcome,
            rate_limit = %rate,
            event_id = event_id.as_deref().unwrap_or(""),
            correlation_id = correlation_id.as_deref().unwrap_or(""),
            "external call"
        );
        crate::metrics::latency_ms(
            crate::metrics::VENDOR_LATENCY,
            &[
                ("connector", self.connector.clone()),
                ("operation", operation),
            ],
            latency_ms,
        );
        match self.outcome {
            "ok" => {}
            "rate_limited" => crate::metrics::count(
                crate::metrics::VENDOR_RATE_LIMITED,
                "connector",
                &self.connector,
            ),
            _ => crate::metrics::count(crate::metrics::VENDOR_ERRORS, "connector", &self.connector),
        }
    }
}

/// Send `req` and read its whole answer. The returned [`Call`] logs the exchange once; a
/// transport failure (refused, reset, timeout) is already finished as `transport` / `timeout`.
pub async fn send(
    connector: &str,
    req: reqwest::RequestBuilder,
) -> (Call, Result<Answer, reqwest::Error>) {
    let (mut call, sent) = start(connector, req, None).await;
    let answer = match sent {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            resp.text().await.map(|body| Answer {
                status,
                headers,
                body,
            })
        }
        Err(e) => Err(e),
    };
    settle(&mut call, answer.as_ref().map(|a| (a.status, &a.headers)));
    (call, answer)
}

/// A received answer whose body is bytes, read up to a cap.
#[derive(Debug)]
pub(crate) struct BytesAnswer {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    /// The body went on past the cap (what was read is kept, the rest was not read).
    pub over: bool,
}

/// Send `req` and read at most `max` bytes of its answer (a file download). `path` is what the
/// record shows: a file's URL names the file and can carry a token.
pub(crate) async fn send_bytes(
    connector: &str,
    req: reqwest::RequestBuilder,
    path: &str,
    max: usize,
) -> (Call, Result<BytesAnswer, reqwest::Error>) {
    let (mut call, sent) = start(connector, req, Some(path)).await;
    let answer = match sent {
        Ok(mut resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let mut bytes = Vec::new();
            let mut over = false;
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) if bytes.len() + chunk.len() > max => {
                        over = true;
                        break;
                    }
                    Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => {
                        settle(&mut call, Err(&e));
                        return (call, Err(e));
                    }
                }
            }
            Ok(BytesAnswer {
                status,
                headers,
                bytes,
                over,
            })
        }
        Err(e) => Err(e),
    };
    settle(&mut call, answer.as_ref().map(|a| (a.status, &a.headers)));
    (call, answer)
}

/// Start a call's record and send the request; the answer's head is all that has been read.
async fn start(
    connector: &str,
    req: reqwest::RequestBuilder,
    path: Option<&str>,
) -> (Call, Result<reqwest::Response, reqwest::Error>) {
    let (client, request) = req.build_split();
    let mut call = Call {
        connector: connector.to_owned(),
        method: String::new(),
        path: String::new(),
        started: Instant::now(),
        status: None,
        rate: Vec::new(),
        outcome: "unread",
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            call.outcome = "invalid_request";
            return (call, Err(e));
        }
    };
    call.method = request.method().to_string();
    call.path = path.map_or_else(|| path_template(request.url().path()), str::to_owned);
    let sent = client.execute(request).await;
    (call, sent)
}

/// What the answer (or its failure) says in the record until the caller finishes it.
fn settle(call: &mut Call, answer: Result<(reqwest::StatusCode, &HeaderMap), &reqwest::Error>) {
    match answer {
        Ok((status, headers)) => {
            call.status = Some(status.as_u16());
            call.rate = rate_headers(headers);
            // Finished by the caller with the triage outcome; this is what a drop says.
            call.outcome = if status.is_success() { "ok" } else { "error" };
        }
        Err(e) => {
            call.outcome = if e.is_timeout() {
                "timeout"
            } else {
                "transport"
            }
        }
    }
}

/// The rate-limit headers an answer carried (names lower-case), for the record.
fn rate_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n.contains("ratelimit")
                || n.contains("rate-limit")
                || n == "retry-after"
                || n == "retry-after-ms"
                || n == "sforce-limit-info"
        })
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// `/api/v2/tickets/123.json` → `/api/v2/tickets/{id}`: what may identify a person, an object
/// or a secret is replaced; API words and versions stay.
pub(crate) fn path_template(path: &str) -> String {
    let mut previous = "";
    let segments: Vec<&str> = path
        .split('/')
        .map(|seg| {
            // Jira's `/rest/api/3/…`: a short number right after `api` is the API version.
            let api_version = std::mem::replace(&mut previous, seg) == "api"
                && seg.len() <= 2
                && seg.chars().all(|c| c.is_ascii_digit());
            let version = seg.len() <= 6
                && seg.starts_with('v')
                && seg[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
                && seg.len() > 1;
            let word = !seg.is_empty()
                && seg.len() <= 40
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || matches!(c, '.' | '_' | '-'));
            if seg.is_empty() || version || word || api_version {
                seg
            } else {
                "{id}"
            }
        })
        .collect();
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_api_words_and_versions_and_hide_ids_keys_and_addresses() {
        assert_eq!(
            path_template("/api/v2/tickets/123.json"),
            "/api/v2/tickets/{id}"
        );
        assert_eq!(
            path_template("/api/v2/users/me.json"),
            "/api/v2/users/me.json"
        );
        assert_eq!(
            path_template("/services/data/v62.0/sobjects/Case/Switchyard_Key__c/sy-4f2a"),
            "/services/data/v62.0/sobjects/Case/Switchyard_Key__c/{id}"
        );
        assert_eq!(
            path_template("/rest/api/3/issue/OPS-12/comment"),
            "/rest/api/3/issue/{id}/comment"
        );
        assert_eq!(
            path_template("/crm/v3/objects/contacts/ana@example.com"),
            "/crm/v3/objects/contacts/{id}"
        );
        assert_eq!(
            path_template("/workflows/8f1c2e/triggers/manual/paths/invoke"),
            "/workflows/{id}/triggers/manual/paths/invoke"
        );
        assert_eq!(
            path_template("/api/chat.postMessage"),
            "/api/chat.postMessage"
        );
        assert_eq!(
            path_template(&format!("/hook/{}", "a".repeat(41))),
            "/hook/{id}"
        );
    }

    #[test]
    fn only_rate_limit_headers_are_kept() {
        let mut h = HeaderMap::new();
        h.insert("x-rate-limit-remaining", "4".parse().unwrap());
        h.insert("retry-after", "2".parse().unwrap());
        h.insert("set-cookie", "session=secret".parse().unwrap());
        h.insert("ratelimit-reset", "30".parse().unwrap());
        let mut kept = rate_headers(&h);
        kept.sort();
        assert_eq!(
            kept,
            [
                ("ratelimit-reset".to_owned(), "30".to_owned()),
                ("retry-after".to_owned(), "2".to_owned()),
                ("x-rate-limit-remaining".to_owned(), "4".to_owned()),
            ]
        );
    }
}

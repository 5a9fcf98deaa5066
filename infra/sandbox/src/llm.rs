//! A stand-in LLM speaking the OpenAI chat-completions protocol: bearer API key
//! (`invalid_api_key` 401 otherwise), `{"choices": [{"message": {"content", "refusal"},
//! "finish_reason"}], "usage": …}`, and OpenAI's error bodies and rate-limit headers.
//!
//! It "classifies" by word overlap between the user message and its own labelled examples
//! ([`EXAMPLES`], written for the stand-in), answering only labels the request's JSON schema
//! offers. It never reads switchyard's system prompt, so a prompt and a stand-in written by the
//! same hand cannot agree by construction; it is deterministic, so tests know what to expect.
//! [`LlmMode`] switches it into each failure a real endpoint shows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::Shared;

/// How the stand-in answers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum LlmMode {
    /// Well-formed JSON-schema answers.
    #[default]
    Good,
    /// Prose instead of the JSON the schema asks for.
    Malformed,
    /// This label and confidence, whatever the message (a label the request did not offer tests
    /// strict parsing; an offered one, disagreement with the embedded model).
    Answer(&'static str, f64),
    /// `message.refusal` set, no content.
    Refusal,
    /// `finish_reason: "length"` with cut-off JSON.
    Truncated,
    /// Answers only after this many milliseconds.
    Slow(u64),
    /// 429 `rate_limit_exceeded` with `retry-after` of this many seconds.
    RateLimited(u64),
    /// 503 from the gateway (an HTML page).
    Down,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1/chat/completions", post(completions))
}

fn openai_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, Json(body)).into_response()
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if key != Some(shared.credentials.llm_api_key.as_str()) {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        );
    }
    let mode = {
        let mut state = shared.state.lock().expect("sandbox state");
        state.llm_calls += 1;
        state.llm_mode
    };
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            "We could not parse the JSON body of your request.",
        );
    };
    let labels: Vec<String> = request
        .pointer("/response_format/json_schema/schema/properties/category/enum")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if labels.is_empty() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_response_format",
            "response_format.json_schema with a category enum is required here.",
        );
    }
    let message = |role: &str| {
        request["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["role"] == role))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (system, user) = (message("system"), message("user"));
    let (category, confidence) = guess(&user, &labels);
    let answer = json!({"category": category, "confidence": confidence, "reason": "word overlap"});
    let (content, refusal, finish) = match mode {
        LlmMode::Good | LlmMode::Slow(_) => (Some(answer.to_string()), None, "stop"),
        LlmMode::Malformed => (
            Some(format!("Sure! I think this is about {category}.")),
            None,
            "stop",
        ),
        LlmMode::Answer(label, confidence) => (
            Some(
                json!({"category": label, "confidence": confidence, "reason": "fixed"}).to_string(),
            ),
            None,
            "stop",
        ),
        LlmMode::Refusal => (None, Some("I'm sorry, I can't help with that."), "stop"),
        LlmMode::Truncated => (Some(r#"{"category": "bil"#.to_owned()), None, "length"),
        LlmMode::RateLimited(secs) => {
            let mut resp = openai_error(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "rate_limit_exceeded",
                &format!(
                    "Rate limit reached for requests per min (RPM). Please try again in {secs}s."
                ),
            );
            let h = resp.headers_mut();
            h.insert("retry-after", secs.into());
            h.insert("x-ratelimit-remaining-requests", 0.into());
            h.insert(
                "x-ratelimit-reset-requests",
                format!("{secs}s").parse().expect("ascii"),
            );
            return resp;
        }
        LlmMode::Down => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "text/html")],
                "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
            )
                .into_response()
        }
    };
    if let LlmMode::Slow(ms) = mode {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let prompt_tokens = (system.len() + user.len()) / 4;
    Json(json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": request["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal},
                     "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 20, "total_tokens": prompt_tokens + 20},
        "system_fingerprint": "fp_sandbox"
    }))
    .into_response()
}

/// The stand-in's own labelled examples: support messages as people write them, per label.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "billing",
        "I was billed twice for my subscription and need a refund",
    ),
    (
        "billing",
        "The invoice shows the wrong amount, my card was charged again",
    ),
    (
        "billing",
        "Cancel the plan and send a receipt for the last payment",
    ),
    (
        "billing",
        "Duplicate charge on my credit card statement this month",
    ),
    (
        "outage",
        "The website is down, every page returns a 500 error",
    ),
    (
        "outage",
        "Checkout fails for all customers since this morning",
    ),
    (
        "outage",
        "Service unavailable: the API times out and nothing loads",
    ),
    (
        "outage",
        "Production incident, the dashboard stopped working for everyone",
    ),
    (
        "access",
        "I cannot log in, the password reset email never arrives",
    ),
    (
        "access",
        "My account is locked after the two-factor code failed",
    ),
    (
        "access",
        "Access denied when I open the admin settings, need permission",
    ),
    (
        "feature_request",
        "It would be great if you could add an export to Excel",
    ),
    (
        "feature_request",
        "Feature idea: support dark mode and keyboard shortcuts",
    ),
    (
        "feature_request",
        "Could you build an integration with our calendar",
    ),
    (
        "legal",
        "We received a subpoena and need the records preserved",
    ),
    (
        "legal",
        "Our lawyer requests deletion of personal data under GDPR",
    ),
    (
        "legal",
        "Contract dispute: notice of breach from our attorney",
    ),
];

fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4)
        .map(str::to_lowercase)
        .collect()
}

/// The offered label whose examples share the most words with the message, and a confidence
/// from how clearly it wins; with no overlap, `other` (or `unknown`) at 0.3.
fn guess(user: &str, labels: &[String]) -> (String, f64) {
    let said = words(user);
    let overlap: Vec<usize> = labels
        .iter()
        .map(|label| {
            EXAMPLES
                .iter()
                .filter(|(l, _)| l == label)
                .map(|(_, text)| words(text).intersection(&said).count())
                .sum()
        })
        .collect();
    let total: usize = overlap.iter().sum();
    let best = overlap
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
        .filter(|(_, n)| **n > 0);
    match best {
        Some((i, n)) => {
            let share = *n as f64 / total as f64;
            (labels[i].clone(), (0.5 + 0.49 * share).min(0.99))
        }
        None => {
            let fallback = ["other", "unknown"]
                .into_iter()
                .find(|f| labels.iter().any(|l| l == f))
                .unwrap_or("unknown");
            (fallback.to_owned(), 0.3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_from_its_own_examples_among_the_offered_labels() {
        let labels: Vec<String> = ["billing", "outage", "access", "other"]
            .map(str::to_owned)
            .to_vec();
        let (label, conf) = guess("Please refund the invoice, I was charged twice", &labels);
        assert_eq!(label, "billing");
        assert!(conf > 0.9, "{conf}");
        assert_eq!(guess("The checkout page is down", &labels).0, "outage");
        assert_eq!(guess("hello there", &labels), ("other".to_owned(), 0.3));
        // A label it knows but the request does not offer is never answered.
        let (label, _) = guess("We received a subpoena", &labels);
        assert_eq!(label, "other");
    }
}

//! intake: verify the signature on the raw bytes, normalize, deduplicate, enqueue, answer at once.
//!
//! Answers: 202 accepted (new event), 200 duplicate or handshake, 4xx for anything the sender
//! got wrong (bad path, method, signature, body), 409 while a duplicate is still being accepted,
//! 503 only when a dependency (DynamoDB, SQS, Secrets Manager) is down — so the vendor retries.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;
use tracing::{info, warn, Instrument};

use crate::event::{Event, Source};
use crate::handlers::correlation_attr;
use crate::idempotency::{in_progress_until_ms, payload_hash, Claim, IdempotencyStore};
use crate::secrets::SecretCache;
use crate::webhook::{self, Inbound};
use crate::CORRELATION_ATTR;

/// What intake needs; built once per process.
#[derive(Clone, Debug)]
pub struct Intake {
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: SecretCache,
    pub idempotency: IdempotencyStore,
    pub classify_queue_url: String,
    pub signing_secret_id: String,
}

pub async fn handler(
    deps: &Intake,
    event: LambdaEvent<LambdaFunctionUrlRequest>,
) -> Result<LambdaFunctionUrlResponse, Error> {
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let deadline = event.context.deadline;
    let span = tracing::info_span!("intake", correlation_id = %correlation_id);
    Ok(
        handle(deps, event.payload, &correlation_id, deadline, Utc::now())
            .instrument(span)
            .await,
    )
}

async fn handle(
    deps: &Intake,
    req: LambdaFunctionUrlRequest,
    correlation_id: &str,
    deadline_ms: u64,
    now: DateTime<Utc>,
) -> LambdaFunctionUrlResponse {
    let path = req.raw_path.as_deref().unwrap_or("/");
    let Some(source) = path.strip_prefix("/webhooks/").and_then(Source::parse) else {
        return respond(
            404,
            json!({"error": format!("no webhook endpoint at {path}; use /webhooks/{{zendesk|slack|jira}}")}),
        );
    };
    let method = req.request_context.http.method.as_deref().unwrap_or("");
    if !method.eq_ignore_ascii_case("POST") {
        return respond(
            405,
            json!({"error": format!("{method} is not allowed; webhooks are POSTed")}),
        );
    }
    let body = match raw_body(&req) {
        Ok(b) => b,
        Err(msg) => return respond(400, json!({"error": msg})),
    };

    let all_secrets = match deps.secrets.signing_secrets(&deps.signing_secret_id).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "signing secrets unavailable");
            return unavailable("signing secrets unavailable");
        }
    };
    let secrets = all_secrets
        .get(source.as_str())
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Err(e) = webhook::verify(source, &req.headers, &body, secrets, now) {
        warn!(%source, reason = %e, "webhook refused");
        return respond(
            401,
            json!({"error": format!("{source} signature check failed: {e}")}),
        );
    }
    let normalized = match webhook::normalize(source, &req.headers, &body) {
        Ok(Inbound::Handshake(reply)) => {
            info!(%source, "handshake answered");
            return respond(200, reply);
        }
        Ok(Inbound::Event(n)) => n,
        Err(e) => {
            warn!(%source, reason = %e, "webhook body refused");
            return respond(
                400,
                json!({"error": format!("{source} payload not understood: {e}")}),
            );
        }
    };

    let hash = payload_hash(&body);
    let delivery_id = normalized
        .delivery_id
        .clone()
        .unwrap_or_else(|| format!("sha256:{hash}"));
    let key = format!("intake#{source}#{delivery_id}");
    let event_id = uuid::Uuid::new_v4().to_string();
    match deps
        .idempotency
        .claim(&key, &hash, now, in_progress_until_ms(deadline_ms, now))
        .await
    {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Completed { data }) => {
            let first = data.unwrap_or_default();
            info!(%source, %delivery_id, event_id = %first, "duplicate delivery acknowledged");
            return respond(200, json!({"status": "duplicate", "event_id": first}));
        }
        Ok(Claim::InProgress) => {
            let mut r = respond(
                409,
                json!({"error": "this delivery is being accepted right now; retry shortly"}),
            );
            r.headers
                .insert("retry-after", http::HeaderValue::from_static("2"));
            return r;
        }
        Ok(Claim::PayloadMismatch) => {
            warn!(%source, %delivery_id, "delivery id reused with a different payload");
            return respond(
                422,
                json!({"error": format!("delivery id {delivery_id} was already used with a different payload")}),
            );
        }
        Err(e) => {
            warn!(error = %e, "idempotency store unavailable");
            return unavailable("idempotency store unavailable");
        }
    }

    let event = Event {
        id: event_id.clone(),
        source,
        event_type: normalized.event_type,
        delivery_id: delivery_id.clone(),
        object_id: normalized.object_id,
        subject: normalized.subject,
        text: normalized.text,
        requester: normalized.requester,
        occurred_at: normalized.occurred_at,
        received_at: now,
        raw: normalized.raw,
    };
    let sent = deps
        .sqs
        .send_message()
        .queue_url(&deps.classify_queue_url)
        .message_body(serde_json::to_string(&event).expect("events serialize"))
        .message_attributes(CORRELATION_ATTR, correlation_attr(correlation_id))
        .send()
        .await;
    if let Err(e) = sent {
        warn!(
            error = crate::aws::error_message(&e),
            "enqueue failed; releasing the key so the vendor's retry is accepted"
        );
        if let Err(e) = deps.idempotency.release(&key).await {
            warn!(error = %e, "could not release idempotency key; it frees itself when in-progress expires");
        }
        return unavailable("queue unavailable");
    }
    if let Err(e) = deps.idempotency.complete(&key, &event_id, now).await {
        // The event is queued; a redelivery inside the in-progress window gets 409, later a new id.
        warn!(error = %e, "could not mark the delivery completed");
    }
    info!(%source, event_type = %event.event_type, %delivery_id, %event_id, "accepted");
    let mut r = respond(202, json!({"status": "accepted", "event_id": event_id}));
    if let Ok(v) = http::HeaderValue::from_str(correlation_id) {
        r.headers.insert("x-correlation-id", v);
    }
    r
}

fn raw_body(req: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, String> {
    let body = req.body.as_deref().unwrap_or_default();
    if req.is_base64_encoded {
        STANDARD
            .decode(body)
            .map_err(|_| "body is marked base64 but is not valid base64".to_owned())
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

fn unavailable(what: &str) -> LambdaFunctionUrlResponse {
    let mut r = respond(503, json!({"error": format!("{what}; please retry")}));
    r.headers
        .insert("retry-after", http::HeaderValue::from_static("5"));
    r
}

fn respond(status: i64, body: serde_json::Value) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status;
    r.headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r.body = Some(body.to_string());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    /// Deps whose clients point nowhere: these requests must be refused before any AWS call.
    fn offline_deps() -> Intake {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let aws = crate::aws::AwsClients::new(&config);
        Intake {
            sqs: aws.sqs.clone(),
            secrets: SecretCache::new(aws.secrets.clone(), std::time::Duration::from_secs(60)),
            idempotency: IdempotencyStore::new(aws.ddb.clone(), "t"),
            classify_queue_url: "q".into(),
            signing_secret_id: "s".into(),
        }
    }

    fn request(method: &str, path: &str, body: &str, base64: bool) -> LambdaFunctionUrlRequest {
        let mut r = LambdaFunctionUrlRequest::default();
        r.raw_path = Some(path.into());
        r.request_context.http.method = Some(method.into());
        r.body = Some(body.into());
        r.is_base64_encoded = base64;
        r
    }

    async fn call(req: LambdaFunctionUrlRequest) -> (i64, serde_json::Value) {
        let resp = handler(&offline_deps(), LambdaEvent::new(req, Context::default()))
            .await
            .unwrap();
        (
            resp.status_code,
            serde_json::from_str(resp.body.as_deref().unwrap()).unwrap(),
        )
    }

    #[tokio::test]
    async fn unknown_source_is_404_with_the_valid_paths() {
        let (status, body) = call(request("POST", "/webhooks/myspace", "{}", false)).await;
        assert_eq!(status, 404);
        assert!(body["error"]
            .as_str()
            .unwrap()
            .contains("/webhooks/{zendesk|slack|jira}"));
    }

    #[tokio::test]
    async fn non_post_is_405() {
        let (status, _) = call(request("GET", "/webhooks/zendesk", "", false)).await;
        assert_eq!(status, 405);
    }

    #[tokio::test]
    async fn broken_base64_body_is_400() {
        let (status, body) = call(request("POST", "/webhooks/slack", "***", true)).await;
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains("base64"));
    }

    #[tokio::test]
    async fn secrets_store_down_is_503_so_the_vendor_retries() {
        let resp = handler(
            &offline_deps(),
            LambdaEvent::new(
                request("POST", "/webhooks/slack", "{}", false),
                Context::default(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(resp.status_code, 503);
        assert!(resp.headers.contains_key("retry-after"));
    }
}

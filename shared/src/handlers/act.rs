//! act: perform each planned action exactly once, through its connector.
//!
//! Every action has an idempotency key (event id + action index). Retry logic per outcome:
//! transient or rate-limited → the record fails and SQS redelivers it (then the DLQ);
//! permanent, auth or unsupported → the event goes to human review with the reason, and the
//! record succeeds (retrying cannot help and must not dead-letter it silently).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;
use tracing::{info, warn};

use crate::batch::{self, correlation_id, RecordError};
use crate::connectors::{ConnectorError, Connectors};
use crate::decisions::DecisionStore;
use crate::event::{ActMessage, ReviewMessage};
use crate::handlers::correlation_attr;
use crate::idempotency::{in_progress_until_ms, payload_hash, Claim, IdempotencyStore};
use crate::CORRELATION_ATTR;

#[derive(Clone, Debug)]
pub struct Act {
    pub sqs: aws_sdk_sqs::Client,
    pub connectors: Connectors,
    pub idempotency: IdempotencyStore,
    pub decisions: DecisionStore,
    pub review_queue_url: String,
}

impl Act {
    /// Everything act needs, from its settings; built once per process.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Result<Self, crate::settings::MissingSetting> {
        let secrets =
            crate::secrets::SecretCache::new(aws.secrets.clone(), crate::secrets::CACHE_TTL);
        Ok(Act {
            sqs: aws.sqs.clone(),
            idempotency: IdempotencyStore::new(aws.ddb.clone(), s.idempotency_table()?),
            decisions: DecisionStore::new(aws.ddb.clone(), s.decisions_table()?),
            review_queue_url: s.review_queue_url()?.to_owned(),
            connectors: Connectors::new(crate::connectors::http_client(), secrets, s.clone()),
        })
    }
}

pub async fn handler(deps: &Act, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let deadline = event.context.deadline;
    Ok(batch::process(event.payload, |m| act_one(deps, m, deadline)).await?)
}

async fn act_one(deps: &Act, message: SqsMessage, deadline_ms: u64) -> Result<(), RecordError> {
    let correlation = correlation_id(&message);
    let body = message.body.as_deref().unwrap_or_default();
    let msg: ActMessage = serde_json::from_str(body).map_err(|e| {
        RecordError(format!(
            "message is not an act message ({e}); it will be dead-lettered"
        ))
    })?;
    let mut results = Vec::with_capacity(msg.actions.len());
    for (index, action) in msg.actions.iter().enumerate() {
        // Review notices get their own keys: an event may be both acted on and, later, reviewed.
        let stage = if msg.review_reason.is_some() {
            "review"
        } else {
            "act"
        };
        let key = format!("{stage}#{}#{index}", msg.event.id);
        let hash = payload_hash(&serde_json::to_vec(action).map_err(RecordError::new)?);
        let now = Utc::now();
        match deps
            .idempotency
            .claim(&key, &hash, now, in_progress_until_ms(deadline_ms, now))
            .await
        {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Completed { data }) => {
                info!(event_id = %msg.event.id, index, "action already done; not repeated");
                results.push(json!({"action": format!("{}.{}", action.connector, action.action), "status": "already_done", "result": data}));
                continue;
            }
            Ok(Claim::InProgress) => {
                return Err(RecordError(format!(
                    "action {index} is in progress in another worker"
                )))
            }
            Ok(Claim::PayloadMismatch) => {
                return park(
                    deps,
                    &msg,
                    &correlation,
                    &results,
                    format!("action {index} changed since it was first planned"),
                )
                .await
            }
            Err(e) => return Err(RecordError::new(e)),
        }
        let started = std::time::Instant::now();
        let outcome = match deps.connectors.get(&action.connector).await {
            Ok(connector) => connector.perform(action, &key).await,
            Err(e) => Err(ConnectorError::Unsupported(e.to_string())),
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(outcome) => {
                info!(event_id = %msg.event.id, connector = %action.connector, action = %action.action, latency_ms, object_id = ?outcome.object_id, "action done");
                let data = serde_json::to_string(&outcome).map_err(RecordError::new)?;
                if let Err(e) = deps.idempotency.complete(&key, &data, Utc::now()).await {
                    // The effect happened; a retry inside the in-progress window will wait, not repeat.
                    warn!(error = %e, "could not record a completed action");
                }
                results.push(json!({"action": format!("{}.{}", action.connector, action.action), "status": "done", "result": outcome}));
            }
            Err(e) => {
                warn!(event_id = %msg.event.id, connector = %action.connector, action = %action.action, latency_ms, error = %e, "action failed");
                if let Err(release) = deps.idempotency.release(&key).await {
                    warn!(error = %release, "could not release the action key; it frees itself when in-progress expires");
                }
                if e.is_retryable() {
                    return Err(RecordError(format!(
                        "{}.{}: {e}",
                        action.connector, action.action
                    )));
                }
                let reason = format!(
                    "{}.{} failed and needs a human: {e}",
                    action.connector, action.action
                );
                return park(deps, &msg, &correlation, &results, reason).await;
            }
        }
    }
    let status = if msg.review_reason.is_some() {
        "in_review"
    } else {
        "done"
    };
    deps.decisions
        .record_outcome(
            &msg.event.id,
            status,
            &json!(results),
            msg.review_reason.as_deref(),
            Utc::now(),
        )
        .await
        .map_err(RecordError::new)?;
    Ok(())
}

/// Hand the event to a human: review queue with the reason, decision record updated.
async fn park(
    deps: &Act,
    msg: &ActMessage,
    correlation: &str,
    results: &[serde_json::Value],
    reason: String,
) -> Result<(), RecordError> {
    let review = ReviewMessage {
        event: msg.event.clone(),
        category: msg.category.clone(),
        confidence: msg.confidence,
        reason: reason.clone(),
    };
    deps.sqs
        .send_message()
        .queue_url(&deps.review_queue_url)
        .message_body(serde_json::to_string(&review).map_err(RecordError::new)?)
        .message_attributes(CORRELATION_ATTR, correlation_attr(correlation))
        .send()
        .await
        .map_err(|e| {
            RecordError(format!(
                "enqueue to review failed: {}",
                crate::aws::error_message(&e)
            ))
        })?;
    deps.decisions
        .record_outcome(
            &msg.event.id,
            "in_review",
            &json!(results),
            Some(&reason),
            Utc::now(),
        )
        .await
        .map_err(RecordError::new)?;
    warn!(event_id = %msg.event.id, %reason, "sent to human review");
    Ok(())
}

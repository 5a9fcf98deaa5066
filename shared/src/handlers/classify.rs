//! classify: decide what each event is, how sure we are, and where it goes — act or human review —
//! and write that down as the event's decision record.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use tracing::info;

use crate::batch::{self, correlation_id, RecordError};
use crate::classifier::Classifier;
use crate::decisions::{DecisionStore, PATH_ACT, PATH_REVIEW};
use crate::event::{ActMessage, Event, ReviewMessage};
use crate::handlers::correlation_attr;
use crate::routing::{Decision, RoutingConfig};
use crate::CORRELATION_ATTR;

#[derive(Clone, Debug)]
pub struct Classify {
    pub sqs: aws_sdk_sqs::Client,
    pub decisions: DecisionStore,
    pub routing: RoutingConfig,
    pub classifier: Classifier,
    pub act_queue_url: String,
    pub review_queue_url: String,
}

impl Classify {
    /// Everything classify needs: its settings, the routing config (`ROUTING_CONFIG` or the
    /// compiled-in default), the embedded model (`MODEL_PATH` or the built-in one) and the LLM
    /// (`LLM_SECRET_ID`, `LLM_MODEL`, `LLM_BUDGET_MS`; none: offline), all checked before the
    /// first event.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Result<Self, Error> {
        Ok(Classify {
            sqs: aws.sqs.clone(),
            decisions: DecisionStore::new(aws.ddb.clone(), s.decisions_table()?)
                .with_retention_days(s.decision_retention_days()),
            routing: RoutingConfig::from_env()?,
            classifier: Classifier {
                model: Some(crate::classifier::embedded_model()?),
                // A secret and a model name turn the LLM on; either empty keeps classify offline.
                llm: s
                    .optional("LLM_SECRET_ID")
                    .zip(s.optional("LLM_MODEL"))
                    .map(|(id, model)| crate::classifier::llm::Llm {
                        http: crate::connectors::http_client(),
                        secrets: crate::secrets::SecretCache::new(
                            aws.secrets.clone(),
                            crate::secrets::CACHE_TTL,
                        ),
                        secret_id: id.to_owned(),
                        model: model.to_owned(),
                        budget: std::time::Duration::from_millis(
                            s.optional("LLM_BUDGET_MS")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(6_000),
                        ),
                    }),
            },
            act_queue_url: s.act_queue_url()?.to_owned(),
            review_queue_url: s.review_queue_url()?.to_owned(),
        })
    }
}

pub async fn handler(
    deps: &Classify,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(batch::process(event.payload, |m| classify_one(deps, m)).await?)
}

async fn classify_one(deps: &Classify, message: SqsMessage) -> Result<(), RecordError> {
    let correlation = correlation_id(&message);
    let body = message.body.as_deref().unwrap_or_default();
    let event: Event = serde_json::from_str(body).map_err(|e| {
        RecordError(format!(
            "message is not a switchyard event ({e}); it will be dead-lettered"
        ))
    })?;
    let classification = crate::calls::within(
        crate::calls::CallContext::new("chat.completions").for_event(&event.id, &correlation),
        deps.classifier.classify(&deps.routing, &event),
    )
    .await;
    let decision = deps.routing.decide(&event, &classification);
    let route = deps.routing.route_taken(&event, &classification);
    let now = Utc::now();
    let threshold = deps.routing.review_threshold;
    let mut notice = None;
    let (queue, payload, path, actions, reason) = match decision {
        Decision::Act(actions) => {
            let msg = ActMessage {
                event: event.clone(),
                category: classification.category.clone(),
                confidence: classification.confidence,
                actions: actions.clone(),
                review_reason: None,
            };
            (
                &deps.act_queue_url,
                serde_json::to_string(&msg),
                PATH_ACT,
                actions,
                None,
            )
        }
        Decision::Review { reason, notify } => {
            // The review route's notices are actions like any other: act performs them once.
            notice = (!notify.is_empty()).then(|| ActMessage {
                event: event.clone(),
                category: classification.category.clone(),
                confidence: classification.confidence,
                actions: notify,
                review_reason: Some(reason.clone()),
            });
            let msg = ReviewMessage {
                event: event.clone(),
                category: classification.category.clone(),
                confidence: classification.confidence,
                reason: reason.clone(),
            };
            (
                &deps.review_queue_url,
                serde_json::to_string(&msg),
                PATH_REVIEW,
                Vec::new(),
                Some(reason),
            )
        }
    };
    deps.decisions
        .record_decision(
            &event,
            &correlation,
            &classification,
            threshold,
            path,
            &route,
            &actions,
            reason.as_deref(),
            now,
        )
        .await
        .map_err(RecordError::new)?;
    deps.sqs
        .send_message()
        .queue_url(queue)
        .message_body(payload.map_err(RecordError::new)?)
        .message_attributes(CORRELATION_ATTR, correlation_attr(&correlation))
        .send()
        .await
        .map_err(|e| {
            RecordError(format!(
                "enqueue to {path} failed: {}",
                crate::aws::error_message(&e)
            ))
        })?;
    if let Some(notice) = notice {
        deps.sqs
            .send_message()
            .queue_url(&deps.act_queue_url)
            .message_body(serde_json::to_string(&notice).map_err(RecordError::new)?)
            .message_attributes(CORRELATION_ATTR, correlation_attr(&correlation))
            .send()
            .await
            .map_err(|e| {
                RecordError(format!(
                    "enqueue of the review notice failed: {}",
                    crate::aws::error_message(&e)
                ))
            })?;
    }
    count_decision(&classification, path);
    info!(
        event_id = %event.id,
        source = %event.source,
        category = %classification.category,
        confidence = classification.confidence,
        threshold,
        signals = ?classification.signals,
        path,
        backend = classification.backend,
        language = classification.language.as_deref().unwrap_or("und"),
        fallback = classification.fallback.as_deref().unwrap_or(""),
        reason = reason.as_deref().unwrap_or(""),
        route = %route,
        "classified"
    );
    Ok(())
}

fn count_decision(c: &crate::routing::Classification, path: &str) {
    use crate::metrics as m;
    metrics::counter!(m::EVENTS_CLASSIFIED, "category" => c.category.clone(), "backend" => c.backend)
        .increment(1);
    metrics::counter!(m::EVENTS_CLASSIFIED).increment(1);
    m::register(m::SENT_TO_REVIEW);
    if path == PATH_REVIEW {
        metrics::counter!(m::SENT_TO_REVIEW).increment(1);
    }
    if c.fallback.is_some() {
        metrics::counter!(m::LLM_FALLBACKS).increment(1);
    }
}

//! classify: decide what each event is, how sure we are, and where it goes — act or human review —
//! and write that down as the event's decision record.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use tracing::info;

use crate::batch::{self, correlation_id, RecordError};
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
    /// The embedded model (`MODEL_PATH`); without one, the routing config's keyword rules decide.
    pub model: Option<std::sync::Arc<crate::model::Model>>,
    pub act_queue_url: String,
    pub review_queue_url: String,
}

impl Classify {
    /// Everything classify needs: its settings, the routing config (`ROUTING_CONFIG` or the
    /// compiled-in default) and the model (`MODEL_PATH`), all validated before the first event.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Result<Self, Error> {
        Ok(Classify {
            sqs: aws.sqs.clone(),
            decisions: DecisionStore::new(aws.ddb.clone(), s.decisions_table()?),
            routing: RoutingConfig::from_env()?,
            model: crate::model::Model::from_env()?,
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
    let classification = match &deps.model {
        Some(model) => deps.routing.classify_with_model(model, &event),
        None => deps.routing.classify(&event),
    };
    let decision = deps.routing.decide(&event, &classification);
    let now = Utc::now();
    let threshold = deps.routing.review_threshold;
    let (queue, payload, path, actions, reason) = match decision {
        Decision::Act(actions) => {
            let msg = ActMessage {
                event: event.clone(),
                category: classification.category.clone(),
                confidence: classification.confidence,
                actions: actions.clone(),
            };
            (
                &deps.act_queue_url,
                serde_json::to_string(&msg),
                PATH_ACT,
                actions,
                None,
            )
        }
        Decision::Review { reason } => {
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
    info!(
        event_id = %event.id,
        source = %event.source,
        category = %classification.category,
        confidence = classification.confidence,
        threshold,
        signals = ?classification.signals,
        path,
        backend = classification.backend,
        reason = reason.as_deref().unwrap_or(""),
        "classified"
    );
    Ok(())
}

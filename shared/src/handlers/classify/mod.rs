//! classify: decide what each event is, how sure we are, and where it goes — act or human review —
//! and write that down as the event's decision record.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use tracing::info;

pub mod documents;
pub(crate) mod ocr;

use crate::batch::{self, correlation_id, RecordError};
use crate::classifier::Classifier;
use crate::decisions::{DecisionStore, PATH_ACT, PATH_REVIEW};
use crate::event::{Event, QUEUE_MESSAGE_LIMIT};
use crate::handlers::correlation_attr;
use crate::routing::{ActMessage, ReviewMessage};
use crate::routing::{Classification, Decision, RoutingConfig};
use crate::CORRELATION_ATTR;

/// What classify needs: its queues, decision store, routing config and classifier.
#[derive(Clone, Debug)]
pub struct Classify {
    /// Sends to the act and review queues.
    pub sqs: aws_sdk_sqs::Client,
    /// The decision records, one per event, written here and reused on redelivery.
    pub decisions: DecisionStore,
    /// The categories, the review threshold and the routes that plan each event's actions.
    pub routing: RoutingConfig,
    /// The LLM and embedded model that decide each event's category.
    pub classifier: Classifier,
    /// The act queue, for planned actions and review notices (`ACT_QUEUE_URL`).
    pub act_queue_url: String,
    /// The review queue, for events a person must decide (`REVIEW_QUEUE_URL`).
    pub review_queue_url: String,
    /// The classify queue's `maxReceiveCount`: a failure on this receive dead-letters the event.
    pub max_receives: u64,
    /// With `DRIFT_TABLE` set: fields webhooks carry that their normalizer does not know become
    /// drift findings.
    pub drift: Option<crate::drift::store::DriftStore>,
    /// Signs decision links for review notices that use `{decision.links}`.
    pub links: Option<crate::handlers::decision::links::LinkSigner>,
    /// Fetches and reads attached documents (with `PACING_TABLE` set: fetching draws on the
    /// connections' shared budgets); without it, an event with attachments goes to a person.
    pub documents: Option<documents::Reader>,
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
            routing: RoutingConfig::from_settings(s)?,
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
                        max_input_chars: s.positive(
                            "LLM_MAX_INPUT_CHARS",
                            crate::classifier::llm::DEFAULT_MAX_INPUT_CHARS,
                        ),
                    }),
            },
            act_queue_url: s.act_queue_url()?.to_owned(),
            review_queue_url: s.review_queue_url()?.to_owned(),
            max_receives: s.max_receives(),
            drift: s
                .optional("DRIFT_TABLE")
                .map(|t| crate::drift::store::DriftStore::new(aws.ddb.clone(), t)),
            links: crate::handlers::decision::links::LinkSigner::from_settings(aws, s),
            documents: match s.optional("PACING_TABLE") {
                Some(_) => Some(documents::Reader {
                    connectors: crate::vendors::Connectors::with_refresher(aws, s)?,
                    pacer: crate::pacing::Pacer::from_settings(
                        &aws.ddb,
                        s,
                        &crate::vendors::DOCUMENTED,
                    )?,
                    limits: documents::Limits::from_settings(s),
                    permits: std::sync::Arc::new(tokio::sync::Semaphore::new(
                        documents::Limits::concurrency(s),
                    )),
                    ocr: ocr::Ocr::from_settings(aws, s)?,
                    keep: documents::Keep::from_settings(aws, s),
                }),
                None => None,
            },
        })
    }
}

/// classify's Lambda handler: classifies each queued event, records its decision and sends it
/// on to act or review; reports the records that failed, for SQS to redeliver.
pub async fn handler(
    deps: &Classify,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let deadline = documents_deadline(event.context.deadline);
    let response = batch::process(event.payload, |m| async move {
        let last = batch::last_receive(&m, deps.max_receives);
        let result = classify_one(deps, m.clone(), deadline).await;
        if let (Err(e), true) = (&result, last) {
            record_dead_letter(deps, &m, e).await;
        }
        result
    })
    .await?;
    crate::connectors::structure::store_observed(deps.drift.as_ref(), "intake").await;
    Ok(response)
}

/// The event's last receive failed: the queue moves it to ClassifyDLQ now.
async fn record_dead_letter(deps: &Classify, message: &SqsMessage, e: &RecordError) {
    if let Ok(event) = serde_json::from_str::<Event>(message.body.as_deref().unwrap_or_default()) {
        let error = e.to_string();
        deps.decisions
            .record_dead_letter(&event.id, "classify", deps.max_receives, &error)
            .await;
    }
}

/// When reading documents must stop: the invocation's deadline (epoch ms; 0 in tests: none),
/// less what classifying and sending still need after them.
fn documents_deadline(deadline_ms: u64) -> std::time::Instant {
    const AFTER_DOCUMENTS: u64 = 15_000;
    let now_ms = Utc::now().timestamp_millis().max(0) as u64;
    let left = match deadline_ms {
        0 => 3_600_000,
        d => d.saturating_sub(now_ms).saturating_sub(AFTER_DOCUMENTS),
    };
    std::time::Instant::now() + std::time::Duration::from_millis(left)
}

async fn classify_one(
    deps: &Classify,
    message: SqsMessage,
    deadline: std::time::Instant,
) -> Result<(), RecordError> {
    let correlation = correlation_id(&message);
    let body = message.body.as_deref().unwrap_or_default();
    let event: Event = serde_json::from_str(body).map_err(|e| {
        RecordError(format!(
            "message is not a switchyard event ({e}); it will be dead-lettered"
        ))
    })?;
    if !event.unknown_fields.is_empty() {
        crate::connectors::drift::webhook_fields(
            event.source.as_str(),
            &event.event_type,
            &event.unknown_fields,
        );
    }
    // A redelivery reuses the recorded answer: no second LLM call, no different plan.
    let earlier = if batch::receive_count(&message) > 1 {
        deps.decisions
            .get(&event.id)
            .await
            .map_err(RecordError::new)?
            .filter(|r| r.decided_at.is_some())
    } else {
        None
    };
    let now = Utc::now();
    let threshold = deps.routing.review_threshold;
    // When the event was asked about, and whether a person has decided on it since.
    let mut asked = (now, false);
    let recorded_at = |r: &crate::decisions::DecisionRecord| {
        let at = r
            .decided_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.with_timezone(&Utc));
        (at, r.human.is_some())
    };
    let (classification, plan) = match &earlier {
        Some(record) => {
            asked = recorded_at(record);
            let c = record.classification();
            let plan = Plan::recorded(deps, &event, &c, record);
            let evidence = crate::decisions::Evidence {
                event: &event,
                classification: &c,
                route: &plan.route,
                actions: &plan.actions,
                documents: &record.documents,
            };
            deps.decisions
                .repair_evidence(record, &evidence, now)
                .await
                .map_err(RecordError::new)?;
            (c, plan)
        }
        None => {
            let last = batch::last_receive(&message, deps.max_receives);
            let docs = read_documents(deps, &event, &correlation, last, deadline).await?;
            // The documents' text is classified with the event's; the event travels on as sent.
            let reading = match docs.text.is_empty() {
                true => std::borrow::Cow::Borrowed(&event),
                false => {
                    let mut e = event.clone();
                    e.text = Some(format!("{}{}", e.text.as_deref().unwrap_or(""), docs.text));
                    std::borrow::Cow::Owned(e)
                }
            };
            let c = crate::calls::within(
                crate::calls::CallContext::new("chat.completions")
                    .for_event(&event.id, &correlation),
                deps.classifier.classify(&deps.routing, &reading),
            )
            .await;
            let asks = documents::Documents::asks(&docs.read);
            let plan = Plan::new(deps, &event, &c, docs.problem.clone(), &asks);
            let recorded = deps
                .decisions
                .record_decision(
                    &event,
                    &correlation,
                    &c,
                    threshold,
                    plan.path,
                    &plan.route,
                    &plan.actions,
                    &docs.read,
                    plan.reason.as_deref(),
                    now,
                )
                .await
                .map_err(RecordError::new)?;
            match recorded {
                None => (c, plan),
                // Another delivery of this event was decided first: follow that answer.
                Some(record) => {
                    asked = recorded_at(&record);
                    let c = record.classification();
                    let plan = Plan::recorded(deps, &event, &c, &record);
                    (c, plan)
                }
            }
        }
    };
    let reused = earlier.is_some() || plan.reused;
    if asked.1 {
        // A person decided while this delivery was in flight: what they decided is being done,
        // and a second review copy or notice would only ask again.
        info!(event_id = %event.id, "a person decided on this event already; nothing more to send");
        return Ok(());
    }
    // Links are signed as of the first ask, so a redelivery sends the very same notice.
    let plan = with_links(deps, plan, &event, &classification, asked.0).await?;
    let Plan {
        queue,
        payload,
        path,
        reason,
        notice,
        route,
        ..
    } = plan;
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
    if !reused {
        count_decision(&classification, path);
    }
    if path == PATH_REVIEW {
        // A redelivery sends them again: a timer that finds its event decided does nothing,
        // and a second reminder or expiry finds the first one's key.
        approval_timers(deps, &event, &classification).await?;
    }
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
        reused,
        "classified"
    );
    Ok(())
}

/// The event's documents, read; on its last receive, ones that cannot be fetched now go to a
/// person rather than the event to the dead-letter queue.
async fn read_documents(
    deps: &Classify,
    event: &Event,
    correlation: &str,
    last: bool,
    deadline: std::time::Instant,
) -> Result<documents::Documents, RecordError> {
    if event.attachments.is_empty() {
        return Ok(documents::Documents::default());
    }
    let Some(reader) = &deps.documents else {
        return Ok(documents::Documents {
            problem: Some(
                "the event has attachments and this classify reads none (no PACING_TABLE)".into(),
            ),
            ..Default::default()
        });
    };
    let read = crate::calls::within(
        crate::calls::CallContext::new("attachment.download").for_event(&event.id, correlation),
        reader.read(event, deadline),
    )
    .await;
    match read {
        Ok(docs) => Ok(docs),
        Err(documents::NotNow(why)) if !last => Err(RecordError(format!(
            "a document cannot be fetched now, trying again later: {why}"
        ))),
        Err(documents::NotNow(why)) => Ok(documents::Documents {
            problem: Some(format!("a document could not be fetched: {why}")),
            ..Default::default()
        }),
    }
}

/// Where one classified event goes and the messages that take it there.
struct Plan<'d> {
    queue: &'d str,
    payload: serde_json::Result<String>,
    path: &'static str,
    actions: Vec<crate::routing::PlannedAction>,
    reason: Option<String>,
    notice: Option<ActMessage>,
    route: String,
    /// Rebuilt from an earlier attempt's record.
    reused: bool,
}

impl<'d> Plan<'d> {
    /// Where the classification routes the event, unless its documents need a person; then
    /// the requester is also asked for what `asks` names (once, with the review notices).
    fn new(
        deps: &'d Classify,
        event: &Event,
        c: &Classification,
        problem: Option<String>,
        asks: &[(crate::routing::documents::Ask, String)],
    ) -> Self {
        let mut decision = match problem {
            Some(reason) => deps.routing.review(event, c, reason),
            None => deps.routing.decide(event, c),
        };
        if let Decision::Review { notify, .. } = &mut decision {
            for (ask, name) in asks {
                notify.extend(deps.routing.documents.plan(event, c, *ask, name));
            }
        }
        Self::from_decision(deps, event, c, decision)
    }

    /// The plan an earlier attempt recorded: the same classification routes the same way; if the
    /// routing config changed in between, an event recorded for review still goes to review.
    fn recorded(
        deps: &'d Classify,
        event: &Event,
        c: &Classification,
        record: &crate::decisions::DecisionRecord,
    ) -> Self {
        let mut plan = if record.path == PATH_REVIEW {
            // The same notices as the first time, the replies about its documents included.
            let reason = record
                .reason
                .clone()
                .unwrap_or_else(|| "recorded for review".into());
            let asks = documents::Documents::asks(&record.documents);
            Self::new(deps, event, c, Some(reason), &asks)
        } else {
            Self::new(deps, event, c, None, &[])
        };
        plan.reused = true;
        plan
    }

    fn from_decision(
        deps: &'d Classify,
        event: &Event,
        c: &Classification,
        decision: Decision,
    ) -> Self {
        let route = deps.routing.route_taken(event, c);
        match decision {
            Decision::Act(actions) => {
                let msg = ActMessage {
                    event: event.clone(),
                    category: c.category.clone(),
                    confidence: c.confidence,
                    actions: actions.clone(),
                    review_reason: None,
                    card_update: false,
                    key_stage: None,
                };
                let payload = serde_json::to_string(&msg);
                // A plan that copies the customer's text into several actions can outgrow a
                // queue message: a human is told instead of the message bouncing forever.
                if payload
                    .as_ref()
                    .is_ok_and(|p| p.len() > QUEUE_MESSAGE_LIMIT - 1024)
                {
                    let reason = "the planned actions are too large for a queue message (they copy the event's text); handle it by hand".to_owned();
                    return Self::from_decision(
                        deps,
                        event,
                        c,
                        deps.routing.review(event, c, reason),
                    );
                }
                Plan {
                    queue: &deps.act_queue_url,
                    payload,
                    path: PATH_ACT,
                    actions,
                    reason: None,
                    notice: None,
                    route,
                    reused: false,
                }
            }
            Decision::Review { reason, notify } => {
                let notify = with_card(&deps.routing, event, c, &reason, notify);
                // The review route's notices are actions like any other: act performs them once.
                let notice = (!notify.is_empty()).then(|| ActMessage {
                    event: event.clone(),
                    category: c.category.clone(),
                    confidence: c.confidence,
                    actions: notify,
                    review_reason: Some(reason.clone()),
                    card_update: false,
                    key_stage: None,
                });
                let msg = ReviewMessage {
                    event: event.clone(),
                    category: c.category.clone(),
                    confidence: c.confidence,
                    reason: reason.clone(),
                };
                Plan {
                    queue: &deps.review_queue_url,
                    payload: serde_json::to_string(&msg),
                    path: PATH_REVIEW,
                    actions: Vec::new(),
                    reason: Some(reason),
                    notice,
                    route,
                    reused: false,
                }
            }
        }
    }
}

/// A review plan's notices with signed decision links, where they use `{decision.links}`.
async fn with_links<'d>(
    deps: &'d Classify,
    mut plan: Plan<'d>,
    event: &Event,
    c: &Classification,
    now: chrono::DateTime<Utc>,
) -> Result<Plan<'d>, RecordError> {
    let (Some(signer), Some(notice), Some(reason)) = (&deps.links, &mut plan.notice, &plan.reason)
    else {
        return Ok(plan);
    };
    if !deps.routing.review_uses_links() {
        return Ok(plan);
    }
    // The key is down: the event still goes to a person, by the buttons or the CLI; a retry
    // (SQS redelivers the message) would not make the notice any better.
    let lines = match signer.lines(&deps.routing, event, c, now).await {
        Ok(lines) => lines,
        Err(e) => {
            tracing::warn!(error = %e, event_id = %event.id, "decision links not signed; the notice says to use the CLI");
            return Ok(plan);
        }
    };
    if let Decision::Review { notify, .. } =
        deps.routing
            .review_with_links(event, c, reason.clone(), Some(&lines))
    {
        notice.actions = with_card(&deps.routing, event, c, reason, notify);
    }
    Ok(plan)
}

/// An approval's reminder and expiry, as delayed messages to act (see `act::decided`).
async fn approval_timers(
    deps: &Classify,
    event: &Event,
    c: &Classification,
) -> Result<(), RecordError> {
    let approval = deps.routing.approval_for(event.source, c);
    let (remind, expires) = approval.timers();
    let now = Utc::now().timestamp_millis();
    for (kind, after) in [
        (crate::routing::TimerKind::Remind, remind),
        (crate::routing::TimerKind::Expire, expires),
    ] {
        let Some(after) = after else { continue };
        let timer = crate::routing::ApprovalTimer {
            timer: event.id.clone(),
            kind,
            due_ms: now + after.as_millis() as i64,
        };
        deps.sqs
            .send_message()
            .queue_url(&deps.act_queue_url)
            .message_body(serde_json::to_string(&timer).map_err(RecordError::new)?)
            .delay_seconds(after.as_secs().clamp(0, 900) as i32)
            .send()
            .await
            .map_err(|e| {
                RecordError(format!(
                    "enqueue of the approval's timer failed: {}",
                    crate::aws::error_message(&e)
                ))
            })?;
    }
    Ok(())
}

/// The review route's Slack posts carry the review card (its buttons decide); their `text` stays
/// the notification's fallback. A route that wrote its own blocks keeps them.
fn with_card(
    routing: &RoutingConfig,
    event: &Event,
    c: &Classification,
    reason: &str,
    mut notify: Vec<crate::routing::PlannedAction>,
) -> Vec<crate::routing::PlannedAction> {
    let proposal = routing.proposal(event, c);
    let categories = routing.routable(event.source, c);
    let card = crate::vendors::slack::review::card(&crate::vendors::slack::review::Card {
        event,
        classification: c,
        reason,
        proposal: proposal.as_deref(),
        categories: &categories,
    });
    for a in &mut notify {
        if a.connector == "slack" && a.action == "post_message" && !a.params.contains_key("blocks")
        {
            a.params.insert("blocks".into(), card.to_string());
            a.json.insert("blocks".into());
        }
    }
    notify
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

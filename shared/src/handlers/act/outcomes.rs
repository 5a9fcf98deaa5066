//! Where act's work goes when it does not complete now: **handed back** to the queue with a
//! delay (waiting for budget — with its slot reserved — a vendor's limit, an open circuit),
//! **parked** while its connection needs reconnecting, or **sent to review** when only a human can
//! help; and what each attempt and a dead letter leave on the decision record.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;
use chrono::Utc;
use serde_json::json;
use tracing::{info, warn};

use super::{
    Act, BUDGET_WAITS_ATTR, MAX_DELAY, NOT_BEFORE_ATTR, PARKED_SINCE_ATTR, RESERVED_AT_ATTR,
    RESERVED_FOR_ATTR, UNKNOWN_OUTCOMES_ATTR,
};
use crate::batch::{correlation_id, RecordError};
use crate::decisions::state;
use crate::handlers::correlation_attr;
use crate::pacing::with_jitter;
use crate::reconnect::{fingerprint, PARK_DELAY};
use crate::routing::PlannedAction;
use crate::routing::{ActMessage, ReviewMessage};
use crate::CORRELATION_ATTR;

/// The fingerprint of the connection's stored credential (read through the cache).
pub(super) async fn stored_fingerprint(deps: &Act, connector: &str) -> Option<(String, String)> {
    let secret_id = crate::vendors::secret_id(&deps.connectors.settings, connector)?;
    let value = deps.connectors.secrets.get(&secret_id).await.ok()?;
    let fp = fingerprint(&value);
    Some((secret_id, fp))
}

/// `Some(reason)` while the connection is marked and its stored credential is the refused one.
pub(super) async fn parked(deps: &Act, connector: &str) -> Result<Option<String>, RecordError> {
    let Some((secret_id, fp)) = stored_fingerprint(deps, connector).await else {
        return Ok(None);
    };
    deps.reconnect
        .pending_cached(&secret_id, &fp)
        .await
        .map_err(RecordError::new)
}

/// Mark the connection; the worker that marks it first tells a human (review queue), once.
pub(super) async fn mark_refused(
    deps: &Act,
    msg: &ActMessage,
    correlation: &str,
    connector: &str,
    reason: &str,
) -> Result<(), RecordError> {
    let Some((secret_id, fp)) = stored_fingerprint(deps, connector).await else {
        return Ok(());
    };
    // The refresher may have marked it already (a refused refresh); one alert either way.
    deps.reconnect
        .mark(&secret_id, &fp, reason)
        .await
        .map_err(RecordError::new)?;
    if !deps
        .reconnect
        .first_alert(&secret_id, &fp)
        .await
        .map_err(RecordError::new)?
    {
        return Ok(());
    }
    let alert = ReviewMessage {
        event: msg.event.clone(),
        category: msg.category.clone(),
        confidence: msg.confidence,
        reason: format!(
            "{reason}. Its actions are parked (retried every {} min, never dropped) until a new credential is stored in {secret_id}; `switchyard doctor` checks it.",
            PARK_DELAY.as_secs() / 60
        ),
    };
    deps.sqs
        .send_message()
        .queue_url(&deps.review_queue_url)
        .message_body(serde_json::to_string(&alert).map_err(RecordError::new)?)
        .message_attributes(CORRELATION_ATTR, correlation_attr(correlation))
        .send()
        .await
        .map_err(|e| {
            RecordError(format!(
                "alerting the review queue failed: {}",
                crate::aws::error_message(&e)
            ))
        })?;
    warn!(connector, %secret_id, "connection needs reconnect; a human was alerted");
    Ok(())
}

/// Hand the message back for [`PARK_DELAY`] and say so in the decision record.
pub(super) async fn park_until_reconnected(
    deps: &Act,
    message: &SqsMessage,
    msg: &ActMessage,
    results: &[serde_json::Value],
    reason: &str,
) -> Result<(), RecordError> {
    let now = Utc::now().timestamp_millis();
    let since = match number_attr(message, PARKED_SINCE_ATTR) {
        0 => now,
        since => since,
    };
    let waited = chrono::Duration::milliseconds(now - since);
    if waited > deps.max_park {
        let reason = format!(
            "{reason}; parked {} day(s) waiting for the reconnect (MAX_PARK_DAYS {}), so a human takes over",
            waited.num_days(),
            deps.max_park.num_days()
        );
        return park(deps, msg, &correlation_id(message), results, reason).await;
    }
    let wait = with_jitter(PARK_DELAY);
    let waits = number_attr(message, BUDGET_WAITS_ATTR) + 1;
    send_again(deps, message, wait, waits, &[(PARKED_SINCE_ATTR, since)]).await?;
    info!(
        wait_ms = wait.as_millis() as u64,
        parked_since = since,
        "parked until reconnected"
    );
    for a in &msg.actions {
        crate::metrics::count(crate::metrics::ACTIONS_PARKED, "connector", &a.connector);
    }
    note_after_hand_back(deps, msg, state::PARKED, results, reason).await;
    Ok(())
}

/// Record why a handed-back message waits. The copy is already queued: failing this record now
/// would make SQS redeliver the original too and run the work twice, so a failed write is only
/// logged (the next run's record says where the event is). A last attempt that made no vendor
/// call is the record's note, replacing the one before, not an attempt appended (see
/// `decisions::notes`).
pub(super) async fn note_after_hand_back(
    deps: &Act,
    msg: &ActMessage,
    status: &str,
    attempts: &[serde_json::Value],
    reason: &str,
) {
    if tells_only(msg) {
        // Waiting to tell a person (or to update their message) is not the event's state.
        return;
    }
    let now = Utc::now();
    let written = match attempts.split_last() {
        Some((last, before)) if is_note(last) => {
            deps.decisions
                .record_note(&msg.event.id, status, before, last, reason, now)
                .await
        }
        _ => {
            deps.decisions
                .record_outcome(&msg.event.id, status, attempts, Some(reason), now)
                .await
        }
    };
    if let Err(e) = written {
        warn!(error = %e, event_id = %msg.event.id, "could not record why the event waits");
    }
}

/// A hand-back that called no vendor: nothing happened to record but why it waits.
fn is_note(attempt: &serde_json::Value) -> bool {
    matches!(
        attempt["status"].as_str(),
        Some("waiting" | "handed_back" | "parked")
    ) && attempt["calls"].as_array().is_none_or(Vec::is_empty)
}

pub(super) fn number_attr(message: &SqsMessage, name: &str) -> i64 {
    message
        .message_attributes
        .get(name)
        .and_then(|a| a.string_value.as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(super) fn number(v: i64) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(v.to_string())
        .build()
        .expect("data_type is set")
}

/// Send the message round again after `wait` (+ jitter), and let this copy be deleted; `set`
/// adds attributes (a reserved slot).
pub(super) async fn hand_back(
    deps: &Act,
    message: &SqsMessage,
    msg: &ActMessage,
    wait: Duration,
    why: &str,
    set: &[(&str, i64)],
) -> Result<(), RecordError> {
    let wait = with_jitter(wait);
    let waits = number_attr(message, BUDGET_WAITS_ATTR) + 1;
    send_again(deps, message, wait, waits, set).await?;
    info!(
        wait_ms = wait.as_millis() as u64,
        budget_waits = waits,
        why,
        "handed back to wait"
    );
    for a in &msg.actions {
        crate::metrics::count(crate::metrics::BUDGET_WAITS, "connector", &a.connector);
    }
    Ok(())
}

/// Send the message round again after `wait` for a reason that is not a budget wait (the
/// invocation's deadline, an unknown outcome): not counted as a wait, and no receive charged.
pub(super) async fn requeue(
    deps: &Act,
    message: &SqsMessage,
    wait: Duration,
    why: &str,
    set: &[(&str, i64)],
) -> Result<(), RecordError> {
    let waits = number_attr(message, BUDGET_WAITS_ATTR);
    send_again(deps, message, wait, waits, set).await?;
    info!(wait_ms = wait.as_millis() as u64, why, "handed back");
    Ok(())
}

/// Send the message round again: its counters carried over (first parked, unknown outcomes),
/// `set` overriding them.
async fn send_again(
    deps: &Act,
    message: &SqsMessage,
    wait: Duration,
    waits: i64,
    set: &[(&str, i64)],
) -> Result<(), RecordError> {
    let not_before = Utc::now().timestamp_millis() + wait.as_millis() as i64;
    let delay = wait.min(MAX_DELAY).as_secs_f64().ceil() as i32;
    let mut send = deps.sqs.send_message();
    const CARRIED: [&str; 2] = [PARKED_SINCE_ATTR, UNKNOWN_OUTCOMES_ATTR];
    for attr in CARRIED {
        let value = set
            .iter()
            .find(|(k, _)| *k == attr)
            .map_or_else(|| number_attr(message, attr), |(_, v)| *v);
        if value > 0 {
            send = send.message_attributes(attr, number(value));
        }
    }
    // Anything else only when set here (a reserved slot is used once, never carried over).
    for (attr, value) in set.iter().filter(|(k, v)| !CARRIED.contains(k) && *v > 0) {
        send = send.message_attributes(*attr, number(*value));
    }
    send.queue_url(&deps.act_queue_url)
        .message_body(message.body.as_deref().unwrap_or_default())
        .delay_seconds(delay)
        .message_attributes(CORRELATION_ATTR, correlation_attr(&correlation_id(message)))
        .message_attributes(BUDGET_WAITS_ATTR, number(waits))
        .message_attributes(NOT_BEFORE_ATTR, number(not_before))
        .send()
        .await
        .map_err(|e| {
            RecordError(format!(
                "handing the message back failed: {}",
                crate::aws::error_message(&e)
            ))
        })?;
    Ok(())
}

/// Hand the event to a human: review queue with the reason, decision record updated.
pub(super) async fn park(
    deps: &Act,
    msg: &ActMessage,
    correlation: &str,
    results: &[serde_json::Value],
    reason: String,
) -> Result<(), RecordError> {
    if tells_only(msg) {
        // The event is in review already, or decided; only the message is missing.
        warn!(event_id = %msg.event.id, %reason, "a message to the people deciding could not be sent or updated");
        return deps
            .decisions
            .record_attempts(&msg.event.id, results)
            .await
            .map_err(RecordError::new);
    }
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
            state::IN_REVIEW,
            results,
            Some(&reason),
            Utc::now(),
        )
        .await
        .map_err(RecordError::new)?;
    warn!(event_id = %msg.event.id, %reason, "sent to human review");
    Ok(())
}

/// The record's last receive failed: the queue moves it to the DLQ now, so the decision record
/// says `failed` with the reason (`switchyard redrive` can send it round again).
pub(super) async fn record_dead_letter(deps: &Act, message: &SqsMessage, e: &RecordError) {
    let Ok(msg) = serde_json::from_str::<ActMessage>(message.body.as_deref().unwrap_or_default())
    else {
        return;
    };
    for a in &msg.actions {
        crate::metrics::count(crate::metrics::ACTIONS_FAILED, "connector", &a.connector);
    }
    if tells_only(&msg) {
        return;
    }
    deps.decisions
        .record_dead_letter(&msg.event.id, "act", deps.max_receives, &e.to_string())
        .await;
}

/// The slot a message carries (reserved for one of its actions), to send on with it while unused.
pub(super) fn slot_of(message: &SqsMessage) -> [(&'static str, i64); 2] {
    [RESERVED_AT_ATTR, RESERVED_FOR_ATTR].map(|a| (a, number_attr(message, a)))
}

/// One line of the decision record's `attempts`: what act did with action `index` this time.
pub(super) fn attempt(
    stage: &str,
    index: usize,
    action: &PlannedAction,
    status: &str,
    calls: Vec<serde_json::Value>,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut a = json!({
        "at": Utc::now().to_rfc3339(),
        "index": index,
        "action": format!("{}.{}", action.connector, action.action),
        "status": status,
        "calls": calls,
    });
    // The review route's notices have keys of their own (`review#…`); act's go unmarked.
    if stage != "act" {
        a["stage"] = json!(stage);
    }
    if let (Some(a), Some(extra)) = (a.as_object_mut(), extra.as_object()) {
        a.extend(extra.clone());
    }
    a
}

/// A write the vendor refused for named fields (a newly required field, a value it no longer
/// accepts): an API drift finding per field, and the reason a human reads in review, naming
/// them. `None` when the refusal names no field.
pub(super) async fn refused_for_fields(
    deps: &Act,
    action: &PlannedAction,
    e: &crate::connectors::ConnectorError,
) -> Option<String> {
    let fields = e.refused_fields().to_vec();
    if fields.is_empty() {
        return None;
    }
    let mut ids = Vec::new();
    if let Some(store) = &deps.drift {
        match crate::connectors::structure::record_refusal(
            store,
            &action.connector,
            &action.action,
            &fields,
            &e.to_string(),
            Utc::now(),
        )
        .await
        {
            Ok(found) => ids = found,
            Err(err) => warn!(error = %err, "could not record the refusal as a drift finding"),
        }
    }
    Some(format!(
        "{}.{} was refused for field {}: the vendor's requirements changed (API drift{}); a human must set it or change the route. {e}",
        action.connector,
        action.action,
        fields.join(", "),
        if ids.is_empty() {
            String::new()
        } else {
            format!(", finding {}", ids.join(", "))
        }
    ))
}

/// Mark an action's key done: a redelivery answers from it instead of calling again.
pub(super) async fn complete(deps: &Act, key: &str, data: &str) {
    if let Err(e) = deps.idempotency.complete(key, data, Utc::now()).await {
        // The effect happened; a retry inside the in-progress window will wait, not repeat.
        warn!(error = %e, "could not record a completed action");
    }
}

/// Write the attempts of this run and the state they leave the event in.
pub(super) async fn record(
    deps: &Act,
    msg: &ActMessage,
    status: &str,
    attempts: &[serde_json::Value],
    reason: Option<&str>,
) -> Result<(), RecordError> {
    if tells_only(msg) {
        return deps
            .decisions
            .record_attempts(&msg.event.id, attempts)
            .await
            .map_err(RecordError::new);
    }
    deps.decisions
        .record_outcome(&msg.event.id, status, attempts, reason, Utc::now())
        .await
        .map_err(RecordError::new)
}

/// Whether these actions only tell people about the event (the review route's notices, the
/// review message's updates and reminders): their runs add attempts to the record and never
/// change its state, which classify or a person set (a late notice run must not undo a decision).
fn tells_only(msg: &ActMessage) -> bool {
    msg.card_update || msg.review_reason.is_some()
}

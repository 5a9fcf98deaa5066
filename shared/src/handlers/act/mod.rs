//! act: perform each planned action exactly once, through its connector.
//!
//! Every action has an idempotency key (event id + action index). Before each call the worker
//! takes a slot of the credential's shared budget (`pacing`). Retry logic per outcome:
//! - no budget soon, or the vendor rate-limited us (its wait now holds every worker) → the
//!   message is **handed back**: re-sent to the act queue with `DelaySeconds` (≤ 15 min; longer
//!   waits chain through `not_before`) and the original deleted. A visibility change would not
//!   do: every receive counts toward `maxReceiveCount`, so waiting would walk work into the DLQ.
//!   Budget waits are counted in `budget_waits`, apart from failures;
//! - transient (5xx, timeout, reset) → up to two retries in the function, full-jitter
//!   exponential backoff, each taking a new budget slot; then the record fails and SQS
//!   redelivers it (then the DLQ);
//! - re-auth required (a refused grant, a revoked token) → the connection is marked "needs
//!   reconnect" (`reconnect`), the first worker to mark it alerts a human on the review queue,
//!   and the action is **parked**: handed back 15 min at a time without calling the vendor until
//!   a new credential is stored — delayed, never dead-lettered, never lost;
//! - permanent, auth (still refused after a refresh) or unsupported → the event goes to human
//!   review with the reason, and the record succeeds (retrying cannot help and must not
//!   dead-letter it silently).

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;
use tracing::{info, warn};

use crate::batch::{self, correlation_id, RecordError};
use crate::calls::{within_collecting, CallContext};
use crate::connectors::{ConnectorError, Outcome};
use crate::decisions::{state, DecisionStore};
use crate::idempotency::{payload_hash, IdempotencyStore};
use crate::pacing::{breaker_key, budget_key, Gate, Pace, Pacer};
use crate::reconnect::Reconnect;
use crate::routing::ActMessage;
use crate::routing::PlannedAction;
use crate::vendors::Connectors;

mod admit;
mod decided;
mod outcomes;
use admit::{admit, ask_budget, connection, credential, give_back, resolve, Admitted, Keyed};
use outcomes::{
    attempt, complete, hand_back, mark_refused, note_after_hand_back, number_attr, park,
    park_until_reconnected, record, record_dead_letter, refused_for_fields, requeue, slot_of,
};

/// Attributes of a handed-back message: how often it waited, and not before when (unix ms).
pub(crate) const BUDGET_WAITS_ATTR: &str = "budget_waits";
/// Message attribute: act does not start a handed-back message before this time (unix ms).
pub const NOT_BEFORE_ATTR: &str = "not_before";
/// When the message was first parked (unix ms): parking is bounded by `MAX_PARK_DAYS`.
pub const PARKED_SINCE_ATTR: &str = "parked_since";
/// How many times a write's outcome was unknown (no answer after it was sent).
pub const UNKNOWN_OUTCOMES_ATTR: &str = "unknown_outcomes";
/// A budget slot reserved for an action (unix µs) and that action's index + 1: the message
/// comes back at the slot and calls without asking the budget again (used once).
pub const RESERVED_AT_ATTR: &str = "reserved_at";
/// Message attribute: which action the slot in [`RESERVED_AT_ATTR`] is for (its index + 1).
pub const RESERVED_FOR_ATTR: &str = "reserved_for";
/// After an unknown outcome, look again this much later (a vendor's search index catches up);
/// the this-many-th unknown outcome of one action goes to a human instead.
pub(crate) const OUTCOME_CHECK_DELAY: Duration = Duration::from_secs(30);
pub(crate) const MAX_UNKNOWN_OUTCOMES: i64 = 3;
/// The longest a call can hold a concurrency slot (the HTTP client's timeout, and then some).
const CALL_HOLD: Duration = Duration::from_secs(30);
/// SQS's longest `DelaySeconds`.
const MAX_DELAY: Duration = Duration::from_secs(900);
/// Time an action needs once started, in the worst case: another worker's token refresh to wait
/// out (the lease, 20 s, plus 5), one vendor call to its timeout (3 s connect + 10 s), and the
/// writes around it. With less left, the work is handed back for the next invocation instead of
/// being cut off by the timeout — which would charge every record of the batch a receive.
/// The template's act `Timeout` (90 s) leaves room for one such action after 45 s of others.
pub const ACTION_START_NEEDS: Duration = Duration::from_secs(45);
/// Time one more attempt (a retry after a transient failure or a refreshed token) needs.
pub(crate) const ATTEMPT_NEEDS: Duration = Duration::from_secs(18);
const DEADLINE_NEAR: &str = "invocation deadline near; continued in the next invocation";

/// Time left before the Lambda deadline (epoch ms); `None` when there is none (direct calls).
fn time_left(deadline_ms: u64) -> Option<Duration> {
    let deadline = i64::try_from(deadline_ms).ok().filter(|d| *d > 0)?;
    let left = deadline - Utc::now().timestamp_millis();
    Some(Duration::from_millis(left.max(0) as u64))
}

fn short_of(deadline_ms: u64, needs: Duration) -> bool {
    time_left(deadline_ms).is_some_and(|left| left < needs)
}

/// What act needs: its queues, stores, connectors and pacing; built once per process.
#[derive(Clone, Debug)]
pub struct Act {
    /// Sends to the act and review queues.
    pub sqs: aws_sdk_sqs::Client,
    /// Builds the connector, with its credential, that each action calls.
    pub connectors: Connectors,
    /// The action keys that make each action happen once.
    pub idempotency: IdempotencyStore,
    /// The decision records, where each action's result is noted.
    pub decisions: DecisionStore,
    /// The shared budgets and breakers each vendor call goes through.
    pub pacer: Pacer,
    /// The act queue, where waiting work is handed back to (`ACT_QUEUE_URL`).
    pub act_queue_url: String,
    /// The review queue, where events go to a human (`REVIEW_QUEUE_URL`).
    pub review_queue_url: String,
    /// The "needs reconnect" marks that park the actions of a connection whose grant was refused.
    pub reconnect: Reconnect,
    /// The act queue's `maxReceiveCount`: a failure on this receive dead-letters the message.
    pub max_receives: u64,
    /// Parked work waits this long for a reconnect, then goes to a human.
    pub max_park: chrono::Duration,
    /// How long after an unknown outcome the action is looked at again.
    pub outcome_check_delay: Duration,
    /// With `DRIFT_TABLE` set: a write refused for a field becomes an API drift finding.
    pub drift: Option<crate::drift::store::DriftStore>,
    /// Carries out what a person decided through a door that must answer at once.
    pub decider: crate::handlers::decision::Decider,
    /// Answers a person whose click act decided (a user group's member, or not).
    pub answers: crate::handlers::decision::Answers,
}

impl Act {
    /// Everything act needs, from its settings; built once per process.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Result<Self, Error> {
        // Action keys outlive the longest wait (parking, a day's budget) with a margin, so work
        // sent round again never finds its finished actions' keys gone.
        let key_ttl = s.max_park().max(chrono::Duration::days(1)) + chrono::Duration::days(2);
        // A broken connector description stops act at start, naming its file and line.
        crate::connectors::declared::check_compiled()?;
        let decisions = DecisionStore::new(aws.ddb.clone(), s.decisions_table()?)
            .with_retention_days(s.decision_retention_days());
        let connectors = Connectors::with_refresher(aws, s)?;
        Ok(Act {
            answers: crate::handlers::decision::Answers::new(connectors.http.clone(), s),
            decider: crate::handlers::decision::Decider {
                sqs: aws.sqs.clone(),
                decisions: decisions.clone(),
                routing: crate::routing::RoutingConfig::from_settings(s)?,
                review_queue_url: s.review_queue_url()?.to_owned(),
                act_queue_url: s.act_queue_url()?.to_owned(),
            },
            sqs: aws.sqs.clone(),
            max_park: s.max_park(),
            outcome_check_delay: OUTCOME_CHECK_DELAY,
            idempotency: IdempotencyStore::new(aws.ddb.clone(), s.idempotency_table()?)
                .with_ttl(key_ttl),
            decisions,
            pacer: Pacer::from_settings(&aws.ddb, s, &crate::vendors::DOCUMENTED)?,
            act_queue_url: s.act_queue_url()?.to_owned(),
            review_queue_url: s.review_queue_url()?.to_owned(),
            reconnect: Reconnect::new(aws.ddb.clone(), s.pacing_table()?),
            connectors,
            max_receives: s.max_receives(),
            drift: s
                .optional("DRIFT_TABLE")
                .map(|t| crate::drift::store::DriftStore::new(aws.ddb.clone(), t)),
        })
    }
}

/// act's Lambda handler: works through each act queue message (planned actions, or a person's
/// decision) and reports the records that failed, for SQS to redeliver.
pub async fn handler(deps: &Act, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let deadline = event.context.deadline;
    let response = batch::process(event.payload, |m| async move {
        let last = batch::last_receive(&m, deps.max_receives);
        let result = act_one(deps, m.clone(), deadline).await;
        if let (Err(e), true) = (&result, last) {
            record_dead_letter(deps, &m, e).await;
        }
        result
    })
    .await?;
    crate::connectors::structure::store_observed(deps.drift.as_ref(), "act").await;
    Ok(response)
}

async fn act_one(deps: &Act, message: SqsMessage, deadline_ms: u64) -> Result<(), RecordError> {
    let correlation = correlation_id(&message);
    let body = message.body.as_deref().unwrap_or_default();
    if let Ok(ask) = serde_json::from_str::<crate::routing::GroupClick>(body) {
        return decided::group_click(deps, ask).await;
    }
    if let Ok(decided) = serde_json::from_str::<crate::routing::DecidedMessage>(body) {
        return decided::decided(&deps.decider, decided).await;
    }
    if let Ok(timer) = serde_json::from_str::<crate::routing::ApprovalTimer>(body) {
        return decided::timer(deps, timer).await;
    }
    let msg: ActMessage = serde_json::from_str(body).map_err(|e| {
        RecordError(format!(
            "message is not an act message ({e}); it will be dead-lettered"
        ))
    })?;
    // A wait longer than SQS's 15-minute delay arrives early: send it round again.
    let not_before = number_attr(&message, NOT_BEFORE_ATTR);
    let now_ms = Utc::now().timestamp_millis();
    if not_before > now_ms + 1_000 {
        let left = Duration::from_millis((not_before - now_ms) as u64);
        return hand_back(
            deps,
            &message,
            &msg,
            left,
            "still waiting",
            &slot_of(&message),
        )
        .await;
    }
    let mut results = Vec::with_capacity(msg.actions.len());
    let mut last_completion = None;
    for (index, action) in msg.actions.iter().enumerate() {
        // Review notices get their own keys: an event may be both acted on and, later, reviewed.
        let stage = if msg.card_update {
            msg.key_stage.as_deref().unwrap_or("decision")
        } else if msg.review_reason.is_some() {
            "review"
        } else {
            "act"
        };
        let key = format!("{stage}#{}#{index}", msg.event.id);
        if short_of(deadline_ms, ACTION_START_NEEDS) {
            // Done actions stay done (their keys); the copy carries on from the first undone one,
            // with the slot reserved for it (no call was made since: actions before it are done).
            let slot = slot_of(&message);
            requeue(deps, &message, Duration::ZERO, DEADLINE_NEAR, &slot).await?;
            note_after_hand_back(deps, &msg, state::WAITING, &results, DEADLINE_NEAR).await;
            return Ok(());
        }
        let hash = payload_hash(&serde_json::to_vec(action).map_err(RecordError::new)?);
        // A slot reserved for this action when it was handed back. Only on the copy's first
        // receive: a redelivery of the same copy (after a failure or a crash) may already have
        // used it, and a slot used twice would over-admit.
        let first_receive = crate::batch::receive_count(&message) == 1;
        let reserved = (first_receive
            && number_attr(&message, RESERVED_FOR_ATTR) == index as i64 + 1)
            .then(|| number_attr(&message, RESERVED_AT_ATTR))
            .filter(|at| *at > 0);
        // A message classify sent, on its first receive, has no action done yet: ask the budget
        // before claiming the key, so waiting costs no claim and release. A copy sent round
        // again (it carries `not_before`) claims first: its first actions are done, and a slot
        // taken for them would be wasted.
        let fresh = first_receive && number_attr(&message, NOT_BEFORE_ATTR) == 0;
        let (reserved, built, waiting) = match reserved {
            Some(at) => (Some(at), None, None),
            None if !fresh => (None, None, None),
            None => match admit(deps, action).await {
                Admitted::Now(c) => (Some(Utc::now().timestamp_micros()), Some(c), None),
                Admitted::Unasked => (None, None, None),
                Admitted::Later(paced) => (None, None, Some(paced)),
            },
        };
        let claimed = waiting.is_none();
        // Whether the effect may exist already: then a key given back keeps that doubt.
        let mut maybe_done = number_attr(&message, UNKNOWN_OUTCOMES_ATTR) > 0;
        let (paced, calls, latency_ms) = match waiting {
            Some(paced) => (paced, Vec::new(), 0),
            None => {
                // A key taken over from a dead worker, or a write whose answer was lost: the
                // effect may exist already, and connectors with a vendor-side key look first.
                match admit::claim(deps, &msg, stage, index, action, &key, &hash, deadline_ms)
                    .await?
                {
                    Keyed::Go { reclaimed } => maybe_done |= reclaimed,
                    Keyed::Done(result) => {
                        info!(event_id = %msg.event.id, index, "action already done; not repeated");
                        results.push(attempt(
                            stage,
                            index,
                            action,
                            "already_done",
                            vec![],
                            result,
                        ));
                        continue;
                    }
                    Keyed::Busy(wait) => {
                        // No note: the holder's record is the event's, and may say done by now.
                        let why = "in progress in another worker";
                        return requeue(deps, &message, wait, why, &[]).await;
                    }
                    Keyed::Changed => {
                        let reason = format!("action {index} changed since it was first planned");
                        return park(deps, &msg, &correlation, &results, reason).await;
                    }
                }
                let started = std::time::Instant::now();
                let context =
                    CallContext::new(&action.action).for_event(&msg.event.id, &correlation);
                // Boxed: the paced call is a deep future; inline, act's future overflows a
                // 2 MiB stack.
                let paced = paced_call(deps, action, &key, reserved, built, deadline_ms);
                let paced = Box::pin(paced);
                let call = crate::connectors::maybe_done(maybe_done, paced);
                let (paced, calls) = within_collecting(context, call).await;
                (paced, calls, started.elapsed().as_millis() as u64)
            }
        };
        let outcome = match paced {
            Paced::Done(outcome) => outcome,
            Paced::Wait(wait, why) => {
                give_back(claimed, maybe_done, deps, &key).await;
                let extra = json!({"wait_ms": wait.as_millis() as u64, "why": why});
                results.push(attempt(stage, index, action, "waiting", calls, extra));
                hand_back(deps, &message, &msg, wait, why, &[]).await?;
                note_after_hand_back(deps, &msg, state::WAITING, &results, why).await;
                return Ok(());
            }
            Paced::Reserved(at_us) => {
                give_back(claimed, maybe_done, deps, &key).await;
                let wait_ms = (at_us / 1_000 - Utc::now().timestamp_millis()).max(0);
                let why = "no budget";
                let slot = chrono::DateTime::from_timestamp_micros(at_us).map(|t| t.to_rfc3339());
                let extra = json!({"wait_ms": wait_ms, "why": why, "slot_reserved_at": slot});
                results.push(attempt(stage, index, action, "waiting", calls, extra));
                let slot = [
                    (RESERVED_AT_ATTR, at_us),
                    (RESERVED_FOR_ATTR, index as i64 + 1),
                ];
                let wait = Duration::from_millis(wait_ms as u64);
                hand_back(deps, &message, &msg, wait, why, &slot).await?;
                note_after_hand_back(deps, &msg, state::WAITING, &results, why).await;
                return Ok(());
            }
            Paced::Failed(e) => {
                give_back(claimed, maybe_done, deps, &key).await;
                return Err(e);
            }
            Paced::OutOfTime => {
                give_back(claimed, maybe_done, deps, &key).await;
                results.push(attempt(
                    stage,
                    index,
                    action,
                    "handed_back",
                    calls,
                    json!({"why": DEADLINE_NEAR}),
                ));
                requeue(deps, &message, Duration::ZERO, DEADLINE_NEAR, &[]).await?;
                note_after_hand_back(deps, &msg, state::WAITING, &results, DEADLINE_NEAR).await;
                return Ok(());
            }
            Paced::Parked(reason) => {
                give_back(claimed, maybe_done, deps, &key).await;
                let extra = json!({"why": reason});
                results.push(attempt(stage, index, action, "parked", calls, extra));
                return park_until_reconnected(deps, &message, &msg, &results, &reason).await;
            }
        };
        match outcome {
            Ok(outcome) => {
                info!(event_id = %msg.event.id, connector = %action.connector, action = %action.action, latency_ms, object_id = ?outcome.object_id, "action done");
                crate::metrics::count(crate::metrics::ACTIONS_DONE, "connector", &action.connector);
                let data = serde_json::to_string(&outcome).map_err(RecordError::new)?;
                if index + 1 == msg.actions.len() && admit::record_outlives_keys(deps) {
                    // The run's last action: the outcome write that follows at once completes it.
                    last_completion = Some((key.clone(), data));
                } else {
                    complete(deps, &key, &data).await;
                }
                let extra = json!({"latency_ms": latency_ms, "object_id": outcome.object_id, "detail": outcome.detail});
                results.push(attempt(stage, index, action, "done", calls, extra));
            }
            Err(e) => {
                warn!(event_id = %msg.event.id, connector = %action.connector, action = %action.action, latency_ms, error = %e, "action failed");
                let unknown = matches!(e, ConnectorError::OutcomeUnknown(_));
                give_back(claimed, maybe_done || unknown, deps, &key).await;
                let extra = json!({"latency_ms": latency_ms, "error": e.to_string()});
                results.push(attempt(stage, index, action, "failed", calls, extra));
                if matches!(
                    e,
                    ConnectorError::Auth(_) | ConnectorError::ReauthRequired(_)
                ) {
                    crate::metrics::count(
                        crate::metrics::AUTH_FAILURES,
                        "connector",
                        &action.connector,
                    );
                }
                if let ConnectorError::OutcomeUnknown(why) = &e {
                    // Not sent again now: the next look goes through the connector's vendor-side
                    // key (Zendesk external_id, Jira label, HubSpot property, Salesforce upsert),
                    // after the vendor's index has caught up.
                    let seen = number_attr(&message, UNKNOWN_OUTCOMES_ATTR) + 1;
                    let what = format!("{}.{}", action.connector, action.action);
                    if seen >= MAX_UNKNOWN_OUTCOMES {
                        let reason = format!("{what}: the vendor gave no answer {seen} times after the request was sent ({why}); check in {} whether it happened before redoing it", action.connector);
                        return park(deps, &msg, &correlation, &results, reason).await;
                    }
                    let reason = format!(
                        "{what}: outcome unknown ({why}); looked up again in {} s",
                        deps.outcome_check_delay.as_secs()
                    );
                    requeue(
                        deps,
                        &message,
                        deps.outcome_check_delay,
                        &reason,
                        &[(UNKNOWN_OUTCOMES_ATTR, seen)],
                    )
                    .await?;
                    note_after_hand_back(deps, &msg, state::WAITING, &results, &reason).await;
                    return Ok(());
                }
                if let ConnectorError::ReauthRequired(reason) = &e {
                    let reason = format!("{} needs reconnect: {reason}", action.connector);
                    mark_refused(deps, &msg, &correlation, &action.connector, &reason).await?;
                    return park_until_reconnected(deps, &message, &msg, &results, &reason).await;
                }
                crate::metrics::count(
                    crate::metrics::ACTIONS_FAILED,
                    "connector",
                    &action.connector,
                );
                let failure = format!("{}.{}: {e}", action.connector, action.action);
                if e.is_retryable() {
                    // The attempt is kept in the record; SQS redelivers the message.
                    record(deps, &msg, state::PLANNED, &results, Some(&failure)).await?;
                    return Err(RecordError(failure));
                }
                let reason = match refused_for_fields(deps, action, &e).await {
                    Some(reason) => reason,
                    None => format!(
                        "{}.{} failed and needs a human: {e}",
                        action.connector, action.action
                    ),
                };
                return park(deps, &msg, &correlation, &results, reason).await;
            }
        }
    }
    let status = if msg.review_reason.is_some() || msg.card_update {
        state::IN_REVIEW
    } else {
        let waited = (Utc::now() - msg.event.received_at)
            .num_milliseconds()
            .max(0);
        crate::metrics::latency_ms(crate::metrics::END_TO_END_LATENCY, &[], waited as f64);
        state::DONE
    };
    let written = record(deps, &msg, status, &results, msg.review_reason.as_deref()).await;
    if let (Err(_), Some((key, data))) = (&written, &last_completion) {
        // The record did not take the completion: the key keeps it, for the redelivery.
        complete(deps, key, data).await;
    }
    written
}

enum Paced {
    /// The vendor answered (or the connector could not be built).
    Done(Result<Outcome, ConnectorError>),
    /// No budget soon, or the vendor rate-limited us: wait this long.
    Wait(Duration, &'static str),
    /// No budget now, but a slot is reserved at this time (unix µs): come back then.
    Reserved(i64),
    /// The pacing table itself failed.
    Failed(RecordError),
    /// The connection is marked "needs reconnect" and still holds the refused credential.
    Parked(String),
    /// Too close to the invocation's deadline for another attempt.
    OutOfTime,
}

/// One action under the credential's shared budget: take a slot (sleeping a short wait) — or use
/// the one `reserved` for it (when it was handed back, or admitted before its key's claim) —
/// call, retry transient failures twice with full-jitter backoff (each retry takes a new slot).
async fn paced_call(
    deps: &Act,
    action: &PlannedAction,
    key: &str,
    mut reserved: Option<i64>,
    built: Option<Box<dyn crate::connectors::Connector>>,
    deadline_ms: u64,
) -> Paced {
    let mut connector = match built {
        Some(c) => c,
        None => match connection(deps, action).await {
            Ok(c) => c,
            Err(paced) => return paced,
        },
    };
    let mut refreshed = false;
    let credential = &credential(deps, action);
    let breaker = breaker_key(&action.connector, credential);
    let now_us = || Utc::now().timestamp_micros();
    let gate = match deps.pacer.breaker.gate(&breaker, now_us()).await {
        Ok(Gate::Open { retry_after }) => return Paced::Wait(retry_after, "circuit open"),
        Ok(gate) => gate,
        Err(e) => return Paced::Failed(RecordError::new(e)),
    };
    let mut backoff = crate::pacing::transient_backoff(crate::pacing::unit_random);
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) && short_of(deadline_ms, ATTEMPT_NEEDS) {
            return Paced::OutOfTime;
        }
        if let Some(at_us) = reserved.take() {
            // Paid for when it was reserved; a slot used late never over-admits, early would.
            let early = at_us - now_us();
            if early > 0 {
                tokio::time::sleep(Duration::from_micros(early as u64)).await;
            }
        } else {
            match ask_budget(deps, action, credential).await {
                Ok(Pace::Go) => {}
                Ok(Pace::Reserved { at_us }) => return Paced::Reserved(at_us),
                Ok(Pace::Defer(wait)) => return Paced::Wait(wait, "no budget"),
                Err(e) => return Paced::Failed(RecordError::new(e)),
            }
        }
        // Vendors that end a session after N calls: re-authenticate before, not after.
        match deps.connectors.session_call(&action.connector).await {
            Ok(Some(c)) => connector = c,
            Ok(None) => {}
            Err(e) => return resolve(e),
        }
        // A concurrency cap: a slot in flight, or come back shortly.
        let permit = match deps.pacer.limits.concurrency(&action.connector) {
            Some(cap) => match deps
                .pacer
                .limiter
                .concurrency()
                .acquire(&budget_key(&action.connector, credential), cap, CALL_HOLD)
                .await
            {
                Ok(Some(p)) => Some(p),
                Ok(None) => return Paced::Wait(Duration::from_secs(1), "concurrency cap"),
                Err(e) => return Paced::Failed(RecordError::new(e)),
            },
            None => None,
        };
        let (result, spacing) =
            crate::connectors::with_budget_hint(connector.perform(action, key)).await;
        if let Some(p) = permit {
            deps.pacer.limiter.concurrency().release(p).await;
        }
        if result.is_ok() {
            // What the vendor says is left: every worker slows to it, no 429 needed.
            if let Err(e) = deps
                .pacer
                .learn(&action.connector, credential, spacing)
                .await
            {
                warn!(error = %e, "could not record the vendor's remaining budget");
            }
        }
        // A failing API is not hammered: in-function retries draw on the credential's retry budget.
        let retry_delay = match &result {
            Err(ConnectorError::Transient(_)) => match backoff.next() {
                Some(delay) => deps
                    .pacer
                    .retry_allowed(&action.connector, credential, now_us())
                    .await
                    .unwrap_or(false)
                    .then_some(delay),
                None => None,
            },
            _ => None,
        };
        match result {
            // The credential was rejected: refresh it (once across workers) and retry once.
            Err(ConnectorError::Auth(reason)) if !refreshed => {
                refreshed = true;
                match deps.connectors.after_auth_failure(&action.connector).await {
                    Ok(true) => match deps.connectors.get(&action.connector).await {
                        Ok(c) => {
                            crate::calls::next_attempt();
                            connector = c
                        }
                        Err(e) => return resolve(e),
                    },
                    Ok(false) => return Paced::Done(Err(ConnectorError::Auth(reason))),
                    Err(e) => return resolve(e),
                }
            }
            Err(ConnectorError::RateLimited { retry_after }) => {
                // Everyone on this credential waits, not just this worker.
                return match deps
                    .pacer
                    .rate_limited(&action.connector, credential, retry_after)
                    .await
                {
                    Ok(wait) => Paced::Wait(wait, "rate limited by the vendor"),
                    Err(e) => Paced::Failed(RecordError::new(e)),
                };
            }
            Err(ConnectorError::Transient(e)) => match retry_delay {
                Some(delay) => {
                    warn!(connector = %action.connector, error = %e, ?delay, "transient failure; retrying");
                    tokio::time::sleep(delay).await;
                    crate::calls::next_attempt();
                }
                None => {
                    // The breaker counts it; if that opens the circuit, the work waits.
                    return match deps.pacer.breaker.failure(&breaker, now_us()).await {
                        Ok(Gate::Open { retry_after }) => {
                            warn!(connector = %action.connector, "circuit opened");
                            Paced::Wait(retry_after, "circuit opened")
                        }
                        Ok(_) => Paced::Done(Err(ConnectorError::Transient(e))),
                        Err(pe) => Paced::Failed(RecordError::new(pe)),
                    };
                }
            },
            // No answer to a write: the breaker counts it; act looks again later.
            Err(ConnectorError::OutcomeUnknown(e)) => {
                if let Err(pe) = deps.pacer.breaker.failure(&breaker, now_us()).await {
                    warn!(error = %pe, "could not count the failure on the circuit");
                }
                return Paced::Done(Err(ConnectorError::OutcomeUnknown(e)));
            }
            // The vendor answered: a recovering circuit closes.
            other => {
                if !matches!(gate, Gate::Closed { failures: 0 }) {
                    if let Err(e) = deps.pacer.breaker.success(&breaker).await {
                        warn!(error = %e, "could not close the circuit");
                    }
                }
                return Paced::Done(other);
            }
        }
    }
}

#[cfg(test)]
mod tests;

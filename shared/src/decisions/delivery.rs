//! Intake's claim on a delivery, kept on the event's decision record rather than in an
//! idempotency item of its own beside an "accepted" stub: the event id is derived from the
//! source and the delivery id, so the record *is* the delivery's key. Two writes per delivery
//! (the claim, then `queued_at` once the enqueue went through) where there were three.
//!
//! While the record says `accepted` without `queued_at`, the delivery is intake's until
//! `claim_until` (its Lambda deadline): a redelivery then gets "in progress"; past it, the try
//! died before it queued, and a redelivery takes the claim over. Once queued, or once a later
//! stage wrote, every redelivery is a duplicate. A record past its retention (DynamoDB's TTL
//! deletes lag by up to two days) is deleted and the delivery claimed afresh, as it would be
//! after the TTL ran.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use super::{state, unless_condition_failed, DecisionError, DecisionStore};
use crate::event::Event;
use crate::idempotency::{get_s, n, s, Claim};

const CLAIM: &str = "attribute_not_exists(event_id) OR (#st = :accepted AND attribute_not_exists(queued_at) AND claim_until < :now_ms AND payload_hash = :hash)";

impl DecisionStore {
    /// Claim `event`'s delivery: `Claimed` (or `Reclaimed`, taken over from a try whose window
    /// ran out) means this caller queues it; `Completed` carries the event id for the duplicate's
    /// answer; `InProgress` and `PayloadMismatch` are refused.
    pub async fn claim_delivery(
        &self,
        event: &Event,
        correlation_id: &str,
        payload_hash: &str,
        now: DateTime<Utc>,
        claim_until_ms: i64,
    ) -> Result<Claim, DecisionError> {
        match self
            .try_claim(event, correlation_id, payload_hash, now, claim_until_ms)
            .await?
        {
            Err(expired) => {
                self.delete_expired(&event.id, expired).await?;
                Ok(self
                    .try_claim(event, correlation_id, payload_hash, now, claim_until_ms)
                    .await?
                    .unwrap_or(Claim::InProgress))
            }
            Ok(claim) => Ok(claim),
        }
    }

    /// One claim; `Err(expiration)` when a record past its retention stands in the way.
    async fn try_claim(
        &self,
        event: &Event,
        correlation_id: &str,
        payload_hash: &str,
        now: DateTime<Utc>,
        claim_until_ms: i64,
    ) -> Result<Result<Claim, i64>, DecisionError> {
        let mut u = self.update(&event.id);
        self.base(&mut u, event, correlation_id, now);
        u.set_new("status", s(state::ACCEPTED));
        u.set("payload_hash", s(payload_hash));
        u.set("claim_until", n(claim_until_ms));
        u.names.insert("#st".into(), "status".into());
        u.values.insert(":accepted".into(), s(state::ACCEPTED));
        u.values.insert(":now_ms".into(), n(now.timestamp_millis()));
        u.values.insert(":hash".into(), s(payload_hash));
        let sent = u
            .req
            .condition_expression(CLAIM)
            .update_expression(format!("SET {}", u.sets.join(", ")))
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match sent {
            Ok(out) if out.attributes.as_ref().is_some_and(|a| !a.is_empty()) => {
                return Ok(Ok(Claim::Reclaimed))
            }
            Ok(_) => return Ok(Ok(Claim::Claimed)),
            Err(e) => e,
        };
        let old = match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
            _ => return Err(DecisionError(crate::aws::error_message(&err))),
        };
        let Some(old) = old else {
            // No ALL_OLD (not expected): a competing writer; the sender may simply retry.
            return Ok(Ok(Claim::InProgress));
        };
        let expiration = old
            .get("expiration")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok());
        if let Some(at) = expiration.filter(|at| *at < now.timestamp()) {
            return Ok(Err(at));
        }
        if get_s(&old, "payload_hash").is_some_and(|h| h != payload_hash) {
            return Ok(Ok(Claim::PayloadMismatch));
        }
        let queued = old.contains_key("queued_at");
        Ok(Ok(match get_s(&old, "status") {
            Some(state::ACCEPTED) if !queued => Claim::InProgress,
            _ => Claim::Completed {
                data: Some(event.id.clone()),
            },
        }))
    }

    /// The enqueue went through (`queued_at`, epoch ms): redeliveries are duplicates from now on.
    pub async fn mark_queued(
        &self,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DecisionError> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("event_id", s(event_id))
            .update_expression("SET queued_at = :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DecisionError(crate::aws::error_message(&e)))
    }

    /// Remove a record past its retention (only if it is still that one).
    async fn delete_expired(&self, event_id: &str, expiration: i64) -> Result<(), DecisionError> {
        let sent = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("event_id", s(event_id))
            .condition_expression("expiration = :exp")
            .expression_attribute_values(":exp", n(expiration))
            .send()
            .await;
        unless_condition_failed(sent)
    }

    /// Give the claim back after the enqueue failed, so the sender's retry is taken at once.
    pub async fn release_delivery(&self, event_id: &str) -> Result<(), DecisionError> {
        let sent = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("event_id", s(event_id))
            .update_expression("SET claim_until = :zero")
            .condition_expression("#st = :accepted AND attribute_not_exists(queued_at)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":accepted", s(state::ACCEPTED))
            .send()
            .await;
        // A failed condition: queued, or a later stage wrote; nothing to give back.
        unless_condition_failed(sent)
    }
}

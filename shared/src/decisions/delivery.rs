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

use chrono::{DateTime, Utc};

use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{standing, state, store_error, DecisionStore, StoreError};
use crate::aws::{unless_condition_failed, Store};
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
    ) -> Result<Claim, StoreError> {
        let claim = |may_delete| {
            self.claim(
                event,
                correlation_id,
                payload_hash,
                now,
                claim_until_ms,
                may_delete,
            )
        };
        match claim(true).await? {
            // The expired record is gone: claim afresh, once.
            None => Ok(claim(false).await?.unwrap_or(Claim::InProgress)),
            Some(claim) => Ok(claim),
        }
    }

    /// One claim; `None` when an expired record stood in the way and was deleted
    /// (`may_delete`).
    async fn claim(
        &self,
        event: &Event,
        correlation_id: &str,
        payload_hash: &str,
        now: DateTime<Utc>,
        claim_until_ms: i64,
        may_delete: bool,
    ) -> Result<Option<Claim>, StoreError> {
        let mut u = self.update(&event.id);
        self.base(&mut u, event, correlation_id, now);
        u.set_new("status", s(state::ACCEPTED));
        u.set("payload_hash", s(payload_hash));
        // Read by the next claim: a try that died before it queued is taken over after this.
        u.set("claim_until", n(claim_until_ms));
        u.bind_name("#st", "status");
        u.bind(":accepted", s(state::ACCEPTED));
        u.bind(":now_ms", n(now.timestamp_millis()));
        u.bind(":hash", s(payload_hash));
        let sent = u
            .request()
            .condition_expression(CLAIM)
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match sent {
            // Written over a record that stood (a claim whose window ran out): a takeover.
            Ok(out) if out.attributes.as_ref().is_some_and(|a| !a.is_empty()) => {
                return Ok(Some(Claim::Reclaimed))
            }
            Ok(_) => return Ok(Some(Claim::Claimed)),
            Err(e) => standing(e)?,
        };
        let expiration = old
            .get("expiration")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok());
        if let Some(at) = expiration.filter(|at| *at < now.timestamp() && may_delete) {
            // Past its retention (TTL deletes lag): removed, then claimed afresh.
            self.delete_expired(&event.id, at).await?;
            return Ok(None);
        }
        if old.is_empty() {
            // No item with the failure (not expected): a competing writer; the sender retries.
            return Ok(Some(Claim::InProgress));
        }
        if get_s(&old, "payload_hash").is_some_and(|h| h != payload_hash) {
            return Ok(Some(Claim::PayloadMismatch));
        }
        let queued = old.contains_key("queued_at");
        Ok(Some(match get_s(&old, "status") {
            Some(state::ACCEPTED) if !queued => Claim::InProgress,
            _ => Claim::Completed {
                data: Some(event.id.clone()),
            },
        }))
    }

    /// The enqueue went through (`queued_at`, epoch ms): redeliveries are duplicates from now on.
    pub async fn mark_queued(&self, event_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("event_id", s(event_id))
            .update_expression("SET queued_at = :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error(crate::aws::error_message(&e)))
    }

    /// Remove a record past its retention (only if it is still that one).
    async fn delete_expired(&self, event_id: &str, expiration: i64) -> Result<(), StoreError> {
        let sent = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("event_id", s(event_id))
            .condition_expression("expiration = :exp")
            .expression_attribute_values(":exp", n(expiration))
            .send()
            .await;
        unless_condition_failed(Store::Decisions, sent)
    }

    /// Give the claim back after the enqueue failed, so the sender's retry is taken at once.
    pub async fn release_delivery(&self, event_id: &str) -> Result<(), StoreError> {
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
        unless_condition_failed(Store::Decisions, sent)
    }
}

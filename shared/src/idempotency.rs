//! Idempotency records in DynamoDB, with the semantics of Powertools for AWS Lambda:
//! one conditional PutItem claims a key; `expiration` (epoch **seconds**, the table's TTL
//! attribute) bounds how long a completed result is remembered; `in_progress_expiration`
//! (epoch **milliseconds**, from the Lambda deadline) frees a key whose worker died mid-way.
//! Expiry is checked in code because DynamoDB's TTL deletes lag by up to two days.

use crate::aws::{Store, StoreError};
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The `status` of a claimed key that is not yet completed.
pub const STATUS_INPROGRESS: &str = "INPROGRESS";
pub(crate) const STATUS_COMPLETED: &str = "COMPLETED";

/// How long a key claimed without a Lambda deadline (local tools, `Context::default()`) stays
/// in progress. A zero deadline means "unknown", never "already expired" (a Powertools bug).
pub(crate) const DEFAULT_IN_PROGRESS_MS: i64 = 60_000;

/// The outcome of trying to claim a key.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// This caller owns the key now and must `complete` or `release` it.
    Claimed,
    /// As `Claimed`, taken over from a holder whose in-progress window ran out: it may have made
    /// the effect before it died, so a non-idempotent action looks before it acts.
    Reclaimed,
    /// Already done; `data` is what the first caller stored.
    Completed {
        /// What the first caller stored on completion; `None` when the record holds none.
        data: Option<String>,
    },
    /// Someone else holds the key and its in-progress window has not run out.
    InProgress,
    /// The key was used before with a different payload.
    PayloadMismatch,
}

/// Idempotency keys in a DynamoDB table: claimed, completed or released per key.
#[derive(Clone, Debug)]
pub struct IdempotencyStore {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    /// How long a completed record is remembered.
    pub ttl_secs: i64,
}

/// SHA-256 of a payload, hex: stored with the record to catch key reuse.
pub fn payload_hash(payload: &[u8]) -> String {
    // Into a buffer: `hex::encode` builds the string a char at a time, a third of this call.
    let digest = Sha256::digest(payload);
    let mut out = [0u8; 64];
    match hex::encode_to_slice(digest, &mut out) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => hex::encode(digest), // not reached: 32 bytes are exactly 64 digits
    }
}

/// When a claim made now stops being "in progress": the Lambda deadline, or a default.
pub(crate) fn in_progress_until_ms(lambda_deadline_ms: u64, now: DateTime<Utc>) -> i64 {
    match i64::try_from(lambda_deadline_ms) {
        Ok(ms) if ms > 0 => ms,
        _ => now.timestamp_millis() + DEFAULT_IN_PROGRESS_MS,
    }
}

impl IdempotencyStore {
    /// A store over the DynamoDB table `table`, remembering completed keys 24 hours.
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
            ttl_secs: 24 * 3600,
        }
    }

    /// Remember completed keys this long (the claim's and the completion's `expiration`).
    pub(crate) fn with_ttl(mut self, ttl: chrono::Duration) -> Self {
        self.ttl_secs = ttl.num_seconds().max(1);
        self
    }

    /// Try to claim `key` for the payload whose hash is `hash`, held in progress until
    /// `in_progress_until_ms` (epoch milliseconds); the [`Claim`] says how it went.
    pub async fn claim(
        &self,
        key: &str,
        hash: &str,
        now: DateTime<Utc>,
        in_progress_until_ms: i64,
    ) -> Result<Claim, StoreError> {
        let result = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("id", s(key))
            .item("status", s(STATUS_INPROGRESS))
            .item("expiration", n(now.timestamp() + self.ttl_secs))
            .item("in_progress_expiration", n(in_progress_until_ms))
            .item("payload_hash", s(hash))
            .condition_expression(
                "attribute_not_exists(id) OR expiration < :now OR (#status = :inprogress AND in_progress_expiration < :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .expression_attribute_values(":inprogress", s(STATUS_INPROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(out) => {
                let taken_over = out
                    .attributes
                    .as_ref()
                    .and_then(|old| get_s(old, "status"))
                    .is_some_and(|s| s == STATUS_INPROGRESS);
                return Ok(if taken_over {
                    Claim::Reclaimed
                } else {
                    Claim::Claimed
                });
            }
            Err(err) => err,
        };
        let old = match err.as_service_error() {
            Some(e) if e.is_conditional_check_failed_exception() => match e {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                    c.item().cloned()
                }
                _ => None,
            },
            _ => return Err(StoreError::sdk(Store::Idempotency, &err)),
        };
        // Without ALL_OLD (should not happen) read the record back.
        let old = match old {
            Some(item) => item,
            None => match self.get(key).await? {
                Some(item) => item,
                // Deleted between our put and our read: the caller may simply try again.
                None => return Ok(Claim::InProgress),
            },
        };
        if get_s(&old, "payload_hash").is_some_and(|h| h != hash) {
            return Ok(Claim::PayloadMismatch);
        }
        Ok(match get_s(&old, "status") {
            Some(STATUS_COMPLETED) => Claim::Completed {
                data: get_s(&old, "data").map(str::to_owned),
            },
            _ => Claim::InProgress,
        })
    }

    /// Mark a claimed key done, remembering `data` for later duplicates.
    pub(crate) async fn complete(
        &self,
        key: &str,
        data: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("id", s(key))
            .update_expression("SET #status = :done, #data = :data, expiration = :exp")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#data", "data")
            .expression_attribute_values(":done", s(STATUS_COMPLETED))
            .expression_attribute_values(":data", s(data))
            .expression_attribute_values(":exp", n(now.timestamp() + self.ttl_secs))
            .send()
            .await
            .map_err(|e| StoreError::sdk(Store::Idempotency, &e))?;
        Ok(())
    }

    /// Give a claimed key back after a failure, so a retry can claim it again.
    pub async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key("id", s(key))
            .send()
            .await
            .map_err(|e| StoreError::sdk(Store::Idempotency, &e))?;
        Ok(())
    }

    /// Give a claimed key back while its effect may exist: it stays in progress with its hold
    /// ended, so the next claim takes it over (`Reclaimed`) and looks before it acts. A key
    /// completed meanwhile is left as it is.
    pub(crate) async fn release_in_doubt(&self, key: &str) -> Result<(), StoreError> {
        let sent = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", s(key))
            .update_expression("SET in_progress_expiration = :ended")
            .condition_expression("#status = :inprogress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ended", n(0))
            .expression_attribute_values(":inprogress", s(STATUS_INPROGRESS))
            .send()
            .await;
        crate::aws::unless_condition_failed(Store::Idempotency, sent)
    }

    /// Until when (unix ms) the key's holder may still be working on it, if it is held.
    pub(crate) async fn held_until_ms(&self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .get(key)
            .await?
            .filter(|item| get_s(item, "status") == Some(STATUS_INPROGRESS))
            .and_then(|item| {
                item.get("in_progress_expiration")?
                    .as_n()
                    .ok()?
                    .parse()
                    .ok()
            }))
    }

    async fn get(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::sdk(Store::Idempotency, &e))?;
        Ok(out.item)
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_hash_is_sha256_in_lowercase_hex() {
        // FIPS 180-2's vectors: "abc", and the empty message.
        assert_eq!(
            payload_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            payload_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn zero_deadline_means_unknown_not_expired() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            in_progress_until_ms(0, now),
            1_700_000_000_000 + DEFAULT_IN_PROGRESS_MS
        );
        assert_eq!(
            in_progress_until_ms(1_700_000_005_000, now),
            1_700_000_005_000
        );
    }
}

//! A circuit breaker per connector and credential, its state in one DynamoDB item shared by every
//! worker: closed (calls go) → `threshold` consecutive transient failures → open for `cooldown`
//! (calls are *delayed*, never failed) → half-open: exactly one worker wins the probe slot (a
//! conditional write), the others keep waiting; the probe's success closes the circuit, its
//! failure re-opens it. A passing canary closes it too.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::gcra::pacing_error;
use super::gcra::{n, num};
use crate::aws::StoreError;

/// What a breaker says about calling now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Call; `failures` recent consecutive failures (so a success knows to reset them).
    Closed {
        /// Consecutive transient failures counted so far (below the threshold).
        failures: u32,
    },
    /// Call: this worker is the half-open probe.
    Probe,
    /// Do not call yet; come back after this long.
    Open {
        /// How long to wait before asking again.
        retry_after: Duration,
    },
}

/// The circuit breakers, one DynamoDB item per connector and credential in the pacing table.
#[derive(Clone, Debug)]
pub struct Breaker {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    /// Consecutive transient failures that open the circuit.
    pub threshold: u32,
    /// How long an opened circuit stays open before a probe is allowed.
    pub cooldown: Duration,
    /// How long a probe may take before another worker may probe instead.
    pub probe_timeout: Duration,
}

pub(crate) fn breaker_key(connector: &str, credential: &str) -> String {
    format!("breaker#{connector}#{credential}")
}

impl Breaker {
    /// Breakers kept in `table`: open after 5 failures, for 30 s; a probe may take 30 s.
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
            threshold: 5,
            cooldown: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(30),
        }
    }

    /// Whether a call under breaker `key` may go now (`now_us`: unix microseconds); past the
    /// cooldown, one worker is given the probe and the others wait.
    pub async fn gate(&self, key: &str, now_us: i64) -> Result<Gate, StoreError> {
        let item = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| pacing_error(crate::aws::error_message(&e)))?
            .item
            .unwrap_or_default();
        let field = |k: &str| item.get(k).and_then(num).unwrap_or(0);
        let (failures, open_until) = (field("failures") as u32, field("open_until"));
        if failures < self.threshold {
            return Ok(Gate::Closed { failures });
        }
        if open_until > now_us {
            return Ok(Gate::Open {
                retry_after: Duration::from_micros((open_until - now_us) as u64),
            });
        }
        // Half-open: one worker takes the probe slot.
        let taken = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .update_expression("SET probe_until = :until")
            .condition_expression(
                "failures >= :t AND (attribute_not_exists(probe_until) OR probe_until < :now)",
            )
            .expression_attribute_values(
                ":until",
                n(now_us + self.probe_timeout.as_micros() as i64),
            )
            .expression_attribute_values(":t", n(i64::from(self.threshold)))
            .expression_attribute_values(":now", n(now_us))
            .send()
            .await;
        match taken {
            Ok(_) => Ok(Gate::Probe),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                let probe_until = field("probe_until").max(now_us + 1_000_000);
                Ok(Gate::Open {
                    retry_after: Duration::from_micros((probe_until - now_us) as u64),
                })
            }
            Err(e) => Err(pacing_error(crate::aws::error_message(&e))),
        }
    }

    /// The vendor answered (even with a permanent error): the circuit closes.
    pub async fn success(&self, key: &str) -> Result<(), StoreError> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .update_expression("SET failures = :zero REMOVE open_until, probe_until")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(|e| pacing_error(crate::aws::error_message(&e)))?;
        Ok(())
    }

    /// A transient failure (after the in-function retries): counts toward opening, and re-opens
    /// a half-open circuit whose probe failed.
    pub async fn failure(&self, key: &str, now_us: i64) -> Result<Gate, StoreError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .update_expression("ADD failures :one REMOVE probe_until")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| pacing_error(crate::aws::error_message(&e)))?;
        let failures = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("failures"))
            .and_then(num)
            .unwrap_or(0) as u32;
        if failures < self.threshold {
            return Ok(Gate::Closed { failures });
        }
        let until = now_us + self.cooldown.as_micros() as i64;
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_owned()))
            .update_expression("SET open_until = :until")
            .expression_attribute_values(":until", n(until))
            .send()
            .await
            .map_err(|e| pacing_error(crate::aws::error_message(&e)))?;
        Ok(Gate::Open {
            retry_after: self.cooldown,
        })
    }
}

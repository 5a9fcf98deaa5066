//! Concurrency caps shared by every worker: at most N calls in flight per connector and
//! credential (a vendor's limit on concurrent or long-running requests). The cap is N slot items
//! in the PacingTable (`inflight#<connector>#<credential>#<k>`); a worker takes a free one by a
//! conditional write and deletes it when its call ends. A slot whose holder died frees itself
//! when its lease (the call's longest duration) passes.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::PacingError;

#[derive(Clone, Debug)]
pub struct Concurrency {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

/// A held slot; give it back with [`Concurrency::release`].
#[derive(Debug)]
pub struct Permit {
    id: String,
    owner: String,
}

impl Concurrency {
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            ddb,
            table: table.to_owned(),
        }
    }

    /// One of `cap` slots for `key`, held at most `hold`; `None` when all are taken.
    pub async fn acquire(
        &self,
        key: &str,
        cap: u32,
        hold: Duration,
    ) -> Result<Option<Permit>, PacingError> {
        let now = chrono::Utc::now().timestamp_millis();
        let owner = uuid::Uuid::new_v4().to_string();
        // Start at a random slot so workers do not all contend for slot 0.
        let first = (uuid::Uuid::new_v4().as_u128() % u128::from(cap.max(1))) as u32;
        for i in 0..cap {
            let id = format!("inflight#{key}#{}", (first + i) % cap);
            let out = self
                .ddb
                .put_item()
                .table_name(&self.table)
                .item("id", AttributeValue::S(id.clone()))
                .item("owner", AttributeValue::S(owner.clone()))
                .item(
                    "lease_until",
                    AttributeValue::N((now + hold.as_millis() as i64).to_string()),
                )
                .item(
                    "expiration",
                    AttributeValue::N((now / 1000 + 3_600).to_string()),
                )
                .condition_expression("attribute_not_exists(id) OR lease_until < :now")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await;
            match out {
                Ok(_) => return Ok(Some(Permit { id, owner })),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(PacingError(crate::aws::error_message(&e))),
            }
        }
        Ok(None)
    }

    pub async fn release(&self, permit: Permit) {
        let out = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(permit.id))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", AttributeValue::S(permit.owner))
            .send()
            .await;
        if let Err(e) = out {
            // The lease frees it anyway.
            tracing::warn!(error = %crate::aws::error_message(&e), "could not release a concurrency slot");
        }
    }
}

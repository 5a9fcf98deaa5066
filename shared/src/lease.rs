//! Leases in the PacingTable: an item one owner holds until `lease_until`, taken by a conditional
//! write when it is absent or its lease has run out, and deleted by its owner. The refresh lease
//! (`auth`) and concurrency slots (`pacing::concurrency`) are both leases: a holder that dies
//! frees its item when the lease passes.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

/// Take `id` for `owner` for `hold`. `Ok(false)` when someone else holds it.
pub async fn take(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
    owner: &str,
    hold: Duration,
) -> Result<bool, crate::aws::StoreError> {
    let now = chrono::Utc::now().timestamp_millis();
    let out = ddb
        .put_item()
        .table_name(table)
        .item("id", AttributeValue::S(id.to_owned()))
        .item("owner", AttributeValue::S(owner.to_owned()))
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
    crate::aws::conditional(crate::aws::Store::Pacing, out)
}

/// Give `id` back, if `owner` still holds it. A failure only delays the next holder until the
/// lease passes, so it is logged, not returned.
pub async fn release(ddb: &aws_sdk_dynamodb::Client, table: &str, id: &str, owner: &str) {
    let out = ddb
        .delete_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_owned()))
        .condition_expression("#o = :me")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
        .send()
        .await;
    if let Err(e) = out {
        tracing::warn!(lease = id, error = %crate::aws::error_message(&e), "could not release a lease; it frees itself when it runs out");
    }
}

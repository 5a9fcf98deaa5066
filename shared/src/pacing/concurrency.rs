//! Concurrency caps shared by every worker: at most N calls in flight per connector and
//! credential (a vendor's limit on concurrent or long-running requests). The cap is N slot items
//! in the PacingTable (`inflight#<connector>#<credential>#<k>`); a worker takes a free one by a
//! conditional write and deletes it when its call ends. A slot whose holder died frees itself
//! when its lease (the call's longest duration) passes.

use std::time::Duration;

use crate::aws::StoreError;

/// The concurrency caps: slot items in the pacing table that workers take and give back.
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
    /// Caps whose slot items are kept in `table` (the pacing table).
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
    ) -> Result<Option<Permit>, StoreError> {
        let owner = uuid::Uuid::new_v4().to_string();
        // Start at a random slot so workers do not all contend for slot 0.
        let first = (uuid::Uuid::new_v4().as_u128() % u128::from(cap.max(1))) as u32;
        for i in 0..cap {
            let id = format!("inflight#{key}#{}", (first + i) % cap);
            if crate::lease::take(&self.ddb, &self.table, &id, &owner, hold).await? {
                return Ok(Some(Permit { id, owner }));
            }
        }
        Ok(None)
    }

    /// Gives the slot back if this permit still holds it; a failure is logged, and the slot then
    /// frees itself when its hold runs out.
    pub async fn release(&self, permit: Permit) {
        crate::lease::release(&self.ddb, &self.table, &permit.id, &permit.owner).await;
    }
}

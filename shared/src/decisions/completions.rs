//! Whether an action is done, as its event's record tells it. Act writes the completion of a
//! run's last action in the outcome write it makes anyway (the record, one unit), not on the
//! action's key as well (a second write); so a key found in progress, or taken over from a
//! holder that ran out of time, is looked up here before anyone calls the vendor.

use serde_json::Value;

use super::{DecisionStore, StoreError};

impl DecisionStore {
    /// The attempt that did `action` (`connector.action`, the plan's `index`-th) in `stage`
    /// (`act`, or `review` for the review route's notices), if the record holds one: `done`, or
    /// `already_done` by a later run.
    pub(crate) async fn done_attempt(
        &self,
        event_id: &str,
        stage: &str,
        index: usize,
        action: &str,
    ) -> Result<Option<Value>, StoreError> {
        let record = self.item(event_id, Some("attempts")).await?;
        let attempts = record
            .as_ref()
            .and_then(|i| i.get("attempts"))
            .and_then(|v| v.as_l().ok());
        Ok(attempts
            .into_iter()
            .flatten()
            .filter_map(|a| serde_json::from_str::<Value>(a.as_s().ok()?).ok())
            .find(|a| {
                a["index"].as_u64() == Some(index as u64)
                    && a["action"] == action
                    && matches!(a["status"].as_str(), Some("done" | "already_done"))
                    && a["stage"].as_str().unwrap_or("act") == stage
            }))
    }
}

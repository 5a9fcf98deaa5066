//! Hand-back notes: when act hands an event back without having called the vendor (it waits for
//! budget, its deadline is near, its connection is parked), the record says what it waits on in
//! one `note` that the next hand-back replaces, and counts the hand-backs by kind and connector
//! (`held#<status>#<connector>`).
//!
//! Why not an attempt appended each time, as before: a parked event is handed back every 15
//! minutes for up to `MaxParkDays` (30 at most), which appended 96 attempts a day — a record of
//! ~90 KB after three days, each note billed by the record's size (DynamoDB bills a write per
//! started KB of the item), and past DynamoDB's 400 KB item limit after about two weeks, where
//! the notes stopped being written. A wait for budget in a burst appended one attempt, which took
//! the record past 1 KB, so the note and the final outcome cost 2 units each. Attempts that called
//! the vendor (a 429, a refusal) are still appended: they are what happened.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{DecisionStore, StoreError};
use crate::idempotency::{get_s, s};

/// The attribute holding the current note.
pub(super) const NOTE: &str = "note";
const HELD: &str = "held#";

impl DecisionStore {
    /// The event was handed back in `status` (`waiting`, `parked`) for `reason`: the attempts
    /// this run made before (appended), and `note`, the action it waits on (a JSON object with
    /// `action` as `connector.action`, and `status`), replacing the last note.
    pub(crate) async fn record_note(
        &self,
        event_id: &str,
        status: &str,
        attempts: &[serde_json::Value],
        note: &serde_json::Value,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut u = self.outcome(event_id, status, attempts, Some(reason), now);
        u.set(NOTE, s(note.to_string()));
        let kind = note["status"].as_str().unwrap_or(status);
        let action = note["action"].as_str().unwrap_or_default();
        let connector = action.split('.').next().unwrap_or_default();
        u.add(&format!("{HELD}{kind}#{connector}"), 1);
        u.send().await
    }
}

/// The note a record holds, if any.
pub(super) fn note(item: &HashMap<String, AttributeValue>) -> Option<serde_json::Value> {
    serde_json::from_str(get_s(item, NOTE)?).ok()
}

/// The hand-back counts, by `"<status> <connector>"`.
pub(super) fn held(item: &HashMap<String, AttributeValue>) -> BTreeMap<String, u64> {
    item.iter()
        .filter_map(|(k, v)| {
            let (kind, connector) = k.strip_prefix(HELD)?.split_once('#')?;
            let count = v.as_n().ok()?.parse().ok()?;
            Some((format!("{kind} {connector}"), count))
        })
        .collect()
}

//! Reading the records of a day through the `ByDay` index: the review inbox, `stats`,
//! `explain` by delivery id. The index key is sharded (see [`DAY_SHARDS`]).

use super::{
    from_item, store_error, DecisionRecord, DecisionStore, Item, StoreError, BY_DAY_INDEX,
};
use crate::idempotency::{get_s, s};

/// How many index keys a day's records spread over: every decision write also writes the
/// `ByDay` index under its key, and one key per day would take a whole day's write rate on one
/// index partition (about 1,000 writes a second). Readers query all of them.
pub(crate) const DAY_SHARDS: u32 = 8;

/// The `ByDay` key of an event: its day and a shard drawn from its id.
pub(crate) fn day_key(day: &str, event_id: &str) -> String {
    use sha2::Digest;
    let shard = u32::from(sha2::Sha256::digest(event_id.as_bytes())[0]) % DAY_SHARDS;
    format!("{day}#{shard}")
}

impl DecisionStore {
    /// The event a vendor delivery id became (`switchyard explain` takes either id).
    pub async fn find_by_delivery(
        &self,
        delivery_id: &str,
        days: &[String],
    ) -> Result<Option<DecisionRecord>, StoreError> {
        for day in days {
            // The delivery id that dedupes, or the vendor's own where that was not signed.
            let only = Some((&["delivery_id", "vendor_delivery_id"][..], delivery_id));
            if let Some(r) = self.query_day(day, None, only).await?.pop() {
                return Ok(self.with_evidence(vec![r]).await?.pop());
            }
        }
        Ok(None)
    }

    /// A day's events (`YYYY-MM-DD`, UTC), oldest first, from `since` (RFC 3339) on: the
    /// records without their evidence (counts, states and latencies need none of it).
    pub async fn list_day(
        &self,
        day: &str,
        since: Option<&str>,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let items = self.query_day(day, since, None).await?;
        Ok(items.iter().map(from_item).collect())
    }

    /// A day's events in one state (e.g. `in_review`: the review inbox), oldest first, each
    /// with its evidence (what a human deciding needs).
    pub async fn list_in_state(
        &self,
        day: &str,
        status: &str,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let items = self
            .query_day(day, None, Some((&["status"][..], status)))
            .await?;
        self.with_evidence(items).await
    }

    /// A day's records, only those where one of the attributes `only.0` equals `only.1` when given
    /// (filtered by DynamoDB, so only matches travel back), oldest first: every shard of the
    /// day's index key, and the unsharded key records written before the shards had.
    async fn query_day(
        &self,
        day: &str,
        since: Option<&str>,
        only: Option<(&[&str], &str)>,
    ) -> Result<Vec<Item>, StoreError> {
        let keys =
            std::iter::once(day.to_owned()).chain((0..DAY_SHARDS).map(|k| format!("{day}#{k}")));
        let pages =
            futures::future::try_join_all(keys.map(|key| self.query_key(key, since, only))).await?;
        let mut out: Vec<Item> = pages.into_iter().flatten().collect();
        out.sort_by(|a, b| get_s(a, "received_at").cmp(&get_s(b, "received_at")));
        Ok(out)
    }

    /// One index key's records, every page.
    async fn query_key(
        &self,
        day: String,
        since: Option<&str>,
        only: Option<(&[&str], &str)>,
    ) -> Result<Vec<Item>, StoreError> {
        let day = day.as_str();
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .ddb
                .query()
                .table_name(&self.table)
                .index_name(BY_DAY_INDEX)
                .expression_attribute_names("#day", "day")
                .expression_attribute_values(":day", s(day))
                .set_exclusive_start_key(start.take());
            q = match since {
                Some(t) => q
                    .key_condition_expression("#day = :day AND received_at >= :since")
                    .expression_attribute_values(":since", s(t)),
                None => q.key_condition_expression("#day = :day"),
            };
            if let Some((attrs, value)) = only {
                let any: Vec<String> = (0..attrs.len())
                    .map(|i| format!("#only{i} = :only"))
                    .collect();
                q = q
                    .filter_expression(any.join(" OR "))
                    .expression_attribute_values(":only", s(value));
                for (i, attr) in attrs.iter().enumerate() {
                    q = q.expression_attribute_names(format!("#only{i}"), *attr);
                }
            }
            let page = q
                .send()
                .await
                .map_err(|e| store_error(crate::aws::error_message(&e)))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_records_spread_over_every_shard() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let key = day_key("2026-12-06", &uuid::Uuid::new_v4().to_string());
            assert!(key.starts_with("2026-12-06#"), "{key}");
            seen.insert(key);
            // The same event always has the same key (every stage writes it, set once).
            let id = format!("ev-{i}");
            assert_eq!(day_key("2026-12-06", &id), day_key("2026-12-06", &id));
        }
        assert_eq!(seen.len(), DAY_SHARDS as usize);
    }
}

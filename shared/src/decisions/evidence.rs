//! A decision's evidence — the redacted input, every score, the signals, the route taken and the
//! planned actions — in an item of its own beside the record (key `{event_id}#evidence`),
//! written once by classify and read with the record.
//!
//! Why apart: DynamoDB bills a write per started KB of the item *as it stands*, and the evidence
//! (0.7 KB for a short message, over 1 KB for a long one) took the record past 1 KB, so the
//! record's later writes — the decision, `queued_at`, act's outcome — cost two units each.
//! Written once in its own item, it costs one unit; the record stays under 1 KB.
//!
//! The evidence carries the `decided_at` of the decision it explains and is read only with a
//! record of that decision: evidence left by an expired record's decision (a delivery claimed
//! afresh after its retention) is never shown with a new one. Records written before this
//! version hold their evidence inline and still read.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{from_item, DecisionRecord, DecisionStore, StoreError};
use crate::aws::{unless_condition_failed, Store};
use crate::event::Event;
use crate::idempotency::{get_s, n, s};
use crate::routing::{Classification, PlannedAction};

/// The attributes the evidence item holds (and old records hold inline).
const FIELDS: [&str; 6] = [
    "input",
    "scores",
    "signals",
    "route",
    "actions",
    "documents",
];

/// The evidence item's key for an event.
fn key(event_id: &str) -> String {
    format!("{event_id}#evidence")
}

/// What classify saw and planned, for one decision.
pub struct Evidence<'a> {
    /// The event decided on; its subject and text are stored PII-redacted.
    pub event: &'a Event,
    /// The classifier's answer; its scores and signals are stored.
    pub classification: &'a Classification,
    /// Which route was taken and why, in words.
    pub route: &'a str,
    /// The planned actions; stored with their parameter values redacted.
    pub actions: &'a [PlannedAction],
    /// What each attached document gave (none: the attribute is absent).
    pub documents: &'a [crate::documents::Read],
}

impl DecisionStore {
    /// Write the evidence of the decision made at `decided_at`. `first` is the decision's own
    /// writer, whose evidence stands; otherwise (a retry rebuilding evidence a crash lost) it is
    /// written only where none of this decision exists yet.
    pub(super) async fn put_evidence(
        &self,
        e: &Evidence<'_>,
        decided_at: &str,
        first: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let c = e.classification;
        let mut req = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("event_id", s(key(&e.event.id)))
            .item("decided_at", s(decided_at))
            .item("expiration", n(now.timestamp() + self.retention_secs))
            .item("input", s(crate::redact::redact(&e.event.content())))
            .item("route", s(e.route))
            .item("actions", s(super::redacted_actions(e.actions)));
        // A rebuilt decision has no scores or signals (they died with the process that made
        // it): absent, not empty.
        if !c.scores.is_empty() {
            req = req.item(
                "scores",
                s(serde_json::to_string(&c.scores).unwrap_or_default()),
            );
        }
        if !c.signals.is_empty() {
            req = req.item("signals", s(c.signals.join(",")));
        }
        if !e.documents.is_empty() {
            req = req.item(
                "documents",
                s(serde_json::to_string(e.documents).unwrap_or_default()),
            );
        }
        if !first {
            req = req
                .condition_expression("attribute_not_exists(event_id) OR decided_at <> :d")
                .expression_attribute_values(":d", s(decided_at));
        }
        unless_condition_failed(Store::Decisions, req.send().await)
    }

    /// Rebuild the evidence of `record`'s decision when it has none (its writer crashed between
    /// the decision and its evidence): the input, route and plan a retry recomputed.
    pub(crate) async fn repair_evidence(
        &self,
        record: &DecisionRecord,
        e: &Evidence<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match (&record.input, &record.decided_at) {
            (None, Some(decided_at)) => self.put_evidence(e, decided_at, false, now).await,
            _ => Ok(()),
        }
    }

    /// The record of `event_id` with its evidence.
    pub async fn get(&self, event_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        let evidence_key = key(event_id);
        let (record, evidence) =
            tokio::try_join!(self.item(event_id, None), self.item(&evidence_key, None))?;
        Ok(record.map(|mut r| {
            if let Some(e) = evidence {
                merge(&mut r, e);
            }
            from_item(&r)
        }))
    }

    /// Records read from the day index, each with its evidence (one read per record).
    pub(super) async fn with_evidence(
        &self,
        items: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut out = Vec::with_capacity(items.len());
        for mut item in items {
            let id = get_s(&item, "event_id").unwrap_or_default().to_owned();
            if let Some(e) = self.item(&key(&id), None).await? {
                merge(&mut item, e);
            }
            out.push(from_item(&item));
        }
        Ok(out)
    }
}

/// The evidence's fields onto the record, when it explains the record's decision.
fn merge(
    record: &mut HashMap<String, AttributeValue>,
    mut evidence: HashMap<String, AttributeValue>,
) {
    let decided = get_s(record, "decided_at");
    if decided.is_none() || decided != get_s(&evidence, "decided_at") {
        return;
    }
    for field in FIELDS {
        if let Some(v) = evidence.remove(field) {
            record.entry(field.to_owned()).or_insert(v);
        }
    }
}

//! Decision records: one item per event in DynamoDB (with TTL) telling what was decided, how sure,
//! by which backend, which path, and what the actions did. `switchyard explain` reads these.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::event::Event;
use crate::idempotency::{get_s, n, s};
use crate::routing::{Classification, PlannedAction};

/// Records are kept 30 days.
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;

#[derive(Debug, Error)]
#[error("decision store (DynamoDB) failed: {0}")]
pub struct DecisionError(String);

/// Where an event went.
pub const PATH_ACT: &str = "act";
pub const PATH_REVIEW: &str = "review";

#[derive(Clone, Debug)]
pub struct DecisionStore {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

/// A decision record as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionRecord {
    pub event_id: String,
    pub source: String,
    pub category: String,
    pub confidence: f64,
    pub path: String,
    pub status: String,
    pub reason: Option<String>,
    pub results: Option<String>,
    /// `rules`, `model` or `llm`.
    pub backend: Option<String>,
    pub language: Option<String>,
    /// Why the LLM did not decide, when it did not.
    pub fallback: Option<String>,
    pub signals: Option<String>,
    /// The message, PII-redacted and cut (see `redact`).
    pub input: Option<String>,
}

impl DecisionStore {
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
        }
    }

    /// The attributes every record of an event carries, and its expiry.
    fn put_base(
        &self,
        event: &Event,
        correlation_id: &str,
        now: DateTime<Utc>,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("event_id", s(&event.id))
            .item("correlation_id", s(correlation_id))
            .item("source", s(event.source.as_str()))
            .item("event_type", s(&event.event_type))
            .item("delivery_id", s(&event.delivery_id))
            .item("expiration", n(now.timestamp() + RETENTION_SECS))
    }

    /// Note that intake accepted an event, so `GET /events/{id}` can answer before classify runs.
    pub async fn record_accepted(
        &self,
        event: &Event,
        correlation_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DecisionError> {
        self.put_base(event, correlation_id, now)
            .item("status", s("accepted"))
            .item("received_at", s(now.to_rfc3339()))
            // Never overwrite a record classify already wrote.
            .condition_expression("attribute_not_exists(event_id)")
            .send()
            .await
            .map_err(|e| DecisionError(crate::aws::error_message(&e)))?;
        Ok(())
    }

    /// Write what classify decided. Input text is not stored: only ids and the evidence.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_decision(
        &self,
        event: &Event,
        correlation_id: &str,
        c: &Classification,
        threshold: f64,
        path: &str,
        actions: &[PlannedAction],
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DecisionError> {
        let mut req = self
            .put_base(event, correlation_id, now)
            .item("input", s(crate::redact::redact(&event.content())))
            .item("category", s(&c.category))
            .item("confidence", n(c.confidence))
            .item(
                "scores",
                s(serde_json::to_string(&c.scores).unwrap_or_default()),
            )
            .item("signals", s(c.signals.join(",")))
            .item("backend", s(c.backend))
            .item("threshold", n(threshold))
            .item("path", s(path))
            .item(
                "actions",
                s(serde_json::to_string(actions).unwrap_or_default()),
            )
            .item(
                "status",
                s(if path == PATH_ACT {
                    "planned"
                } else {
                    "in_review"
                }),
            )
            .item("decided_at", s(now.to_rfc3339()));
        if let Some(object_id) = &event.object_id {
            req = req.item("object_id", s(object_id));
        }
        if let Some(language) = &c.language {
            req = req.item("language", s(language));
        }
        if let Some(fallback) = &c.fallback {
            req = req.item("fallback", s(fallback));
        }
        if let Some(reason) = reason {
            req = req.item("reason", s(reason));
        }
        req.send()
            .await
            .map_err(|e| DecisionError(crate::aws::error_message(&e)))?;
        Ok(())
    }

    /// Write what act did: `status` is `done`, `failed` or `in_review`.
    pub async fn record_outcome(
        &self,
        event_id: &str,
        status: &str,
        results: &serde_json::Value,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DecisionError> {
        let mut update = "SET #status = :status, results = :results, acted_at = :at".to_owned();
        let mut req = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("event_id", s(event_id))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":results", s(results.to_string()))
            .expression_attribute_values(":at", s(now.to_rfc3339()));
        if let Some(reason) = reason {
            update.push_str(", reason = :reason");
            req = req.expression_attribute_values(":reason", s(reason));
        }
        req.update_expression(update)
            .send()
            .await
            .map_err(|e| DecisionError(crate::aws::error_message(&e)))?;
        Ok(())
    }

    pub async fn get(&self, event_id: &str) -> Result<Option<DecisionRecord>, DecisionError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("event_id", s(event_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DecisionError(crate::aws::error_message(&e)))?;
        Ok(out.item.as_ref().map(from_item))
    }
}

impl DecisionRecord {
    /// Where the event is, in the words `GET /events/{id}` uses.
    pub fn stage(&self) -> &'static str {
        match self.status.as_str() {
            "accepted" => "accepted",
            "planned" => "classified",
            "done" => "acted",
            "in_review" => "in review",
            "failed" => "failed",
            _ => "unknown",
        }
    }
}

fn from_item(item: &HashMap<String, AttributeValue>) -> DecisionRecord {
    let text = |k: &str| get_s(item, k).unwrap_or_default().to_owned();
    DecisionRecord {
        event_id: text("event_id"),
        source: text("source"),
        category: text("category"),
        confidence: item
            .get("confidence")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        path: text("path"),
        status: text("status"),
        reason: get_s(item, "reason").map(str::to_owned),
        results: get_s(item, "results").map(str::to_owned),
        backend: get_s(item, "backend").map(str::to_owned),
        language: get_s(item, "language").map(str::to_owned),
        fallback: get_s(item, "fallback").map(str::to_owned),
        signals: get_s(item, "signals").map(str::to_owned),
        input: get_s(item, "input").map(str::to_owned),
    }
}

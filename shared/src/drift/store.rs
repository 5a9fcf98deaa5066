//! Findings and snapshots in the drift table (`DRIFT_TABLE`): partition key `connector`, sort key
//! `item` — `finding#<id>`, `snapshot#<object>`, `checked`. A finding is one item however often
//! it is seen: `raise` says whether it is new (or back after being resolved), so a human is told
//! once per finding, not once per run.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::profile::Profile;
use super::{Finding, FindingKind, Severity};

use crate::aws::{Store, StoreError};

/// The drift table's error for `message`.
fn store_error(message: String) -> StoreError {
    StoreError::new(Store::Drift, message)
}

/// Where a finding stands with the people who own the integration.
pub mod state {
    /// Raised and not yet acknowledged, or seen again after being resolved.
    pub const NEW: &str = "new";
    /// A person has seen it (`switchyard canary ack`); it stays listed until resolved.
    pub const ACKNOWLEDGED: &str = "acknowledged";
    /// No longer seen by the canary; raised again, it goes back to `new`.
    pub const RESOLVED: &str = "resolved";
}

/// A finding as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stored {
    /// The finding's short id (8 hex digits of its fingerprint's hash), as `canary ack` takes it.
    pub id: String,
    /// What was found (serialized inline with the record's own fields).
    #[serde(flatten)]
    pub finding: Finding,
    /// One of the [`state`] values.
    pub state: String,
    /// `canary`, `act`, `intake`.
    pub source: String,
    /// When it was raised, or raised again after being resolved (RFC 3339).
    pub first_seen: String,
    /// When it was last seen (RFC 3339).
    pub last_seen: String,
    /// How often it has been seen in all, sightings before a resolution included.
    pub times_seen: u64,
}

/// The drift table: findings, structure snapshots and run marks.
#[derive(Clone, Debug)]
pub struct DriftStore {
    /// The client the table is read and written with.
    pub ddb: aws_sdk_dynamodb::Client,
    /// The drift table's name (`DRIFT_TABLE`).
    pub table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn err<E: std::fmt::Display>(e: E) -> StoreError {
    store_error(e.to_string())
}

impl DriftStore {
    /// The store over the table named `table`.
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
        }
    }

    /// Record a finding seen now. `Ok(true)`: it is new, or was resolved and is back — tell a
    /// human. `Ok(false)`: already known (its last sighting and example are updated).
    pub async fn raise(
        &self,
        f: &Finding,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let at = now.to_rfc3339();
        let common =
            |u: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder| {
                u.table_name(&self.table)
                    .key("connector", s(&f.connector))
                    .key("item", s(format!("finding#{}", f.id())))
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":now", s(&at))
                    .expression_attribute_values(":detail", s(&f.detail))
                    .expression_attribute_values(
                        ":example",
                        s(f.example.clone().unwrap_or_default()),
                    )
                    .expression_attribute_values(":routes", s(f.routes.join("\n")))
                    .expression_attribute_values(":severity", s(f.severity.name()))
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            };
        // New or back after resolution: state `new`, first seen now.
        let opened = self
            .ddb
            .update_item()
            .set_update_expression(Some(
                "SET kind = :kind, severity = :severity, #object = :object, #path = :path, \
                 detail = :detail, example = :example, routes = :routes, #source = :source, \
                 #state = :new, first_seen = :now, last_seen = :now, \
                 times_seen = if_not_exists(times_seen, :zero) + :one"
                    .into(),
            ))
            .condition_expression("attribute_not_exists(#state) OR #state = :resolved")
            .expression_attribute_names("#object", "object")
            .expression_attribute_names("#path", "path")
            .expression_attribute_names("#source", "source")
            .expression_attribute_values(":kind", s(f.kind.name()))
            .expression_attribute_values(":object", s(&f.object))
            .expression_attribute_values(":path", s(&f.path))
            .expression_attribute_values(":source", s(source))
            .expression_attribute_values(":new", s(state::NEW))
            .expression_attribute_values(":resolved", s(state::RESOLVED));
        if crate::aws::conditional(Store::Drift, common(opened).send().await)? {
            return Ok(true);
        }
        let seen = self.ddb.update_item().update_expression(
            "SET detail = :detail, example = :example, routes = :routes, severity = :severity, \
             last_seen = :now, times_seen = if_not_exists(times_seen, :zero) + :one",
        );
        // The attribute name is declared for both updates; the second does not use it.
        let seen = common(seen).set_expression_attribute_names(None);
        seen.send()
            .await
            .map_err(|e| store_error(crate::aws::error_message(&e)))?;
        Ok(false)
    }

    /// Mark resolved the open canary findings about `object` that this run did not see again.
    /// A field added is news, not a condition: it joins the snapshot and stays listed until a
    /// person acknowledges it.
    pub(crate) async fn resolve_unseen(
        &self,
        connector: &str,
        object: &str,
        seen: &BTreeSet<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut resolved = Vec::new();
        for f in self.list(connector).await? {
            if f.finding.object == object
                && f.source == "canary"
                && f.state != state::RESOLVED
                && f.finding.kind != FindingKind::FieldAdded
                && !seen.contains(&f.id)
            {
                self.set_state(connector, &f.id, state::RESOLVED, now)
                    .await?;
                resolved.push(f.id);
            }
        }
        Ok(resolved)
    }

    /// Every finding about one connector, newest sighting first.
    pub async fn list(&self, connector: &str) -> Result<Vec<Stored>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("connector = :c AND begins_with(#item, :f)")
                .expression_attribute_names("#item", "item")
                .expression_attribute_values(":c", s(connector))
                .expression_attribute_values(":f", s("finding#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error(crate::aws::error_message(&e)))?;
            out.extend(page.items().iter().filter_map(stored));
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
        Ok(out)
    }

    /// Set a finding's state (`acknowledged` by a person, `resolved` when gone). `Ok(false)`: no
    /// such finding.
    pub async fn set_state(
        &self,
        connector: &str,
        id: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("connector", s(connector))
            .key("item", s(format!("finding#{id}")))
            .update_expression("SET #state = :to, state_changed = :now")
            .condition_expression("attribute_exists(#state)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", s(to))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .send()
            .await;
        crate::aws::conditional(Store::Drift, out)
    }

    /// The structure profile last stored for `connector`'s `object`; `None` before the first.
    pub async fn snapshot(
        &self,
        connector: &str,
        object: &str,
    ) -> Result<Option<Profile>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("connector", s(connector))
            .key("item", s(format!("snapshot#{object}")))
            .send()
            .await
            .map_err(|e| store_error(crate::aws::error_message(&e)))?;
        match out
            .item()
            .and_then(|i| i.get("profile"))
            .and_then(|v| v.as_s().ok())
        {
            Some(text) => serde_json::from_str(text).map(Some).map_err(err),
            None => Ok(None),
        }
    }

    pub(crate) async fn put_snapshot(
        &self,
        connector: &str,
        object: &str,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("connector", s(connector))
            .item("item", s(format!("snapshot#{object}")))
            .item("profile", s(serde_json::to_string(profile).map_err(err)?))
            .item("taken_at", s(now.to_rfc3339()))
            .send()
            .await
            .map_err(|e| store_error(crate::aws::error_message(&e)))?;
        Ok(())
    }

    /// When the connector's structure was last checked.
    pub(crate) async fn checked_at(
        &self,
        connector: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.marked_at(connector, "checked").await
    }

    pub(crate) async fn set_checked(
        &self,
        connector: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.mark(connector, "checked", now).await
    }

    /// When the canary last ran (whatever it probed): what `switchyard smoke` reads.
    pub async fn canary_ran_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.marked_at(CANARY, "ran").await
    }

    pub(crate) async fn set_canary_ran(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.mark(CANARY, "ran", now).await
    }

    async fn marked_at(
        &self,
        owner: &str,
        item: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("connector", s(owner))
            .key("item", s(item))
            .send()
            .await
            .map_err(|e| store_error(crate::aws::error_message(&e)))?;
        Ok(out
            .item()
            .and_then(|i| i.get("at"))
            .and_then(|v| v.as_s().ok())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    async fn mark(&self, owner: &str, item: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("connector", s(owner))
            .item("item", s(item))
            .item("at", s(now.to_rfc3339()))
            .send()
            .await
            .map_err(|e| store_error(crate::aws::error_message(&e)))?;
        Ok(())
    }
}

/// The partition of the canary's own marks (no connector is named with an underscore first).
const CANARY: &str = "_canary";

fn stored(item: &std::collections::HashMap<String, AttributeValue>) -> Option<Stored> {
    let text = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let kind: FindingKind = serde_json::from_value(serde_json::Value::String(text("kind"))).ok()?;
    let example = text("example");
    let routes = text("routes");
    Some(Stored {
        id: text("item").strip_prefix("finding#")?.to_owned(),
        finding: Finding {
            connector: text("connector"),
            object: text("object"),
            kind,
            severity: Severity::parse(&text("severity"))?,
            path: text("path"),
            detail: text("detail"),
            example: (!example.is_empty()).then_some(example),
            routes: routes
                .lines()
                .map(str::to_owned)
                .filter(|r| !r.is_empty())
                .collect(),
        },
        state: text("state"),
        source: text("source"),
        first_seen: text("first_seen"),
        last_seen: text("last_seen"),
        times_seen: item
            .get("times_seen")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    })
}

//! A person's decision on an event waiting for one: **one conditional write** on the event's
//! record, from `in_review` with no decision yet to decided, with who, when and through which
//! door (a Slack button, the CLI, a signed link). Whoever writes first decides; every other
//! attempt — a double click, a second approver, the CLI racing a button, a click after the event
//! moved on — finds the decision standing and changes nothing. Clicks from people not allowed to
//! decide are kept beside it (`refusals`), so a refused attempt is on record too.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{from_item, standing, state, DecisionRecord, DecisionStore, Item, StoreError, Update};
use crate::idempotency::{get_s, s};
use crate::routing::Choice;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

/// A decision as the record keeps it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HumanDecision {
    /// `approved`, `rerouted`, `dismissed` or `taken_over`.
    pub choice: String,
    /// The category chosen by a re-route.
    pub category: Option<String>,
    /// A Slack user id, or the operator's name from the CLI.
    pub by: String,
    /// The door: `slack`, `cli` or `link`.
    pub via: String,
    pub at: String,
    /// What the person wrote with it (a dismissal's reason; the CLI's note), as written.
    pub note: Option<String>,
    /// Whether it was carried out (its actions sent to act, its review copy deleted).
    pub carried_out: bool,
}

impl HumanDecision {
    pub fn new(choice: &Choice, by: &str, via: &str, at: DateTime<Utc>) -> Self {
        HumanDecision {
            choice: choice.as_str().to_owned(),
            category: match choice {
                Choice::Route(c) => Some(c.clone()),
                _ => None,
            },
            by: by.to_owned(),
            via: via.to_owned(),
            at: at.to_rfc3339(),
            note: None,
            carried_out: false,
        }
    }

    /// The same decision, with what the person wrote, PII-redacted as the record keeps event
    /// text (a person may paste a customer's words); nothing kept for an empty note.
    pub(crate) fn with_note(mut self, note: Option<&str>) -> Self {
        self.note = note
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(crate::redact::redact);
        self
    }

    pub fn choice(&self) -> Option<Choice> {
        Choice::from_record(&self.choice, self.category.as_deref())
    }

    /// "approved by U0LEGAL01 via slack at …".
    pub fn line(&self) -> String {
        let what = self
            .choice()
            .map(|c| c.describe())
            .unwrap_or_else(|| self.choice.clone());
        format!("{what} by {} via {} at {}", self.by, self.via, self.at)
    }
}

/// What a decision attempt found.
#[derive(Clone, Debug, PartialEq)]
pub enum Decided {
    /// This attempt decided: the record as it now stands.
    Now(Box<DecisionRecord>),
    /// Someone decided first: their decision, unchanged.
    Already(HumanDecision),
    /// The event does not wait for a person (it acted, or failed); its status.
    NotWaiting(String),
    /// No record: an unknown event, or one past its retention.
    Unknown,
}

/// The status a decision leaves the record in: act takes approved and re-routed work on.
fn status_after(choice: &Choice) -> &'static str {
    match choice {
        Choice::Approve | Choice::Route(_) => state::PLANNED,
        Choice::Dismiss => state::RESOLVED,
        Choice::TakeOver => state::TAKEN_OVER,
    }
}

impl DecisionStore {
    /// Decide on `event_id` as `d` says, if nobody has: see the module's doc.
    pub async fn decide(
        &self,
        event_id: &str,
        d: &HumanDecision,
        note: &str,
    ) -> Result<Decided, StoreError> {
        let Some(choice) = d.choice() else {
            return Err(super::store_error(format!("no such choice {:?}", d.choice)));
        };
        let mut u = self.update(event_id);
        u.set("status", s(status_after(&choice)));
        u.set("human", s(decision_json(d)));
        u.set("reason", s(note));
        u.bind(":in_review", s(state::IN_REVIEW));
        u.bind_name("#st", "status");
        u.bind_name("#hu", "human");
        // An approval that expired is an operator's to decide (the CLI), no longer a button's.
        let condition = if d.via == "cli" {
            "#st = :in_review AND attribute_not_exists(#hu)"
        } else {
            u.bind_name("#ex", EXPIRED);
            "#st = :in_review AND attribute_not_exists(#hu) AND attribute_not_exists(#ex)"
        };
        let standing = u.send_if_returning(condition).await?;
        Ok(match standing {
            Ok(now) => Decided::Now(Box::new(from_item(&now))),
            Err(item) if item.is_empty() => Decided::Unknown,
            Err(item) => match read(&item) {
                Some(earlier) => Decided::Already(earlier),
                None => Decided::NotWaiting(get_s(&item, "status").unwrap_or_default().to_owned()),
            },
        })
    }

    /// `by` tried to decide and was not allowed (`why`): kept on the record, nothing else.
    pub(crate) async fn record_refusal(
        &self,
        event_id: &str,
        by: &str,
        via: &str,
        why: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let refusal = serde_json::json!({"by": by, "via": via, "why": why, "at": at.to_rfc3339()});
        let mut u = self.update(event_id);
        u.append("refusals", vec![s(refusal.to_string())]);
        u.bind_name("#id", "event_id");
        u.bind_name("#rf", "refusals");
        u.bind(":cap", crate::idempotency::n(MAX_REFUSALS));
        // An unknown event gets no record from a refused click, and past the cap the first
        // refusals stand for the rest (one person clicking on must not grow the record).
        u.send_if("attribute_exists(#id) AND (attribute_not_exists(#rf) OR size(#rf) < :cap)")
            .await
            .map(|_| ())
    }
}

/// Refused attempts kept on a record, at most.
const MAX_REFUSALS: i64 = 20;

/// When an approval expired undecided and stayed in review.
pub(super) const EXPIRED: &str = "approval_expired_at";

impl DecisionStore {
    /// The approval on `event_id` expired undecided: noted, if it still waits and nobody
    /// decided meanwhile (`false` then).
    pub(crate) async fn mark_expired(
        &self,
        event_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut u = self.update(event_id);
        u.set(EXPIRED, s(at.to_rfc3339()));
        u.bind(":in_review", s(state::IN_REVIEW));
        u.bind_name("#st", "status");
        u.bind_name("#hu", "human");
        Ok(u.send_if("#st = :in_review AND attribute_not_exists(#hu)")
            .await?
            .is_none())
    }
}

/// Set once a decision was carried out: a redelivery that finds no review copy then knows why.
const CARRIED: &str = "human_carried_out";

impl DecisionStore {
    /// Attempts made for work that is not the event's own (the review message's update after a
    /// decision): appended, and the event's state left as it is.
    pub(crate) async fn record_attempts(
        &self,
        event_id: &str,
        attempts: &[serde_json::Value],
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut u = self.update(event_id);
        u.append(
            "attempts",
            attempts.iter().map(|a| s(a.to_string())).collect(),
        );
        u.send().await
    }

    /// The decision on `event_id` was carried out with `planned` (kept redacted, as classify
    /// keeps its plan: `explain` and the connector preview read them).
    pub(crate) async fn mark_carried_out(
        &self,
        event_id: &str,
        planned: &[crate::routing::PlannedAction],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut u = self.update(event_id);
        u.set(CARRIED, s(at.to_rfc3339()));
        if !planned.is_empty() {
            u.set("actions", s(super::redacted_actions(planned)));
        }
        u.send().await
    }
}

fn decision_json(d: &HumanDecision) -> String {
    serde_json::json!({"choice": d.choice, "category": d.category, "by": d.by, "via": d.via, "at": d.at, "note": d.note})
        .to_string()
}

/// The decision a record holds, if a person decided.
pub(super) fn read(item: &HashMap<String, AttributeValue>) -> Option<HumanDecision> {
    let v: serde_json::Value = serde_json::from_str(get_s(item, "human")?).ok()?;
    let text = |k: &str| v[k].as_str().map(str::to_owned);
    Some(HumanDecision {
        choice: text("choice")?,
        category: text("category"),
        by: text("by").unwrap_or_default(),
        via: text("via").unwrap_or_default(),
        at: text("at").unwrap_or_default(),
        note: text("note"),
        carried_out: item.contains_key(CARRIED),
    })
}

/// The refused attempts a record holds, oldest first.
pub(super) fn refusals(item: &HashMap<String, AttributeValue>) -> Vec<serde_json::Value> {
    item.get("refusals")
        .and_then(|v| v.as_l().ok())
        .map(|l| {
            l.iter()
                .filter_map(|a| serde_json::from_str(a.as_s().ok()?).ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Update {
    /// Send only if `condition` holds: `Ok(item after)` when written, `Err(item before)` when
    /// not (empty when there was none).
    pub(super) async fn send_if_returning(
        self,
        condition: &str,
    ) -> Result<Result<Item, Item>, StoreError> {
        let sent = self
            .request()
            .condition_expression(condition)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(e) => standing(e).map(Err),
        }
    }
}

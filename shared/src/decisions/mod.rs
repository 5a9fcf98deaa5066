//! Decision records: one item per event in DynamoDB (with TTL) telling the whole story — what
//! arrived, what was decided, how sure, by which backend, which route and why, every action
//! attempt with the vendor's answer, and the final state. `switchyard explain` and `stats` read
//! them; `GET /events/{id}` answers from them.
//!
//! Every stage **adds** its own attributes with an `UpdateItem` and never overwrites another
//! stage's: intake writes `received_*`, classify the decision, act appends to `attempts` and
//! sets the state. A secondary index on `day` + `received_at` (`ByDay`) lists a day's events
//! without a Scan. Intake's claim on the delivery is the record's first write ([`delivery`]).

mod by_day;
mod completions;
mod delivery;
mod evidence;
mod human;
mod notes;

pub use evidence::Evidence;
pub use human::Decided;
pub(crate) use human::HumanDecision;

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use crate::event::Event;
use crate::idempotency::{get_s, n, s};
use crate::routing::{Classification, PlannedAction};

/// Records are kept 30 days unless `DECISION_RETENTION_DAYS` says otherwise.
pub(crate) const RETENTION_SECS: i64 = 30 * 24 * 3600;
/// The index that lists a day's events in the order they arrived.
pub(crate) const BY_DAY_INDEX: &str = "ByDay";
pub(crate) use by_day::day_key;

use crate::aws::{Store, StoreError};

/// The decision store's error for `message`.
pub(crate) fn store_error(message: String) -> StoreError {
    StoreError::new(Store::Decisions, message)
}

/// Where an event went.
pub const PATH_ACT: &str = "act";
/// The event was sent to human review.
pub const PATH_REVIEW: &str = "review";

/// The states a record moves through.
pub mod state {
    /// Intake claimed the delivery; classify has not decided yet.
    pub const ACCEPTED: &str = "accepted";
    pub(crate) const PLANNED: &str = "planned";
    /// Waiting for a person to decide.
    pub const IN_REVIEW: &str = "in_review";
    pub(crate) const WAITING: &str = "waiting";
    pub(crate) const PARKED: &str = "parked";
    /// Everything planned was carried out, or there was nothing to do.
    pub const DONE: &str = "done";
    /// A stage gave up on the event: its message went to the dead-letter queue.
    pub const FAILED: &str = "failed";
    /// A human closed a review item without switchyard acting (`switchyard review resolve --dismiss`).
    pub const RESOLVED: &str = "resolved";
    /// A person took the event over in its vendor; switchyard does nothing more.
    pub(crate) const TAKEN_OVER: &str = "taken_over";
}

/// Reads and writes the decision records in their DynamoDB table.
#[derive(Clone, Debug)]
pub struct DecisionStore {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    retention_secs: i64,
}

/// A decision record as read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionRecord {
    /// switchyard's id for the event, the record's key.
    pub event_id: String,
    /// The source's name, as [`Source::as_str`](crate::event::Source::as_str) gives it.
    pub source: String,
    /// The vendor's event type.
    pub event_type: String,
    /// The id deliveries are deduplicated by: the vendor's delivery id or a content hash.
    pub delivery_id: String,
    /// The id tying the event's log lines together across stages, as first written.
    pub correlation_id: String,
    /// The category classify chose; empty until decided.
    pub category: String,
    /// Classify's confidence in `category`, from 0 to 1; 0 until decided.
    pub confidence: f64,
    /// The review threshold in force when the event was decided.
    pub threshold: Option<f64>,
    /// Where the event went, [`PATH_ACT`] or [`PATH_REVIEW`]; empty until decided.
    pub path: String,
    /// The record's state, one of the [`state`] values.
    pub status: String,
    /// Why the event is where it is (a review reason, a failure), when a stage gave one.
    pub reason: Option<String>,
    /// The attempts of the run that finished the event, as a JSON array; `None` until done.
    pub results: Option<String>,
    /// `rules`, `model` or `llm`.
    pub backend: Option<String>,
    /// The detected language (ISO 639-3), when the detector was sure.
    pub language: Option<String>,
    /// Why the LLM did not decide, when it did not.
    pub fallback: Option<String>,
    /// Why the classifier asked for a human whatever the confidence.
    pub flag: Option<String>,
    /// The classifier's evidence (e.g. the keywords that matched), comma-separated.
    pub signals: Option<String>,
    /// Scores per category, as JSON.
    pub scores: Option<String>,
    /// The message, PII-redacted and cut (see `redact`).
    pub input: Option<String>,
    /// Which route was taken and why.
    pub route: Option<String>,
    /// The planned actions (customer text redacted), as JSON.
    pub actions: Option<String>,
    /// Every action attempt act made, oldest first, each a JSON object.
    pub attempts: Vec<serde_json::Value>,
    /// What the event waits on now (a hand-back that made no vendor call: no budget, the
    /// deadline near, a connection parked), replaced by the next and gone when the event moves
    /// on; see [`notes`].
    pub note: Option<serde_json::Value>,
    /// How many such hand-backs there were, by `"<status> <connector>"`.
    pub held: std::collections::BTreeMap<String, u64>,
    /// Redeliveries intake acknowledged without queueing again.
    pub duplicates: u64,
    /// When intake received the event, RFC 3339.
    pub received_at: Option<String>,
    /// When classify decided, RFC 3339; `None` until then.
    pub decided_at: Option<String>,
    /// When an outcome (act's, or a dead-letter) was last written, RFC 3339; `None` until then.
    pub acted_at: Option<String>,
    /// What a person decided on it, if one did ([`human`]).
    pub human: Option<HumanDecision>,
    /// Attempts to decide by people not allowed to, each a JSON object (`by`, `via`, `why`, `at`).
    pub refusals: Vec<serde_json::Value>,
    /// When its approval expired undecided (it stays in review for an operator).
    pub approval_expired: Option<String>,
    /// The vendor object the event is about (a ticket id).
    pub object_id: Option<String>,
    /// The documents attached to the event, as classify read them (never their text).
    pub documents: Vec<crate::documents::Read>,
}

impl DecisionStore {
    /// A store over the DynamoDB table `table`, keeping records the default 30 days.
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
            retention_secs: RETENTION_SECS,
        }
    }

    /// Keep records this many days (the template's `DecisionRetentionDays`).
    pub(crate) fn with_retention_days(mut self, days: Option<i64>) -> Self {
        if let Some(d) = days.filter(|d| *d > 0) {
            self.retention_secs = d * 86_400;
        }
        self
    }

    /// How long a record lives (its TTL).
    pub fn retention(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.retention_secs)
    }

    fn update(&self, event_id: &str) -> Update {
        Update {
            req: self
                .ddb
                .update_item()
                .table_name(&self.table)
                .key("event_id", s(event_id)),
            sets: Vec::new(),
            adds: Vec::new(),
            removes: Vec::new(),
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// What every stage may be first to write: who the event is, and its expiry.
    fn base(&self, u: &mut Update, event: &Event, correlation_id: &str, now: DateTime<Utc>) {
        u.set_new("source", s(event.source.as_str()));
        u.set_new("event_type", s(&event.event_type));
        u.set_new("delivery_id", s(&event.delivery_id));
        u.set_new("correlation_id", s(correlation_id));
        u.set_new("received_at", s(event.received_at.to_rfc3339()));
        u.set_new(
            "day",
            s(day_key(
                &event.received_at.format("%Y-%m-%d").to_string(),
                &event.id,
            )),
        );
        if let Some(vendor) = &event.vendor_delivery_id {
            u.set_new("vendor_delivery_id", s(vendor));
        }
        u.set_new("expiration", n(now.timestamp() + self.retention_secs));
    }

    /// A redelivery of the event was acknowledged without queueing it again.
    pub(crate) async fn record_duplicate(&self, event_id: &str) -> Result<(), StoreError> {
        let sent = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("event_id", s(event_id))
            .update_expression("ADD duplicates :one")
            .condition_expression("attribute_exists(event_id)")
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        crate::aws::unless_condition_failed(Store::Decisions, sent)
    }

    /// Write what classify decided: the evidence, the redacted input, the route and why — once.
    /// When an earlier attempt already decided this event, nothing is written and that decision
    /// is returned, so a retry (or a second delivery) follows the first answer, never a new one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_decision(
        &self,
        event: &Event,
        correlation_id: &str,
        c: &Classification,
        threshold: f64,
        path: &str,
        route: &str,
        actions: &[PlannedAction],
        documents: &[crate::documents::Read],
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<DecisionRecord>, StoreError> {
        let mut u = self.update(&event.id);
        self.base(&mut u, event, correlation_id, now);
        u.set("category", s(&c.category));
        u.set("confidence", n(c.confidence));
        u.set("backend", s(c.backend));
        u.set("threshold", n(threshold));
        u.set("path", s(path));
        let status = if path == PATH_ACT {
            state::PLANNED
        } else {
            state::IN_REVIEW
        };
        u.set("status", s(status));
        let decided_at = now.to_rfc3339();
        u.set("decided_at", s(&decided_at));
        if let Some(object_id) = &event.object_id {
            u.set("object_id", s(object_id));
        }
        if let Some(language) = &c.language {
            u.set("language", s(language));
        }
        if let Some(fallback) = &c.fallback {
            u.set("fallback", s(fallback));
        }
        if let Some(reason) = reason {
            u.set("reason", s(reason));
        }
        if let Some(flag) = &c.flag {
            u.set("flag", s(flag));
        }
        // What the requester is asked about (locked or damaged files) stays on the record
        // itself: a redelivery, or a delivery that lost the race to decide, plans the same reply
        // even when the evidence item is missing.
        let asks: Vec<AttributeValue> = documents
            .iter()
            .filter(|d| d.asks_sender())
            .map(|d| {
                s(format!(
                    "{}\t{}",
                    d.kind,
                    d.name.chars().take(80).collect::<String>()
                ))
            })
            .collect();
        if !asks.is_empty() {
            u.set("document_asks", AttributeValue::L(asks));
        }
        // Decided before: the failed write returns that decision (its evidence is that
        // decision's writer's to write).
        if let Some(earlier) = u.send_if("attribute_not_exists(decided_at)").await? {
            return Ok(Some(from_item(&earlier)));
        }
        let evidence = Evidence {
            event,
            classification: c,
            route,
            actions,
            documents,
        };
        self.put_evidence(&evidence, &decided_at, true, now).await?;
        Ok(None)
    }

    /// A record failed its last receive in `stage` and its queue moves it to the DLQ now: the
    /// event is `failed`, with why (`switchyard redrive` and `replay` can send it again). A
    /// failure to write is only logged: the message goes to the DLQ either way.
    pub(crate) async fn record_dead_letter(
        &self,
        event_id: &str,
        stage: &str,
        receives: u64,
        error: &str,
    ) {
        let reason = format!("dead-lettered in {stage} after {receives} receives: {error}");
        if let Err(e) = self
            .record_outcome(event_id, state::FAILED, &[], Some(&reason), Utc::now())
            .await
        {
            tracing::warn!(error = %e, event_id, "could not record the dead-lettered event as failed");
        }
    }

    /// Write what act did: the attempts it made (appended), the state it left the event in
    /// (`done`, `in_review`, `waiting`, `parked`, `failed`), and the reason. A hand-back's note
    /// goes: the event has moved on.
    pub async fn record_outcome(
        &self,
        event_id: &str,
        status: &str,
        attempts: &[serde_json::Value],
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut u = self.outcome(event_id, status, attempts, reason, now);
        if status == state::DONE {
            // The run that finished is the last `results_n` attempts: a count, not a second copy
            // of them (a copy took the finished record past 1 KB, a second write unit each time).
            u.set("results_n", n(attempts.len()));
        }
        u.remove(notes::NOTE);
        u.send().await
    }

    /// What every act write says: the state, when, why, and the attempts made (appended).
    fn outcome(
        &self,
        event_id: &str,
        status: &str,
        attempts: &[serde_json::Value],
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Update {
        let mut u = self.update(event_id);
        u.set("status", s(status));
        u.set("acted_at", s(now.to_rfc3339()));
        if let Some(reason) = reason {
            u.set("reason", s(reason));
        }
        if !attempts.is_empty() {
            u.append(
                "attempts",
                attempts.iter().map(|a| s(a.to_string())).collect(),
            );
        }
        u
    }

    /// The item under `key` (a record, or an evidence item), read consistently; only the
    /// attributes `projection` names when given.
    async fn item(&self, key: &str, projection: Option<&str>) -> Result<Option<Item>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("event_id", s(key))
            .set_projection_expression(projection.map(str::to_owned))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(crate::aws::error_message(&e)))?;
        Ok(out.item)
    }
}

/// A DynamoDB item as the SDK gives it.
type Item = HashMap<String, AttributeValue>;

/// An `UpdateItem` built one attribute at a time: `set` overwrites (this stage's own fields),
/// `set_new` writes only where no stage wrote yet, `append` adds to a list.
struct Update {
    req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    sets: Vec<String>,
    adds: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn placeholders(&mut self, attr: &str, value: AttributeValue) -> (String, String) {
        let i = self.names.len();
        let (name, val) = (format!("#a{i}"), format!(":v{i}"));
        self.names.insert(name.clone(), attr.to_owned());
        self.values.insert(val.clone(), value);
        (name, val)
    }

    fn set(&mut self, attr: &str, value: AttributeValue) {
        let (name, val) = self.placeholders(attr, value);
        self.sets.push(format!("{name} = {val}"));
    }

    fn set_new(&mut self, attr: &str, value: AttributeValue) {
        let (name, val) = self.placeholders(attr, value);
        self.sets
            .push(format!("{name} = if_not_exists({name}, {val})"));
    }

    fn append(&mut self, attr: &str, values: Vec<AttributeValue>) {
        let (name, val) = self.placeholders(attr, AttributeValue::L(values));
        self.values
            .insert(":empty".into(), AttributeValue::L(Vec::new()));
        self.sets.push(format!(
            "{name} = list_append(if_not_exists({name}, :empty), {val})"
        ));
    }

    /// Add `by` to a number (created at `by` when absent).
    fn add(&mut self, attr: &str, by: i64) {
        let (name, val) = self.placeholders(attr, n(by));
        self.adds.push(format!("{name} {val}"));
    }

    fn remove(&mut self, attr: &str) {
        let name = format!("#a{}", self.names.len());
        self.names.insert(name.clone(), attr.to_owned());
        self.removes.push(name);
    }

    /// A value or a name used only by a condition (`:accepted`, `#st`).
    fn bind(&mut self, placeholder: &str, value: AttributeValue) {
        self.values.insert(placeholder.to_owned(), value);
    }

    fn bind_name(&mut self, placeholder: &str, attr: &str) {
        self.names.insert(placeholder.to_owned(), attr.to_owned());
    }

    /// The request: the SET expression and its placeholders.
    fn request(
        self,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let mut expression = format!("SET {}", self.sets.join(", "));
        for (clause, parts) in [("ADD", &self.adds), ("REMOVE", &self.removes)] {
            if !parts.is_empty() {
                expression += &format!(" {clause} {}", parts.join(", "));
            }
        }
        self.req
            .update_expression(expression)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
    }

    /// Send only if `condition` holds: `None` when written; when it did not hold (nothing
    /// written), the item as it stands, returned by the failed write itself (no read after).
    async fn send_if(self, condition: &str) -> Result<Option<Item>, StoreError> {
        let sent = self
            .request()
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(None),
            Err(e) => standing(e).map(Some),
        }
    }

    async fn send(self) -> Result<(), StoreError> {
        self.request()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error(crate::aws::error_message(&e)))
    }
}

/// The item a conditional `UpdateItem` found when its condition failed (asked for with
/// `ReturnValuesOnConditionCheckFailure`; empty if none came back); any other error as is.
fn standing(
    e: aws_sdk_dynamodb::error::SdkError<
        UpdateItemError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> Result<Item, StoreError> {
    match e.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
            Ok(c.item().cloned().unwrap_or_default())
        }
        _ => Err(store_error(crate::aws::error_message(&e))),
    }
}

/// The planned actions as JSON, every parameter value redacted like the input (they carry the
/// customer's text: `{event.text}`, `{event.summary}`).
fn redacted_actions(actions: &[PlannedAction]) -> String {
    let redacted: Vec<PlannedAction> = actions
        .iter()
        .map(|a| {
            let mut a = a.clone();
            for v in a.params.values_mut() {
                *v = crate::redact::redact(v);
            }
            a
        })
        .collect();
    serde_json::to_string(&redacted).unwrap_or_default()
}

impl DecisionRecord {
    /// The classification this record holds, as classify decided it (for a retry to reuse).
    pub fn classification(&self) -> Classification {
        let backend = match self.backend.as_deref() {
            Some("rules") => "rules",
            Some("model") => "model",
            Some("llm") => "llm",
            _ => "recorded",
        };
        Classification {
            category: self.category.clone(),
            confidence: self.confidence,
            scores: self
                .scores
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default(),
            signals: self
                .signals
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| s.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            backend,
            language: self.language.clone(),
            fallback: self.fallback.clone(),
            second_opinion: None,
            flag: self.flag.clone(),
        }
    }

    /// Where the event is, in the words `GET /events/{id}` uses.
    pub fn stage(&self) -> &'static str {
        match self.status.as_str() {
            state::ACCEPTED => "accepted",
            state::PLANNED => "classified",
            state::WAITING => "waiting",
            state::PARKED => "parked",
            state::DONE => "acted",
            state::IN_REVIEW => "in review",
            state::FAILED => "failed",
            state::RESOLVED => "resolved by a human",
            state::TAKEN_OVER => "taken over by a human",
            _ => "unknown",
        }
    }
}

/// The attempts of the run that left the record done, as a JSON array (records written before
/// `results_n` carry a `results` copy instead).
fn finished_run(item: &HashMap<String, AttributeValue>) -> Option<String> {
    let count = item.get("results_n")?.as_n().ok()?.parse::<usize>().ok()?;
    let all = item.get("attempts").and_then(|v| v.as_l().ok());
    let all = all.map_or(&[][..], Vec::as_slice);
    // The review message's update after a person decided is not the event's own work, and may
    // land after the run that finished it.
    let own: Vec<serde_json::Value> = all
        .iter()
        .filter_map(|a| serde_json::from_str::<serde_json::Value>(a.as_s().ok()?).ok())
        .filter(|a| {
            !matches!(
                a["stage"].as_str(),
                Some("decision" | "reminder" | "expiry")
            )
        })
        .collect();
    let run = own[own.len().saturating_sub(count)..].to_vec();
    Some(serde_json::Value::from(run).to_string())
}

/// The locked or damaged documents the record itself names (`kind\tname`), when its evidence is
/// not at hand.
fn document_asks(item: &HashMap<String, AttributeValue>) -> Vec<crate::documents::Read> {
    item.get("document_asks")
        .and_then(|v| v.as_l().ok())
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_s().ok()?.split_once('\t'))
        .map(|(kind, name)| crate::documents::Read::not_read(name, kind, "named on the record"))
        .collect()
}

fn from_item(item: &HashMap<String, AttributeValue>) -> DecisionRecord {
    let text = |k: &str| get_s(item, k).unwrap_or_default().to_owned();
    let opt = |k: &str| get_s(item, k).map(str::to_owned);
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<f64>().ok())
    };
    DecisionRecord {
        event_id: text("event_id"),
        source: text("source"),
        event_type: text("event_type"),
        delivery_id: text("delivery_id"),
        correlation_id: text("correlation_id"),
        category: text("category"),
        confidence: num("confidence").unwrap_or(0.0),
        threshold: num("threshold"),
        path: text("path"),
        status: text("status"),
        reason: opt("reason"),
        results: opt("results").or_else(|| finished_run(item)),
        backend: opt("backend"),
        language: opt("language"),
        fallback: opt("fallback"),
        flag: opt("flag"),
        signals: opt("signals"),
        scores: opt("scores"),
        input: opt("input"),
        route: opt("route"),
        actions: opt("actions"),
        attempts: item
            .get("attempts")
            .and_then(|v| v.as_l().ok())
            .map(|l| {
                l.iter()
                    .filter_map(|a| serde_json::from_str(a.as_s().ok()?).ok())
                    .collect()
            })
            .unwrap_or_default(),
        note: notes::note(item),
        held: notes::held(item),
        duplicates: num("duplicates").unwrap_or(0.0) as u64,
        received_at: opt("received_at"),
        decided_at: opt("decided_at"),
        acted_at: opt("acted_at"),
        human: human::read(item),
        refusals: human::refusals(item),
        approval_expired: opt(human::EXPIRED),
        object_id: opt("object_id"),
        documents: get_s(item, "documents")
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_else(|| document_asks(item)),
    }
}

//! `switchyard replay <event-id>`: run an event through the pipeline again, after its cause was
//! fixed. By default under the same keys — classify answers as it answered before, act skips the
//! actions already done — so a replay finishes work, never repeats it. `--as-new` gives the event
//! a new id (new keys): everything it plans runs again, and the plan says so first.
//!
//! A copy of the event is read from wherever it waits: the review queue, or a DLQ (events that
//! finished are not kept whole; their decision records are).

use anyhow::{bail, Context, Result};
use chrono::Utc;
use serde_json::Value;
use switchyard::decisions::{DecisionRecord, DecisionStore};
use switchyard::event::{event_id_for, Event};
use switchyard::routing::ActMessage;
use switchyard::routing::{Decision, RoutingConfig};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stage {
    Classify,
    Act,
}

pub struct Replay {
    pub sqs: aws_sdk_sqs::Client,
    pub decisions: DecisionStore,
    pub classify_queue_url: String,
    pub act_queue_url: String,
    pub review_queue_url: String,
    pub routing: RoutingConfig,
}

/// What a replay will do, before it does it.
#[derive(Clone, Debug)]
pub struct ReplayPlan {
    pub event: Event,
    pub found_in: String,
    pub from: Stage,
    /// The id it runs under (the same, or a new one with `--as-new`), and its delivery id.
    pub runs_as: String,
    pub delivery_id: String,
    /// `connector.action` of what will run again even if it was done before (`--as-new`).
    pub repeats: Vec<String>,
    pub record: DecisionRecord,
}

impl std::fmt::Display for ReplayPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match self.from {
            Stage::Classify => "classify",
            Stage::Act => "act",
        };
        writeln!(
            f,
            "event {} ({}, now {}), copy found in {}",
            self.event.id,
            self.event.source,
            self.record.stage(),
            self.found_in
        )?;
        if self.runs_as == self.event.id {
            writeln!(
                f,
                "replays from {from} under the same keys: actions already done are skipped"
            )
        } else if self.repeats.is_empty() {
            writeln!(f, "replays from {from} as new event {}", self.runs_as)
        } else {
            writeln!(
                f,
                "replays from {from} as new event {}: these run again even if done before: {}",
                self.runs_as,
                self.repeats.join(", ")
            )
        }
    }
}

impl Replay {
    pub async fn plan(&self, event_id: &str, from: Stage, as_new: bool) -> Result<ReplayPlan> {
        let Some(record) = self.decisions.get(event_id).await? else {
            bail!("no event {event_id} (unknown, or older than the decision retention)");
        };
        let (event, found_in) = self.find(event_id).await?;
        let (runs_as, delivery_id, repeats) = if as_new {
            let planned: Vec<Value> = record
                .actions
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_default();
            let repeats = planned
                .iter()
                .map(|a| {
                    format!(
                        "{}.{}",
                        a["connector"].as_str().unwrap_or("?"),
                        a["action"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            let delivery = format!(
                "{}#replay-{}",
                event.delivery_id,
                Utc::now().timestamp_millis()
            );
            (event_id_for(event.source, &delivery), delivery, repeats)
        } else {
            (event.id.clone(), event.delivery_id.clone(), Vec::new())
        };
        Ok(ReplayPlan {
            event,
            found_in,
            from,
            runs_as,
            delivery_id,
            repeats,
            record,
        })
    }

    pub async fn run(&self, plan: &ReplayPlan) -> Result<()> {
        let mut event = plan.event.clone();
        if plan.runs_as != event.id {
            event.delivery_id = plan.delivery_id.clone();
            event.id = plan.runs_as.clone();
            event.received_at = Utc::now();
        }
        let (queue, body) = match plan.from {
            Stage::Classify => (&self.classify_queue_url, serde_json::to_string(&event)?),
            Stage::Act => {
                // The recorded classification, routed as classify routes it.
                let c = plan.record.classification();
                let actions = match self.routing.decide(&event, &c) {
                    Decision::Act(actions) => actions,
                    Decision::Review { reason, .. } => bail!(
                        "its recorded decision sends it to review ({reason}); resolve it with `switchyard review resolve`, or replay --from classify"
                    ),
                };
                let msg = ActMessage {
                    event,
                    category: c.category.clone(),
                    confidence: c.confidence,
                    actions,
                    review_reason: None,
                    card_update: false,
                    key_stage: None,
                };
                (&self.act_queue_url, serde_json::to_string(&msg)?)
            }
        };
        self.sqs
            .send_message()
            .queue_url(queue)
            .message_body(body)
            .message_attributes(
                switchyard::CORRELATION_ATTR,
                crate::redrive::correlation(&plan.record.correlation_id),
            )
            .send()
            .await
            .context("sending the replay")?;
        Ok(())
    }

    /// A copy of the event from the queues that hold waiting or failed work (left visible).
    async fn find(&self, event_id: &str) -> Result<(Event, String)> {
        let mut places = vec![("ReviewQueue".to_owned(), self.review_queue_url.clone())];
        for (name, url) in [
            ("ReviewDLQ", &self.review_queue_url),
            ("ActDLQ", &self.act_queue_url),
            ("ClassifyDLQ", &self.classify_queue_url),
        ] {
            if let Ok(dlq) = crate::redrive::dead_letter_queue(&self.sqs, url).await {
                places.push((name.to_owned(), dlq));
            }
        }
        for (name, url) in places {
            if let Some(event) = self.peek(&url, event_id).await? {
                return Ok((event, name));
            }
        }
        bail!(
            "no copy of event {event_id} is waiting in the review queue or a DLQ (finished events keep only their decision record)"
        )
    }

    async fn peek(&self, url: &str, event_id: &str) -> Result<Option<Event>> {
        let mut seen = std::collections::HashSet::new();
        let mut held = Vec::new();
        let mut found = None;
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .wait_time_seconds(1)
                .send()
                .await
                .with_context(|| format!("reading {url}"))?;
            let mut new = 0;
            for m in out.messages.unwrap_or_default() {
                held.push(m.receipt_handle.clone().unwrap_or_default());
                if !seen.insert(m.message_id.clone().unwrap_or_default()) {
                    continue;
                }
                new += 1;
                let body: Value = serde_json::from_str(m.body.as_deref().unwrap_or_default())
                    .unwrap_or(Value::Null);
                let event = body.get("event").cloned().unwrap_or(body);
                if event["id"].as_str() == Some(event_id) && found.is_none() {
                    found = serde_json::from_value::<Event>(event).ok();
                }
            }
            if new == 0 || found.is_some() {
                break;
            }
        }
        for receipt in held {
            let _ = self
                .sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
        }
        Ok(found)
    }
}

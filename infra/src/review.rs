//! `switchyard review`: the human-review inbox an operator can work.
//!
//! `list` and `show` read the decision records (state `in_review`, through the `ByDay` index):
//! looking never receives a queue message, so reading the inbox cannot walk an item into the
//! DLQ. `resolve` takes the event's message off the review queue and either acts on it under a
//! category the human chose (the routing config plans the actions; act performs them once, under
//! the event's usual keys) or dismisses it with a note.

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::{DateTime, Utc};
use switchyard::decisions::{state, DecisionRecord, DecisionStore};
use switchyard::routing::{ActMessage, ReviewMessage};
use switchyard::routing::{Classification, Decision, RoutingConfig};

pub struct Review {
    pub sqs: aws_sdk_sqs::Client,
    pub decisions: DecisionStore,
    pub review_queue_url: String,
    pub act_queue_url: String,
    pub routing: RoutingConfig,
}

/// What a human decided about an item.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// Act on it as this category: the route for it plans the actions.
    Act { category: String },
    /// Close it; switchyard does nothing more.
    Dismiss { note: String },
}

/// What `resolve` did.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub event_id: String,
    /// Review-queue copies of the event taken off the queue.
    pub removed: usize,
    /// `connector.action` of each action sent to act.
    pub actions: Vec<String>,
}

/// How long a review message read by `resolve` stays hidden while it decides.
const HOLD: i32 = 60;

/// Items waiting for a human, received since `since`, oldest first.
pub async fn waiting(
    decisions: &DecisionStore,
    since: DateTime<Utc>,
) -> Result<Vec<DecisionRecord>> {
    let mut items = Vec::new();
    for day in crate::ops::days_since(since).iter().rev() {
        items.extend(decisions.list_in_state(day, state::IN_REVIEW).await?);
    }
    Ok(items)
}

impl Review {
    pub async fn resolve(&self, event_id: &str, how: &Resolution) -> Result<Resolved> {
        let Some(record) = self.decisions.get(event_id).await? else {
            bail!("no event {event_id} (unknown, or older than the decision retention)");
        };
        if record.status != state::IN_REVIEW {
            bail!(
                "event {event_id} is not waiting for review (it is {}); nothing to resolve",
                record.stage()
            );
        }
        let (copies, receipts) = self.take(event_id).await?;
        let mut actions = Vec::new();
        match how {
            Resolution::Act { category } => {
                let Some(item) = copies.into_iter().next() else {
                    self.release(&receipts).await;
                    bail!(
                        "event {event_id} has no message in the review queue (it expired after 14 days, or sits in ReviewDLQ: `switchyard redrive --queue review` brings it back); handle it in {}",
                        record.source
                    );
                };
                if !self.routing.categories.iter().any(|c| &c.name == category) {
                    self.release(&receipts).await;
                    let names: Vec<&str> = self
                        .routing
                        .categories
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    bail!(
                        "unknown category {category:?}; the routing config has {}",
                        names.join(", ")
                    );
                }
                let human = Classification {
                    category: category.clone(),
                    confidence: 1.0,
                    scores: Default::default(),
                    signals: vec!["resolved by a human".into()],
                    backend: "human",
                    language: None,
                    fallback: None,
                    second_opinion: None,
                    flag: None,
                };
                let planned = match self.routing.decide(&item.event, &human) {
                    Decision::Act(planned) => planned,
                    Decision::Review { reason, .. } => {
                        self.release(&receipts).await;
                        bail!("no route acts on {category:?} for this event: {reason}");
                    }
                };
                actions = planned
                    .iter()
                    .map(|a| format!("{}.{}", a.connector, a.action))
                    .collect();
                let msg = ActMessage {
                    event: item.event.clone(),
                    category: category.clone(),
                    confidence: 1.0,
                    actions: planned,
                    review_reason: None,
                };
                self.sqs
                    .send_message()
                    .queue_url(&self.act_queue_url)
                    .message_body(serde_json::to_string(&msg)?)
                    .message_attributes(
                        switchyard::CORRELATION_ATTR,
                        crate::redrive::correlation(&record.correlation_id),
                    )
                    .send()
                    .await
                    .context("sending the resolved event to act")?;
                let note = format!("a human resolved it as {category}; acting");
                self.decisions
                    .record_outcome(event_id, state::PLANNED, &[], Some(&note), Utc::now())
                    .await?;
            }
            Resolution::Dismiss { note } => {
                let note = format!("dismissed by a human: {note}");
                self.decisions
                    .record_outcome(event_id, state::RESOLVED, &[], Some(&note), Utc::now())
                    .await?;
            }
        }
        let removed = receipts.len();
        for receipt in receipts {
            self.sqs
                .delete_message()
                .queue_url(&self.review_queue_url)
                .receipt_handle(receipt)
                .send()
                .await
                .context("deleting the resolved review message")?;
        }
        Ok(Resolved {
            event_id: event_id.to_owned(),
            removed,
            actions,
        })
    }

    /// Every review-queue copy of the event (a retry may have queued two), held hidden; the
    /// other messages are made visible again at once.
    async fn take(&self, event_id: &str) -> Result<(Vec<ReviewMessage>, Vec<String>)> {
        let mut seen = std::collections::HashSet::new();
        let (mut copies, mut receipts, mut others) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.review_queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(HOLD)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .context("reading the review queue")?;
            let mut new = 0;
            for m in out.messages.unwrap_or_default() {
                let receipt = m.receipt_handle.clone().unwrap_or_default();
                if !seen.insert(m.message_id.clone().unwrap_or_default()) {
                    others.push(receipt);
                    continue;
                }
                new += 1;
                match serde_json::from_str::<ReviewMessage>(m.body.as_deref().unwrap_or_default()) {
                    Ok(item) if item.event.id == event_id => {
                        copies.push(item);
                        receipts.push(receipt);
                    }
                    _ => others.push(receipt),
                }
            }
            if new == 0 {
                break;
            }
        }
        self.release(&others).await;
        Ok((copies, receipts))
    }

    async fn release(&self, receipts: &[String]) {
        for receipt in receipts {
            let _ = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.review_queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }
}

/// The inbox as lines: when, source, id, best guess, why.
pub fn render_list(items: &[DecisionRecord]) -> String {
    if items.is_empty() {
        return "no events are waiting for review\n".into();
    }
    let mut out = format!(
        "{:<20} {:<10} {:<37} {:<18} {}\n",
        "received", "source", "event", "best guess", "why"
    );
    for r in items {
        let guess = match r.category.as_str() {
            "" => "-".to_owned(),
            c => format!("{c} {:.2}", r.confidence),
        };
        let received: String = r
            .received_at
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(19)
            .collect();
        out.push_str(&format!(
            "{received:<20} {:<10} {:<37} {guess:<18} {}\n",
            r.source,
            r.event_id,
            r.reason.as_deref().unwrap_or("")
        ));
    }
    out.push_str(&format!("{} waiting\n", items.len()));
    out
}

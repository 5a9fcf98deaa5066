//! `switchyard review`: the human-review inbox an operator can work.
//!
//! `list` and `show` read the decision records (state `in_review`, through the `ByDay` index):
//! looking never receives a queue message, so reading the inbox cannot walk an item into the
//! DLQ. `resolve` is one of the two doors to a person's decision (the review message's buttons
//! are the other, `switchyard::handlers::decision`): it re-routes the event as a category the
//! operator chose (the routing config plans the actions; act performs them once, under the
//! event's usual keys) or dismisses it with a note.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use switchyard::decisions::{state, DecisionRecord, DecisionStore};
use switchyard::handlers::decision::{Decider, Verdict};
use switchyard::routing::{Choice, RoutingConfig};

pub struct Review {
    pub sqs: aws_sdk_sqs::Client,
    pub decisions: DecisionStore,
    pub review_queue_url: String,
    pub act_queue_url: String,
    pub routing: RoutingConfig,
    /// Who decides through this door (the operator's name; IAM is this door's guard).
    pub operator: String,
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
    /// Carrying it out here failed (why); act carries it out instead, retrying.
    pub handed_to_act: Option<String>,
}

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
    fn decider(&self) -> Decider {
        Decider {
            sqs: self.sqs.clone(),
            decisions: self.decisions.clone(),
            routing: self.routing.clone(),
            review_queue_url: self.review_queue_url.clone(),
            act_queue_url: self.act_queue_url.clone(),
        }
    }

    /// Decide as the CLI's operator — the same one decision the review message's buttons make,
    /// so whichever comes first stands — and carry it out here; if that cannot be done now (the
    /// review copy is held elsewhere), act carries it out, retrying.
    pub async fn resolve(&self, event_id: &str, how: &Resolution) -> Result<Resolved> {
        let (choice, note) = match how {
            Resolution::Act { category } => (Choice::Route(category.clone()), None),
            Resolution::Dismiss { note } => (Choice::Dismiss, Some(note.as_str())),
        };
        let decider = self.decider();
        let verdict = decider
            .decide(
                event_id,
                &choice,
                &self.operator,
                "cli",
                note,
                None,
                Utc::now(),
            )
            .await?;
        if let Verdict::Already(h) = &verdict {
            decider.resend_if_stuck(event_id, h).await;
        }
        let Verdict::Decided(record) = verdict else {
            bail!("{}", verdict.answer(event_id));
        };
        match decider.carry_out(&record, None).await {
            Ok(done) => Ok(Resolved {
                event_id: event_id.to_owned(),
                removed: done.removed,
                actions: done.actions,
                handed_to_act: None,
            }),
            Err(why) => {
                decider
                    .hand_to_act(event_id, None, &record.correlation_id)
                    .await
                    .context("handing the decision to act")?;
                Ok(Resolved {
                    event_id: event_id.to_owned(),
                    removed: 0,
                    actions: Vec::new(),
                    handed_to_act: Some(why.to_string()),
                })
            }
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

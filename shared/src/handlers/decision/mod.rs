//! A person's decision on an event waiting for one, whichever door it came through (a Slack
//! button through intake, `switchyard review resolve`): checked, written once, then carried out.
//!
//! - [`Decider::decide`] checks who may decide and what they chose, then makes the one
//!   conditional write ([`DecisionStore::decide`]): the first decision stands, every later one
//!   is told who decided first.
//! - [`Decider::carry_out`] does what was decided: the event (from its review-queue copy) is
//!   planned for the choice and sent to act under the event's own keys (`act#<id>#<n>`), so a
//!   retry, a redelivery or a second door can never write twice; the review copy is deleted, and
//!   the review message is replaced by one saying who decided what, without its buttons.
//!
//! Intake only decides (Slack wants an answer in 3 s); act carries out what intake decided.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::{DateTime, Utc};

use crate::decisions::{state, Decided, DecisionRecord, DecisionStore, HumanDecision};
use crate::event::Source;
use crate::handlers::correlation_attr;
use crate::routing::{
    ActMessage, CardRef, Choice, Classification, Decision, PlannedAction, ReviewMessage,
    RoutingConfig, HUMAN,
};
use crate::vendors::slack::review as card;
use crate::CORRELATION_ATTR;

pub mod links;

/// How long a review-queue message read by [`Decider::carry_out`] stays hidden while it works.
const HOLD: i32 = 60;

/// Checks, records and carries out a person's decision, whichever door it came through.
#[derive(Clone, Debug)]
pub struct Decider {
    /// Reads and deletes review-queue copies and sends the decided work to act.
    pub sqs: aws_sdk_sqs::Client,
    /// The decision records, where a decision is written once.
    pub decisions: DecisionStore,
    /// Says who may decide on an event and plans the actions for the choice.
    pub routing: RoutingConfig,
    /// The review queue, which holds a copy of each event waiting for a person.
    pub review_queue_url: String,
    /// The act queue, where a decision's actions are sent.
    pub act_queue_url: String,
}

/// What a decision attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Decided now: the record as it stands.
    Decided(Box<DecisionRecord>),
    /// Somebody decided first.
    Already(HumanDecision),
    /// The event does not wait for a person (its state).
    NotWaiting(String),
    /// No record of the event: never seen, or older than the records kept.
    Unknown,
    /// `by` may not decide on this event; these may.
    NotAllowed(Vec<String>),
    /// A re-route to a category the routing config does not have; it has these.
    NoSuchCategory(Vec<String>),
    /// Approve, where no route fits the guess (the card offers no Approve then).
    NothingToApprove,
    /// The approval expired undecided at this time; the event waits for an operator.
    Expired(String),
    /// `by` is not named, but these user groups are: Slack must say whether `by` is in one
    /// before anything is decided (act asks, with the bot token a door does not hold).
    AskGroups(Vec<String>),
}

impl Verdict {
    /// The answer for the person who tried, in words.
    pub fn answer(&self, event_id: &str) -> String {
        match self {
            Verdict::Decided(r) => match &r.human {
                Some(h) => format!("event {event_id}: {}", h.line()),
                None => format!("event {event_id}: decided"),
            },
            Verdict::Already(h) => format!("event {event_id} was already decided: {}", h.line()),
            Verdict::NotWaiting(status) => format!(
                "event {event_id} is not waiting for a person (it is {status}); nothing changed"
            ),
            Verdict::Unknown => format!(
                "switchyard has no event {event_id} (unknown, or older than its records); nothing changed"
            ),
            Verdict::NotAllowed(approvers) => format!(
                "you are not an approver for event {event_id} (its approvers: {}); nothing changed",
                approvers.join(", ")
            ),
Verdict::NoSuchCategory(names) => format!(
                "unknown category, or one no route acts on for this event; it can be routed as {}; nothing changed",
                names.join(", ")
            ),
            Verdict::Expired(at) => format!(
                "the approval for event {event_id} expired at {at}; it waits for an operator (`switchyard review resolve`); nothing changed"
            ),
            Verdict::AskGroups(groups) => format!(
                "event {event_id}: checking whether you are in {}",
                groups.join(", ")
            ),
            Verdict::NothingToApprove => format!(
                "event {event_id} has nothing to approve (no route fits its best guess); route it as a category instead"
            ),
        }
    }
}

/// Why a decision could not be handed to act or carried out now. Every case but
/// [`NotCarriable`](CarryError::NotCarriable) may pass on a later try: the caller retries.
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    /// Reading or writing the decision record failed.
    #[error(transparent)]
    Store(#[from] crate::aws::StoreError),
    /// A queue refused or could not be reached: what was being done, and SQS's words.
    #[error("{doing}: {message}")]
    Queue {
        /// What was being done, such as "sending to act" or "reading the review queue".
        doing: &'static str,
        /// What went wrong: SQS's code and message, or why the message could not be encoded.
        message: String,
    },
    /// The event's review-queue copy is not there yet (held by another reader, or expired).
    #[error("event {0}: its review-queue copy is not there yet (held by another reader, or expired); will retry")]
    CopyNotThere(String),
    /// The record holds nothing this can carry out (no decision, an unknown choice, a re-route
    /// no route acts on).
    #[error("event {event_id}: {why}")]
    NotCarriable {
        /// The event the record is for.
        event_id: String,
        /// What the record lacks: no decision, or the choice it cannot carry out.
        why: String,
    },
}

fn queue(doing: &'static str) -> impl FnOnce(String) -> CarryError {
    move |message| CarryError::Queue { doing, message }
}

/// What [`Decider::carry_out`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct CarriedOut {
    /// Review-queue copies of the event deleted.
    pub removed: usize,
    /// `connector.action` of each action sent to act.
    pub actions: Vec<String>,
    /// Whether the review message is being updated.
    pub card_updated: bool,
}

impl Decider {
    /// Decide on `event_id` as `by` (through `via`) chose; `note` is kept as the record's reason.
    /// People not allowed to decide are refused (and recorded); a CLI operator is allowed by IAM.
    /// `member_of`: the approvers' user groups Slack says `by` is in, once asked (`None`: not
    /// asked; a Slack click by someone not named then comes back as [`Verdict::AskGroups`]).
    #[allow(clippy::too_many_arguments)] // one decision's facts; a struct would only rename them
    pub async fn decide(
        &self,
        event_id: &str,
        choice: &Choice,
        by: &str,
        via: &str,
        note: Option<&str>,
        member_of: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<Verdict, crate::aws::StoreError> {
        let Some(record) = self.decisions.get(event_id).await? else {
            return Ok(Verdict::Unknown);
        };
        if let Some(h) = record.human.clone() {
            return Ok(Verdict::Already(h));
        }
        if record.status != state::IN_REVIEW {
            return Ok(Verdict::NotWaiting(record.stage().to_owned()));
        }
        if let (Some(at), false) = (&record.approval_expired, via == "cli") {
            return Ok(Verdict::Expired(at.clone()));
        }
        let c = record.classification();
        let source = Source::parse(&record.source).unwrap_or(Source::Smoke);
        // Who may decide: the approvers of the event's proposed route, and for a re-route also
        // those of the route it is sent to (a re-route must not get round an approval).
        let mut approvals = vec![self.routing.approval_for(source, &c)];
        if let Choice::Route(category) = choice {
            let target = Classification {
                category: category.clone(),
                ..c.clone()
            };
            approvals.push(self.routing.approval_for(source, &target));
        }
        let known = member_of.unwrap_or_default();
        if let Some(refused) = approvals.iter().find(|a| !allowed(a, by, via, known)) {
            let groups: Vec<String> = approvals.iter().flat_map(|a| a.groups()).collect();
            if via == "slack" && member_of.is_none() && !groups.is_empty() {
                let mut groups = groups;
                groups.sort();
                groups.dedup();
                return Ok(Verdict::AskGroups(groups));
            }
            let refused = refused.clone();
            self.decisions
                .record_refusal(event_id, by, via, "not an approver", now)
                .await?;
            return Ok(Verdict::NotAllowed(refused.approvers));
        }
        match choice {
            Choice::Route(category) => {
                let routable = self.routing.routable(source, &c);
                if !routable.contains(&category.as_str()) {
                    let names = routable.iter().map(|n| n.to_string()).collect();
                    return Ok(Verdict::NoSuchCategory(names));
                }
            }
            Choice::Approve if !self.routing.has_proposal(source, &c) => {
                return Ok(Verdict::NothingToApprove)
            }
            _ => {}
        }
        let d = HumanDecision::new(choice, by, via, now).with_note(note);
        let reason = match &d.note {
            Some(n) => format!("{} by {by}: {n}", choice.describe()),
            None => format!("{} by {by}", choice.describe()),
        };
        Ok(match self.decisions.decide(event_id, &d, &reason).await? {
            Decided::Now(r) => Verdict::Decided(r),
            Decided::Already(h) => Verdict::Already(h),
            Decided::NotWaiting(s) => Verdict::NotWaiting(s),
            Decided::Unknown => Verdict::Unknown,
        })
    }

    /// Hand a decision to act again when its first hand-off was lost (the door decided, then
    /// could not reach the queue): a decision older than a minute and not carried out.
    pub async fn resend_if_stuck(&self, event_id: &str, h: &HumanDecision) {
        let old = DateTime::parse_from_rfc3339(&h.at)
            .is_ok_and(|at| Utc::now() - at.with_timezone(&Utc) > chrono::Duration::minutes(1));
        if h.carried_out || !old {
            return;
        }
        if let Err(e) = self.hand_to_act(event_id, None, "").await {
            tracing::warn!(error = %e, event_id, "a stuck decision could not be handed to act");
        }
    }

    /// Hand a decision written by a door to act, which carries it out (a door must answer at
    /// once). `card`: where the review message is, when the door knows.
    pub async fn hand_to_act(
        &self,
        event_id: &str,
        card: Option<CardRef>,
        correlation_id: &str,
    ) -> Result<(), CarryError> {
        let msg = crate::routing::DecidedMessage {
            decided: event_id.to_owned(),
            card,
        };
        self.send_to_act(&msg, correlation_id).await
    }

    /// Send `msg` to act's queue, with the request's correlation id.
    pub async fn send_to_act(
        &self,
        msg: &impl serde::Serialize,
        correlation_id: &str,
    ) -> Result<(), CarryError> {
        let body =
            serde_json::to_string(msg).map_err(|e| queue("encoding for act")(e.to_string()))?;
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.act_queue_url)
            .message_body(body);
        if !correlation_id.is_empty() {
            send = send.message_attributes(CORRELATION_ATTR, correlation_attr(correlation_id));
        }
        send.send()
            .await
            .map(|_| ())
            .map_err(|e| queue("sending to act")(crate::aws::error_message(&e)))
    }

    /// Carry out the decision `record` holds (see the module's doc). `Err` when it cannot yet
    /// (the review copy is held by another reader, a queue is down): the caller retries.
    pub async fn carry_out(
        &self,
        record: &DecisionRecord,
        card: Option<CardRef>,
    ) -> Result<CarriedOut, CarryError> {
        let not_carriable = |why: String| CarryError::NotCarriable {
            event_id: record.event_id.clone(),
            why,
        };
        let Some(human) = record.human.clone() else {
            return Err(not_carriable("no decision to carry out".into()));
        };
        let choice = human
            .choice()
            .ok_or_else(|| not_carriable(format!("unknown choice {:?}", human.choice)))?;
        // Another decision being carried out holds the copies it reads past for a moment: look
        // again shortly before handing the work back to the queue.
        let mut tries = 0;
        let (copies, receipts) = loop {
            let (copies, receipts) = self.take(&record.event_id).await?;
            tries += 1;
            if !copies.is_empty() || human.carried_out || tries == 3 {
                break (copies, receipts);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        let first = copies.into_iter().next().or_else(|| {
            // Dismiss and take over need no words of the event: only its card is updated.
            matches!(choice, Choice::Dismiss | Choice::TakeOver).then(|| ReviewMessage {
                event: event_of(record),
                category: record.category.clone(),
                confidence: record.confidence,
                reason: record.reason.clone().unwrap_or_default(),
            })
        });
        let Some(item) = first else {
            self.release(&receipts).await;
            // Carried out before (its copies deleted), or the copy is held by another reader,
            // or it expired: only the first is done.
            return match human.carried_out {
                true => Ok(CarriedOut {
                    removed: 0,
                    actions: Vec::new(),
                    card_updated: false,
                }),
                false => Err(CarryError::CopyNotThere(record.event_id.clone())),
            };
        };
        let c = record.classification();
        let planned = match &choice {
            Choice::Approve => self.routing.proposal(&item.event, &c).unwrap_or_default(),
            Choice::Route(category) => {
                let human = Classification {
                    category: category.clone(),
                    confidence: 1.0,
                    scores: Default::default(),
                    signals: vec![format!("chosen by {}", human.by)],
                    backend: HUMAN,
                    language: c.language.clone(),
                    fallback: None,
                    second_opinion: None,
                    flag: None,
                };
                match self.routing.decide(&item.event, &human) {
                    Decision::Act(planned) => planned,
                    Decision::Review { reason, .. } => {
                        self.release(&receipts).await;
                        return Err(not_carriable(format!(
                            "no route acts on {category:?} for this event: {reason}"
                        )));
                    }
                }
            }
            Choice::Dismiss | Choice::TakeOver => Vec::new(),
        };
        let category = match &choice {
            Choice::Route(category) => category.clone(),
            _ => c.category.clone(),
        };
        let mut sent = Vec::new();
        if !planned.is_empty() {
            sent.push(ActMessage {
                event: item.event.clone(),
                category: category.clone(),
                confidence: if matches!(choice, Choice::Route(_)) {
                    1.0
                } else {
                    c.confidence
                },
                actions: planned.clone(),
                review_reason: None,
                card_update: false,
                key_stage: None,
            });
        }
        let card = card.or_else(|| self.card_of(record));
        if let Some(card) = &card {
            sent.push(ActMessage {
                event: item.event.clone(),
                category,
                confidence: c.confidence,
                actions: vec![self.card_update(&item, &human, &choice, &planned, card)],
                review_reason: None,
                card_update: true,
                key_stage: None,
            });
        }
        for msg in &sent {
            let body = serde_json::to_string(msg)
                .map_err(|e| queue("encoding the decision for act")(e.to_string()))?;
            self.sqs
                .send_message()
                .queue_url(&self.act_queue_url)
                .message_body(body)
                .message_attributes(CORRELATION_ATTR, correlation_attr(&record.correlation_id))
                .send()
                .await
                .map_err(|e| queue("sending the decision to act")(crate::aws::error_message(&e)))?;
        }
        if planned.is_empty() && matches!(choice, Choice::Approve | Choice::Route(_)) {
            // A route with no actions: nothing to do is done.
            let _ = self
                .decisions
                .record_outcome(&record.event_id, state::DONE, &[], None, Utc::now())
                .await;
        }
        self.decisions
            .mark_carried_out(&record.event_id, &planned, Utc::now())
            .await?;
        let removed = receipts.len();
        for receipt in receipts {
            self.sqs
                .delete_message()
                .queue_url(&self.review_queue_url)
                .receipt_handle(receipt)
                .send()
                .await
                .map_err(|e| {
                    queue("deleting the decided review message")(crate::aws::error_message(&e))
                })?;
        }
        Ok(CarriedOut {
            removed,
            actions: planned
                .iter()
                .map(|a| format!("{}.{}", a.connector, a.action))
                .collect(),
            card_updated: card.is_some(),
        })
    }

    /// The review message the review route posted for this event: the channel its Slack notice
    /// names, and the `ts` act recorded when it posted it.
    pub fn card_of(&self, record: &DecisionRecord) -> Option<CardRef> {
        let ts = record.attempts.iter().find_map(|a| {
            (a["stage"] == "review" && a["action"] == "slack.post_message" && a["status"] == "done")
                .then(|| a["object_id"].as_str().map(str::to_owned))?
        })?;
        let channel = self.routing.review_channel()?.to_owned();
        Some(CardRef { channel, ts })
    }

    /// The action replacing the review message with one that says who decided what.
    fn card_update(
        &self,
        item: &ReviewMessage,
        human: &HumanDecision,
        choice: &Choice,
        planned: &[PlannedAction],
        card_ref: &CardRef,
    ) -> PlannedAction {
        let when = DateTime::parse_from_rfc3339(&human.at)
            .map(|t| {
                t.with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            })
            .unwrap_or_else(|_| human.at.clone());
        let who = card::who(&human.by, &human.via);
        let what = match choice {
            Choice::Approve | Choice::Route(_) if planned.is_empty() => {
                "nothing to do (the route has no actions)".to_owned()
            }
            Choice::Approve | Choice::Route(_) => {
                let lines: Vec<String> = planned
                    .iter()
                    .map(|a| format!("• {}", card::describe_action(a)))
                    .collect();
                format!("switchyard is doing:\n{}", lines.join("\n"))
            }
            Choice::Dismiss => "switchyard does nothing more with it.".to_owned(),
            Choice::TakeOver => format!(
                "a person handles it in {}; switchyard does nothing more.",
                item.event.source
            ),
        };
        let because = human.note.as_deref().map(card::reason).unwrap_or_default();
        let line = format!(
            "*{}* by {who} at {when} (via {}). {what}{because}",
            capitalized(&choice.describe()),
            human.via
        );
        let text = format!(
            "{} event {}: {} by {} at {when}",
            item.event.source,
            item.event.id,
            choice.describe(),
            human.by
        );
        let mut action = PlannedAction::new(
            "slack",
            "update_message",
            BTreeMap::from([
                ("channel".to_owned(), card_ref.channel.clone()),
                ("ts".to_owned(), card_ref.ts.clone()),
                (
                    "text".to_owned(),
                    crate::routing::Markup::SlackMrkdwn.escape(&text),
                ),
                (
                    "blocks".to_owned(),
                    card::decided_card(&item.event, &line).to_string(),
                ),
            ]),
        );
        action.json.insert("blocks".into());
        action
    }

    /// Every review-queue copy of the event (a retry may have queued two), held hidden; the
    /// other messages are held while the scan goes on (so it moves through the queue), then made
    /// visible again at once.
    async fn take(&self, event_id: &str) -> Result<(Vec<ReviewMessage>, Vec<String>), CarryError> {
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
                .map_err(|e| queue("reading the review queue")(crate::aws::error_message(&e)))?;
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

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The event a record describes, for work on it after its review copy is gone or not needed
/// (a reminder, an expiry's card): who it is, without its words.
pub(crate) fn event_of(record: &DecisionRecord) -> crate::event::Event {
    let received_at = record
        .received_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    crate::event::Event {
        vendor_delivery_id: None,
        id: record.event_id.clone(),
        source: Source::parse(&record.source).unwrap_or(Source::Smoke),
        event_type: record.event_type.clone(),
        delivery_id: record.delivery_id.clone(),
        object_id: record.object_id.clone(),
        subject: None,
        text: None,
        requester: None,
        occurred_at: None,
        received_at,
        links: Vec::new(),
        unknown_fields: Vec::new(),
        attachments: Vec::new(),
        raw: Default::default(),
    }
}

/// Whether `by`, coming through `via`, may decide under `approval`. The CLI's guard is IAM and
/// the expiry is switchyard's own; a link names nobody, so it decides only where the approval
/// names nobody either; a Slack user must be on the list (an empty list: anyone).
fn allowed(approval: &crate::routing::Approval, by: &str, via: &str, member_of: &[String]) -> bool {
    match via {
        "cli" | "expiry" => true,
        "link" => approval.approvers.is_empty(),
        _ => approval.allows(by, member_of),
    }
}

/// Slack posts interaction answers here; anything else in a payload is not followed.
pub(crate) const SLACK_RESPONSE_BASE: &str = "https://hooks.slack.com/";

/// Ephemeral answers for a person who clicked, through the click's `response_url`: by intake at
/// once, or by act after asking Slack about a user group.
#[derive(Clone, Debug)]
pub struct Answers {
    http: reqwest::Client,
    /// `response_url` prefixes answered (Slack's own; the local stack adds the sandbox's).
    bases: Vec<String>,
}

impl Answers {
    /// Over `http` (the function's one client), to Slack and `SLACK_RESPONSE_URL_BASE`.
    pub fn new(http: reqwest::Client, s: &crate::settings::Settings) -> Self {
        let mut bases = vec![SLACK_RESPONSE_BASE.to_owned()];
        bases.extend(s.optional("SLACK_RESPONSE_URL_BASE").map(str::to_owned));
        Answers { http, bases }
    }

    /// Answer through `response_url` (only Slack's own, or the configured base); best effort,
    /// within Slack's 3 s.
    pub async fn send(&self, response_url: Option<&str>, text: &str) {
        let Some(url) =
            response_url.filter(|u| self.bases.iter().any(|b| u.starts_with(b.as_str())))
        else {
            if response_url.is_some() {
                tracing::warn!("a response_url outside Slack's was not followed");
            }
            return;
        };
        let body = serde_json::json!({"response_type": "ephemeral", "replace_original": false,
            "text": crate::routing::Markup::SlackMrkdwn.escape(text)});
        let sent = self
            .http
            .post(url)
            .timeout(std::time::Duration::from_millis(1500))
            .json(&body)
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %crate::redact::redact(&e.without_url().to_string()), "the ephemeral answer was not delivered");
        }
    }
}

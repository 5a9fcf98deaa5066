//! The messages classify sends on: to act (the planned actions) and to the review queue.

use serde::{Deserialize, Serialize};

use super::PlannedAction;
use crate::event::Event;

/// What classify hands to act.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActMessage {
    /// The event the actions are for.
    pub event: Event,
    /// The category the event was classified as, or the one a person chose.
    pub category: String,
    /// The classifier's confidence in `category`, from 0 to 1; 1 when a person re-routed it.
    pub confidence: f64,
    /// The actions to carry out, parameters filled in.
    pub actions: Vec<PlannedAction>,
    /// Set when these actions only tell a human about an event in review (the review route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    /// Set when these actions only update the review message after a person decided: keys of
    /// their own (`decision#…`), and the record's state is not theirs to change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub card_update: bool,
    /// With `card_update`: the keys' stage (`decision` when absent; `reminder`, `expiry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_stage: Option<String>,
}

/// What classify hands to the human-review route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReviewMessage {
    pub event: Event,
    pub category: String,
    pub confidence: f64,
    /// Why a human is needed, in words a human can act on.
    pub reason: String,
}

/// What a door hands to act once a person decided: the event decided on. Act reads the decision
/// from the record (its one source of truth) and carries it out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DecidedMessage {
    pub decided: String,
    /// Where the review message is, when the decision came from its buttons (otherwise act finds
    /// it from the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRef>,
}

/// A click by someone the approval does not name, where it names user groups: intake hands it
/// to act, which asks Slack for the groups' members (with the bot token intake does not hold)
/// and then decides as intake would have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupClick {
    /// The event clicked on.
    pub group_click: String,
    /// The choice as the record keeps it (`approved`, `rerouted`…), with a re-route's category.
    pub choice: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The Slack user who clicked (Slack signed it).
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The groups to ask about.
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRef>,
    /// Where the person is answered if refused (checked against the allowed bases again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
}

/// A Slack message: its channel id and `ts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CardRef {
    pub channel: String,
    pub ts: String,
}

/// A timer on an approval, sent to act with a delay (chained past SQS's 15 minutes): nothing
/// polls while nobody decides, and a timer that finds the event decided does nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ApprovalTimer {
    /// The event waiting for a person.
    pub timer: String,
    pub kind: TimerKind,
    /// When it is due (unix ms).
    pub due_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TimerKind {
    Remind,
    Expire,
}

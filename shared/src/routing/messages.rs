//! The messages classify sends on: to act (the planned actions) and to the review queue.

use serde::{Deserialize, Serialize};

use super::PlannedAction;
use crate::event::Event;

/// What classify hands to act.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActMessage {
    pub event: Event,
    pub category: String,
    pub confidence: f64,
    pub actions: Vec<PlannedAction>,
    /// Set when these actions only tell a human about an event in review (the review route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
}

/// What classify hands to the human-review route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewMessage {
    pub event: Event,
    pub category: String,
    pub confidence: f64,
    /// Why a human is needed, in words a human can act on.
    pub reason: String,
}

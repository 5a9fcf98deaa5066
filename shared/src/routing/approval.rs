//! Approval policy: a route that asks a person before it writes, who may answer, and what a
//! person is offered when an event waits for them.
//!
//! A route with `approval = { approvers = ["U…"], approve_below = 0.8 }` sends a confident event
//! to review instead of acting (unless its confidence is at or above `approve_below`); the review
//! message then offers **Approve**: exactly what the route would have done. Who may decide is the
//! event's proposed route's `approvers`, else `[review]`'s, else anyone who sees the message.

use serde::Deserialize;

use super::{plan, Classification, ConfigError, Event, PlannedAction, RoutingConfig, Text};
use crate::event::Source;

/// The backend a person's choice is recorded as: a route never asks a person to approve a
/// person's own choice.
pub(crate) const HUMAN: &str = "human";

/// A route's approval policy: who may decide, below what confidence to ask, and the timers.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Slack user ids (`U…`, `W…`) and user groups (`S…`, their members at the time of the
    /// click) allowed to decide; empty: anyone who can see the message.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Act without asking at or above this confidence; absent: always ask.
    #[serde(default)]
    pub approve_below: Option<f64>,
    /// One reminder (a thread reply mentioning the approvers) this long after asking (`2h`).
    #[serde(default)]
    pub remind_after: Option<String>,
    /// No decision this long after asking (`24h`): `on_expiry` applies.
    #[serde(default)]
    pub expires: Option<String>,
    /// What happens when `expires` passes undecided; `review` when absent.
    #[serde(default)]
    pub on_expiry: OnExpiry,
}

/// A Slack user group's id (`S…`), as opposed to a user's.
pub fn is_group(id: &str) -> bool {
    id.starts_with('S')
}

/// What an approval nobody decided in time becomes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnExpiry {
    /// The buttons go; the event stays in the review inbox for an operator (`review resolve`).
    #[default]
    Review,
    /// Dismissed, as if a person had: switchyard does nothing more.
    Dismiss,
}

impl Approval {
    /// When to remind, and when the approval expires, after asking (validated at load).
    pub(crate) fn timers(&self) -> (Option<std::time::Duration>, Option<std::time::Duration>) {
        let at = |v: &Option<String>| {
            v.as_deref()
                .and_then(|t| crate::settings::parse_interval(t).ok())
        };
        (at(&self.remind_after), at(&self.expires))
    }

    /// Whether `user` (a Slack user id, or a CLI operator) may decide, knowing they belong to
    /// `member_of` (user groups, as Slack answered for them).
    pub fn allows(&self, user: &str, member_of: &[String]) -> bool {
        self.approvers.is_empty()
            || self
                .approvers
                .iter()
                .any(|a| a == user || member_of.contains(a))
    }

    /// The user groups (`S…`) among the approvers: whose members Slack is asked for.
    pub fn groups(&self) -> Vec<String> {
        self.approvers
            .iter()
            .filter(|a| is_group(a))
            .cloned()
            .collect()
    }

    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        for a in &self.approvers {
            let id = a.len() >= 3
                && (a.starts_with('U') || a.starts_with('W') || a.starts_with('S'))
                && a.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !id {
                return Err(ConfigError::Invalid(format!(
                    "{at}: approver {a:?} is not a Slack user id (U… or W…, as a profile's \"Copy member ID\" gives it) or user group id (S…)"
                )));
            }
        }
        let interval = |name: &str, v: &Option<String>| match v {
            Some(text) => crate::settings::parse_interval(text)
                .map(Some)
                .map_err(|e| ConfigError::Invalid(format!("{at}: {name}: {e}"))),
            None => Ok(None),
        };
        let remind = interval("remind_after", &self.remind_after)?;
        let expires = interval("expires", &self.expires)?;
        if let (Some(r), Some(e)) = (remind, expires) {
            if r >= e {
                return Err(ConfigError::Invalid(format!(
                    "{at}: remind_after must come before expires"
                )));
            }
        }
        if let Some(b) = self.approve_below.filter(|b| !(0.0..=1.0).contains(b)) {
            return Err(ConfigError::Invalid(format!(
                "{at}: approve_below {b} is outside 0..=1"
            )));
        }
        Ok(())
    }
}

impl RoutingConfig {
    /// Why `route` asks a person before acting on `c`, if it does.
    pub(super) fn asks(
        &self,
        index: usize,
        approval: &Approval,
        c: &Classification,
    ) -> Option<String> {
        if c.backend == HUMAN {
            return None;
        }
        match approval.approve_below {
            Some(below) if c.confidence >= below => None,
            Some(below) => Some(format!(
                "route {} for {:?} asks a person below confidence {below:.2} (this is {:.2})",
                index + 1,
                c.category,
                c.confidence
            )),
            None => Some(format!(
                "route {} for {:?} asks a person before it writes",
                index + 1,
                c.category
            )),
        }
    }

    /// What a person's **Approve** does: the actions of the route the best guess would take if
    /// it were sure (confidence, the sensitive guard and approval set aside). `None` when no route
    /// fits the guess: a person can then only route it as a category, dismiss or take over.
    pub(crate) fn proposal(&self, event: &Event, c: &Classification) -> Option<Vec<PlannedAction>> {
        let sure = Classification {
            confidence: 1.0,
            ..c.clone()
        };
        let (_, route) = self.matching_route(event, &sure)?;
        plan(&route.actions, event, c, None, Text::AsIs).ok()
    }

    /// Whether [`proposal`](Self::proposal) has a route for a guess from `source`.
    pub(crate) fn has_proposal(&self, source: Source, c: &Classification) -> bool {
        let sure = Classification {
            confidence: 1.0,
            ..c.clone()
        };
        self.route_matching(source, &sure).is_some()
    }

    /// Who may decide on an event waiting for a person: its proposed route's approvers, else the
    /// review route's, else anyone.
    pub(crate) fn approval_for(&self, source: Source, c: &Classification) -> Approval {
        let sure = Classification {
            confidence: 1.0,
            ..c.clone()
        };
        self.route_matching(source, &sure)
            .and_then(|(_, r)| r.approval.clone())
            .or_else(|| self.review.as_ref().and_then(|r| r.approval.clone()))
            .unwrap_or_default()
    }

    /// Whether a review notice uses `{decision.links}` (then classify signs links for it).
    pub(crate) fn review_uses_links(&self) -> bool {
        self.review
            .iter()
            .flat_map(|r| &r.actions)
            .any(|a| a.params.values().any(|v| v.contains("{decision.links}")))
    }

    /// The channel the review route's Slack notice goes to, as the route writes it.
    pub(crate) fn review_channel(&self) -> Option<&str> {
        self.review
            .as_ref()?
            .actions
            .iter()
            .find(|a| a.connector == "slack" && a.action == "post_message")?
            .params
            .get("channel")
            .map(String::as_str)
    }

    /// The categories an event from `source` can be routed as: those a route acts on for it
    /// (what **Route as…** offers).
    pub(crate) fn routable(&self, source: Source, c: &Classification) -> Vec<&str> {
        self.category_names()
            .into_iter()
            .filter(|name| {
                let as_it = Classification {
                    category: (*name).to_owned(),
                    ..c.clone()
                };
                self.has_proposal(source, &as_it)
            })
            .collect()
    }

    /// The categories a person may route an event as (what **Route as…** lists).
    pub(crate) fn category_names(&self) -> Vec<&str> {
        self.categories.iter().map(|c| c.name.as_str()).collect()
    }
}

/// What a person chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Do what the proposed route would do.
    Approve,
    /// Act as this category (its route plans the actions).
    Route(String),
    /// Close the review item without acting; the record becomes `resolved`.
    Dismiss,
    /// A person handles it in the vendor; switchyard does nothing more.
    TakeOver,
}

impl Choice {
    /// The word the decision record keeps.
    pub fn as_str(&self) -> &'static str {
        match self {
            Choice::Approve => "approved",
            Choice::Route(_) => "rerouted",
            Choice::Dismiss => "dismissed",
            Choice::TakeOver => "taken_over",
        }
    }

    /// The choice a record's words name (`category` for a re-route).
    pub(crate) fn from_record(word: &str, category: Option<&str>) -> Option<Choice> {
        match word {
            "approved" => Some(Choice::Approve),
            "rerouted" => category.map(|c| Choice::Route(c.to_owned())),
            "dismissed" => Some(Choice::Dismiss),
            "taken_over" => Some(Choice::TakeOver),
            _ => None,
        }
    }

    /// In words for the card and `explain`: "approved", "re-routed as billing", ….
    pub fn describe(&self) -> String {
        match self {
            Choice::Approve => "approved".into(),
            Choice::Route(c) => format!("re-routed as {c}"),
            Choice::Dismiss => "dismissed".into(),
            Choice::TakeOver => "taken over".into(),
        }
    }
}

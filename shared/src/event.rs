//! The canonical event every vendor's webhook is normalized into, and the messages that carry it
//! from stage to stage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::routing::PlannedAction;

/// Where a webhook came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Zendesk,
    Slack,
    Jira,
    Github,
    Hubspot,
    Teams,
    Stripe,
    StandardWebhooks,
    Svix,
    Twilio,
    Salesforce,
}

impl Source {
    pub const ALL: [Source; 11] = [
        Source::Zendesk,
        Source::Slack,
        Source::Jira,
        Source::Github,
        Source::Hubspot,
        Source::Teams,
        Source::Stripe,
        Source::StandardWebhooks,
        Source::Svix,
        Source::Twilio,
        Source::Salesforce,
    ];

    /// The path segment (`/webhooks/{name}`) and the key of its signing secrets.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Zendesk => "zendesk",
            Source::Slack => "slack",
            Source::Jira => "jira",
            Source::Github => "github",
            Source::Hubspot => "hubspot",
            Source::Teams => "teams",
            Source::Stripe => "stripe",
            Source::StandardWebhooks => "standard-webhooks",
            Source::Svix => "svix",
            Source::Twilio => "twilio",
            Source::Salesforce => "salesforce",
        }
    }

    pub fn parse(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One vendor event, normalized. `raw` keeps the vendor payload as received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// switchyard's own id, assigned once at intake (a redelivery gets the same id back).
    pub id: String,
    pub source: Source,
    /// The vendor's event type, e.g. `zen:event-type:ticket.created`, `jira:issue_created`.
    pub event_type: String,
    /// The vendor's delivery id (stable across the vendor's retries), or a content hash.
    pub delivery_id: String,
    /// The vendor object the event is about (ticket id, issue key, channel), when there is one.
    pub object_id: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub requester: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    #[serde(default)]
    pub links: Vec<String>,
    /// Vendor fields the normalizer did not know (drift signals).
    #[serde(default)]
    pub unknown_fields: Vec<String>,
    pub raw: serde_json::Value,
}

/// switchyard's id for a delivery: derived from (source, vendor delivery id or content hash), so
/// a vendor's retry after a partial intake failure is the same event under the same action keys.
pub fn event_id_for(source: Source, delivery_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("switchyard-event\0{source}\0{delivery_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// SQS's message limit (256 KiB, attributes included): every stage's message must fit in it.
pub const QUEUE_MESSAGE_LIMIT: usize = 262_144;
/// What a queued event may take of it, leaving room for the wrappers later stages add (category,
/// reason, the correlation attribute).
pub const MAX_EVENT_MESSAGE_BYTES: usize = QUEUE_MESSAGE_LIMIT - 8 * 1024;
/// The deepest payload nesting accepted: serde_json reads 128 levels, and the stage messages wrap
/// the payload in two more, so anything near that limit would be accepted and never read.
pub const MAX_PAYLOAD_DEPTH: usize = 100;

/// How deep a JSON value nests (a scalar is 0, `[]` is 1), without recursion.
pub fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(a) => Box::new(a.iter()),
            serde_json::Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    deepest
}

impl Event {
    /// The canonical event for a normalized vendor payload, under switchyard's own id.
    pub fn from_normalized(
        id: String,
        source: Source,
        delivery_id: String,
        n: crate::webhook::Normalized,
        received_at: DateTime<Utc>,
    ) -> Self {
        Event {
            id,
            source,
            event_type: n.event_type,
            delivery_id,
            object_id: n.object_id,
            subject: n.subject,
            text: n.text,
            requester: n.requester,
            occurred_at: n.occurred_at,
            received_at,
            links: n.links,
            unknown_fields: n.unknown_fields,
            raw: n.raw,
        }
    }

    /// The subject, or else the first line of the text cut to 120 characters.
    pub fn summary(&self) -> Option<String> {
        self.subject.clone().or_else(|| {
            let line = self.text.as_deref()?.lines().next()?.trim();
            Some(line.chars().take(120).collect())
        })
    }

    /// Subject and text together: what a classifier reads.
    pub fn content(&self) -> String {
        [self.subject.as_deref(), self.text.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_per_delivery_and_distinct_across_sources() {
        let a = event_id_for(Source::Zendesk, "01HX");
        assert_eq!(a, event_id_for(Source::Zendesk, "01HX"));
        assert_ne!(a, event_id_for(Source::Github, "01HX"));
        assert_ne!(a, event_id_for(Source::Zendesk, "01HY"));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 8);
    }

    #[test]
    fn depth_counts_containers() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a": [1, {"b": []}], "c": 2}"#).unwrap();
        assert_eq!(json_depth(&v), 4);
        assert_eq!(json_depth(&serde_json::json!(1)), 0);
    }
}

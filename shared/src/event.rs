//! The canonical event every vendor's webhook is normalized into, and the messages that carry it
//! from stage to stage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a webhook came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Zendesk event webhooks (tickets).
    Zendesk,
    /// Slack: the Events API, slash commands and interactivity.
    Slack,
    /// Jira Cloud webhooks (issues).
    Jira,
    /// GitHub webhooks.
    Github,
    /// HubSpot webhooks, signed v1, v2 or v3; one delivery batches several events.
    Hubspot,
    /// Microsoft Teams outgoing webhooks.
    Teams,
    /// Stripe webhooks (the `Stripe-Signature` scheme).
    Stripe,
    /// Any sender signing by the Standard Webhooks spec (`webhook-*` headers).
    StandardWebhooks,
    /// Svix: the Standard Webhooks scheme under `svix-*` headers.
    Svix,
    /// Twilio webhooks, form-encoded or JSON.
    Twilio,
    /// Salesforce Outbound Messages (SOAP), accepted by organization id rather than a signature.
    Salesforce,
    /// `switchyard smoke`'s test events: Standard Webhooks-signed with the intake secret's
    /// `"smoke"` key, classified as `smoke` without a model, and done by act without a call.
    Smoke,
}

impl Source {
    /// Every source, in declaration order.
    pub const ALL: [Source; 12] = [
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
        Source::Smoke,
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
            Source::Smoke => "smoke",
        }
    }

    /// The source whose [`as_str`](Self::as_str) name is `name`, if any.
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
    /// The sender, as named by the `/webhooks/{source}` path it arrived on.
    pub source: Source,
    /// The vendor's event type, e.g. `zen:event-type:ticket.created`, `jira:issue_created`.
    pub event_type: String,
    /// The vendor's delivery id (stable across the vendor's retries) where its signature covers
    /// it, else a hash of the signed content: what dedupes.
    pub delivery_id: String,
    /// The vendor's own delivery id where it is not what dedupes (a header the signature does
    /// not cover: GitHub's, Jira's, Twilio's), kept so `explain` finds the event by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_delivery_id: Option<String>,
    /// The vendor object the event is about (ticket id, issue key, channel), when there is one.
    pub object_id: Option<String>,
    /// The item's title (ticket subject, issue summary), when the payload has one.
    pub subject: Option<String>,
    /// The item's body or message text, when the payload has one.
    pub text: Option<String>,
    /// Who raised or triggered the event, as the vendor names them (user id, login, email).
    pub requester: Option<String>,
    /// When the event happened by the vendor's clock; `None` when the payload has no readable time.
    #[serde(with = "rfc3339_opt")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// When intake received the webhook.
    #[serde(with = "rfc3339")]
    pub received_at: DateTime<Utc>,
    /// Web URLs of the object in the vendor's UI; the first is a notice's `{event.link}`.
    #[serde(default)]
    pub links: Vec<String>,
    /// Vendor fields the normalizer did not know (drift signals).
    #[serde(default)]
    pub unknown_fields: Vec<String>,
    /// Files attached to what the event is about: metadata only, never the bytes (queue
    /// messages stay small); classify fetches them under the connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The vendor payload: as received, or as built from a form, XML body or one item of a batch.
    pub raw: Payload,
}

/// One file an event names, as the vendor described it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The vendor's id for the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The file name the vendor gave, if any (shown to people redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The type the vendor declared: shown, never trusted (the bytes are sniffed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_type: Option<String>,
    /// The size the vendor declared, in bytes; a file declared over the fetch limit is not fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Where the vendor serves the bytes, under the connection's credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// chrono's own text for a date (RFC 3339, `Z`, a fraction only when there is one), written in one
/// piece: chrono's `Serialize` streams it through serde_json's escaper a field at a time, 155 ns a
/// date on intake's hot path against 50 ns this way. Read back by chrono as before.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

mod rfc3339_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

/// A vendor payload kept as the JSON text it arrived as: passed from stage to stage without being
/// parsed into a tree or written out again (intake's hot path; no stage reads inside it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<serde_json::value::RawValue>);

impl Payload {
    /// Keep `text` as it is, after checking that it is one JSON value.
    pub(crate) fn from_json_text(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text).map(Payload)
    }

    /// The JSON text, byte for byte as kept.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// How deep the payload nests, when it may nest deeper than `limit`: a text with no more than
    /// `limit` opening brackets anywhere cannot, and counting them is a fraction of reading the
    /// structure (this is on intake's hot path).
    pub fn depth_if_over(&self, limit: usize) -> Option<usize> {
        let text = self.get().as_bytes();
        let opening = memchr::memchr2_iter(b'[', b'{', text).count();
        if opening <= limit {
            return None;
        }
        Some(json_text_depth(self.get())).filter(|&d| d > limit)
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload(serde_json::value::RawValue::NULL.to_owned())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

/// For payloads a normalizer had to build (form bodies, XML, one item of a batch).
impl From<serde_json::Value> for Payload {
    fn from(value: serde_json::Value) -> Self {
        // A `Value` has string keys only, so writing it out cannot fail.
        serde_json::value::to_raw_value(&value)
            .map(Payload)
            .unwrap_or_default()
    }
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
pub(crate) const QUEUE_MESSAGE_LIMIT: usize = 262_144;
/// What a queued event may take of it, leaving room for the wrappers later stages add (category,
/// reason, the correlation attribute).
pub(crate) const MAX_EVENT_MESSAGE_BYTES: usize = QUEUE_MESSAGE_LIMIT - 8 * 1024;
/// The deepest payload nesting accepted: serde_json reads 128 levels, and the stage messages wrap
/// the payload in two more, so anything near that limit would be accepted and never read.
pub(crate) const MAX_PAYLOAD_DEPTH: usize = 100;

/// Why an event cannot be queued for the later stages (intake refuses it rather than accept what
/// could never be processed).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unqueueable {
    /// The payload nests deeper than the 100 levels accepted; holds its depth.
    #[error("payload nests {0} levels deep; switchyard accepts at most {MAX_PAYLOAD_DEPTH}")]
    TooDeep(usize),
    /// The event, written out, is over what a queued event may take; holds its size in bytes.
    #[error("the event is {0} bytes once normalized (payload plus the subject and text read from it); a queued event holds at most {MAX_EVENT_MESSAGE_BYTES}")]
    TooLarge(usize),
    /// The event could not be written out as JSON; holds the reason.
    #[error("payload cannot be queued: {0}")]
    NotSerializable(String),
}

/// How deep valid JSON text nests (a scalar is 0, `[]` is 1): brackets outside strings.
pub(crate) fn json_text_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

impl Event {
    /// The classify queue's message for this event, or why a later stage could not read it: a
    /// payload nested deeper than [`MAX_PAYLOAD_DEPTH`], or one whose message (payload plus the
    /// subject and text drawn from it) would not fit in a queue. The payload is copied in as sent.
    pub fn queue_body(&self) -> Result<String, Unqueueable> {
        if let Some(depth) = self.raw.depth_if_over(MAX_PAYLOAD_DEPTH) {
            return Err(Unqueueable::TooDeep(depth));
        }
        let body =
            serde_json::to_string(self).map_err(|e| Unqueueable::NotSerializable(e.to_string()))?;
        if body.len() > MAX_EVENT_MESSAGE_BYTES {
            return Err(Unqueueable::TooLarge(body.len()));
        }
        Ok(body)
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
    fn dates_are_written_as_chrono_writes_them() {
        for text in [
            "2024-01-15T10:31:00Z",
            "2024-01-15T10:31:00.250Z",
            "2024-01-15T10:31:00.000001Z",
        ] {
            let t = crate::dates::parse(text).unwrap();
            let mut out = serde_json::Serializer::new(Vec::new());
            rfc3339::serialize(&t, &mut out).unwrap();
            assert_eq!(out.into_inner(), serde_json::to_vec(&t).unwrap(), "{text}");
        }
    }

    #[test]
    fn depth_counts_containers_not_brackets_in_strings() {
        assert_eq!(json_text_depth(r#"{"a": [1, {"b": []}], "c": 2}"#), 4);
        assert_eq!(json_text_depth(r#"{"a": "[[[{{\\\"]]"}"#), 1);
        assert_eq!(json_text_depth("1"), 0);
        assert_eq!(json_text_depth("[[],[[]]]"), 3);
        let deep = |n: usize| {
            Payload::from_json_text(&format!("{}{}", "[".repeat(n), "]".repeat(n))).unwrap()
        };
        assert_eq!(deep(3).depth_if_over(2), Some(3));
        assert_eq!(deep(3).depth_if_over(3), None);
        // Many brackets, little depth: counted, then read, and not over.
        let wide = Payload::from_json_text(&format!("[{}[]]", "[],".repeat(50))).unwrap();
        assert_eq!(wide.depth_if_over(10), None);
        let quoted = Payload::from_json_text(&format!(r#"["{}"]"#, "[".repeat(50))).unwrap();
        assert_eq!(quoted.depth_if_over(10), None);
    }

    #[test]
    fn a_payload_is_passed_through_as_sent() {
        let text = r#"{"b": 1,  "a": [true, null]}"#;
        let p = Payload::from_json_text(text).unwrap();
        assert_eq!(p.get(), text);
        #[derive(Serialize)]
        struct Message<'a> {
            raw: &'a Payload,
        }
        let json = serde_json::to_string(&Message { raw: &p }).unwrap();
        assert_eq!(json, format!(r#"{{"raw":{text}}}"#));
        assert!(Payload::from_json_text("{\"a\": }").is_err());
        assert_eq!(
            Payload::from(serde_json::json!({"x": [1]})).get(),
            r#"{"x":[1]}"#
        );
        assert_eq!(Payload::default().get(), "null");
    }
}

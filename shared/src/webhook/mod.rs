//! Inbound webhooks: signature verification on the raw bytes, then normalization into
//! [`Event`](crate::event::Event)s. One module per vendor scheme.

pub mod gate;
pub mod signature;
pub(crate) mod wire;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use thiserror::Error;

use crate::event::Source;

/// Default replay window for schemes that sign a timestamp (both directions).
pub(crate) const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a webhook was refused. Each maps to a 401: the sender (or an attacker) is at fault.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    /// A header (or signed query parameter) the scheme needs is absent; holds its name.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header the scheme needs is present but cannot be read or decoded; holds its name.
    #[error("header {0} is malformed")]
    MalformedHeader(&'static str),
    /// The signed timestamp is outside the replay window, in the past or the future.
    #[error("timestamp is {skew_secs} s away from now; more than the {tolerance_secs} s allowed")]
    StaleTimestamp {
        /// How far the signed timestamp is from now, in seconds (never negative).
        skew_secs: i64,
        /// The largest distance allowed, in seconds.
        tolerance_secs: i64,
    },
    /// The signature does not verify under any of the source's usable secrets.
    #[error("signature does not match any active signing secret")]
    Mismatch,
    /// Verification was asked with no signing secret to check against.
    #[error("no signing secret is configured for this source")]
    NoSecret,
    /// The declared HubSpot signature version is below the deployment's minimum; holds the minimum.
    #[error("the signature version is below this deployment's minimum ({0})")]
    BelowMinimumVersion(&'static str),
}

/// Why a verified body could not be read as the vendor's event (a 400).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NormalizeError {
    /// The body is not UTF-8 JSON; holds the reason.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// A form-encoded body could not be read; holds the reason.
    #[error("body is not a valid form: {0}")]
    NotForm(String),
    /// An XML body could not be read; holds the reason.
    #[error("body is not valid XML: {0}")]
    NotXml(String),
    /// A field (or header) the normalizer needs is absent; holds a description of it.
    #[error("payload lacks {0}")]
    MissingField(&'static str),
}

/// An immediate answer the vendor expects instead of (or besides) our 202.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The reply's `Content-Type`, e.g. `application/json` or `text/plain`.
    pub content_type: &'static str,
    /// The reply body, sent as is.
    pub body: String,
}

impl Reply {
    /// An `application/json` reply whose body is `v` written out.
    pub fn json(v: serde_json::Value) -> Self {
        Reply {
            content_type: "application/json",
            body: v.to_string(),
        }
    }
}

/// What a verified webhook turned out to be.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// A handshake (Slack `url_verification`, GitHub `ping`): answer it, process nothing.
    Handshake(Reply),
    /// Events to process (HubSpot and Salesforce batch several in one request), and the reply the
    /// vendor expects, if not our default 202.
    Events {
        /// The normalized events, one per vendor event in the request.
        events: Vec<Normalized>,
        /// The reply the vendor expects; `None` for our default 202.
        ack: Option<Reply>,
    },
}

impl Inbound {
    /// A single event, answered with our default 202.
    pub fn event(n: Normalized) -> Self {
        Inbound::Events {
            events: vec![n],
            ack: None,
        }
    }

    /// The events to process; empty for a handshake.
    pub fn into_events(self) -> Vec<Normalized> {
        match self {
            Inbound::Events { events, .. } => events,
            Inbound::Handshake(_) => Vec::new(),
        }
    }
}

/// The vendor-specific part of an event; intake adds id and receive time.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Normalized {
    /// The vendor's event type, e.g. `zen:event-type:ticket.created` or GitHub's `issues.opened`.
    pub event_type: String,
    /// `None` when the vendor gives no delivery id; intake then uses a content hash.
    pub delivery_id: Option<String>,
    /// The vendor object the event is about (ticket id, issue key, `owner/repo#number`), if any.
    pub object_id: Option<String>,
    /// The item's title (ticket subject, issue summary), when the payload has one.
    pub subject: Option<String>,
    /// The item's body or message text, when the payload has one.
    pub text: Option<String>,
    /// Who raised or triggered the event, as the vendor names them (user id, login, email).
    pub requester: Option<String>,
    /// When the event happened by the vendor's clock; `None` when the payload has no readable time.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Web URLs of the object in the vendor's UI (GitHub's `html_url`, a Jira browse URL).
    pub links: Vec<String>,
    /// Top-level fields this normalizer does not know: drift signals, never errors.
    pub unknown_fields: Vec<String>,
    /// Files the payload names (their metadata only: the bytes are fetched by classify).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::event::Attachment>,
    /// The vendor payload: as received, or as built from a form, XML body or one item of a batch.
    pub raw: crate::event::Payload,
}

impl Normalized {
    /// The canonical event for this payload, under switchyard's own id.
    pub fn into_event(
        self,
        id: String,
        source: Source,
        delivery_id: String,
        received_at: DateTime<Utc>,
    ) -> crate::event::Event {
        crate::event::Event {
            id,
            source,
            event_type: self.event_type,
            vendor_delivery_id: self.delivery_id.filter(|v| *v != delivery_id),
            delivery_id,
            object_id: self.object_id,
            subject: self.subject,
            text: self.text,
            requester: self.requester,
            occurred_at: self.occurred_at,
            received_at,
            links: self.links,
            unknown_fields: self.unknown_fields,
            attachments: self.attachments,
            raw: self.raw,
        }
    }
}

/// The request as signed: method, the full URL the sender called, headers and raw body.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// The HTTP method, e.g. `POST` (HubSpot v2 and v3 sign it).
    pub method: &'a str,
    /// The full URL the sender called, query string included (HubSpot and Twilio sign it).
    pub url: &'a str,
    /// The request's headers, where the schemes find signatures and timestamps.
    pub headers: &'a HeaderMap,
    /// The body bytes exactly as received, before any parsing.
    pub body: &'a [u8],
}

pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, NormalizeError> {
    serde_json::from_str(json_text(body)?).map_err(|e| NormalizeError::NotJson(e.to_string()))
}

/// The body as JSON text: UTF-8 (as JSON must be), without a byte-order mark some senders
/// prepend, which is not part of the text.
pub(crate) fn json_text(body: &[u8]) -> Result<&str, NormalizeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    std::str::from_utf8(body).map_err(|e| NormalizeError::NotJson(format!("not UTF-8 text: {e}")))
}

pub(crate) fn header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .ok_or(VerifyError::MissingHeader(name))?
        .to_str()
        .map_err(|_| VerifyError::MalformedHeader(name))
}

pub(crate) fn opt_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// A JSON field as a string, whether the vendor sent it as a string or a number.
pub(crate) fn str_field(v: &serde_json::Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Top-level keys of `v` not in `known`.
pub(crate) fn unknown_keys(v: &serde_json::Value, known: &[&str]) -> Vec<String> {
    v.as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !known.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

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
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {0} is malformed")]
    MalformedHeader(&'static str),
    #[error("timestamp is {skew_secs} s away from now; more than the {tolerance_secs} s allowed")]
    StaleTimestamp { skew_secs: i64, tolerance_secs: i64 },
    #[error("signature does not match any active signing secret")]
    Mismatch,
    #[error("no signing secret is configured for this source")]
    NoSecret,
    #[error("the signature version is below this deployment's minimum ({0})")]
    BelowMinimumVersion(&'static str),
}

/// Why a verified body could not be read as the vendor's event (a 400).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NormalizeError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body is not a valid form: {0}")]
    NotForm(String),
    #[error("body is not valid XML: {0}")]
    NotXml(String),
    #[error("payload lacks {0}")]
    MissingField(&'static str),
}

/// An immediate answer the vendor expects instead of (or besides) our 202.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
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
        events: Vec<Normalized>,
        ack: Option<Reply>,
    },
}

impl Inbound {
    pub fn event(n: Normalized) -> Self {
        Inbound::Events {
            events: vec![n],
            ack: None,
        }
    }

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
    pub event_type: String,
    /// `None` when the vendor gives no delivery id; intake then uses a content hash.
    pub delivery_id: Option<String>,
    pub object_id: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub requester: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub links: Vec<String>,
    /// Top-level fields this normalizer does not know: drift signals, never errors.
    pub unknown_fields: Vec<String>,
    /// Files the payload names (their metadata only: the bytes are fetched by classify).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::event::Attachment>,
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
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a HeaderMap,
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

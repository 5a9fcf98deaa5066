//! Inbound webhooks: signature verification on the raw bytes, then normalization into an
//! [`Event`](crate::event::Event). One module per vendor.

pub mod jira;
pub mod signature;
pub mod slack;
pub mod zendesk;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use secrecy::SecretString;
use thiserror::Error;

use crate::event::Source;

/// Default replay window for schemes that sign a timestamp (both directions).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a webhook was refused. Each maps to a 4xx: the sender (or an attacker) is at fault.
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
}

/// Why a verified body could not be read as the vendor's event.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NormalizeError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("payload lacks {0}")]
    MissingField(&'static str),
}

/// What a verified webhook turned out to be.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// A vendor event to process.
    Event(Normalized),
    /// A handshake to answer at once (Slack `url_verification`): the body to send back.
    Handshake(serde_json::Value),
}

/// The vendor-specific part of an event; intake adds id and receive time.
#[derive(Debug, PartialEq)]
pub struct Normalized {
    pub event_type: String,
    /// `None` when the vendor gives no delivery id; intake then uses a content hash.
    pub delivery_id: Option<String>,
    pub object_id: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub requester: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub raw: serde_json::Value,
}

/// Check the request's signature against each active secret of its source.
pub fn verify(
    source: Source,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    match source {
        Source::Zendesk => zendesk::verify(headers, body, secrets, now),
        Source::Slack => slack::verify(headers, body, secrets, now),
        Source::Jira => jira::verify(headers, body, secrets),
    }
}

/// Read a verified body as the vendor's event.
pub fn normalize(
    source: Source,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Inbound, NormalizeError> {
    let raw = parse_json(body)?;
    match source {
        Source::Zendesk => zendesk::normalize(raw),
        Source::Slack => slack::normalize(raw),
        Source::Jira => jira::normalize(headers, raw),
    }
}

fn parse_json(body: &[u8]) -> Result<serde_json::Value, NormalizeError> {
    // Some senders prepend a UTF-8 byte-order mark; it is not part of the JSON text.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body).map_err(|e| NormalizeError::NotJson(e.to_string()))
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

/// A JSON field as a string, whether the vendor sent it as a string or a number.
pub(crate) fn str_field(v: &serde_json::Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

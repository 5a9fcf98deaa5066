//! Inbound webhooks: signature verification on the raw bytes, then normalization into
//! [`Event`](crate::event::Event)s. One module per vendor scheme.

pub mod gate;
pub mod github;
pub mod hubspot;
pub mod jira;
pub mod salesforce;
pub mod signature;
pub mod slack;
pub mod standard;
pub mod stripe;
pub mod teams;
pub mod twilio;
mod wire;
pub mod zendesk;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use secrecy::SecretString;
use thiserror::Error;

use crate::event::Source;

/// Default replay window for schemes that sign a timestamp (both directions).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

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
    pub raw: crate::event::Payload,
}

/// The request as signed: method, the full URL the sender called, headers and raw body.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A signature scheme, by the name `switchyard webhook verify` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Slack,
    Zendesk,
    Github,
    Jira,
    HubspotV1,
    HubspotV2,
    HubspotV3,
    Teams,
    Stripe,
    StandardWebhooks,
    Svix,
    Twilio,
}

impl Scheme {
    pub const ALL: [(&'static str, Scheme); 12] = [
        ("slack", Scheme::Slack),
        ("zendesk", Scheme::Zendesk),
        ("github", Scheme::Github),
        ("jira", Scheme::Jira),
        ("hubspot-v1", Scheme::HubspotV1),
        ("hubspot-v2", Scheme::HubspotV2),
        ("hubspot-v3", Scheme::HubspotV3),
        ("teams", Scheme::Teams),
        ("stripe", Scheme::Stripe),
        ("standard-webhooks", Scheme::StandardWebhooks),
        ("svix", Scheme::Svix),
        ("twilio", Scheme::Twilio),
    ];

    pub fn parse(name: &str) -> Option<Scheme> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// Check a request. With `now`, the timestamp window is enforced where the scheme signs one;
    /// without, only the signature is checked (for replaying a recorded request by hand).
    pub fn verify(
        self,
        req: &SignedRequest<'_>,
        secrets: &[SecretString],
        now: Option<DateTime<Utc>>,
    ) -> Result<(), VerifyError> {
        if secrets.is_empty() {
            return Err(VerifyError::NoSecret);
        }
        let (h, body) = (req.headers, req.body);
        match self {
            Scheme::Slack => slack::verify(h, body, secrets, now),
            Scheme::Zendesk => zendesk::verify(h, body, secrets, now),
            Scheme::Github => github::verify(h, body, secrets),
            Scheme::Jira => jira::verify(h, body, secrets),
            Scheme::HubspotV1 => hubspot::verify(hubspot::Version::V1, req, secrets, now),
            Scheme::HubspotV2 => hubspot::verify(hubspot::Version::V2, req, secrets, now),
            Scheme::HubspotV3 => hubspot::verify(hubspot::Version::V3, req, secrets, now),
            Scheme::Teams => teams::verify(h, body, secrets),
            Scheme::Stripe => stripe::verify(h, body, secrets, now),
            Scheme::StandardWebhooks => {
                standard::verify(standard::Flavor::Standard, h, body, secrets, now)
            }
            Scheme::Svix => standard::verify(standard::Flavor::Svix, h, body, secrets, now),
            Scheme::Twilio => twilio::verify(req, secrets),
        }
    }
}

/// Check a request to `/webhooks/{source}` against the source's active secrets.
pub fn verify(
    source: Source,
    req: &SignedRequest<'_>,
    secrets: &[SecretString],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let scheme = match source {
        Source::Zendesk => Scheme::Zendesk,
        Source::Slack => Scheme::Slack,
        Source::Jira => Scheme::Jira,
        Source::Github => Scheme::Github,
        Source::Hubspot => match hubspot::declared_version(req.headers)? {
            hubspot::Version::V1 => Scheme::HubspotV1,
            hubspot::Version::V2 => Scheme::HubspotV2,
            hubspot::Version::V3 => Scheme::HubspotV3,
        },
        Source::Teams => Scheme::Teams,
        Source::Stripe => Scheme::Stripe,
        Source::StandardWebhooks => Scheme::StandardWebhooks,
        Source::Svix => Scheme::Svix,
        Source::Twilio => Scheme::Twilio,
        Source::Salesforce => return salesforce::verify(req.body, secrets),
    };
    scheme.verify(req, secrets, Some(now))
}

/// Whether a source sends bodies of this content type (`None`: the header was absent).
pub fn accepts_content_type(source: Source, content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = mime == "application/json" || mime.ends_with("+json") || mime == "text/json";
    match source {
        Source::Twilio => json || mime == "application/x-www-form-urlencoded",
        Source::Salesforce => matches!(
            mime.as_str(),
            "text/xml" | "application/xml" | "application/soap+xml"
        ),
        _ => json,
    }
}

/// Read a verified body as the vendor's event(s).
pub fn normalize(
    source: Source,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Inbound, NormalizeError> {
    let form = opt_header(headers, "content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    match source {
        Source::Twilio => return twilio::normalize(headers, body),
        Source::Salesforce => return salesforce::normalize(body),
        Source::Slack if form => return slack::normalize_form(body),
        Source::Zendesk => return zendesk::normalize(json_text(body)?),
        _ => {}
    }
    let raw = parse_json(body)?;
    match source {
        Source::Slack => slack::normalize(raw),
        Source::Jira => jira::normalize(headers, raw),
        Source::Github => github::normalize(headers, raw),
        Source::Hubspot => hubspot::normalize(raw),
        Source::Teams => teams::normalize(raw),
        Source::Stripe => stripe::normalize(raw),
        Source::StandardWebhooks => standard::normalize(standard::Flavor::Standard, headers, raw),
        Source::Svix => standard::normalize(standard::Flavor::Svix, headers, raw),
        Source::Zendesk | Source::Twilio | Source::Salesforce => unreachable!("handled above"),
    }
}

pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, NormalizeError> {
    serde_json::from_str(json_text(body)?).map_err(|e| NormalizeError::NotJson(e.to_string()))
}

/// The body as JSON text: UTF-8 (as JSON must be), without a byte-order mark some senders
/// prepend, which is not part of the text.
fn json_text(body: &[u8]) -> Result<&str, NormalizeError> {
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

#[cfg(test)]
mod matrix_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_per_source() {
        assert!(accepts_content_type(
            Source::Zendesk,
            Some("application/json; charset=utf-8")
        ));
        assert!(accepts_content_type(Source::Zendesk, None));
        assert!(!accepts_content_type(Source::Zendesk, Some("text/plain")));
        assert!(accepts_content_type(
            Source::Twilio,
            Some("application/x-www-form-urlencoded")
        ));
        assert!(accepts_content_type(
            Source::Salesforce,
            Some("text/xml; charset=utf-8")
        ));
        assert!(!accepts_content_type(
            Source::Salesforce,
            Some("application/json")
        ));
    }

    #[test]
    fn every_scheme_name_round_trips() {
        for (name, scheme) in Scheme::ALL {
            assert_eq!(Scheme::parse(name), Some(scheme));
        }
        assert_eq!(Scheme::parse("myspace"), None);
    }
}

//! Inbound, by source: which signature scheme and which normalizer each `/webhooks/{source}`
//! uses. The schemes and normalizers themselves live in each vendor's `inbound` module.

use chrono::{DateTime, Utc};
use http::HeaderMap;
use secrecy::SecretString;

use crate::event::Source;
use crate::webhook::{
    json_text, opt_header, parse_json, Inbound, NormalizeError, SignedRequest, VerifyError,
};

use super::github::inbound as github;
use super::hubspot::inbound as hubspot;
use super::jira::inbound as jira;
use super::salesforce::inbound as salesforce;
use super::slack::inbound as slack;
use super::standard_webhooks::inbound as standard;
use super::stripe::inbound as stripe;
use super::teams::inbound as teams;
use super::twilio::inbound as twilio;
use super::zendesk::inbound as zendesk;

/// A signature scheme, by the name `switchyard webhook verify` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `X-Slack-Signature`: HMAC-SHA256 over `v0:{timestamp}:{body}`, time-checked.
    Slack,
    /// `X-Zendesk-Webhook-Signature`: base64 HMAC-SHA256 over timestamp + body, time-checked.
    Zendesk,
    /// `X-Hub-Signature-256`: HMAC-SHA256 of the body; legacy SHA-1 only when it is absent.
    Github,
    /// `X-Hub-Signature: sha256=…`: HMAC-SHA256 of the body; no timestamp.
    Jira,
    /// `X-HubSpot-Signature`: SHA-256 of the client secret and the body.
    HubspotV1,
    /// `X-HubSpot-Signature`: SHA-256 of the client secret, method, URL and body.
    HubspotV2,
    /// `X-HubSpot-Signature-v3`: HMAC-SHA256 over method, URL, body and timestamp, time-checked.
    HubspotV3,
    /// Teams outgoing webhooks: `Authorization: HMAC …`, keyed with the base64-decoded secret.
    Teams,
    /// `Stripe-Signature: t=…,v1=…`: HMAC-SHA256 over `{t}.{body}`, time-checked.
    Stripe,
    /// Standard Webhooks (`webhook-*` headers): HMAC-SHA256 over `{id}.{ts}.{body}`, time-checked.
    StandardWebhooks,
    /// The Standard Webhooks scheme under Svix's `svix-*` headers.
    Svix,
    /// `X-Twilio-Signature`: HMAC-SHA1 over the URL and sorted form parameters (JSON: a body hash).
    Twilio,
}

impl Scheme {
    /// Every scheme, with the name [`parse`](Self::parse) takes for it.
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

    /// The scheme named `name` in [`ALL`](Self::ALL); `None` for any other name.
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
        self.check(req, secrets, now)
    }

    /// [`verify`](Self::verify) without the configured-secret check: with no secret, every
    /// request fails exactly as a wrong signature does.
    fn check(
        self,
        req: &SignedRequest<'_>,
        secrets: &[SecretString],
        now: Option<DateTime<Utc>>,
    ) -> Result<(), VerifyError> {
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

/// Check a request to `/webhooks/{source}` against the source's active secrets. A source with
/// no secret fails as a wrong signature does, so answers do not tell which sources exist.
pub fn verify(
    source: Source,
    req: &SignedRequest<'_>,
    secrets: &[SecretString],
    now: DateTime<Utc>,
    hubspot_min: hubspot::Version,
) -> Result<(), VerifyError> {
    let scheme = match source {
        Source::Zendesk => Scheme::Zendesk,
        Source::Slack => Scheme::Slack,
        Source::Jira => Scheme::Jira,
        Source::Github => Scheme::Github,
        // The request names its version: below the deployment's floor it is refused, so
        // stripping the v3 headers cannot fall back to a scheme that signs less.
        Source::Hubspot => match hubspot::declared_version(req.headers)? {
            v if v < hubspot_min => {
                return Err(VerifyError::BelowMinimumVersion(hubspot_min.as_str()))
            }
            hubspot::Version::V1 => Scheme::HubspotV1,
            hubspot::Version::V2 => Scheme::HubspotV2,
            hubspot::Version::V3 => Scheme::HubspotV3,
        },
        Source::Teams => Scheme::Teams,
        Source::Stripe => Scheme::Stripe,
        Source::StandardWebhooks | Source::Smoke => Scheme::StandardWebhooks,
        Source::Svix => Scheme::Svix,
        Source::Twilio => Scheme::Twilio,
        Source::Salesforce => return salesforce::verify(req.body, secrets),
    };
    scheme.check(req, secrets, Some(now))
}

/// Whether the delivery id a source's normalizer reads is covered by its signature. GitHub's
/// `X-GitHub-Delivery`, Jira's `X-Atlassian-Webhook-Identifier` and Twilio's
/// `I-Twilio-Idempotency-Token` are headers the signature does not cover: a captured request
/// resent under a fresh id would pass as new, so those deliveries dedupe on the signed bytes.
pub(crate) fn signs_delivery_id(source: Source) -> bool {
    !matches!(source, Source::Github | Source::Jira | Source::Twilio)
}

/// Whether a source sends bodies of this content type (`None`: the header was absent).
pub(crate) fn accepts_content_type(source: Source, content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = mime == "application/json" || mime.ends_with("+json") || mime == "text/json";
    match source {
        // Slack posts slash commands and interactivity (the review card's buttons) as forms.
        Source::Twilio | Source::Slack => json || mime == "application/x-www-form-urlencoded",
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
        Source::StandardWebhooks | Source::Smoke => {
            standard::normalize(standard::Flavor::Standard, headers, raw)
        }
        Source::Svix => standard::normalize(standard::Flavor::Svix, headers, raw),
        Source::Zendesk | Source::Twilio | Source::Salesforce => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests;

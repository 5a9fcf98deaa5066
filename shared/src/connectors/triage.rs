//! Response triage: every vendor response becomes one [`Verdict`] — ok, rate limited (with the
//! wait), an auth problem (refresh and retry), re-authorization required (a human must
//! reconnect), transient (retry with backoff) or permanent (a human must look).
//!
//! The rules are per vendor — each connector module owns its own (`zendesk::triage`, …); this
//! module holds the shared reading of statuses and the token endpoint's rules — because vendors disagree: Slack reports errors in HTTP 200 bodies,
//! Salesforce rate-limits with a 403, Teams webhooks wrap their own 429 inside a 200, HubSpot
//! names the exhausted policy instead of sending `Retry-After`, and token endpoints (RFC 6749
//! §5.2) put the verdict in an `error` code. Reasons quote vendor codes and messages, never a
//! request or a credential; a token endpoint's success body is never echoed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::excerpt;
use super::wait::wait_hint;

/// What a vendor's answer means for the call: done, or how (and whether) to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The call did what was asked.
    Ok,
    /// The vendor asked us to slow down; the verdict's `retry_after` is the wait, when it said.
    RateLimited,
    /// The credential was rejected: refresh it and retry.
    Auth,
    /// The refresh itself was refused (or the credential is gone): a human must reconnect.
    ReauthRequired,
    /// May succeed later (by default 5xx, 408, 409, 423, 425): retry with backoff.
    Transient,
    /// Retrying cannot help (a bad request, a missing object): a human must look.
    Permanent,
}

impl Kind {
    /// The word the external-call record uses (as `connector triage` prints it).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::RateLimited => "rate_limited",
            Kind::Auth => "auth",
            Kind::ReauthRequired => "reauth_required",
            Kind::Transient => "transient",
            Kind::Permanent => "permanent",
        }
    }
}

/// One vendor answer, triaged.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// What the answer means for the call.
    pub kind: Kind,
    /// The wait the answer asked for (rate-limited and transient answers only); `None` if none.
    pub retry_after: Option<Duration>,
    /// Why, for people: the vendor's codes and messages, never a request or a credential.
    pub reason: String,
    /// What the refusal was, when the vendor said (for people, `reason` says it in words).
    pub refusal: Refusal,
}

/// What a vendor's refusal was, as a fact its readers act on: act sends a write refused for named
/// fields to review with a drift finding naming them, and `doctor` names the fix. Set by the
/// vendor's triage, which reads the vendor's own words; nobody reads it back out of a reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing more specific than the kind.
    #[default]
    Unspecified,
    /// A validation error naming these fields (Zendesk `details`, Jira `errors`, Salesforce
    /// `fields`, a described connector's `fields` pointer).
    Invalid {
        /// The fields, as the vendor names them.
        fields: Vec<String>,
    },
    /// The object does not exist (HTTP 404).
    NotFound,
    /// The vendor's IP allow-list refused the network the call came from.
    IpAllowList,
    /// Authenticated, but the credential lacks a permission (HTTP 403).
    MissingPermission,
}

/// A response as received: status, headers, exact body.
#[derive(Clone, Debug, Default)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The headers as (name, value) pairs; values that are not text are left out.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Response {
    /// A response from its status, `reqwest` headers and body text.
    pub fn from_parts(status: u16, headers: &reqwest::header::HeaderMap, body: String) -> Self {
        Response {
            status,
            headers: super::wait::header_pairs(headers),
            body,
        }
    }

    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_str(self.body.trim_start_matches('\u{feff}')).ok()
    }
}

/// An OAuth 2.0 token endpoint's answer (RFC 6749 §5.2), read. `now` anchors absolute reset times.
pub(crate) fn oauth2_verdict(r: &Response, now: DateTime<Utc>) -> Verdict {
    oauth2(r).finish(r, now)
}

/// A verdict before the wait is worked out.
pub struct Draft {
    pub(crate) kind: Kind,
    pub(crate) reason: String,
    /// A wait the body implies (HubSpot's policy window) when no header says otherwise.
    pub(crate) implied_wait: Option<Duration>,
    pub(crate) refusal: Refusal,
}

impl Draft {
    /// The same verdict, saying what the refusal was.
    pub(crate) fn refused(self, refusal: Refusal) -> Self {
        Draft { refusal, ..self }
    }

    pub(crate) fn finish(self, r: &Response, now: DateTime<Utc>) -> Verdict {
        let retry_after = match self.kind {
            Kind::RateLimited | Kind::Transient => wait_hint(&r.headers, now).or(self.implied_wait),
            _ => None,
        };
        Verdict {
            kind: self.kind,
            retry_after,
            reason: self.reason,
            refusal: self.refusal,
        }
    }
}

pub(crate) fn draft(kind: Kind, reason: impl Into<String>) -> Draft {
    Draft {
        kind,
        reason: reason.into(),
        implied_wait: None,
        refusal: Refusal::Unspecified,
    }
}

/// What most REST APIs mean by a status, when the body adds nothing more specific.
pub(crate) fn by_status(r: &Response, detail: &str) -> Draft {
    let s = r.status;
    let what = if detail.is_empty() {
        excerpt(&r.body)
    } else {
        detail.to_owned()
    };
    let reason = format!("HTTP {s}: {what}")
        .trim_end_matches(": ")
        .to_owned();
    let kind = match s {
        200..=299 => Kind::Ok,
        429 => Kind::RateLimited,
        401 => Kind::Auth,
        408 | 409 | 423 | 425 | 500..=599 => Kind::Transient,
        _ => Kind::Permanent,
    };
    // Vendors word an IP allow-list refusal as a 403 too (Atlassian: "not on the allowed list").
    let ip = s == 403
        && [&what, &r.body].iter().any(|t| {
            let t = t.to_lowercase();
            t.contains("not on the allowed list") || t.contains("not on the allowlist")
        });
    let (reason, refusal) = match s {
        403 if ip => (
            format!("{reason} (refused by the vendor's IP allowlist)"),
            Refusal::IpAllowList,
        ),
        403 => (
            format!("{reason} (the credential lacks a permission; a human must grant it)"),
            Refusal::MissingPermission,
        ),
        404 => (reason, Refusal::NotFound),
        _ => (reason, Refusal::Unspecified),
    };
    draft(kind, reason).refused(refusal)
}

/// A 2xx whose body should be JSON but is an HTML page or garbage: a proxy or maintenance page.
pub(crate) fn not_json(r: &Response) -> Draft {
    draft(
        Kind::Transient,
        format!(
            "HTTP {} with a body that is not JSON: {}",
            r.status,
            excerpt(&r.body)
        ),
    )
}

/// A 2xx whose body is JSON or empty (204) is ok; anything else is a proxy or maintenance page.
pub(crate) fn success(r: &Response) -> Draft {
    if r.body.trim().is_empty() || r.json().is_some() {
        draft(Kind::Ok, format!("HTTP {}", r.status))
    } else {
        not_json(r)
    }
}

pub(crate) fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// An OAuth 2.0 token endpoint (RFC 6749 §5.2): `{"error": "invalid_grant",
/// "error_description": …}`, usually HTTP 400 (some vendors say 401, some 200; Slack says
/// `{"ok": false, "error": "invalid_refresh_token"}`).
fn oauth2(r: &Response) -> Draft {
    let v = r.json();
    // HubSpot's token endpoint refuses in its own words: `{"status": "BAD_REFRESH_TOKEN",
    // "message": "missing or unknown refresh token"}` (also BAD_CLIENT_ID, BAD_AUTH_CODE…).
    let error = v.as_ref().and_then(|v| {
        str_at(v, "/error")
            .filter(|_| v.get("ok") != Some(&Value::Bool(true)))
            .or_else(|| str_at(v, "/status").filter(|s| s.starts_with("BAD_")))
            .map(str::to_owned)
    });
    if let Some(code) = error {
        let description = v
            .as_ref()
            .and_then(|v| str_at(v, "/error_description").or_else(|| str_at(v, "/message")))
            .unwrap_or_default();
        let kind = match code.as_str() {
            "BAD_REFRESH_TOKEN" | "BAD_CLIENT_ID" | "BAD_CLIENT_SECRET" | "BAD_AUTH_CODE"
            | "BAD_GRANT_TYPE" => Kind::ReauthRequired,
            "invalid_grant"
            | "invalid_client"
            | "unauthorized_client"
            | "invalid_refresh_token"
            | "token_revoked"
            | "access_denied"
            | "invalid_client_id"
            | "bad_client_secret" => Kind::ReauthRequired,
            "slow_down" | "ratelimited" => Kind::RateLimited,
            "temporarily_unavailable" | "server_error" => Kind::Transient,
            _ if r.status == 429 => Kind::RateLimited,
            _ if r.status >= 500 => Kind::Transient,
            // invalid_request, unsupported_grant_type, invalid_scope: our request is wrong.
            _ => Kind::Permanent,
        };
        let hint = if kind == Kind::ReauthRequired {
            " (the grant was refused; a human must reconnect)"
        } else {
            ""
        };
        return draft(
            kind,
            format!(
                "token endpoint error {code} (HTTP {}): {description}{hint}",
                r.status
            )
            .replace(": (", " (")
            .trim_end_matches(": ")
            .to_owned(),
        );
    }
    if (200..300).contains(&r.status) {
        return match v {
            Some(v) if v.get("access_token").is_some_and(Value::is_string) => {
                let expires = v
                    .get("expires_in")
                    .and_then(|e| e.as_u64().or_else(|| e.as_str()?.parse().ok()))
                    .map(|s| format!(", expires in {s} s"))
                    .unwrap_or_default();
                draft(Kind::Ok, format!("token issued{expires}"))
            }
            // Never echo the body: it may hold tokens.
            Some(_) => draft(
                Kind::Transient,
                format!("HTTP {} without an access_token", r.status),
            ),
            None => draft(
                Kind::Transient,
                format!("HTTP {} with a body that is not JSON", r.status),
            ),
        };
    }
    match r.status {
        // Client authentication failed without an RFC error code.
        401 => draft(
            Kind::ReauthRequired,
            "HTTP 401 from the token endpoint (client authentication failed; a human must reconnect)",
        ),
        _ => by_status(r, ""),
    }
}

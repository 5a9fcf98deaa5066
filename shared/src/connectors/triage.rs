//! Response triage: every vendor response becomes one [`Verdict`] — ok, rate limited (with the
//! wait), an auth problem (refresh and retry), re-authorization required (a human must
//! reconnect), transient (retry with backoff) or permanent (a human must look).
//!
//! The rules are per vendor because vendors disagree: Slack reports errors in HTTP 200 bodies,
//! Salesforce rate-limits with a 403, Teams webhooks wrap their own 429 inside a 200, HubSpot
//! names the exhausted policy instead of sending `Retry-After`, and token endpoints (RFC 6749
//! §5.2) put the verdict in an `error` code. Reasons quote vendor codes and messages, never a
//! request or a credential; a token endpoint's success body is never echoed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::excerpt;
use super::wait::{header, wait_hint};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Ok,
    RateLimited,
    /// The credential was rejected: refresh it and retry.
    Auth,
    /// The refresh itself was refused (or the credential is gone): a human must reconnect.
    ReauthRequired,
    Transient,
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

#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub kind: Kind,
    pub retry_after: Option<Duration>,
    pub reason: String,
}

/// A response as received: status, headers, exact body.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn from_parts(status: u16, headers: &reqwest::header::HeaderMap, body: String) -> Self {
        Response {
            status,
            headers: super::wait::header_pairs(headers),
            body,
        }
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(self.body.trim_start_matches('\u{feff}')).ok()
    }
}

/// The vendors (and the OAuth 2.0 token endpoint) whose responses we know how to read.
pub const VENDORS: &[&str] = &[
    "zendesk",
    "jira",
    "slack",
    "teams",
    "hubspot",
    "salesforce",
    "oauth2",
];

/// Triage one response. `now` anchors absolute reset times.
pub fn triage(vendor: &str, r: &Response, now: DateTime<Utc>) -> Option<Verdict> {
    let v = match vendor {
        "zendesk" => zendesk(r),
        "jira" => jira(r),
        "slack" => slack(r),
        "teams" => teams(r),
        "hubspot" => hubspot(r),
        "salesforce" => salesforce(r),
        "oauth2" => oauth2(r),
        _ => return None,
    };
    Some(v.finish(r, now))
}

/// A verdict before the wait is worked out.
struct Draft {
    kind: Kind,
    reason: String,
    /// A wait the body implies (HubSpot's policy window) when no header says otherwise.
    implied_wait: Option<Duration>,
}

impl Draft {
    fn finish(self, r: &Response, now: DateTime<Utc>) -> Verdict {
        let retry_after = match self.kind {
            Kind::RateLimited | Kind::Transient => wait_hint(&r.headers, now).or(self.implied_wait),
            _ => None,
        };
        Verdict {
            kind: self.kind,
            retry_after,
            reason: self.reason,
        }
    }
}

fn draft(kind: Kind, reason: impl Into<String>) -> Draft {
    Draft {
        kind,
        reason: reason.into(),
        implied_wait: None,
    }
}

/// What most REST APIs mean by a status, when the body adds nothing more specific.
fn by_status(r: &Response, detail: &str) -> Draft {
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
    let reason = match s {
        403 => format!("{reason} (the credential lacks a permission; a human must grant it)"),
        _ => reason,
    };
    draft(kind, reason)
}

/// A 2xx whose body should be JSON but is an HTML page or garbage: a proxy or maintenance page.
fn not_json(r: &Response) -> Draft {
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
fn success(r: &Response) -> Draft {
    if r.body.trim().is_empty() || r.json().is_some() {
        draft(Kind::Ok, format!("HTTP {}", r.status))
    } else {
        not_json(r)
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Zendesk: `{"error": "RecordNotFound", "description": "Not found"}` or
/// `{"error": {"title": …, "message": …}}`; 409 means a concurrent update (retry).
fn zendesk(r: &Response) -> Draft {
    if (200..300).contains(&r.status) {
        return success(r);
    }
    let detail = r
        .json()
        .map(|v| {
            let error = match v.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(e @ Value::Object(_)) => [str_at(e, "/title"), str_at(e, "/message")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": "),
                _ => String::new(),
            };
            let description = str_at(&v, "/description").unwrap_or_default();
            let mut text = format!("{error} {description}").trim().to_owned();
            // RecordInvalid: `details` names each field (`base` entries by `field_key`).
            if let Some(details) = v.get("details").and_then(Value::as_object) {
                let mut fields = Vec::new();
                let mut words = Vec::new();
                for (key, items) in details {
                    for item in items.as_array().into_iter().flatten() {
                        match (key.as_str(), item.get("field_key").and_then(Value::as_u64)) {
                            ("base", Some(id)) => fields.push(format!("custom_field.{id}")),
                            ("base", None) => {}
                            (k, _) => fields.push(k.to_owned()),
                        }
                        if let Some(d) = str_at(item, "/description") {
                            words.push(d.to_owned());
                        }
                    }
                }
                if !words.is_empty() {
                    text = format!("{text}: {}", words.join("; "));
                }
                if !fields.is_empty() {
                    text = format!("{text}; invalid fields [{}]", fields.join(", "));
                }
            }
            text
        })
        .unwrap_or_default();
    by_status(r, &detail)
}

/// Jira Cloud: `{"errorMessages": […], "errors": {field: message}}`; 429 with `Retry-After` and
/// an ISO `X-RateLimit-Reset`; 503 with `Retry-After` when a resource limit is hit.
fn jira(r: &Response) -> Draft {
    if (200..300).contains(&r.status) {
        // 204 No Content is Jira's answer to transitions and edits.
        return success(r);
    }
    let detail = r
        .json()
        .map(|v| {
            let mut parts: Vec<String> = v
                .get("errorMessages")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(errors) = v.get("errors").and_then(Value::as_object) {
                parts.extend(
                    errors
                        .iter()
                        .map(|(field, m)| format!("{field}: {}", m.as_str().unwrap_or_default())),
                );
                if !errors.is_empty() {
                    let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
                    parts.push(format!("invalid fields [{}]", fields.join(", ")));
                }
            }
            if let Some(m) = str_at(&v, "/message") {
                parts.push(m.to_owned());
            }
            parts.join("; ")
        })
        .unwrap_or_default();
    let mut d = by_status(r, &detail);
    if let Some(reason) = header(&r.headers, "ratelimit-reason") {
        d.reason = format!("{} (RateLimit-Reason: {reason})", d.reason);
    }
    d
}

/// Slack Web API: errors in HTTP 200 bodies (`{"ok": false, "error": "…"}`); HTTP 429 with
/// `Retry-After`. Incoming webhooks answer plain text (`ok`, `invalid_payload`, `no_service`).
fn slack(r: &Response) -> Draft {
    if r.status == 429 {
        return draft(
            Kind::RateLimited,
            "HTTP 429 (Slack rate limit for this method)",
        );
    }
    let Some(v) = r.json() else {
        let text = r.body.trim();
        if (200..300).contains(&r.status) && text == "ok" {
            return draft(Kind::Ok, "webhook accepted");
        }
        if (200..300).contains(&r.status) && !text.is_empty() && !text.starts_with('<') {
            return slack_code(text, r.status);
        }
        if !(200..300).contains(&r.status) && slack_code_like(text) {
            return slack_code(text, r.status);
        }
        return if (200..300).contains(&r.status) {
            not_json(r)
        } else {
            by_status(r, "")
        };
    };
    match v.get("ok") {
        Some(Value::Bool(true)) => {
            let warning = str_at(&v, "/warning")
                .map(|w| format!(" (warning: {w})"))
                .unwrap_or_default();
            draft(Kind::Ok, format!("ok{warning}"))
        }
        Some(Value::Bool(false)) => {
            let mut d = slack_code(str_at(&v, "/error").unwrap_or("unknown_error"), r.status);
            // missing_scope names the scope the method needs.
            if let Some(needed) = str_at(&v, "/needed") {
                d.reason = format!("{}; needs {needed}", d.reason);
            }
            d
        }
        _ if !(200..300).contains(&r.status) => by_status(r, ""),
        // Every Web API answer carries `ok`; without it this is not Slack talking (a proxy).
        _ => draft(
            Kind::Transient,
            format!(
                "HTTP {} without Slack's `ok` field: {}",
                r.status,
                excerpt(&r.body)
            ),
        ),
    }
}

fn slack_code_like(text: &str) -> bool {
    !text.is_empty() && text.len() < 64 && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn slack_code(code: &str, status: u16) -> Draft {
    let kind = match code {
        "ratelimited" | "rate_limited" => Kind::RateLimited,
        "invalid_auth" | "not_authed" | "token_expired" => Kind::Auth,
        "token_revoked"
        | "account_inactive"
        | "app_uninstalled"
        | "no_service"
        | "invalid_refresh_token" => Kind::ReauthRequired,
        "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "team_added_to_org"
        | "rollup_error" => Kind::Transient,
        _ if status >= 500 => Kind::Transient,
        // missing_scope, not_in_channel, channel_not_found, invalid_blocks, msg_too_long, …
        _ => Kind::Permanent,
    };
    let hint = match code {
        "missing_scope" => " (the token lacks a scope; a human must add it and reinstall)",
        "token_revoked" | "app_uninstalled" => " (a human must reinstall or reconnect)",
        _ => "",
    };
    draft(kind, format!("Slack error {code} (HTTP {status}){hint}"))
}

/// Microsoft Teams: a Workflows webhook answers 202, a connector webhook answers 200 with `1` —
/// or 200 with "Microsoft Teams endpoint returned HTTP error 429 …" when throttled. Graph answers
/// `{"error": {"code": "TooManyRequests", "message": …}}`.
fn teams(r: &Response) -> Draft {
    if let Some(v) = r
        .json()
        .filter(|v| v.get("error").is_some_and(Value::is_object))
    {
        let code = str_at(&v, "/error/code").unwrap_or_default();
        let message = str_at(&v, "/error/message").unwrap_or_default();
        let reason = format!("Graph error {code} (HTTP {}): {message}", r.status);
        let kind = match (r.status, code) {
            (_, "TooManyRequests" | "activityLimitReached") | (429, _) => Kind::RateLimited,
            (_, "InvalidAuthenticationToken" | "TokenExpired") | (401, _) => Kind::Auth,
            (_, "serviceNotAvailable" | "ServiceUnavailable" | "generalException") => {
                Kind::Transient
            }
            (500..=599, _) => Kind::Transient,
            _ => Kind::Permanent,
        };
        return draft(kind, reason);
    }
    let text = r.body.trim();
    if (200..300).contains(&r.status) {
        let lower = text.to_ascii_lowercase();
        if let Some(at) = lower.find("returned http error ") {
            let code: u16 = lower[at + 20..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let embedded = Response {
                status: code,
                headers: r.headers.clone(),
                body: String::new(),
            };
            let mut d = teams_webhook_status(&embedded);
            d.reason = format!("HTTP {} wrapping an error: {}", r.status, excerpt(text));
            return d;
        }
        if lower.contains("webhook message delivery failed") || lower.contains("error") {
            return draft(
                Kind::Permanent,
                format!("HTTP {} with an error body: {}", r.status, excerpt(text)),
            );
        }
        return draft(Kind::Ok, format!("HTTP {}", r.status));
    }
    let mut d = teams_webhook_status(r);
    d.reason = format!("HTTP {}: {}", r.status, excerpt(text))
        .trim_end_matches(": ")
        .to_owned();
    if d.kind == Kind::ReauthRequired {
        d.reason
            .push_str(" (the webhook URL is gone or refused; a human must create a new one)");
    }
    d
}

/// A webhook URL is its own credential: refused or gone means a human must make a new one.
fn teams_webhook_status(r: &Response) -> Draft {
    let kind = match r.status {
        429 => Kind::RateLimited,
        401 | 403 | 404 | 410 => Kind::ReauthRequired,
        408 | 500..=599 => Kind::Transient,
        _ => Kind::Permanent,
    };
    draft(kind, String::new())
}

/// HubSpot: `{"status": "error", "message": …, "category": …, "errorType": "RATE_LIMIT",
/// "policyName": "TEN_SECONDLY_ROLLING"}`. A 429 rarely carries `Retry-After`; the policy says
/// which window to wait out.
fn hubspot(r: &Response) -> Draft {
    if (200..300).contains(&r.status) {
        return match r.json() {
            Some(v) if str_at(&v, "/status") == Some("error") => draft(
                Kind::Permanent,
                format!(
                    "HTTP {} with an error body: {}",
                    r.status,
                    hubspot_detail(&v)
                ),
            ),
            _ => success(r),
        };
    }
    let v = r.json().unwrap_or(Value::Null);
    let category = str_at(&v, "/category").unwrap_or_default();
    let detail = hubspot_detail(&v);
    if r.status == 429 || str_at(&v, "/errorType") == Some("RATE_LIMIT") {
        let policy = str_at(&v, "/policyName").unwrap_or_default();
        let implied_wait = match policy {
            "SECONDLY" => Some(Duration::from_secs(1)),
            "TEN_SECONDLY_ROLLING" => Some(
                header(&r.headers, "x-hubspot-ratelimit-interval-milliseconds")
                    .and_then(|ms| ms.parse().ok())
                    .map(Duration::from_millis)
                    .unwrap_or(Duration::from_secs(10)),
            ),
            // DAILY resets at midnight in the account's time zone, which the response omits.
            _ => None,
        };
        return Draft {
            kind: Kind::RateLimited,
            reason: format!("HTTP {}: {detail}", r.status),
            implied_wait,
        };
    }
    match (r.status, category) {
        (401, _) | (_, "EXPIRED_AUTHENTICATION" | "INVALID_AUTHENTICATION") => {
            draft(Kind::Auth, format!("HTTP {}: {detail}", r.status))
        }
        (403, "MISSING_SCOPES") => {
            let scopes: Vec<&str> = v
                .pointer("/errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|e| {
                    ["/context/requiredGranularScopes", "/context/requiredScopes"]
                        .into_iter()
                        .filter_map(|p| e.pointer(p).and_then(Value::as_array))
                        .flatten()
                        .filter_map(Value::as_str)
                })
                .collect();
            let needs = if scopes.is_empty() {
                String::new()
            } else {
                format!("; needs {}", scopes.join(", "))
            };
            draft(
                Kind::Permanent,
                format!("HTTP 403: {detail}{needs} (a human must grant the scopes)"),
            )
        }
        // "Contact already exists. Existing ID: 151": retrying cannot help.
        (409, _) => draft(Kind::Permanent, format!("HTTP 409: {detail}")),
        // 477 Migration In Progress; 423 Locked (object being merged).
        (477, _) => draft(Kind::Transient, format!("HTTP 477: {detail}")),
        _ => by_status(r, &detail),
    }
}

fn hubspot_detail(v: &Value) -> String {
    [
        str_at(v, "/category"),
        str_at(v, "/policyName"),
        str_at(v, "/message"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(": ")
}

/// Salesforce REST: errors are `[{"message": …, "errorCode": "INVALID_SESSION_ID"}]`; the daily
/// API limit is a **403** `REQUEST_LIMIT_EXCEEDED`; sObject collections answer 200 with
/// per-record `{"success": false, "errors": [{"statusCode": …}]}`.
fn salesforce(r: &Response) -> Draft {
    let v = r.json();
    if (200..300).contains(&r.status) {
        return match v {
            Some(Value::Array(items)) => {
                let failed: Vec<&Value> = items
                    .iter()
                    .filter(|i| i.get("success") == Some(&Value::Bool(false)))
                    .collect();
                match failed.first() {
                    None => draft(Kind::Ok, format!("HTTP {}", r.status)),
                    Some(first) => {
                        let code = str_at(first, "/errors/0/statusCode")
                            .or_else(|| str_at(first, "/errors/0/errorCode"))
                            .unwrap_or("UNKNOWN");
                        let message = str_at(first, "/errors/0/message").unwrap_or_default();
                        let mut d = salesforce_code(code, r.status);
                        d.reason = format!(
                            "{} of {} records failed; first: {code}: {message}",
                            failed.len(),
                            items.len()
                        );
                        d
                    }
                }
            }
            _ => success(r),
        };
    }
    let first = v.as_ref().and_then(|v| match v {
        Value::Array(a) => a.first().cloned(),
        Value::Object(_) => Some(v.clone()),
        _ => None,
    });
    let code = first
        .as_ref()
        .and_then(|f| str_at(f, "/errorCode").or_else(|| str_at(f, "/error")))
        .unwrap_or_default();
    let message = first
        .as_ref()
        .and_then(|f| str_at(f, "/message").or_else(|| str_at(f, "/error_description")))
        .unwrap_or_default();
    if code.is_empty() {
        return by_status(r, "");
    }
    let mut d = salesforce_code(code, r.status);
    d.reason = format!("HTTP {}: {code}: {message}", r.status);
    // REQUIRED_FIELD_MISSING, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST…: the fields, by API name.
    let fields: Vec<&str> = first
        .as_ref()
        .and_then(|f| f.get("fields"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !fields.is_empty() {
        d.reason
            .push_str(&format!("; invalid fields [{}]", fields.join(", ")));
    }
    if r.status == 300 {
        d.kind = Kind::Permanent;
        d.reason
            .push_str(" (the external id matches several records)");
    }
    d
}

fn salesforce_code(code: &str, status: u16) -> Draft {
    let kind = match code {
        "REQUEST_LIMIT_EXCEEDED" | "TOO_MANY_APEX_REQUESTS" => Kind::RateLimited,
        "INVALID_SESSION_ID" | "INVALID_AUTH_HEADER" => Kind::Auth,
        "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "QUERY_TIMEOUT" => Kind::Transient,
        _ if status == 429 => Kind::RateLimited,
        _ if status == 401 => Kind::Auth,
        _ if status >= 500 => Kind::Transient,
        // INSUFFICIENT_ACCESS…, API_DISABLED_FOR_ORG, NOT_FOUND, REQUIRED_FIELD_MISSING, …
        _ => Kind::Permanent,
    };
    draft(kind, String::new())
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

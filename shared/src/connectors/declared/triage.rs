//! A described vendor's triage: its own rules in order, then what most REST APIs mean (2xx ok
//! when the body is JSON, 401 auth, 429 rate limited, 5xx retried, other 4xx permanent). The
//! rules are how a team says what its system really answers: a rate limit sent as a 400 with a
//! message, a refused IP as a 403 page, a missing field as a 422 listing it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::describe::{Description, Rule, RuleKind, StatusMatch};
use crate::connectors::excerpt;
use crate::connectors::triage::{self, draft, Draft, Kind, Refusal, Response, Verdict};

/// How the reason words an IP allow-list refusal for people (the verdict says it as a fact).
pub(crate) const IP_REFUSED: &str = "refused by the vendor's IP allowlist";

/// `r` read by the first of `d`'s triage rules it matches, else as most REST APIs mean it;
/// `now` anchors absolute reset times.
pub fn triage(d: &Description, r: &Response, now: DateTime<Utc>) -> Verdict {
    let json = r.json();
    let matched = d
        .triage
        .iter()
        .map(|rule| rule.get_ref())
        .find(|rule| matches(rule, r, json.as_ref()));
    let draft = match matched {
        Some(rule) => by_rule(rule, r, json.as_ref()),
        None if (200..300).contains(&r.status) => triage::success(r),
        None => triage::by_status(r, ""),
    };
    draft.finish(r, now)
}

fn matches(rule: &Rule, r: &Response, json: Option<&Value>) -> bool {
    let status = rule
        .status
        .as_deref()
        .is_none_or(|s| StatusMatch::parse(s).is_ok_and(|m| m.matches(r.status)));
    let body = rule
        .body_contains
        .as_deref()
        .is_none_or(|needle| r.body.contains(needle));
    let pointed = rule.json.as_deref().is_none_or(|p| {
        match (json.and_then(|j| j.pointer(p)), rule.equals.as_deref()) {
            (Some(v), Some(want)) => text(v).as_deref() == Some(want),
            (Some(_), None) => true,
            (None, _) => false,
        }
    });
    status && body && pointed
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn by_rule(rule: &Rule, r: &Response, json: Option<&Value>) -> Draft {
    let what = rule
        .says
        .clone()
        .unwrap_or_else(|| format!("HTTP {}: {}", r.status, excerpt(&r.body)));
    let (kind, mut reason) = match rule.kind {
        RuleKind::Ok => return triage::success(r),
        RuleKind::Retry => (Kind::Transient, what),
        RuleKind::RateLimited => (Kind::RateLimited, what),
        RuleKind::Auth => (Kind::Auth, what),
        RuleKind::Reauth => (Kind::ReauthRequired, what),
        RuleKind::Permanent => (Kind::Permanent, what),
        RuleKind::IpBlocked => (Kind::Permanent, format!("{IP_REFUSED}: {what}")),
    };
    let mut refusal = match rule.kind {
        RuleKind::IpBlocked => Refusal::IpAllowList,
        _ => Refusal::Unspecified,
    };
    if let (Some(p), Some(j)) = (&rule.fields, json) {
        let fields = collect(j, p);
        if !fields.is_empty() {
            reason = format!("{reason}; invalid fields [{}]", fields.join(", "));
            refusal = Refusal::Invalid { fields };
        }
    }
    let mut d = draft(kind, reason).refused(refusal);
    d.implied_wait = wait(rule, r, json);
    d
}

/// Where the rule says the vendor wrote its wait, in seconds.
fn wait(rule: &Rule, r: &Response, json: Option<&Value>) -> Option<Duration> {
    let secs = if let Some(h) = &rule.wait_header {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(h))
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
    } else {
        let v = json?.pointer(rule.wait.as_deref()?)?;
        v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
    }?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// The strings at a JSON pointer whose `*` steps into every item of an array.
pub fn collect(v: &Value, pointer: &str) -> Vec<String> {
    match pointer.split_once("/*") {
        None => v.pointer(pointer).and_then(text).into_iter().collect(),
        Some((head, tail)) => {
            let items = if head.is_empty() {
                Some(v)
            } else {
                v.pointer(head)
            };
            items
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|item| collect(item, tail))
                .collect()
        }
    }
}

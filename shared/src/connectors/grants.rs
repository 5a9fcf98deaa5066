//! What a credential may do, and what the vendor's answers say about the connection — for
//! `switchyard doctor`. Each connector asks its vendor's own endpoint (Slack `auth.test` scopes,
//! Jira `mypermissions`, Zendesk `users/me` role, HubSpot token info, Salesforce describe) and
//! compares with what the configured actions need.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What the vendor says the credential may do, against what the configured actions need.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Grants {
    /// False when the vendor has nothing to ask (webhook URLs).
    pub checked: bool,
    /// Scopes, permissions or role, as the vendor names them.
    pub granted: Vec<String>,
    /// `permission (connector.action)` for each one an action needs and the credential lacks.
    pub missing: Vec<String>,
}

impl Grants {
    /// Compare: `required(action)` lists what the vendor requires for each configured action.
    pub(crate) fn compare(
        connector: &str,
        actions: &BTreeSet<String>,
        granted: Vec<String>,
        required: impl Fn(&str) -> &'static [&'static str],
    ) -> Self {
        let mut missing = Vec::new();
        for action in actions {
            for need in required(action) {
                if !granted.iter().any(|g| g == need) {
                    missing.push(format!("{need} ({connector}.{action})"));
                }
            }
        }
        Grants {
            checked: true,
            granted,
            missing,
        }
    }
}

/// Facts from the vendor's last answers in a scope: rate-limit headroom and its clock.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ResponseFacts {
    pub headroom: Option<String>,
    pub vendor_date: Option<DateTime<Utc>>,
}

tokio::task_local! {
    /// Set by `read_response` when the doctor scopes it around its calls.
    pub(crate) static FACTS: std::cell::RefCell<ResponseFacts>;
}

/// Record what an answer's headers say (a no-op outside a `FACTS` scope).
pub fn record(headers: &[(String, String)]) {
    let _ = FACTS.try_with(|f| {
        let mut f = f.borrow_mut();
        if let Some(h) = headroom(headers) {
            f.headroom = Some(h);
        }
        if let Some(d) = header(headers, "date").and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        {
            f.vendor_date = Some(d.with_timezone(&Utc));
        }
    });
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The rate-limit headroom the vendor reports, in its own terms.
pub fn headroom(headers: &[(String, String)]) -> Option<String> {
    if let Some(v) = header(headers, "sforce-limit-info") {
        return Some(format!("Salesforce {v}"));
    }
    let pairs = [
        ("x-hubspot-ratelimit-remaining", "x-hubspot-ratelimit-max"),
        ("x-ratelimit-remaining", "x-ratelimit-limit"),
        ("x-rate-limit-remaining", "x-rate-limit"),
        ("ratelimit-remaining", "ratelimit-limit"),
    ];
    pairs.iter().find_map(|(remaining, limit)| {
        let r = header(headers, remaining)?;
        Some(match header(headers, limit) {
            Some(l) => format!("{r} of {l} left in the window"),
            None => format!("{r} left in the window"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn headroom_reads_each_vendors_headers() {
        assert_eq!(
            headroom(&h(&[
                ("X-Rate-Limit", "700"),
                ("X-Rate-Limit-Remaining", "698")
            ]))
            .unwrap(),
            "698 of 700 left in the window"
        );
        assert_eq!(
            headroom(&h(&[("Sforce-Limit-Info", "api-usage=25/15000")])).unwrap(),
            "Salesforce api-usage=25/15000"
        );
        assert_eq!(headroom(&h(&[("content-type", "application/json")])), None);
    }

    #[test]
    fn missing_permissions_name_the_action_that_needs_them() {
        let actions: BTreeSet<String> = ["post_message".to_owned()].into();
        let g = Grants::compare(
            "slack",
            &actions,
            vec!["channels:read".into()],
            |a| match a {
                "post_message" => &["chat:write"],
                _ => &[],
            },
        );
        assert_eq!(g.missing, ["chat:write (slack.post_message)"]);
    }
}

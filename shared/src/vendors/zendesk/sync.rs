//! Zendesk: customers upserted as end users by e-mail through
//! `POST /api/v2/users/create_or_update_many` (at most 100 per call). The answer is a
//! `job_status` (queued → working → completed/failed) read from its `url`; the completed job's
//! `results` say per user `Created`/`Updated`, or an `error` with `details`. Zendesk links users
//! to organizations by their e-mail domain itself (an organization's `domain_names`), so no
//! company is read.

use std::collections::HashMap;

use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::secrets::Credential;
use crate::sync::{Customer, SyncError, Target};

pub(crate) struct ZendeskUsers {
    pub base_url: String,
    pub email: String,
    pub token: SecretString,
}

impl ZendeskUsers {
    fn auth(&self, req: RequestBuilder) -> RequestBuilder {
        req.basic_auth(
            format!("{}/token", self.email),
            Some(self.token.expose_secret()),
        )
    }
}

impl Target for ZendeskUsers {
    fn vendor(&self) -> &'static str {
        "zendesk"
    }
    fn triage(&self) -> crate::connectors::Triage {
        super::outbound::triage
    }

    fn batch_size(&self) -> usize {
        100
    }

    fn reads_companies(&self) -> bool {
        false
    }

    fn company_request(&self, http: &reqwest::Client, _domain: &str) -> RequestBuilder {
        // Not called (`reads_companies` is false); a harmless read if it ever were.
        self.auth(http.get(format!("{}/api/v2/users/me.json", self.base_url)))
    }

    fn company(&self, _answer: &Value) -> Option<String> {
        None
    }

    fn write_request(
        &self,
        http: &reqwest::Client,
        chunk: &[Customer],
        _companies: &HashMap<String, Option<String>>,
    ) -> RequestBuilder {
        let users: Vec<Value> = chunk
            .iter()
            .map(|c| {
                let name = format!("{} {}", c.firstname, c.lastname);
                let name = name.trim();
                json!({"email": c.email, "name": if name.is_empty() { c.email.as_str() } else { name },
                       "role": "end-user"})
            })
            .collect();
        self.auth(http.post(format!(
            "{}/api/v2/users/create_or_update_many.json",
            self.base_url
        )))
        .json(&json!({"users": users}))
    }

    fn async_jobs(&self) -> bool {
        true
    }

    fn job_request(&self, http: &reqwest::Client, answer: &Value) -> Option<RequestBuilder> {
        let url = answer.pointer("/job_status/url").and_then(Value::as_str)?;
        // Only ever follow a status URL on the account's own host.
        url.starts_with(&self.base_url)
            .then(|| self.auth(http.get(url)))
    }

    fn job_done(&self, answer: &Value) -> Option<Value> {
        match answer.pointer("/job_status/status").and_then(Value::as_str) {
            Some("completed" | "failed" | "killed") => Some(answer.clone()),
            _ => None,
        }
    }

    /// Users whose result carries an `error`; every user of a failed or killed job.
    fn refused(&self, answer: &Value) -> usize {
        let job = &answer["job_status"];
        if matches!(job["status"].as_str(), Some("failed" | "killed")) {
            return job["total"].as_u64().unwrap_or(u64::MAX) as usize;
        }
        job["results"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|r| r.get("error").is_some()).count())
    }
}

/// The bulk sync target over a Zendesk API-token credential.
pub(crate) fn target(credential: Credential) -> Result<Box<dyn Target>, SyncError> {
    match credential {
        Credential::ApiToken {
            base_url,
            email,
            api_token,
        } => Ok(Box::new(ZendeskUsers {
            base_url: base_url.trim_end_matches('/').to_owned(),
            email,
            token: api_token,
        })),
        other => Err(SyncError::Setup(format!(
            "zendesk bulk sync needs an api_token credential, not {}",
            other.kind()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ZendeskUsers {
        ZendeskUsers {
            base_url: "https://acme.zendesk.com".into(),
            email: "a@acme.com".into(),
            token: SecretString::from("t"),
        }
    }

    #[test]
    fn a_job_is_done_when_completed_and_its_errors_are_counted() {
        let t = target();
        let queued = json!({"job_status": {"id": "8b7", "url": "https://acme.zendesk.com/api/v2/job_statuses/8b7.json", "status": "queued"}});
        assert!(t.job_done(&queued).is_none());
        let done = json!({"job_status": {"id": "8b7", "status": "completed", "total": 2, "results": [
            {"id": 2443, "status": "Created", "email": "a@x.io"},
            {"index": 1, "error": "EmailNotValid", "details": "Email is invalid"}]}});
        assert_eq!(t.refused(&t.job_done(&done).unwrap()), 1);
        let failed = json!({"job_status": {"status": "failed", "total": 100}});
        assert_eq!(t.refused(&failed), 100);
    }

    #[test]
    fn a_status_url_on_another_host_is_not_followed() {
        let t = target();
        let elsewhere =
            json!({"job_status": {"url": "https://evil.example/x", "status": "queued"}});
        assert!(t
            .job_request(&crate::connectors::http_client(), &elsewhere)
            .is_none());
    }
}

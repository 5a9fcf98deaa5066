//! Salesforce: accounts found by `Website` through SOQL; contacts upserted through sObject
//! Collections — `PATCH /composite/sobjects/Contact/Switchyard_Key__c`, at most 200 records per
//! call, `allOrNone: false` so one bad record does not sink its batch. The answer is one
//! UpsertResult per record, in order (`success`, `errors`).

use std::collections::HashMap;

use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::secrets::Credential;
use crate::sync::{Customer, SyncError, Target};
use crate::vendors::salesforce::outbound::API_VERSION;

/// The external-id field the org defines on Contact (it holds the e-mail, lower-cased).
pub(crate) const CONTACT_KEY: &str = "Switchyard_Key__c";

/// The bulk sync target for Salesforce: upserts customers as Contacts, linked to Accounts found
/// by `Website`.
pub struct SalesforceContacts {
    /// The org's instance URL, e.g. `https://example.my.salesforce.com`.
    pub base_url: String,
    /// The OAuth access token every request bears.
    pub token: SecretString,
}

/// A SOQL string literal: backslash and quote escaped, as the SOQL reference requires.
fn soql_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

impl Target for SalesforceContacts {
    fn vendor(&self) -> &'static str {
        "salesforce"
    }
    fn triage(&self) -> crate::connectors::Triage {
        super::outbound::triage
    }

    fn batch_size(&self) -> usize {
        200
    }

    fn company_request(&self, http: &reqwest::Client, domain: &str) -> RequestBuilder {
        let q = format!(
            "SELECT Id, Name FROM Account WHERE Website = '{}' LIMIT 1",
            soql_literal(domain)
        );
        let query = serde_urlencoded::to_string([("q", q)]).unwrap_or_default();
        http.get(format!(
            "{}/services/data/{API_VERSION}/query?{query}",
            self.base_url
        ))
        .bearer_auth(self.token.expose_secret())
    }

    /// The account id: Contact links to its Account by `AccountId`.
    fn company(&self, answer: &Value) -> Option<String> {
        answer
            .pointer("/records/0/Id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn write_request(
        &self,
        http: &reqwest::Client,
        chunk: &[Customer],
        companies: &HashMap<String, Option<String>>,
    ) -> RequestBuilder {
        let records: Vec<Value> = chunk
            .iter()
            .map(|c| {
                let mut r = json!({
                    "attributes": {"type": "Contact"},
                    CONTACT_KEY: c.email.to_lowercase(),
                    "Email": c.email,
                    "FirstName": c.firstname,
                    // LastName is required on Contact.
                    "LastName": if c.lastname.is_empty() { "(unknown)" } else { c.lastname.as_str() },
                });
                if let Some(Some(account)) = companies.get(&c.company_domain) {
                    r["AccountId"] = json!(account);
                }
                r
            })
            .collect();
        http.patch(format!(
            "{}/services/data/{API_VERSION}/composite/sobjects/Contact/{CONTACT_KEY}",
            self.base_url
        ))
        .bearer_auth(self.token.expose_secret())
        .json(&json!({"allOrNone": false, "records": records}))
    }

    /// A 200 holding the UpsertResult array (a whole-request failure is a 4xx object list).
    fn per_record_answer(&self, status: u16, body: &str) -> Option<Value> {
        if status != 200 {
            return None;
        }
        serde_json::from_str::<Value>(body).ok().filter(|v| {
            v.as_array()
                .is_some_and(|a| a.iter().all(|r| r.get("success").is_some()))
        })
    }

    fn refused(&self, answer: &Value) -> usize {
        answer.as_array().map_or(0, |results| {
            results
                .iter()
                .filter(|r| r.get("success").and_then(Value::as_bool) != Some(true))
                .count()
        })
    }
}

/// The bulk sync target over a Salesforce bearer credential.
pub(crate) fn target(credential: Credential) -> Result<Box<dyn Target>, SyncError> {
    let (base_url, token) = crate::sync::bearer_target("salesforce", credential)?;
    Ok(Box::new(SalesforceContacts { base_url, token }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_literals_cannot_close_the_quote() {
        assert_eq!(soql_literal(r"o'brien\x.io"), r"o\'brien\\x.io");
    }

    #[test]
    fn per_record_failures_in_a_200_are_counted() {
        let t = SalesforceContacts {
            base_url: String::new(),
            token: SecretString::from("t"),
        };
        let answer = json!([
            {"id": "003A", "success": true, "errors": [], "created": true},
            {"success": false, "errors": [{"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address", "fields": ["Email"]}]}
        ]);
        assert_eq!(t.refused(&answer), 1);
    }
}

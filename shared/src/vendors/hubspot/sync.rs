//! HubSpot: companies found by `domain` through CRM search; contacts upserted by e-mail through
//! `POST /crm/v3/objects/contacts/batch/upsert` (at most 100 inputs per call).

use std::collections::HashMap;

use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::secrets::Credential;
use crate::sync::{Customer, SyncError, Target};

pub(crate) struct HubspotContacts {
    pub base_url: String,
    pub token: SecretString,
}

impl Target for HubspotContacts {
    fn vendor(&self) -> &'static str {
        "hubspot"
    }
    fn triage(&self) -> crate::connectors::Triage {
        super::outbound::triage
    }

    fn batch_size(&self) -> usize {
        100
    }

    fn company_request(&self, http: &reqwest::Client, domain: &str) -> RequestBuilder {
        http.post(format!("{}/crm/v3/objects/companies/search", self.base_url))
            .bearer_auth(self.token.expose_secret())
            .json(&json!({
                "filterGroups": [{"filters": [{"propertyName": "domain", "operator": "EQ", "value": domain}]}],
                "properties": ["name", "domain"], "limit": 1
            }))
    }

    fn company(&self, answer: &Value) -> Option<String> {
        answer
            .pointer("/results/0/properties/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn write_request(
        &self,
        http: &reqwest::Client,
        chunk: &[Customer],
        companies: &HashMap<String, Option<String>>,
    ) -> RequestBuilder {
        let inputs: Vec<Value> = chunk
            .iter()
            .map(|c| {
                let mut props =
                    json!({"email": c.email, "firstname": c.firstname, "lastname": c.lastname});
                if let Some(Some(name)) = companies.get(&c.company_domain) {
                    props["company"] = json!(name);
                }
                json!({"idProperty": "email", "id": c.email, "properties": props})
            })
            .collect();
        http.post(format!(
            "{}/crm/v3/objects/contacts/batch/upsert",
            self.base_url
        ))
        .bearer_auth(self.token.expose_secret())
        .json(&json!({"inputs": inputs}))
    }

    /// A 207 multi-status answer lists the inputs that failed under `errors`.
    fn refused(&self, answer: &Value) -> usize {
        answer
            .get("errors")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }
}

/// The bulk sync target over a HubSpot bearer credential.
pub(crate) fn target(credential: Credential) -> Result<Box<dyn Target>, SyncError> {
    let (base_url, token) = crate::sync::bearer_target("hubspot", credential)?;
    Ok(Box::new(HubspotContacts { base_url, token }))
}

//! The credentials the local stack stores: values for the template's placeholder secrets that
//! the SaaS sandbox accepts, and the described connectors' secrets under the stack's prefix.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use serde_json::json;
use switchyard::aws::AwsClients;

use crate::fixtures::SigningKeys;
use crate::sandbox::Sandbox;

/// The described connectors' credentials, where `ConnectionSecretPrefix` says they are.
pub(crate) async fn described_secrets(
    aws: &AwsClients,
    prefix: &str,
    sandbox: &Sandbox,
) -> Result<()> {
    let c = &sandbox.credentials;
    let casebook = json!({"type": "session_login", "connector": "casebook",
        "base_url": sandbox.base_url("casebook"),
        "username": c.casebook_username, "password": c.casebook_password});
    aws.secrets
        .create_secret()
        .name(format!("{prefix}casebook"))
        .secret_string(casebook.to_string())
        .send()
        .await
        .context("creating the casebook connection secret")?;
    Ok(())
}

/// Local values for the template's placeholder secrets: credentials the sandbox accepts.
pub(crate) fn local_secrets(sandbox: &Sandbox, signing: &SigningKeys) -> HashMap<String, String> {
    let c = &sandbox.credentials;
    HashMap::from([
        ("IntakeSigningSecret".to_owned(), signing.secret_json()),
        (
            "ZendeskConnectionSecret".to_owned(),
            json!({"type": "api_token", "base_url": sandbox.base_url("zendesk"), "email": c.zendesk_email, "api_token": c.zendesk_token}).to_string(),
        ),
        (
            "SlackConnectionSecret".to_owned(),
            json!({"type": "oauth2_refresh", "base_url": sandbox.base_url("slack"), "access_token": c.slack_access_token,
                   "refresh_token": c.slack_refresh_token, "client_id": c.slack_client_id, "client_secret": c.slack_client_secret})
            .to_string(),
        ),
        (
            "JiraConnectionSecret".to_owned(),
            json!({"type": "api_token", "base_url": sandbox.base_url("jira"), "email": c.jira_email, "api_token": c.jira_token})
                .to_string(),
        ),
        (
            "SalesforceConnectionSecret".to_owned(),
            json!({"type": "bearer_token", "base_url": sandbox.base_url("salesforce"), "token": c.salesforce_token})
                .to_string(),
        ),
        (
            "HubspotConnectionSecret".to_owned(),
            json!({"type": "bearer_token", "base_url": sandbox.base_url("hubspot"), "token": c.hubspot_token})
                .to_string(),
        ),
        (
            "TeamsConnectionSecret".to_owned(),
            json!({"type": "webhook_url", "url": sandbox.teams_webhook_url(false)})
                .to_string(),
        ),
        (
            "WebhookConnectionSecret".to_owned(),
            json!({"type": "signed_webhook", "url": format!("{}/hooks", sandbox.base_url("receiver")), "secret": c.webhook_secret})
                .to_string(),
        ),
        (
            "LlmSecret".to_owned(),
            json!({"type": "bearer_token", "base_url": format!("{}/v1", sandbox.base_url("llm")), "token": c.llm_api_key})
                .to_string(),
        ),
    ])
}

//! Each connector's actions against the SaaS sandbox, over HTTP (no AWS needed).

use secrecy::SecretString;
use switchyard::connectors::{Connector, ConnectorError};
use switchyard::routing::PlannedAction;
use switchyard::secrets::Credential;
use switchyard_infra::sandbox::Sandbox;

fn action(connector: &str, name: &str, params: &[(&str, &str)]) -> PlannedAction {
    PlannedAction {
        connector: connector.into(),
        action: name.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn jira(sandbox: &Sandbox, token: &str) -> switchyard::connectors::jira::Jira {
    switchyard::connectors::jira::Jira::new(
        switchyard::connectors::http_client(),
        Credential::ApiToken {
            base_url: sandbox.base_url("jira"),
            email: sandbox.credentials.jira_email.clone(),
            api_token: SecretString::from(token.to_owned()),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn jira_actions_and_a_create_that_is_not_repeated_after_a_crash() {
    let sandbox = Sandbox::start().await.unwrap();
    let j = jira(&sandbox, &sandbox.credentials.jira_token.clone());
    assert!(j.probe().await.is_ok());

    let create = action(
        "jira",
        "create_issue",
        &[
            ("project", "OPS"),
            ("summary", "Checkout is down for EU customers"),
            ("description", "Reported via Zendesk 35436\nSince 09:40 UTC"),
            ("labels", "switchyard, outage"),
        ],
    );
    let created = j.perform(&create, "act#ev-1#0").await.unwrap();
    let key = created.object_id.clone().unwrap();
    assert_eq!(key, "OPS-1");
    // The worker died before recording success; the retry finds the issue by its label.
    let again = j.perform(&create, "act#ev-1#0").await.unwrap();
    assert_eq!(again.object_id.as_deref(), Some("OPS-1"));
    assert!(again.detail.contains("already created"));
    // A different action key is a different issue.
    let other = j.perform(&create, "act#ev-2#0").await.unwrap();
    assert_eq!(other.object_id.as_deref(), Some("OPS-2"));

    j.perform(
        &action(
            "jira",
            "add_comment",
            &[
                ("issue", &key),
                ("comment", "switchyard: routed to on-call"),
            ],
        ),
        "k",
    )
    .await
    .unwrap();
    j.perform(
        &action(
            "jira",
            "transition",
            &[("issue", &key), ("to", "In Progress")],
        ),
        "k",
    )
    .await
    .unwrap();
    j.perform(
        &action("jira", "set_labels", &[("issue", &key), ("labels", "sev2")]),
        "k",
    )
    .await
    .unwrap();
    let issue = sandbox.jira_issue(&key).unwrap();
    assert_eq!(issue["fields"]["status"]["name"], "In Progress");
    let labels: Vec<&str> = issue["fields"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        labels.contains(&"outage") && labels.contains(&"sev2"),
        "{labels:?}"
    );
    assert_eq!(issue["fields"]["comments"].as_array().unwrap().len(), 1);
    let creates = sandbox
        .ledger()
        .iter()
        .filter(|e| e.operation == "create_issue")
        .count();
    assert_eq!(creates, 2);

    // Errors come back triaged, with Jira's own words.
    let e = j
        .perform(
            &action("jira", "transition", &[("issue", &key), ("to", "Launched")]),
            "k",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent(m) if m.contains("available: Stop Progress, Done")),
        "{e}"
    );
    let e = j
        .perform(
            &action(
                "jira",
                "add_comment",
                &[("issue", "OPS-99"), ("comment", "x")],
            ),
            "k",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent(m) if m.contains("does not exist")),
        "{e}"
    );
    let e = j
        .perform(
            &action(
                "jira",
                "create_issue",
                &[("project", "OPS"), ("summary", "")],
            ),
            "act#ev-3#0",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent(m) if m.contains("summary: You must specify")),
        "{e}"
    );
    let wrong = jira(&sandbox, "not-the-token");
    assert!(matches!(wrong.probe().await, Err(ConnectorError::Auth(_))));
    sandbox.stop();
}

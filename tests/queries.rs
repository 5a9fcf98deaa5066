//! Values that try to escape their query, sent through the connectors to a sandbox that parses
//! JQL and SOQL and answers by meaning (`infra/sandbox/src/query.rs`): a quote, a backslash or an
//! `OR` inside a value stays data.

use secrecy::SecretString;
use serde_json::Value;
use switchyard::connectors::Connector;
use switchyard::routing::PlannedAction;
use switchyard::secrets::Credential;
use switchyard::sync::Target;
use switchyard::vendors::salesforce::sync::SalesforceContacts;
use switchyard_infra::sandbox::Sandbox;

#[tokio::test]
async fn a_website_that_tries_to_close_its_soql_string_finds_nothing() {
    let sandbox = Sandbox::start().await.unwrap();
    let target = SalesforceContacts {
        base_url: sandbox.base_url("salesforce"),
        token: SecretString::from(sandbox.credentials.salesforce_token.clone()),
    };
    let http = reqwest::Client::new();
    let company = |domain: &'static str| {
        let request = target.company_request(&http, domain);
        let target = &target;
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 200, "{domain}");
            target.company(&answer.json::<Value>().await.unwrap())
        }
    };
    // The sandbox's first account, found by its website; the same with anything appended is not.
    assert_eq!(
        company("acme.com").await.as_deref(),
        Some("001000000000001AAA")
    );
    for hostile in [
        "x' OR Name != '",
        "acme.com' OR Website != '",
        r"acme.com\' OR Website != \'",
        r"acme.com\",
        "acme.com' LIMIT 1 --",
    ] {
        assert_eq!(company(hostile).await, None, "{hostile}");
    }
    // Unescaped, the first of them would have matched every account: the sandbox parses it so.
    let raw = "SELECT Id, Name FROM Account WHERE Website = 'x' OR Name != '' LIMIT 5";
    let answer: Value = http
        .get(format!(
            "{}/services/data/v62.0/query?{}",
            sandbox.base_url("salesforce"),
            serde_urlencoded::to_string([("q", raw)]).unwrap()
        ))
        .bearer_auth(&sandbox.credentials.salesforce_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["totalSize"], 5, "{answer}");
}

#[tokio::test]
async fn an_action_key_with_quotes_and_or_stays_inside_its_jql_label() {
    let sandbox = Sandbox::start().await.unwrap();
    let jira = switchyard::vendors::jira::outbound::Jira::new(
        switchyard::connectors::http_client(),
        Credential::ApiToken {
            base_url: sandbox.base_url("jira"),
            email: sandbox.credentials.jira_email.clone(),
            api_token: SecretString::from(sandbox.credentials.jira_token.clone()),
        },
    )
    .unwrap();
    let create = PlannedAction {
        json: Default::default(),
        connector: "jira".into(),
        action: "create_issue".into(),
        params: [("project", "OPS"), ("summary", "Checkout is down")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    // An event id is a vendor's delivery id: whatever it holds reaches the key.
    let hostile = r#"act#ev" OR labels != "x\#0"#;
    let first = jira.perform(&create, hostile).await.unwrap();
    tokio::time::sleep(switchyard_infra::sandbox::jira::SEARCH_LAG).await;
    let again = jira.perform(&create, hostile).await.unwrap();
    assert_eq!(again.object_id, first.object_id);
    assert!(again.detail.contains("already created"), "{}", again.detail);
    // Another key is another issue: the look-up matched the label, not every issue.
    let other = jira.perform(&create, "act#ev-2#0").await.unwrap();
    assert_ne!(other.object_id, first.object_id);
    // The sandbox reads JQL as Jira does: a value that escaped would be a query error.
    let search = |jql: &str| {
        reqwest::Client::new()
            .post(format!(
                "{}/rest/api/3/search/jql",
                sandbox.base_url("jira")
            ))
            .basic_auth(
                &sandbox.credentials.jira_email,
                Some(&sandbox.credentials.jira_token),
            )
            .json(&serde_json::json!({"jql": jql, "fields": ["key"]}))
            .send()
    };
    let escaped = search(r#"labels = "a" OR 1 = 1"#).await.unwrap();
    assert_eq!(escaped.status(), 400);
    let body: Value = escaped.json().await.unwrap();
    assert!(body["errorMessages"][0]
        .as_str()
        .unwrap()
        .contains("Field '1' does not exist"));
    tokio::time::sleep(switchyard_infra::sandbox::jira::SEARCH_LAG).await;
    let all = search("project = OPS ORDER BY key DESC").await.unwrap();
    let body: Value = all.json().await.unwrap();
    let keys: Vec<&str> = body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert_eq!(keys, ["OPS-2", "OPS-1"], "{body}");
}

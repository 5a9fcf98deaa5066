//! Each connector's actions against the SaaS sandbox, over HTTP (no AWS needed).

use secrecy::SecretString;
use switchyard::connectors::{Connector, ConnectorError};
use switchyard::routing::PlannedAction;
use switchyard::secrets::Credential;
use switchyard_infra::sandbox::Sandbox;

fn action(connector: &str, name: &str, params: &[(&str, &str)]) -> PlannedAction {
    PlannedAction {
        json: Default::default(),
        connector: connector.into(),
        action: name.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

trait WithJson {
    /// The same action with `param` written as JSON in its route.
    fn with_json(self, param: &str) -> Self;
}

impl WithJson for PlannedAction {
    fn with_json(mut self, param: &str) -> Self {
        self.json.insert(param.into());
        self
    }
}

fn jira(sandbox: &Sandbox, token: &str) -> switchyard::vendors::jira::outbound::Jira {
    switchyard::vendors::jira::outbound::Jira::new(
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
    // The worker died before recording success; the retry (after its in-progress window, when
    // Jira's search index has caught up) finds the issue by its label.
    tokio::time::sleep(switchyard_infra::sandbox::jira::SEARCH_LAG).await;
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
    j.perform(
        &action(
            "jira",
            "set_fields",
            &[
                ("issue", &key),
                ("fields.priority", "High"),
                ("fields.customfield_10042", "EU"),
            ],
        ),
        "k",
    )
    .await
    .unwrap();
    let issue = sandbox.jira_issue(&key).unwrap();
    assert_eq!(issue["fields"]["status"]["name"], "In Progress");
    assert_eq!(issue["fields"]["priority"]["name"], "High");
    assert_eq!(issue["fields"]["customfield_10042"], "EU");
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
        matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("available: Stop Progress, Done")),
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
        matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("does not exist")),
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
        matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("summary: You must specify")),
        "{e}"
    );
    let wrong = jira(&sandbox, "not-the-token");
    assert!(matches!(wrong.probe().await, Err(ConnectorError::Auth(_))));
    sandbox.stop();
}

fn salesforce(
    sandbox: &Sandbox,
    token: &str,
) -> switchyard::vendors::salesforce::outbound::Salesforce {
    switchyard::vendors::salesforce::outbound::Salesforce::new(
        switchyard::connectors::http_client(),
        Credential::BearerToken {
            base_url: sandbox.base_url("salesforce"),
            token: SecretString::from(token.to_owned()),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn salesforce_upserts_by_external_id_so_a_crash_does_not_duplicate_the_case() {
    let sandbox = Sandbox::start().await.unwrap();
    let sf = salesforce(&sandbox, &sandbox.credentials.salesforce_token.clone());
    let probe = sf.probe().await.unwrap();
    assert!(probe.detail.contains("remaining"), "{probe:?}");

    let upsert = action(
        "salesforce",
        "upsert_case",
        &[
            ("case.Subject", "Refund for a double charge"),
            ("case.Priority", "High"),
            ("case.Origin", "Web"),
        ],
    );
    let first = sf.perform(&upsert, "act#ev-9#0").await.unwrap();
    let id = first.object_id.clone().unwrap();
    assert!(first.detail.contains("created"), "{first:?}");
    // A retry after a crash between Salesforce's 201 and our record: same key, same Case.
    let again = sf.perform(&upsert, "act#ev-9#0").await.unwrap();
    assert_eq!(again.object_id.as_deref(), Some(id.as_str()));
    assert!(again.detail.contains("already existed"), "{again:?}");
    let creates = sandbox
        .ledger()
        .iter()
        .filter(|e| e.operation == "create_case")
        .count();
    assert_eq!(creates, 1);

    sf.perform(
        &action(
            "salesforce",
            "update_case",
            &[("case_id", &id), ("case.Status", "Working")],
        ),
        "k",
    )
    .await
    .unwrap();
    sf.perform(
        &action(
            "salesforce",
            "add_case_comment",
            &[("case_id", &id), ("comment", "switchyard: billing")],
        ),
        "k",
    )
    .await
    .unwrap();
    let case = sandbox.salesforce_case(&id).unwrap();
    assert_eq!(
        (case["Status"].as_str(), case["Priority"].as_str()),
        (Some("Working"), Some("High"))
    );
    assert_eq!(case["comments"].as_array().unwrap().len(), 1);

    // Vendor errors, triaged.
    let e = sf
        .perform(
            &action("salesforce", "upsert_case", &[("case.Priority", "High")]),
            "act#ev-10#0",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectorError::Unsupported(_)), "{e}");
    let e = sf
        .perform(
            &action(
                "salesforce",
                "update_case",
                &[("case_id", "500000000009999AAA"), ("case.Status", "x")],
            ),
            "k",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("NOT_FOUND")),
        "{e}"
    );
    // The org's daily allowance is spent: a 403 that means "rate limited", not "forbidden".
    sandbox.set_salesforce_remaining(0);
    let e = sf.probe().await.unwrap_err();
    assert!(matches!(e, ConnectorError::RateLimited { .. }), "{e}");
    let wrong = salesforce(&sandbox, "00Dexpired");
    assert!(matches!(wrong.probe().await, Err(ConnectorError::Auth(_))));
    sandbox.stop();
}

fn hubspot(sandbox: &Sandbox, token: &str) -> switchyard::vendors::hubspot::outbound::Hubspot {
    switchyard::vendors::hubspot::outbound::Hubspot::new(
        switchyard::connectors::http_client(),
        Credential::BearerToken {
            base_url: sandbox.base_url("hubspot"),
            token: SecretString::from(token.to_owned()),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn hubspot_tickets_contacts_notes_and_its_ten_second_limit() {
    let sandbox = Sandbox::start().await.unwrap();
    let hs = hubspot(&sandbox, &sandbox.credentials.hubspot_token.clone());
    assert_eq!(
        hs.probe().await.unwrap().object_id.as_deref(),
        Some("62515")
    );

    let create = action(
        "hubspot",
        "create_ticket",
        &[
            ("ticket.subject", "Refund for a double charge"),
            ("ticket.hs_ticket_priority", "HIGH"),
        ],
    );
    let ticket = hs
        .perform(&create, "act#ev-5#0")
        .await
        .unwrap()
        .object_id
        .unwrap();
    // After a crash the same key finds the ticket instead of creating a second one.
    let again = hs.perform(&create, "act#ev-5#0").await.unwrap();
    assert_eq!(again.object_id.as_deref(), Some(ticket.as_str()));
    hs.perform(
        &action(
            "hubspot",
            "update_ticket",
            &[("ticket_id", &ticket), ("ticket.hs_pipeline_stage", "2")],
        ),
        "k",
    )
    .await
    .unwrap();
    let contact = hs
        .perform(
            &action(
                "hubspot",
                "upsert_contact",
                &[("email", "jane@example.com"), ("contact.firstname", "Jane")],
            ),
            "k",
        )
        .await
        .unwrap();
    assert!(contact.detail.ends_with("created"), "{contact:?}");
    let contact_again = hs
        .perform(
            &action(
                "hubspot",
                "upsert_contact",
                &[("email", "jane@example.com")],
            ),
            "k",
        )
        .await
        .unwrap();
    assert_eq!(contact_again.object_id, contact.object_id);
    assert!(contact_again.detail.ends_with("updated"));
    hs.perform(
        &action(
            "hubspot",
            "add_note",
            &[("ticket_id", &ticket), ("note", "switchyard: billing")],
        ),
        "k",
    )
    .await
    .unwrap();
    let contact_id = contact.object_id.unwrap();
    hs.perform(
        &action(
            "hubspot",
            "associate",
            &[
                ("from_type", "contacts"),
                ("from_id", &contact_id),
                ("to_type", "tickets"),
                ("to_id", &ticket),
            ],
        ),
        "k",
    )
    .await
    .unwrap();
    let t = sandbox.hubspot_ticket(&ticket).unwrap();
    assert_eq!(t["properties"]["hs_pipeline_stage"], "2");
    let ops: Vec<String> = sandbox
        .ledger()
        .iter()
        .map(|e| e.operation.clone())
        .collect();
    assert_eq!(
        ops,
        [
            "create_ticket",
            "update_ticket",
            "create_contact",
            "update_contact",
            "create_note",
            "associate"
        ]
    );

    // Errors, triaged: an unknown property (400), a missing object (404), a bad token (401).
    let e = hs
        .perform(
            &action(
                "hubspot",
                "update_ticket",
                &[("ticket_id", &ticket), ("ticket.colour", "red")],
            ),
            "k",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("VALIDATION_ERROR")),
        "{e}"
    );
    let e = hs
        .perform(
            &action(
                "hubspot",
                "update_ticket",
                &[("ticket_id", "999999"), ("ticket.subject", "x")],
            ),
            "k",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("OBJECT_NOT_FOUND")),
        "{e}"
    );
    assert!(matches!(
        hubspot(&sandbox, "pat-na1-wrong").probe().await,
        Err(ConnectorError::Auth(_))
    ));
    // Over the ten-second limit: 429 without Retry-After; the policy says wait 10 s.
    sandbox.set_hubspot_rate_limit(Some(1));
    hs.probe().await.unwrap();
    let e = hs.probe().await.unwrap_err();
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(10))
        }
    );
    sandbox.stop();
}

fn teams(url: String) -> switchyard::vendors::teams::outbound::Teams {
    switchyard::vendors::teams::outbound::Teams::new(
        switchyard::connectors::http_client(),
        Credential::WebhookUrl {
            url: SecretString::from(url),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn teams_posts_cards_and_reads_its_200_wrapped_429_and_a_deleted_webhook() {
    let sandbox = Sandbox::start().await.unwrap();
    let post = action(
        "teams",
        "post_message",
        &[
            ("title", "Possible outage"),
            ("text", "Checkout is down (OPS-142)"),
        ],
    );
    for legacy in [false, true] {
        let t = teams(sandbox.teams_webhook_url(legacy));
        t.probe().await.unwrap();
        t.perform(&post, "k").await.unwrap();
    }
    let ledger = sandbox.ledger();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[0].detail["body"][0]["text"], "Possible outage");

    // Throttled: the legacy webhook says so inside an HTTP 200; the Workflows one with a 429.
    sandbox.set_teams_rate_limit(Some(1));
    let legacy = teams(sandbox.teams_webhook_url(true));
    legacy.perform(&post, "k").await.unwrap();
    let e = legacy.perform(&post, "k").await.unwrap_err();
    assert!(matches!(e, ConnectorError::RateLimited { .. }), "{e}");
    let e = teams(sandbox.teams_webhook_url(false))
        .perform(&post, "k")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(1))
        }
    );
    sandbox.set_teams_rate_limit(None);

    let e = legacy
        .perform(&action("teams", "post_message", &[("text", "")]), "k")
        .await;
    assert!(e.is_ok(), "an empty text is still a card: {e:?}");
    sandbox.remove_teams_webhook();
    let e = legacy.perform(&post, "k").await.unwrap_err();
    assert!(
        matches!(&e, ConnectorError::ReauthRequired(m) if m.contains("410")),
        "{e}"
    );
    sandbox.stop();
}

#[tokio::test]
async fn signed_webhooks_verify_and_a_repeat_is_dropped_by_its_id() {
    let sandbox = Sandbox::start().await.unwrap();
    let hook = |secret: &str| {
        switchyard::vendors::standard_webhooks::outbound::Webhook::new(
            switchyard::connectors::http_client(),
            Credential::SignedWebhook {
                url: format!("{}/hooks", sandbox.base_url("receiver")),
                secret: SecretString::from(secret.to_owned()),
            },
        )
        .unwrap()
    };
    let w = hook(&sandbox.credentials.webhook_secret.clone());
    let post = action(
        "webhook",
        "post",
        &[
            ("type", "ticket.routed"),
            ("ticket", "35436"),
            ("category", "billing"),
        ],
    );
    w.perform(&post, "act#ev-7#0").await.unwrap();
    // The same action again (a retry after a crash): delivered, but the receiver drops it.
    w.perform(&post, "act#ev-7#0").await.unwrap();
    let ledger = sandbox.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].object_id, "act#ev-7#0");
    assert_eq!(ledger[0].detail["data"]["category"], "billing");
    let wrong = hook("whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==");
    let e = wrong.perform(&post, "act#ev-8#0").await.unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("401")),
        "{e}"
    );
    sandbox.stop();
}

fn zendesk(
    sandbox: &Sandbox,
    http: reqwest::Client,
) -> switchyard::vendors::zendesk::outbound::Zendesk {
    switchyard::vendors::zendesk::outbound::Zendesk::new(
        http,
        Credential::ApiToken {
            base_url: sandbox.base_url("zendesk"),
            email: sandbox.credentials.zendesk_email.clone(),
            api_token: SecretString::from(sandbox.credentials.zendesk_token.clone()),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn zendesk_creates_once_by_external_id_and_updates_every_field() {
    let sandbox = Sandbox::start().await.unwrap();
    let z = zendesk(&sandbox, switchyard::connectors::http_client());
    let create = action(
        "zendesk",
        "create_ticket",
        &[
            ("subject", "Checkout is down"),
            ("comment", "Reported in Slack #support"),
            ("priority", "high"),
            ("tags", "outage,switchyard"),
        ],
    );
    let first = z.perform(&create, "act#ev-11#0").await.unwrap();
    let id = first.object_id.clone().unwrap();
    let again = z.perform(&create, "act#ev-11#0").await.unwrap();
    assert_eq!(again.object_id.as_deref(), Some(id.as_str()));
    assert!(again.detail.contains("already created"), "{again:?}");
    let update = action(
        "zendesk",
        "update_ticket",
        &[
            ("ticket_id", &id),
            ("assignee_id", "366630390791"),
            ("priority", "urgent"),
            ("tags", "sev1"),
            ("custom_field.360000000001", "EU"),
            ("comment", "We are on it"),
            ("public", "true"),
        ],
    );
    z.perform(&update, "k").await.unwrap();
    let t = sandbox.zendesk_ticket(id.parse().unwrap()).unwrap();
    assert_eq!(t["priority"], "urgent");
    assert_eq!(t["assignee_id"], 366630390791u64);
    assert_eq!(
        t["tags"],
        serde_json::json!(["outage", "switchyard", "sev1"])
    );
    assert_eq!(t["custom_fields"][0]["value"], "EU");
    let creates = sandbox
        .ledger()
        .iter()
        .filter(|e| e.operation == "create_ticket")
        .count();
    assert_eq!(creates, 1);
    let e = z
        .perform(
            &action(
                "zendesk",
                "update_ticket",
                &[("ticket_id", &id), ("priority", "asap")],
            ),
            "k",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectorError::Unsupported(_)), "{e}");
    sandbox.stop();
}

#[tokio::test]
async fn every_fault_mode_is_triaged_or_absorbed() {
    use switchyard_infra::sandbox::faults::Fault;
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.seed_zendesk_ticket(35436, "Refund for a double charge");
    // A client that gives up after half a second, so a hung vendor is quick to see.
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let z = zendesk(&sandbox, http);
    let comment = action(
        "zendesk",
        "update_ticket",
        &[("ticket_id", "35436"), ("comment", "x")],
    );
    let run = |fault: Fault| {
        sandbox.inject("zendesk", fault, 1);
        z.perform(&comment, "k")
    };
    assert!(
        matches!(run(Fault::ServerError(502)).await, Err(ConnectorError::Transient(m)) if m.contains("502"))
    );
    assert!(matches!(
        run(Fault::ServerError(503)).await,
        Err(ConnectorError::Transient(_))
    ));
    assert!(run(Fault::Slow(std::time::Duration::from_millis(100)))
        .await
        .is_ok());
    // A write that got no answer may have happened: its outcome is unknown, not transient.
    assert!(
        matches!(run(Fault::Hang(std::time::Duration::from_secs(2))).await, Err(ConnectorError::OutcomeUnknown(m)) if m.contains("no answer after the request was sent"))
    );
    assert!(matches!(
        run(Fault::LostAnswer).await,
        Err(ConnectorError::OutcomeUnknown(_))
    ));
    // A read that got no answer is simply retried.
    sandbox.inject("zendesk", Fault::Hang(std::time::Duration::from_secs(2)), 1);
    assert!(
        matches!(z.probe().await, Err(ConnectorError::Transient(m)) if m.contains("request failed"))
    );
    assert!(matches!(
        run(Fault::ExpiredToken).await,
        Err(ConnectorError::Auth(_))
    ));
    let before = switchyard::connectors::drift::unknown_fields_seen();
    let ok = run(Fault::ExtraField).await.unwrap();
    assert_eq!(ok.object_id.as_deref(), Some("35436"));
    assert!(
        switchyard::connectors::drift::unknown_fields_seen() > before,
        "the new field was not counted"
    );
    let ok = run(Fault::MissingField("id")).await.unwrap();
    assert_eq!(ok.object_id, None);
    assert!(ok.detail.contains("no ticket id"), "{ok:?}");
    let ok = run(Fault::RenamedField("id", "ticket_id")).await.unwrap();
    assert_eq!(ok.object_id, None);
    let ok = run(Fault::MixedDates).await.unwrap();
    assert!(
        ok.detail.contains(" at 20"),
        "the odd date was not read: {ok:?}"
    );
    // Every vendor's own expired-credential answer reads as "refresh and retry".
    sandbox.inject("jira", Fault::ExpiredToken, 1);
    assert!(matches!(
        jira(&sandbox, &sandbox.credentials.jira_token.clone())
            .probe()
            .await,
        Err(ConnectorError::Auth(_))
    ));
    sandbox.inject("salesforce", Fault::ExpiredToken, 1);
    assert!(matches!(
        salesforce(&sandbox, &sandbox.credentials.salesforce_token.clone())
            .probe()
            .await,
        Err(ConnectorError::Auth(_))
    ));
    sandbox.inject("hubspot", Fault::ExpiredToken, 1);
    assert!(matches!(
        hubspot(&sandbox, &sandbox.credentials.hubspot_token.clone())
            .probe()
            .await,
        Err(ConnectorError::Auth(_))
    ));
    sandbox.stop();
}

/// The Slack connector over the sandbox's bot token.
fn slack(sandbox: &Sandbox) -> switchyard::vendors::slack::outbound::Slack {
    switchyard::vendors::slack::outbound::Slack::new(
        switchyard::connectors::http_client(),
        Credential::BearerToken {
            base_url: sandbox.base_url("slack"),
            token: SecretString::from(sandbox.credentials.slack_access_token.clone()),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn slack_posts_blocks_in_threads_and_reads_errors_inside_200s() {
    use switchyard_infra::sandbox::faults::Fault;
    let sandbox = Sandbox::start().await.unwrap();
    let slack = slack(&sandbox);
    let blocks = r#"[{"type":"section","text":{"type":"mrkdwn","text":"*Possible outage* via Jira OPS-142"}}]"#;
    // As a route writes them: JSON in the route itself.
    let mut with_blocks = action(
        "slack",
        "post_message",
        &[
            ("channel", "#incidents"),
            ("text", "Possible outage"),
            ("blocks", blocks),
        ],
    );
    // Text that looks like blocks (an event's words) is refused, never posted as structure.
    let e = slack.perform(&with_blocks, "k0").await.unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Unsupported(m) if m.contains("written in the route")),
        "{e}"
    );
    with_blocks.json.insert("blocks".into());
    let first = slack.perform(&with_blocks, "k").await.unwrap();
    let ts = first.object_id.unwrap();
    slack
        .perform(
            &action(
                "slack",
                "post_message",
                &[
                    ("channel", "#incidents"),
                    ("text", "Update: fixed"),
                    ("thread_ts", &ts),
                ],
            ),
            "k",
        )
        .await
        .unwrap();
    let ledger = sandbox.ledger();
    assert_eq!(ledger[1].detail["thread_ts"], ts.as_str());
    let e = slack
        .perform(
            &action(
                "slack",
                "post_message",
                &[("channel", "#nowhere"), ("text", "x")],
            ),
            "k",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("channel_not_found")),
        "{e}"
    );
    let e = slack
        .perform(
            &action(
                "slack",
                "post_message",
                &[("channel", "#incidents"), ("text", "x"), ("blocks", "{")],
            )
            .with_json("blocks"),
            "k",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectorError::Unsupported(_)), "{e}");
    sandbox.inject("slack", Fault::ExpiredToken, 1);
    assert!(matches!(slack.probe().await, Err(ConnectorError::Auth(_))));
    sandbox.stop();
}

#[tokio::test]
async fn jira_and_slack_rate_limits_come_with_their_waits() {
    let sandbox = Sandbox::start().await.unwrap();
    let j = jira(&sandbox, &sandbox.credentials.jira_token.clone());
    sandbox.set_jira_rate_limit(Some(1));
    j.probe().await.unwrap();
    match j.probe().await {
        Err(ConnectorError::RateLimited {
            retry_after: Some(w),
        }) => {
            assert!(
                w <= std::time::Duration::from_secs(1),
                "Retry-After wins over the reset time: {w:?}"
            )
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    let slack = slack(&sandbox);
    sandbox.set_slack_rate_limit(Some(1));
    let post = action(
        "slack",
        "post_message",
        &[("channel", "#incidents"), ("text", "x")],
    );
    slack.perform(&post, "k").await.unwrap();
    assert_eq!(
        slack.perform(&post, "k").await.unwrap_err(),
        ConnectorError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(1))
        }
    );
    sandbox.stop();
}

#[tokio::test]
async fn a_success_says_how_far_apart_its_remaining_budget_allows_calls() {
    use switchyard::connectors::with_budget_hint;
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.seed_zendesk_ticket(35436, "Refund");
    sandbox.set_zendesk_rate_limit(Some(2));
    let z = zendesk(&sandbox, switchyard::connectors::http_client());
    let comment = action(
        "zendesk",
        "update_ticket",
        &[("ticket_id", "35436"), ("comment", "x")],
    );
    let mut hints = Vec::new();
    for _ in 0..2 {
        let (result, hint) = with_budget_hint(z.perform(&comment, "k")).await;
        result.unwrap();
        hints.push(hint);
    }
    // One left for the minute after the first call: half a minute apart. None left after the
    // second: hold about a minute.
    let spacing = hints[0].expect("the remaining budget is reported");
    assert!(
        spacing > std::time::Duration::from_secs(27)
            && spacing <= std::time::Duration::from_secs(30),
        "{spacing:?}"
    );
    let hold = hints[1].expect("a spent budget is reported");
    assert!(
        hold > std::time::Duration::from_secs(55) && hold <= std::time::Duration::from_secs(60),
        "{hold:?}"
    );
    sandbox.stop();
}

/// Event text reaches connectors through templates: an id that would steer a request elsewhere
/// (a path like `1/../../users/me`, a query) is refused before any request, for every vendor
/// whose ids go into a URL path; text goes into JSON bodies as values, never into paths.
#[tokio::test]
async fn ids_from_events_cannot_steer_a_request_to_another_path() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = sandbox.credentials.clone();
    let hostile = [
        "1/../../users/me",
        "35436?role=admin",
        "OPS-1/../../myself",
        "",
        "%2e%2e",
    ];
    let z = zendesk(&sandbox, switchyard::connectors::http_client());
    let j = jira(&sandbox, &c.jira_token);
    let s = salesforce(&sandbox, &c.salesforce_token);
    let h = hubspot(&sandbox, &c.hubspot_token);
    for id in hostile {
        let cases: Vec<(&dyn Connector, PlannedAction)> = vec![
            (
                &z,
                action(
                    "zendesk",
                    "update_ticket",
                    &[("ticket_id", id), ("comment", "x")],
                ),
            ),
            (
                &j,
                action("jira", "add_comment", &[("issue", id), ("comment", "x")]),
            ),
            (
                &s,
                action(
                    "salesforce",
                    "update_case",
                    &[("case_id", id), ("case.Status", "Closed")],
                ),
            ),
            (
                &h,
                action(
                    "hubspot",
                    "update_ticket",
                    &[("ticket_id", id), ("ticket.subject", "x")],
                ),
            ),
        ];
        for (connector, a) in cases {
            let e = connector.perform(&a, "k").await.unwrap_err();
            assert!(
                matches!(&e, ConnectorError::Permanent { reason: m, .. } if m.contains("is not a")),
                "{}.{} with {id:?}: {e}",
                a.connector,
                a.action
            );
        }
    }
    assert!(sandbox.ledger().is_empty(), "{:?}", sandbox.ledger());
    sandbox.stop();
}

/// The look-up before a repeat reads the channel's history page by page (Slack's cursor): a post
/// whose answer may have been lost is found even when two pages of chatter came after it.
#[tokio::test]
async fn a_slack_post_is_found_behind_pages_of_newer_messages_not_posted_again() {
    let sandbox = Sandbox::start().await.unwrap();
    let slack = slack(&sandbox);
    let post = action(
        "slack",
        "post_message",
        &[("channel", "#incidents"), ("text", "Possible outage")],
    );
    let posts = || {
        sandbox
            .ledger()
            .into_iter()
            .filter(|e| e.operation == "chat.postMessage")
            .count()
    };
    let first = slack.perform(&post, "ev-1#0").await.unwrap();
    // 450 newer messages: switchyard reads 200 a page, so its post is on the third.
    sandbox.seed_slack_messages("C0INCIDENTS", 450);
    let again = switchyard::connectors::maybe_done(true, slack.perform(&post, "ev-1#0"))
        .await
        .unwrap();
    assert_eq!(again.object_id, first.object_id);
    assert_eq!(posts(), 1);
    // Past the look-up's five pages, the post counts as not made (its window is bounded).
    sandbox.seed_slack_messages("C0INCIDENTS", 1_000);
    switchyard::connectors::maybe_done(true, slack.perform(&post, "ev-1#0"))
        .await
        .unwrap();
    assert_eq!(posts(), 2, "five pages of 200 are the look-up's reach");
}

//! `switchyard doctor` against the sandbox: identity, permissions against the configured actions,
//! rate-limit headroom, clock skew, and an IP-allowlist rejection named as such.

use std::collections::{BTreeMap, BTreeSet};

use switchyard::doctor::Report;
use switchyard_infra::stack::LocalStack;

fn report<'a>(reports: &'a [Report], connection: &str) -> &'a Report {
    reports
        .iter()
        .find(|r| r.connection == connection)
        .unwrap_or_else(|| panic!("no report for {connection}"))
}

/// Actions for every connector that has permissions to check.
fn planned() -> BTreeMap<String, BTreeSet<String>> {
    [
        ("slack", "post_message"),
        ("zendesk", "update_ticket"),
        ("jira", "create_issue"),
        ("hubspot", "create_ticket"),
        ("salesforce", "upsert_case"),
    ]
    .into_iter()
    .map(|(c, a)| (c.to_owned(), BTreeSet::from([a.to_owned()])))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_reports_identity_grants_headroom_and_clock() {
    let stack = LocalStack::start().await.unwrap();
    // A Zendesk plan with 700 requests a minute (its answers then carry the rate headers).
    stack.sandbox.set_zendesk_rate_limit(Some(700));
    let reports = stack.doctor_for(&planned()).await.unwrap();
    for r in &reports {
        assert!(r.ready, "{r:?}");
        assert!(r.missing.is_empty(), "{r:?}");
        assert!(r.warnings.is_empty(), "{r:?}");
    }
    assert!(report(&reports, "slack")
        .granted
        .contains(&"chat:write".into()));
    assert!(report(&reports, "jira")
        .granted
        .contains(&"CREATE_ISSUES".into()));
    assert!(report(&reports, "zendesk")
        .granted
        .contains(&"role:agent".into()));
    assert!(report(&reports, "hubspot")
        .granted
        .contains(&"tickets".into()));
    assert!(report(&reports, "salesforce")
        .granted
        .contains(&"Case.create".into()));
    // Headroom as each vendor reports it.
    let zendesk = report(&reports, "zendesk").headroom.clone().unwrap();
    assert!(zendesk.contains("left in the window"), "{zendesk}");
    let sf = report(&reports, "salesforce").headroom.clone().unwrap();
    assert!(sf.contains("api-usage="), "{sf}");
    // Same machine, same clock.
    let skew = report(&reports, "slack").clock_skew_seconds.unwrap();
    assert!(skew.abs() <= 2, "{skew}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_permission_fails_the_doctor_and_the_vendor_names_the_scope() {
    let stack = LocalStack::start().await.unwrap();
    let sb = &stack.sandbox;
    sb.revoke_permission("slack", "chat:write");
    sb.revoke_permission("jira", "CREATE_ISSUES");
    sb.revoke_permission("zendesk", "role:agent");
    sb.revoke_permission("hubspot", "tickets");
    sb.revoke_permission("salesforce", "Case.create");
    let reports = stack.doctor_for(&planned()).await.unwrap();
    for (connection, missing) in [
        ("slack", "chat:write (slack.post_message)"),
        ("jira", "CREATE_ISSUES (jira.create_issue)"),
        ("zendesk", "role:agent (zendesk.update_ticket)"),
        ("hubspot", "tickets (hubspot.create_ticket)"),
        ("salesforce", "Case.create (salesforce.upsert_case)"),
    ] {
        let r = report(&reports, connection);
        assert!(!r.ready, "{r:?}");
        assert_eq!(r.missing, [missing], "{r:?}");
        assert!(r.fix.as_deref().unwrap().contains(missing), "{r:?}");
    }
    let table = switchyard::doctor::render(&reports);
    assert!(
        table.contains("MISSING: chat:write (slack.post_message)"),
        "{table}"
    );

    // And the actions themselves fail with the vendor's words, naming the scope.
    let action = |connector: &str, action: &str, params: &[(&str, &str)]| {
        switchyard::routing::PlannedAction {
            json: Default::default(),
            connector: connector.into(),
            action: action.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    };
    let f = stack.template.function("act").unwrap();
    let settings = switchyard::settings::Settings::from_map(
        stack.provisioned.function_env(&stack.template, f).unwrap(),
    );
    let connectors = switchyard::vendors::Connectors::new(
        switchyard::connectors::http_client(),
        switchyard::secrets::SecretCache::new(
            stack.aws.secrets.clone(),
            std::time::Duration::from_secs(60),
        ),
        settings,
    );
    let slack = connectors.get("slack").await.unwrap();
    let e = slack
        .perform(
            &action(
                "slack",
                "post_message",
                &[("channel", "#incidents"), ("text", "hi")],
            ),
            "k1",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing_scope") && e.contains("needs chat:write"),
        "{e}"
    );
    let hubspot = connectors.get("hubspot").await.unwrap();
    let e = hubspot
        .perform(
            &action(
                "hubspot",
                "create_ticket",
                &[("subject", "Checkout is down")],
            ),
            "k2",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("403") && e.contains("needs tickets"), "{e}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_allowlist_rejection_and_a_skewed_clock_are_named_as_such() {
    let stack = LocalStack::start().await.unwrap();
    stack.sandbox.block_ip("jira");
    stack.sandbox.block_ip("slack");
    stack.sandbox.set_clock_offset(300);
    let reports = stack.doctor_for(&planned()).await.unwrap();
    for connection in ["jira", "slack"] {
        let r = report(&reports, connection);
        assert!(!r.ready, "{r:?}");
        assert!(r.fix.as_deref().unwrap().contains("IP allowlist"), "{r:?}");
    }
    let zendesk = report(&reports, "zendesk");
    assert!(
        zendesk.ready,
        "a skewed clock is a warning, not a failure: {zendesk:?}"
    );
    let skew = zendesk.clock_skew_seconds.unwrap();
    assert!((298..=302).contains(&skew), "{skew}");
    assert!(zendesk.warnings[0].contains("clock"), "{zendesk:?}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_marked_needs_reconnect_is_not_ready_until_a_new_credential_is_stored() {
    let stack = LocalStack::start().await.unwrap();
    let secret_id = stack.provisioned.refs["SlackConnectionSecret"].clone();
    let stored = switchyard::secrets::read_stage(&stack.aws.secrets, &secret_id, "AWSCURRENT")
        .await
        .unwrap();
    let marks = switchyard::reconnect::Reconnect::new(
        stack.aws.ddb.clone(),
        &stack.provisioned.refs["PacingTable"],
    );
    // What a worker does when Slack refuses the grant.
    marks
        .mark(
            &secret_id,
            &switchyard::reconnect::fingerprint(&stored),
            "slack needs reconnect: token endpoint error invalid_refresh_token",
        )
        .await
        .unwrap();
    let reports = stack.doctor().await.unwrap();
    let slack = report(&reports, "slack");
    assert!(!slack.ready, "{slack:?}");
    assert!(slack.detail.contains("needs reconnect"), "{slack:?}");
    assert!(
        slack.fix.as_deref().unwrap().contains(&secret_id),
        "{slack:?}"
    );
    // A human stores a new credential (here: the same grant, written again with a new expiry).
    let mut renewed: serde_json::Value =
        serde_json::from_str(secrecy::ExposeSecret::expose_secret(&stored)).unwrap();
    renewed["expires_at"] = serde_json::json!("2099-01-01T00:00:00Z");
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&secret_id)
        .secret_string(renewed.to_string())
        .send()
        .await
        .unwrap();
    let reports = stack.doctor().await.unwrap();
    assert!(report(&reports, "slack").ready, "{reports:?}");
    stack.stop();
}

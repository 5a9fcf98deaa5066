//! API drift, as the on-call person meets it: the sandbox's vendor changes its API the way real
//! ones do (a field renamed, removed, retyped, nulled, a nested change, a new enum value, a new
//! date format, a new field, a newly required field) and one canary run reports it, with the
//! right severity and path; a clean sandbox gives no finding; the change undone resolves it.

use switchyard::drift::{FindingKind, Severity};
use switchyard::handlers::canary::ProbeResult;
use switchyard_infra::stack::LocalStack;

/// The canary's first run (at start) takes the baseline snapshot.
async fn first_run(stack: &LocalStack) -> Vec<ProbeResult> {
    switchyard_tests::wait_for(
        "the canary's first run",
        std::time::Duration::from_secs(60),
        || async {
            let r = stack.canary_results.lock().unwrap().clone();
            (!r.is_empty()).then_some(r)
        },
    )
    .await
}

/// One act message for `event_id` with `actions`, sent to the stack's act queue.
async fn send_to_act(
    stack: &LocalStack,
    event_id: &str,
    object_id: Option<&str>,
    actions: serde_json::Value,
) {
    let body = serde_json::json!({
        "event": {"id": event_id, "source": "zendesk", "event_type": "ticket.created",
                  "delivery_id": event_id, "object_id": object_id, "subject": "Checkout is down",
                  "text": null, "requester": null, "occurred_at": null,
                  "received_at": "2026-12-04T10:31:00Z", "raw": {}},
        "category": "outage", "confidence": 0.9, "actions": actions
    });
    stack
        .aws
        .sqs
        .send_message()
        .queue_url(stack.provisioned.queue_url("ActQueue").unwrap())
        .message_body(body.to_string())
        .send()
        .await
        .unwrap();
}

/// Routes that create Zendesk tickets (the default config only updates them).
fn creating_routes() -> switchyard::routing::RoutingConfig {
    switchyard::routing::RoutingConfig::load(
        r#"
review_threshold = 0.6
[[categories]]
name = "bug"
keywords = ["crash"]
[[routes]]
category = "bug"
[[routes.actions]]
connector = "zendesk"
action = "create_ticket"
params = { subject = "{event.summary}", comment = "{event.text}" }
"#,
    )
    .unwrap()
}

fn findings_of(results: &[ProbeResult], connector: &str) -> Vec<(FindingKind, Severity, String)> {
    let r = results
        .iter()
        .find(|r| r.connector == connector)
        .unwrap_or_else(|| panic!("no canary result for {connector}: {results:?}"));
    let check = r
        .structure
        .as_ref()
        .unwrap_or_else(|| panic!("{connector}: no structure check ran: {r:?}"));
    assert_eq!(check.error, None, "{connector}: {check:?}");
    check
        .findings
        .iter()
        .map(|f| (f.finding.kind, f.finding.severity, f.finding.path.clone()))
        .collect()
}

type Case<'a> = (&'a str, (FindingKind, Severity, &'a str));

/// Switch each mode on for `vendor` in turn: one canary run finds exactly the expected finding
/// (news the first time, not the second), and undoing it resolves it. `added` goes last: a new
/// field joins the snapshot.
async fn every_mode_is_found(
    vendor: &str,
    objects: &str,
    routing: switchyard::routing::RoutingConfig,
    cases: &[Case<'_>],
) {
    let stack = LocalStack::start().await.unwrap();
    let first = first_run(&stack).await;
    let r = first.iter().find(|r| r.connector == vendor).unwrap();
    let check = r
        .structure
        .as_ref()
        .expect("the first run checks structure");
    assert!(
        check.records.get(objects).is_some_and(|n| *n >= 2),
        "{vendor}: {check:?}"
    );
    for r in &first {
        if let Some(c) = &r.structure {
            assert!(
                c.findings.is_empty(),
                "a clean sandbox: {}: {c:?}",
                r.connector
            );
            assert_eq!(c.error, None, "{}", r.connector);
        }
    }
    let store = stack.drift_store().unwrap();
    for (mode, (kind, severity, path)) in cases {
        stack.sandbox.drift(vendor, mode).unwrap();
        let run = stack.canary_now(Some(routing.clone())).await.unwrap();
        assert_eq!(
            findings_of(&run, vendor),
            vec![(*kind, *severity, (*path).to_owned())],
            "{vendor} drift mode {mode}"
        );
        let reported = run
            .iter()
            .find(|r| r.connector == vendor)
            .and_then(|r| r.structure.as_ref())
            .unwrap()
            .findings[0]
            .clone();
        assert!(reported.new, "{mode}: the first sighting is news");
        let again = stack.canary_now(Some(routing.clone())).await.unwrap();
        let check = again
            .iter()
            .find(|r| r.connector == vendor)
            .and_then(|r| r.structure.clone())
            .unwrap();
        if *kind != FindingKind::FieldAdded {
            assert_eq!(check.findings.len(), 1, "{mode}: {check:?}");
            assert!(!check.findings[0].new, "{mode}: seen before, not news");
        }
        let stored = store.list(vendor).await.unwrap();
        let s = stored.iter().find(|s| s.id == reported.id).unwrap();
        assert_eq!(s.finding.path, *path);
        assert_eq!(s.state, "new");
        stack.sandbox.clear_drift();
        if *kind == FindingKind::FieldAdded {
            break;
        }
        let clean = stack.canary_now(Some(routing.clone())).await.unwrap();
        assert_eq!(findings_of(&clean, vendor), vec![], "after undoing {mode}");
        let check = clean
            .iter()
            .find(|r| r.connector == vendor)
            .and_then(|r| r.structure.clone())
            .unwrap();
        assert!(check.resolved.contains(&reported.id), "{mode}: {check:?}");
        let stored = store.list(vendor).await.unwrap();
        assert_eq!(
            stored.iter().find(|s| s.id == reported.id).unwrap().state,
            "resolved"
        );
    }
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_zendesk_drift_mode_is_found_in_one_run() {
    use FindingKind::*;
    use Severity::*;
    every_mode_is_found(
        "zendesk",
        "ticket",
        creating_routes(),
        &[
            ("renamed", (Renamed, Warning, "status")),
            ("removed", (FieldMissing, Breaking, "updated_at")),
            ("retyped", (TypeChanged, Warning, "tags")),
            ("nulled", (BecameNull, Warning, "subject")),
            ("nested", (TypeChanged, Warning, "via/channel")),
            ("enum_value", (NewEnumValue, Warning, "status")),
            ("date_format", (DateFormatChanged, Warning, "updated_at")),
            // Zendesk refuses no create for it: agents must fill it to solve (a warning).
            ("required_field", (RequiredField, Warning, "360012345678")),
            ("added", (FieldAdded, Info, "x_sentiment")),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_jira_drift_mode_is_found_in_one_run() {
    use FindingKind::*;
    use Severity::*;
    every_mode_is_found(
        "jira",
        "issue",
        jira_routes(),
        &[
            ("renamed", (Renamed, Warning, "fields/summary")),
            ("removed", (FieldMissing, Breaking, "key")),
            ("retyped", (TypeChanged, Warning, "fields/labels")),
            ("nulled", (BecameNull, Warning, "fields/status")),
            (
                "nested",
                (TypeChanged, Warning, "fields/status/statusCategory/key"),
            ),
            (
                "enum_value",
                (NewEnumValue, Warning, "fields/status/statusCategory/key"),
            ),
            (
                "date_format",
                (DateFormatChanged, Warning, "fields/updated"),
            ),
            // Jira refuses the create without it: breaking, before any write fails.
            (
                "required_field",
                (RequiredField, Breaking, "customfield_10042"),
            ),
            ("added", (FieldAdded, Info, "fields/customfield_10099")),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_salesforce_drift_mode_is_found_in_one_run() {
    use FindingKind::*;
    use Severity::*;
    every_mode_is_found(
        "salesforce",
        "case",
        one_route(
            "salesforce",
            "upsert_case",
            r#"{ "case.Subject" = "{event.summary}" }"#,
        ),
        &[
            ("renamed", (Renamed, Warning, "Subject")),
            ("removed", (FieldMissing, Breaking, "Id")),
            ("retyped", (TypeChanged, Warning, "IsClosed")),
            ("nulled", (BecameNull, Warning, "Status")),
            ("nested", (TypeChanged, Warning, "attributes/type")),
            ("enum_value", (NewEnumValue, Warning, "Status")),
            (
                "date_format",
                (DateFormatChanged, Warning, "LastModifiedDate"),
            ),
            (
                "required_field",
                (RequiredField, Breaking, "Product_Area__c"),
            ),
            ("added", (FieldAdded, Info, "Sentiment__c")),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_hubspot_drift_mode_is_found_in_one_run() {
    use FindingKind::*;
    use Severity::*;
    every_mode_is_found(
        "hubspot",
        "ticket",
        one_route(
            "hubspot",
            "create_ticket",
            r#"{ subject = "{event.summary}" }"#,
        ),
        &[
            ("renamed", (Renamed, Warning, "properties/subject")),
            ("removed", (FieldMissing, Breaking, "id")),
            ("retyped", (TypeChanged, Warning, "archived")),
            (
                "nulled",
                (BecameNull, Warning, "properties/hs_pipeline_stage"),
            ),
            ("nested", (TypeChanged, Warning, "properties/hs_pipeline")),
            (
                "enum_value",
                (NewEnumValue, Warning, "properties/hs_ticket_priority"),
            ),
            ("date_format", (DateFormatChanged, Warning, "updatedAt")),
            ("added", (FieldAdded, Info, "properties/hs_sentiment")),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_slack_drift_mode_is_found_in_one_run() {
    use FindingKind::*;
    use Severity::*;
    every_mode_is_found(
        "slack",
        "channel",
        one_route(
            "slack",
            "post_message",
            r##"{ channel = "#incidents", text = "{event.summary}" }"##,
        ),
        &[
            // A route's `#name` finds its channel by `name`: losing it breaks posting.
            ("renamed", (Renamed, Breaking, "name")),
            ("removed", (FieldMissing, Breaking, "id")),
            ("retyped", (TypeChanged, Warning, "is_archived")),
            ("nulled", (BecameNull, Breaking, "name")),
            ("nested", (TypeChanged, Warning, "topic/value")),
            ("date_format", (DateFormatChanged, Warning, "created")),
            ("added", (FieldAdded, Info, "is_frozen")),
        ],
    )
    .await;
}

/// One route with one action.
fn one_route(connector: &str, action: &str, params: &str) -> switchyard::routing::RoutingConfig {
    switchyard::routing::RoutingConfig::load(&format!(
        r#"
review_threshold = 0.6
[[categories]]
name = "bug"
keywords = ["crash"]
[[routes]]
category = "bug"
[[routes.actions]]
connector = "{connector}"
action = "{action}"
params = {params}
"#
    ))
    .unwrap()
}

/// A route that creates Jira issues in the sandbox's SUP project.
fn jira_routes() -> switchyard::routing::RoutingConfig {
    switchyard::routing::RoutingConfig::load(
        r#"
review_threshold = 0.6
[[categories]]
name = "bug"
keywords = ["crash"]
[[routes]]
category = "bug"
[[routes.actions]]
connector = "jira"
action = "create_issue"
params = { project = "SUP", summary = "{event.summary}" }
"#,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_refused_for_a_newly_required_field_goes_to_review_naming_it() {
    let stack = LocalStack::start().await.unwrap();
    first_run(&stack).await;
    stack.sandbox.drift("jira", "required_field").unwrap();
    send_to_act(
        &stack,
        "ev-required",
        None,
        serde_json::json!([{"connector": "jira", "action": "create_issue",
                            "params": {"project": "SUP", "summary": "Checkout is down"}}]),
    )
    .await;
    let r = switchyard_tests::settled(&stack, "ev-required").await;
    assert_eq!(r.status, "in_review", "{r:?}");
    let reason = r.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("refused for field customfield_10042")
            && reason.contains("Product area is required"),
        "{reason}"
    );
    // Not dead-lettered, nothing created, and the same finding the canary would raise.
    assert_eq!(stack.queue_depth("ActDLQ").await.unwrap(), 0);
    assert!(!stack
        .sandbox
        .ledger()
        .iter()
        .any(|e| e.vendor == "jira" && e.operation == "create_issue"));
    let stored = stack.drift_store().unwrap().list("jira").await.unwrap();
    let refused = stored
        .iter()
        .find(|s| s.finding.kind == FindingKind::WriteRefused)
        .unwrap_or_else(|| panic!("{stored:?}"));
    assert_eq!(
        (
            refused.finding.path.as_str(),
            refused.finding.severity,
            refused.source.as_str()
        ),
        ("customfield_10042", Severity::Breaking, "act")
    );
    assert!(
        reason.contains(&refused.id),
        "the review names the finding: {reason}"
    );
    // The canary finds the requirement before any write, naming the route that would fail.
    let run = stack.canary_now(Some(jira_routes())).await.unwrap();
    let check = run
        .iter()
        .find(|r| r.connector == "jira")
        .and_then(|r| r.structure.clone())
        .unwrap();
    let f = &check.findings[0].finding;
    assert_eq!(
        (f.kind, f.severity, f.path.as_str()),
        (
            FindingKind::RequiredField,
            Severity::Breaking,
            "customfield_10042"
        )
    );
    assert_eq!(f.routes, vec!["route \"bug\" (jira.create_issue)"]);
    assert!(f.detail.contains("fields.customfield_10042"), "{f:?}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finding_acknowledged_stays_acknowledged_and_a_resolved_one_reopens_as_news() {
    let stack = LocalStack::start().await.unwrap();
    first_run(&stack).await;
    let store = stack.drift_store().unwrap();
    stack.sandbox.drift("zendesk", "removed").unwrap();
    let run = stack.canary_now(None).await.unwrap();
    let id = run
        .iter()
        .find_map(|r| r.structure.as_ref()?.findings.first().cloned())
        .unwrap()
        .id;
    assert!(store
        .set_state("zendesk", &id, "acknowledged", chrono::Utc::now())
        .await
        .unwrap());
    let again = stack.canary_now(None).await.unwrap();
    let f = again
        .iter()
        .find_map(|r| r.structure.as_ref()?.findings.first().cloned())
        .unwrap();
    assert!(!f.new);
    let s = store.list("zendesk").await.unwrap();
    assert_eq!(s.iter().find(|s| s.id == id).unwrap().state, "acknowledged");
    assert_eq!(s.iter().find(|s| s.id == id).unwrap().times_seen, 2);

    stack.sandbox.clear_drift();
    stack.canary_now(None).await.unwrap();
    stack.sandbox.drift("zendesk", "removed").unwrap();
    let back = stack.canary_now(None).await.unwrap();
    let f = back
        .iter()
        .find_map(|r| r.structure.as_ref()?.findings.first().cloned())
        .unwrap();
    assert_eq!(f.id, id);
    assert!(f.new, "back after being resolved: news again");
    assert!(!store
        .set_state("zendesk", "00000000", "acknowledged", chrono::Utc::now())
        .await
        .unwrap());
    stack.stop();
}

/// Drift in live answers becomes findings too: act's Zendesk update reads the ticket back, and a
/// field it reads gone and a field nobody documented are stored (source `act`), the action done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_in_a_live_answer_becomes_findings() {
    let stack = LocalStack::start().await.unwrap();
    stack.sandbox.drift("zendesk", "removed").unwrap();
    stack.sandbox.drift("zendesk", "added").unwrap();
    send_to_act(
        &stack,
        "ev-live",
        Some("101"),
        serde_json::json!([{"connector": "zendesk", "action": "update_ticket",
                            "params": {"ticket_id": "101", "comment": "switchyard: routed to Access", "public": "false"}}]),
    )
    .await;
    let r = switchyard_tests::settled(&stack, "ev-live").await;
    assert_eq!(r.status, "done", "drift never fails an action: {r:?}");
    let store = stack.drift_store().unwrap();
    let found = switchyard_tests::wait_for(
        "the live answer's findings",
        std::time::Duration::from_secs(20),
        || {
            let store = store.clone();
            async move {
                let found: Vec<(FindingKind, Severity, String, String)> = store
                    .list("zendesk")
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|s| s.source == "act")
                    .map(|s| {
                        (
                            s.finding.kind,
                            s.finding.severity,
                            s.finding.path,
                            s.finding.object,
                        )
                    })
                    .collect();
                (found.len() >= 2).then_some(found)
            }
        },
    )
    .await;
    assert!(
        found.contains(&(
            FindingKind::FieldMissing,
            Severity::Breaking,
            "updated_at".into(),
            "ticket".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            FindingKind::FieldAdded,
            Severity::Info,
            "x_sentiment".into(),
            "ticket".into()
        )),
        "{found:?}"
    );
    stack.stop();
}

/// Zendesk drops a custom field it does not know with a 200: the answer's ticket is read back,
/// the loss is said in the action's outcome and stored as a breaking finding; the known field
/// is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_field_zendesk_drops_silently_is_reported() {
    let stack = LocalStack::start().await.unwrap();
    send_to_act(
        &stack,
        "ev-dropped",
        Some("102"),
        serde_json::json!([{"connector": "zendesk", "action": "update_ticket",
                            "params": {"ticket_id": "102", "custom_field.360000000001": "duplicate_charge",
                                       "custom_field.360099999999": "EU"}}]),
    )
    .await;
    let r = switchyard_tests::settled(&stack, "ev-dropped").await;
    assert_eq!(r.status, "done", "{r:?}");
    let results = r.results.clone().unwrap_or_default();
    assert!(
        results.contains("Zendesk dropped custom_field.360099999999"),
        "{results}"
    );
    let ticket = stack.sandbox.zendesk_ticket(102).unwrap();
    assert_eq!(
        ticket["custom_fields"],
        serde_json::json!([{"id": 360000000001u64, "value": "duplicate_charge"}])
    );
    let store = stack.drift_store().unwrap();
    let found = switchyard_tests::wait_for(
        "the dropped field's finding",
        std::time::Duration::from_secs(20),
        || {
            let store = store.clone();
            async move {
                store
                    .list("zendesk")
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|s| s.finding.kind == FindingKind::WriteDropped)
            }
        },
    )
    .await;
    assert_eq!(
        (
            found.finding.path.as_str(),
            found.finding.severity,
            found.finding.object.as_str()
        ),
        (
            "custom_field.360099999999",
            Severity::Breaking,
            "update_ticket"
        )
    );
    stack.stop();
}

/// A field a vendor starts sending in its webhooks becomes an information finding under that
/// source, once; the event itself flows as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_field_in_delivered_webhooks_becomes_a_finding() {
    use switchyard_infra::fixtures;
    let stack = LocalStack::start().await.unwrap();
    stack
        .sandbox
        .seed_zendesk_ticket(35436, "Refund for a double charge");
    let mut hook = fixtures::zendesk_ticket_created(
        &stack.signing.zendesk,
        "d3b5c8a0-1f2e-4c6d-9a7b-0e1f2a3b4c5d",
        35436,
        "Refund for a double charge",
        "I was charged twice; please refund the second payment.",
        chrono::Utc::now(),
    );
    let mut body: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
    body["zendesk_event_region"] = serde_json::json!("eu-west");
    fixtures::resign_zendesk(&mut hook, &stack.signing.zendesk, body.to_string());
    let (status, answer) = hook
        .send(&reqwest::Client::new(), &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 202, "{answer}");
    let id = answer["event_id"].as_str().unwrap().to_owned();
    let r = switchyard_tests::settled(&stack, &id).await;
    assert_eq!(r.status, "done", "{r:?}");
    let store = stack.drift_store().unwrap();
    let found = switchyard_tests::wait_for(
        "the webhook's finding",
        std::time::Duration::from_secs(20),
        || {
            let store = store.clone();
            async move {
                store
                    .list("zendesk")
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|s| s.source == "intake")
            }
        },
    )
    .await;
    assert_eq!(
        (
            found.finding.kind,
            found.finding.severity,
            found.finding.path.as_str()
        ),
        (
            FindingKind::FieldAdded,
            Severity::Info,
            "zendesk_event_region"
        )
    );
    assert_eq!(
        found.finding.object,
        "webhook zen:event-type:ticket.created"
    );
    stack.stop();
}

/// HubSpot keys each created ticket by a property a portal admin creates: the canary finds it
/// gone before a create is refused, and says how to fix it; restored, the finding resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_hubspot_key_property_is_found_before_a_create_fails() {
    let stack = LocalStack::start().await.unwrap();
    let routing = one_route(
        "hubspot",
        "create_ticket",
        r#"{ "ticket.subject" = "{event.summary}" }"#,
    );
    let clean = stack.canary_now(Some(routing.clone())).await.unwrap();
    assert_eq!(findings_of(&clean, "hubspot"), vec![]);
    stack.sandbox.hubspot_delete_property("switchyard_key");
    let run = stack.canary_now(Some(routing.clone())).await.unwrap();
    assert_eq!(
        findings_of(&run, "hubspot"),
        vec![(
            FindingKind::Configuration,
            Severity::Breaking,
            "property switchyard_key".to_owned()
        )]
    );
    // Without a route that creates tickets, the property does not matter.
    let other = stack.canary_now(None).await.unwrap();
    assert_eq!(findings_of(&other, "hubspot"), vec![]);
    stack.stop();
}

/// A finding that needs a person is posted through the drift route once, when first raised:
/// naming the change, the routes it breaks and how to acknowledge it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_breaking_finding_is_posted_through_the_drift_route_once() {
    let stack = LocalStack::start().await.unwrap();
    let mut routing = jira_routes();
    routing.drift = switchyard::routing::RoutingConfig::load(switchyard::routing::DEFAULT_CONFIG)
        .unwrap()
        .drift;
    assert!(
        routing.drift.is_some(),
        "the default config has a drift route"
    );
    let posts = || {
        stack
            .sandbox
            .ledger()
            .into_iter()
            .filter(|e| e.vendor == "slack" && e.operation == "chat.postMessage")
            .map(|e| e.detail["text"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let before = posts().len();
    stack.sandbox.drift("jira", "required_field").unwrap();
    let run = stack.canary_now(Some(routing.clone())).await.unwrap();
    let id = run
        .iter()
        .find(|r| r.connector == "jira")
        .and_then(|r| r.structure.as_ref())
        .map(|c| c.findings[0].id.clone())
        .unwrap();
    let sent = posts();
    assert_eq!(sent.len(), before + 1, "{sent:?}");
    let text = sent.last().unwrap();
    assert!(
        text.contains("customfield_10042")
            && text.contains("route \"bug\" (jira.create_issue)")
            && text.contains(&format!("switchyard canary ack {id}")),
        "{text}"
    );
    stack.canary_now(Some(routing)).await.unwrap();
    assert_eq!(posts().len(), before + 1, "told once, not once per run");
    stack.stop();
}

//! Observability end to end on the local stack: the demo's webhooks go through the real chain,
//! then `explain`'s story, `stats`' counts and the EMF metrics are checked against what was sent;
//! a record that fails its last receive is written `failed` with the reason.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use switchyard_infra::{demo, ops, stack::LocalStack};
use switchyard_tests::{emf, total};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_stats_and_metrics_tell_what_the_demo_did() {
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let webhooks = demo::demo_webhooks(&stack);
    let summary = demo::run(&stack, &http, &webhooks).await.unwrap();
    assert!(summary.settled, "{}", summary.render());
    let dep = stack.deployment().await.unwrap();

    // stats counts what was sent: 10 webhooks (8 accepted, 1 redelivery, 1 forged) and 3 clicks
    // on review messages (decisions, not events).
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let s = ops::stats(&dep, since).await.unwrap();
    let received = emf(&stack, "WebhooksReceived");
    assert_eq!(
        total(&received, "WebhooksReceived", None),
        13.0,
        "{received:?}"
    );
    assert_eq!(s["received"], 13, "{s:#}");
    assert_eq!(s["accepted"], 8, "{s:#}");
    assert_eq!(s["duplicates"], 1, "{s:#}");
    assert_eq!(s["rejected"], 1, "{s:#}");
    assert_eq!(s["rejected_by_reason"]["signature"], 1, "{s:#}");
    assert_eq!(s["auto_routed"], 4, "{s:#}");
    // The two that people decided, and the two documents: one awaits a legal approver, one
    // waits for an unprotected copy.
    assert_eq!(s["reviewed"], 4, "{s:#}");
    assert_eq!(s["failed"], 0, "{s:#}");
    assert_eq!(s["by_source"]["zendesk"]["accepted"], 6, "{s:#}");
    // Four review cards, two updates (the decided ones), the outage post and the re-routed
    // message's post.
    assert_eq!(s["by_connector"]["slack"]["done"], 8, "{s:#}");
    assert_eq!(s["people"]["by_choice"]["approved"], 1, "{s:#}");
    assert_eq!(s["people"]["by_choice"]["rerouted"], 1, "{s:#}");
    assert_eq!(s["people"]["by_category"]["legal"]["approved"], 1, "{s:#}");
    assert_eq!(
        (
            s["people"]["refused"].as_u64(),
            s["people"]["awaiting"].as_u64()
        ),
        // The two documents' events still wait for a person.
        (Some(1), Some(2)),
        "{s:#}"
    );
    assert!(
        s["people"]["time_to_decision_s"]["p95"].as_f64().is_some(),
        "{s:#}"
    );
    // The described connector is counted like the built-in ones.
    assert_eq!(s["by_connector"]["casebook"]["done"], 1, "{s:#}");
    assert!(
        s["vendor_latency_ms"]["zendesk"]["p95_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // The reviewed event's story: what the model saw, why it went to a human, who decided.
    let reviewed = summary
        .decisions
        .iter()
        .find(|d| d.path == "review")
        .unwrap();
    let r = ops::find(&dep.decisions, &reviewed.event_id)
        .await
        .unwrap()
        .unwrap();
    let story = ops::render_story(&r);
    for needle in [
        "classified  feature_request by model with confidence 0.50 (review threshold 0.60)",
        "route       no route matched and confidence 0.50 is below the review threshold 0.60 -> review",
        "slack.post_message done",
        "/api/chat.postMessage -> 200 in",
        "decided     re-routed as outage by U0SUPPORT1 via slack at",
        "slack.update_message done",
        "state       done: re-routed as outage by U0SUPPORT1",
    ] {
        assert!(story.contains(needle), "missing {needle:?} in\n{story}");
    }
    // Found by the vendor's delivery id too, with the same story.
    let by_delivery = ops::find(&dep.decisions, "Ev06ABCD1234")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_delivery.event_id, r.event_id);

    // An auto-routed ticket: route and why, the redelivery, the Zendesk calls with their answers.
    let billing = summary
        .decisions
        .iter()
        .find(|d| {
            d.source == "zendesk" && d.category == "billing" && d.language.as_deref() == Some("eng")
        })
        .unwrap();
    let r = dep.decisions.get(&billing.event_id).await.unwrap().unwrap();
    let j = ops::story_json(&r);
    assert_eq!(j["arrived"]["redeliveries_acknowledged"], 1, "{j:#}");
    assert!(
        j["route"]
            .as_str()
            .unwrap()
            .starts_with("route 2 (category billing, source zendesk): confidence 1.00 >= 0.60"),
        "{j:#}"
    );
    assert_eq!(j["state"], "done");
    let calls = j["attempts"][0]["calls"].as_array().unwrap();
    assert!(!calls.is_empty(), "{j:#}");
    assert!(
        calls.iter().all(|c| c["status"] == 200
            && c["path"]
                .as_str()
                .unwrap()
                .ends_with("/api/v2/tickets/{id}")),
        "{j:#}"
    );
    // The customer's text in planned actions is redacted like the input.
    assert!(!j["planned_actions"].to_string().contains('@'), "{j:#}");

    // `connector check --event` reads what `explain --json` prints: the legal ticket's story
    // renders the Casebook request its record planned.
    let legal = summary
        .decisions
        .iter()
        .find(|d| d.category == "legal")
        .unwrap();
    let r = dep.decisions.get(&legal.event_id).await.unwrap().unwrap();
    let casebook = switchyard::connectors::declared::get("casebook").unwrap();
    let routing = switchyard::routing::RoutingConfig::from_env().unwrap();
    let shown = switchyard::connectors::declared::preview::preview_input(
        casebook,
        &routing,
        ops::story_json(&r),
        "https://casebook.example.invalid",
    )
    .unwrap();
    assert!(shown.contains("planned casebook.open_case:"), "{shown}");
    assert!(
        shown.contains("POST https://casebook.example.invalid/api/v2/matters/M-INTAKE/cases"),
        "{shown}"
    );

    // Metrics: per source and in total, per connector, vendor latency, zeros where alarms need them.
    let metric = |name: &str, dim: Option<(&str, &str)>| total(&emf(&stack, name), name, dim);
    assert_eq!(metric("EventsAccepted", None), 8.0);
    assert_eq!(metric("EventsAccepted", Some(("source", "zendesk"))), 6.0);
    assert_eq!(
        metric("WebhooksRejected", Some(("reason", "signature"))),
        1.0
    );
    assert_eq!(metric("Duplicates", Some(("source", "zendesk"))), 1.0);
    // Three routed tickets and the reply asking for an unprotected copy of the contract.
    assert_eq!(metric("ActionsDone", Some(("connector", "zendesk"))), 4.0);
    assert_eq!(metric("ActionsDone", Some(("connector", "casebook"))), 1.0);
    assert_eq!(metric("SentToReview", None), 4.0);
    assert_eq!(metric("HumanDecisions", Some(("choice", "approved"))), 1.0);
    let latency = emf(&stack, "VendorLatency");
    assert!(latency
        .iter()
        .any(|(dims, d)| dims == &["connector", "operation"]
            && d["connector"] == "zendesk"
            && d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds"));
    assert!(!emf(&stack, "EndToEndLatency").is_empty());
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_fails_its_last_receive_is_written_failed_with_the_reason() {
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    use switchyard::handlers::act::{handler as act, Act};
    let stack = LocalStack::start().await.unwrap();
    let env = stack
        .provisioned
        .function_env(&stack.template, stack.template.function("act").unwrap())
        .unwrap();
    let deps =
        Act::from_settings(&stack.aws, &switchyard::settings::Settings::from_map(env)).unwrap();
    stack.sandbox.inject(
        "zendesk",
        switchyard_infra::sandbox::faults::Fault::ServerError(503),
        10,
    );
    let event: switchyard::event::Event = serde_json::from_value(serde_json::json!({
        "id": "ev-dlq", "source": "zendesk", "event_type": "ticket.created", "delivery_id": "d-dlq",
        "object_id": "7", "subject": "Refund", "text": null, "requester": null,
        "occurred_at": null, "received_at": "2026-11-28T10:31:00Z", "raw": {}
    }))
    .unwrap();
    let msg = switchyard::routing::ActMessage {
        event,
        category: "billing".into(),
        confidence: 0.9,
        actions: vec![switchyard::routing::PlannedAction {
            json: Default::default(),
            connector: "zendesk".into(),
            action: "update_ticket".into(),
            params: [
                ("ticket_id".to_owned(), "7".to_owned()),
                ("comment".to_owned(), "hi".to_owned()),
            ]
            .into(),
        }],
        review_reason: None,
        card_update: false,
        key_stage: None,
    };
    let send = |receive: u64| {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m-{receive}"));
        m.body = Some(serde_json::to_string(&msg).unwrap());
        m.attributes
            .insert("ApproximateReceiveCount".into(), receive.to_string());
        let mut batch = SqsEvent::default();
        batch.records = vec![m];
        batch
    };
    // An early receive fails and stays retryable: the record keeps its attempt, not "failed".
    let out = act(&deps, LambdaEvent::new(send(1), Context::default()))
        .await
        .unwrap();
    assert_eq!(out.batch_item_failures.len(), 1);
    let r = deps.decisions.get("ev-dlq").await.unwrap().unwrap();
    assert_ne!(r.status, "failed");
    assert_eq!(r.attempts[0]["status"], "failed");
    assert!(r.attempts[0]["calls"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["status"] == 503 || c["status"] == 500));
    // The last receive fails too: the queue dead-letters it, and the record says so.
    let out = act(&deps, LambdaEvent::new(send(5), Context::default()))
        .await
        .unwrap();
    assert_eq!(out.batch_item_failures.len(), 1);
    let r = deps.decisions.get("ev-dlq").await.unwrap().unwrap();
    assert_eq!(r.status, "failed");
    let reason = r.reason.clone().unwrap();
    assert!(
        reason.starts_with("dead-lettered in act after 5 receives: zendesk.update_ticket"),
        "{reason}"
    );
    assert!(ops::render_story(&r).contains("state       failed: dead-lettered"));
    stack.stop();
}

/// A decision's evidence (input, scores, signals, route, plan) lives in an item of its own,
/// written once, so the record every stage writes stays under 1 KB — one write unit a write,
/// however long the message — and `explain` still tells the whole story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_stays_under_a_kilobyte_and_explain_still_shows_the_evidence() {
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    stack
        .sandbox
        .seed_zendesk_ticket(71_000, "Refund for a double charge");
    // A long message: 480 characters of it reach the redacted input.
    let text =
        "My card was charged twice for the March invoice; please refund one payment. ".repeat(7);
    let hook = switchyard_infra::fixtures::zendesk_ticket_created(
        &stack.signing.zendesk,
        "kb-1",
        71_000,
        "Refund for a double charge",
        &text,
        chrono::Utc::now(),
    );
    stack.emulator.take_usage().await.unwrap();
    let (status, body) = hook.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let id = body["event_id"].as_str().unwrap().to_owned();
    let record = switchyard_tests::settled(&stack, &id).await;
    assert_eq!(record.status, "done", "{:?}", record.reason);
    let usage = stack.emulator.take_usage().await.unwrap();

    let record_writes: Vec<_> = usage
        .largest_item
        .iter()
        .filter(|(k, _)| k.as_str() == "DecisionsTable UpdateItem")
        .collect();
    assert_eq!(record_writes.len(), 1, "{:?}", usage.largest_item);
    assert!(
        *record_writes[0].1 < 1024,
        "the record grew to {} bytes: {:?}",
        record_writes[0].1,
        usage.largest_item
    );
    assert!(
        usage.write_units.contains_key("DecisionsTable PutItem"),
        "the evidence is written: {:?}",
        usage.write_units
    );

    let dep = stack.deployment().await.unwrap();
    let story = ops::story_json(&ops::find(&dep.decisions, &id).await.unwrap().unwrap());
    let input = story["arrived"]["input"].as_str().unwrap_or_default();
    assert!(input.contains("charged twice"), "{story:#}");
    let c = &story["classification"];
    assert!(!c["top_scores"].as_array().unwrap().is_empty(), "{story:#}");
    assert!(c["signals"].as_str().is_some(), "{story:#}");
    assert!(story["route"].as_str().is_some(), "{story:#}");
    assert_eq!(
        story["planned_actions"][0]["action"], "update_ticket",
        "{story:#}"
    );
    stack.stop();
}

/// classify writes the decision, then its evidence: a crash between the two leaves a decided
/// record without evidence, which the redelivery rebuilds (input, route, plan; the scores died
/// with the process). Evidence of another decision — left by a record that expired and was
/// claimed afresh — is never shown with this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_a_crash_lost_is_rebuilt_and_stale_evidence_is_never_shown() {
    let _alone = switchyard_tests::one_stack_at_a_time().await;
    use aws_sdk_dynamodb::types::AttributeValue;
    use switchyard::handlers::classify::handler as classify;

    let stack = LocalStack::start().await.unwrap();
    let p = &stack.provisioned;
    let table = &p.refs["DecisionsTable"];
    let deps = switchyard_tests::classify_deps(
        &stack,
        switchyard::routing::DEFAULT_CONFIG,
        p.queue_url("ActDLQ").unwrap(),
    );
    let event = serde_json::json!({
        "id": "ev-why", "source": "jira", "event_type": "jira:issue_created", "delivery_id": "d-why",
        "object_id": "OPS-7", "subject": "Checkout down with 500 errors", "text": null,
        "requester": null, "occurred_at": null, "received_at": "2026-11-30T10:31:00Z", "raw": {}
    })
    .to_string();
    let run = |receive_count: u32| {
        let mut batch = SqsEvent::default();
        batch.records = vec![switchyard_tests::message("m-why", &event, receive_count)];
        let deps = &deps;
        async move {
            let resp = classify(deps, LambdaEvent::new(batch, Context::default()))
                .await
                .unwrap();
            assert!(resp.batch_item_failures.is_empty());
        }
    };
    let evidence_key = || AttributeValue::S("ev-why#evidence".into());

    run(1).await;
    let first = deps.decisions.get("ev-why").await.unwrap().unwrap();
    assert!(first.input.as_deref().unwrap().contains("Checkout down"));
    assert!(
        first.scores.is_some() && first.signals.is_some(),
        "{first:?}"
    );

    // The crash: the decision stands, its evidence was never written.
    stack
        .aws
        .ddb
        .delete_item()
        .table_name(table)
        .key("event_id", evidence_key())
        .send()
        .await
        .unwrap();
    let lost = deps.decisions.get("ev-why").await.unwrap().unwrap();
    assert_eq!((lost.input.as_ref(), lost.route.as_ref()), (None, None));
    run(2).await;
    let rebuilt = deps.decisions.get("ev-why").await.unwrap().unwrap();
    assert_eq!(rebuilt.input, first.input);
    assert_eq!(rebuilt.route, first.route);
    assert_eq!(rebuilt.actions, first.actions);
    assert_eq!(rebuilt.decided_at, first.decided_at);

    // Evidence of an earlier decision under the same id is not this decision's.
    stack
        .aws
        .ddb
        .update_item()
        .table_name(table)
        .key("event_id", evidence_key())
        .update_expression("SET decided_at = :old")
        .expression_attribute_values(
            ":old",
            AttributeValue::S("2026-10-01T00:00:00+00:00".into()),
        )
        .send()
        .await
        .unwrap();
    let stale = deps.decisions.get("ev-why").await.unwrap().unwrap();
    assert_eq!(stale.input, None, "stale evidence shown: {stale:?}");
    run(2).await;
    let again = deps.decisions.get("ev-why").await.unwrap().unwrap();
    assert_eq!(again.input, first.input);
    stack.stop();
}

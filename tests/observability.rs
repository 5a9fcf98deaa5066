//! Observability end to end on the local stack: the demo's webhooks go through the real chain,
//! then `explain`'s story, `stats`' counts and the EMF metrics are checked against what was sent;
//! a record that fails its last receive is written `failed` with the reason.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use switchyard_infra::{demo, ops, stack::LocalStack};

/// The EMF documents the functions wrote for `metric`: (dimensions, document).
fn emf(stack: &LocalStack, metric: &str) -> Vec<(Vec<String>, Value)> {
    stack
        .stats
        .metrics
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|d| d.get(metric).is_some())
        .map(|d| {
            let dims = d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            (dims, d)
        })
        .collect()
}

fn total(docs: &[(Vec<String>, Value)], metric: &str, dim: Option<(&str, &str)>) -> f64 {
    docs.iter()
        .filter(|(dims, d)| match dim {
            None => dims.is_empty(),
            Some((k, v)) => dims == &[k.to_owned()] && d[k] == v,
        })
        .map(|(_, d)| d[metric].as_f64().unwrap_or(0.0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_stats_and_metrics_tell_what_the_demo_did() {
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let webhooks = demo::demo_webhooks(&stack);
    let summary = demo::run(&stack, &http, &webhooks).await.unwrap();
    assert!(summary.settled, "{}", summary.render());
    let dep = stack.deployment().await.unwrap();

    // stats counts what was sent: 8 requests, 6 accepted, 1 redelivery, 1 forged.
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let s = ops::stats(&dep, since).await.unwrap();
    let received = emf(&stack, "WebhooksReceived");
    assert_eq!(
        total(&received, "WebhooksReceived", None),
        8.0,
        "{received:?}"
    );
    assert_eq!(s["received"], 8, "{s:#}");
    assert_eq!(s["accepted"], 6, "{s:#}");
    assert_eq!(s["duplicates"], 1, "{s:#}");
    assert_eq!(s["rejected"], 1, "{s:#}");
    assert_eq!(s["rejected_by_reason"]["signature"], 1, "{s:#}");
    assert_eq!(s["auto_routed"], 5, "{s:#}");
    assert_eq!(s["reviewed"], 1, "{s:#}");
    assert_eq!(s["failed"], 0, "{s:#}");
    assert_eq!(s["by_source"]["zendesk"]["accepted"], 4, "{s:#}");
    assert_eq!(s["by_connector"]["slack"]["done"], 2, "{s:#}");
    // The described connector is counted like the built-in ones.
    assert_eq!(s["by_connector"]["casebook"]["done"], 1, "{s:#}");
    assert!(
        s["vendor_latency_ms"]["zendesk"]["p95_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // The reviewed event's story: what the model saw, why it went to a human.
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
        "state       in_review",
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

    // Metrics: per source and in total, per connector, vendor latency, zeros where alarms need them.
    let metric = |name: &str, dim: Option<(&str, &str)>| total(&emf(&stack, name), name, dim);
    assert_eq!(metric("EventsAccepted", None), 6.0);
    assert_eq!(metric("EventsAccepted", Some(("source", "zendesk"))), 4.0);
    assert_eq!(
        metric("WebhooksRejected", Some(("reason", "signature"))),
        1.0
    );
    assert_eq!(metric("Duplicates", Some(("source", "zendesk"))), 1.0);
    assert_eq!(metric("ActionsDone", Some(("connector", "zendesk"))), 3.0);
    assert_eq!(metric("ActionsDone", Some(("connector", "casebook"))), 1.0);
    assert_eq!(metric("SentToReview", None), 1.0);
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
    use switchyard::handlers::act::{handler as act, Act};
    let stack = LocalStack::start().await.unwrap();
    let env = stack
        .provisioned
        .function_env(stack.template.function("act").unwrap())
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
    let msg = switchyard::event::ActMessage {
        event,
        category: "billing".into(),
        confidence: 0.9,
        actions: vec![switchyard::routing::PlannedAction {
            connector: "zendesk".into(),
            action: "update_ticket".into(),
            params: [
                ("ticket_id".to_owned(), "7".to_owned()),
                ("comment".to_owned(), "hi".to_owned()),
            ]
            .into(),
        }],
        review_reason: None,
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

//! Handlers called directly with `LambdaEvent::new`, against the emulator's real resources.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use switchyard::decisions::DecisionStore;
use switchyard::handlers::classify::{handler, Classify};
use switchyard::routing::RoutingConfig;
use switchyard_infra::stack::LocalStack;

fn record(id: Option<&str>, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = id.map(Into::into);
    m.body = Some(body.into());
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_reports_only_the_bad_record_of_a_batch() {
    let stack = LocalStack::start().await.unwrap();
    let p = &stack.provisioned;
    let deps = Classify {
        sqs: stack.aws.sqs.clone(),
        decisions: DecisionStore::new(stack.aws.ddb.clone(), &p.refs["DecisionsTable"]),
        routing: RoutingConfig::load(switchyard::routing::DEFAULT_CONFIG).unwrap(),
        // Classify's own outputs go to queues nobody polls here, so they can be inspected.
        act_queue_url: p.queue_url("ActDLQ").unwrap().to_owned(),
        review_queue_url: p.queue_url("ReviewDLQ").unwrap().to_owned(),
    };
    let good = serde_json::json!({
        "id": "ev-good", "source": "jira", "event_type": "jira:issue_created", "delivery_id": "d1",
        "object_id": "OPS-1", "subject": "Checkout down with 500 errors", "text": null, "requester": null,
        "occurred_at": null, "received_at": "2024-01-15T10:31:00Z", "raw": {}
    });
    let mut event = SqsEvent::default();
    event.records = vec![
        record(Some("m-good"), &good.to_string()),
        record(Some("m-bad"), "{\"not\": \"an event\"}"),
    ];
    let resp = handler(&deps, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    let failed: Vec<_> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-bad"]);
    let decision = deps.decisions.get("ev-good").await.unwrap().unwrap();
    assert_eq!(
        (decision.category.as_str(), decision.path.as_str()),
        ("outage", "act")
    );
    assert_eq!(stack.queue_depth("ActDLQ").await.unwrap(), 1);
    stack.stop();
}

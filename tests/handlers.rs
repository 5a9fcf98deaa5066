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
        classifier: switchyard::classifier::Classifier {
            model: None,
            llm: None,
        },
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_answers_503_when_dynamodb_or_sqs_is_down_and_the_retry_is_accepted() {
    use switchyard::handlers::intake::{handler as intake, Intake};
    let stack = LocalStack::start().await.unwrap();
    let p = &stack.provisioned;
    let dead = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            aws_sdk_sqs::config::Credentials::new("a", "b", None, None, "t"),
        ))
        .build();
    let mut deps = Intake {
        sqs: aws_sdk_sqs::Client::new(&dead),
        secrets: switchyard::secrets::SecretCache::new(
            stack.aws.secrets.clone(),
            std::time::Duration::from_secs(60),
        ),
        idempotency: switchyard::idempotency::IdempotencyStore::new(
            stack.aws.ddb.clone(),
            &p.refs["IdempotencyTable"],
        ),
        classify_queue_url: p.queue_url("ClassifyQueue").unwrap().to_owned(),
        signing_secret_id: p.refs["IntakeSigningSecret"].clone(),
        max_body_bytes: 256 * 1024,
        public_base_url: None,
        decisions: DecisionStore::new(stack.aws.ddb.clone(), &p.refs["DecisionsTable"]),
    };
    let hook = switchyard_infra::fixtures::slack_message(
        &stack.signing.slack,
        "EvDown1",
        "C1",
        "checkout is down",
        chrono::Utc::now(),
    );
    let request = || {
        let mut r =
            aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest::default();
        r.raw_path = Some("/webhooks/slack".into());
        r.request_context.http.method = Some("POST".into());
        for (k, v) in &hook.headers {
            r.headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        r.body = Some(hook.body.clone());
        r
    };
    let down = intake(&deps, LambdaEvent::new(request(), Context::default()))
        .await
        .unwrap();
    assert_eq!(down.status_code, 503, "{:?}", down.body);
    assert!(down.headers.contains_key("retry-after"));

    // SQS is back: the vendor's retry of the same delivery is accepted, not taken for a duplicate.
    deps.sqs = stack.aws.sqs.clone();
    let back = intake(&deps, LambdaEvent::new(request(), Context::default()))
        .await
        .unwrap();
    assert_eq!(back.status_code, 202, "{:?}", back.body);
    stack.stop();
}

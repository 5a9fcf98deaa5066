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

/// A worker crashed after the vendor's success and before its record: its claim is stuck
/// INPROGRESS until the Lambda deadline. After that, SQS redelivers and another worker acts —
/// and the vendor-side key (Zendesk `external_id`) keeps it to one ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_vendor_call_and_the_record_still_makes_one_effect() {
    use switchyard::event::ActMessage;
    use switchyard::handlers::act::{handler as act, Act};
    use switchyard::idempotency::{payload_hash, Claim};
    use switchyard::routing::PlannedAction;

    let stack = LocalStack::start().await.unwrap();
    let f = stack.template.function("act").unwrap();
    let env = stack.provisioned.function_env(f).unwrap();
    let deps =
        Act::from_settings(&stack.aws, &switchyard::settings::Settings::from_map(env)).unwrap();
    let action = PlannedAction {
        connector: "zendesk".into(),
        action: "create_ticket".into(),
        params: [
            ("subject".to_owned(), "Checkout is down".to_owned()),
            ("comment".to_owned(), "Reported in Slack".to_owned()),
        ]
        .into(),
    };
    let event: switchyard::event::Event = serde_json::from_value(serde_json::json!({
        "id": "ev-crash", "source": "slack", "event_type": "message", "delivery_id": "d",
        "object_id": null, "subject": "Checkout is down", "text": null, "requester": null,
        "occurred_at": null, "received_at": "2026-11-28T10:31:00Z", "raw": {}
    }))
    .unwrap();
    let msg = ActMessage {
        event,
        category: "outage".into(),
        confidence: 0.9,
        actions: vec![action.clone()],
        review_reason: None,
    };
    // The crashed worker: it claimed the action (its deadline has since passed) and Zendesk
    // created the ticket; then it died.
    let key = "act#ev-crash#0";
    let hash = payload_hash(&serde_json::to_vec(&action).unwrap());
    let now = chrono::Utc::now();
    let expired_deadline = now.timestamp_millis() - 1;
    assert_eq!(
        deps.idempotency
            .claim(key, &hash, now, expired_deadline)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let zendesk = deps.connectors.get("zendesk").await.unwrap();
    zendesk.perform(&action, key).await.unwrap();

    // The redelivery.
    let mut batch = SqsEvent::default();
    batch.records = vec![record(
        Some("m-crash"),
        &serde_json::to_string(&msg).unwrap(),
    )];
    let resp = act(&deps, LambdaEvent::new(batch, Context::default()))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    let creates: Vec<_> = stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| e.operation == "create_ticket")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    let outcome = deps.decisions.get("ev-crash").await.unwrap().unwrap();
    assert!(outcome.results.unwrap().contains("already created"));
    stack.stop();
}

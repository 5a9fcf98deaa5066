//! Intake end to end for the batch, SOAP and reply-style vendors, the limits, and the status API.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use switchyard_infra::fixtures;
use switchyard_infra::stack::LocalStack;
use switchyard_tests::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_batches_become_one_event_each_and_dedupe_per_event() {
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    // intake rebuilds the URL HubSpot called from the Host header.
    let url = format!(
        "https://{}/webhooks/hubspot",
        stack.webhook_base.trim_start_matches("http://")
    );
    let events = json!([
        {"eventId": 100, "subscriptionId": 1, "portalId": 62515, "appId": 7, "occurredAt": Utc::now().timestamp_millis(),
         "subscriptionType": "contact.creation", "attemptNumber": 0, "objectId": 123, "changeSource": "CRM"},
        {"eventId": 101, "subscriptionId": 2, "portalId": 62515, "appId": 7, "occurredAt": Utc::now().timestamp_millis() + 500,
         "subscriptionType": "ticket.propertyChange", "attemptNumber": 0, "objectId": 456,
         "propertyName": "subject", "propertyValue": "Refund for invoice", "changeSource": "CRM"}
    ]);
    let hook = fixtures::hubspot_batch(&stack.signing.hubspot, &url, &events, Utc::now());
    let (status, body) = hook.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["event_ids"].as_array().unwrap().len(), 2);

    // HubSpot retries the batch with attemptNumber raised (and a new signature): nothing new.
    let retried = json!(events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e["attemptNumber"] = json!(1);
            e
        })
        .collect::<Vec<_>>());
    let retry = fixtures::hubspot_batch(&stack.signing.hubspot, &url, &retried, Utc::now());
    let (status, body) = retry.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    assert_eq!(body["event_ids"].as_array().unwrap().len(), 2);

    // A tampered batch is refused whole.
    let mut tampered = hook.clone();
    tampered.body = tampered.body.replace("123", "124");
    assert_eq!(
        tampered.send(&http, &stack.webhook_base).await.unwrap().0,
        401
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_gets_its_soap_ack_and_other_orgs_are_refused() {
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let hook = fixtures::salesforce_case(
        &stack.signing.salesforce_org,
        "04l5g00000XXXXXAAA",
        "5005g00000XXXXXAAA",
        "Refund for invoice",
    )
    .with_token(&stack.signing.salesforce_token);
    let resp = hook
        .request(&http, &stack.webhook_base)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/xml"));
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("<notificationsResponse") && text.contains("<Ack>true</Ack>"),
        "{text}"
    );
    // A Salesforce case has no route in the default config: it must reach the review queue.
    wait_for("the case to reach review", Duration::from_secs(30), || {
        let stack = &stack;
        async move { (stack.queue_depth("ReviewQueue").await.unwrap() == 1).then_some(()) }
    })
    .await;

    let foreign = fixtures::salesforce_case(
        "00D000000000001AAA",
        "04l000000000002AAA",
        "500000000000002AAA",
        "x",
    )
    .with_token(&stack.signing.salesforce_token);
    let (status, body) = foreign.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 401);
    // Another organization is told the same as a missing token: nothing says which part failed.
    let (_, untokened) = fixtures::salesforce_case(
        &stack.signing.salesforce_org,
        "04l000000000003AAA",
        "500000000000003AAA",
        "x",
    )
    .send(&http, &stack.webhook_base)
    .await
    .unwrap();
    assert_eq!(body, untokened);
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_gets_a_reply_activity() {
    let stack = LocalStack::start().await.unwrap();
    let hook = fixtures::teams_message(
        &stack.signing.teams,
        "1485983408511",
        "the VPN is down again",
        Utc::now(),
    );
    let (status, body) = hook
        .send(&reqwest::Client::new(), &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    let forged = fixtures::teams_message(
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
        "2",
        "x",
        Utc::now(),
    );
    assert_eq!(
        forged
            .send(&reqwest::Client::new(), &stack.webhook_base)
            .await
            .unwrap()
            .0,
        401
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_and_content_type_limits() {
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    // Counted from what the emulator served: classify drains its queue, so an empty queue
    // afterwards would prove nothing.
    stack.emulator.take_requests().await.unwrap();
    let resp = http
        .post(stack.webhook_url("zendesk"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(300 * 1024));
    let resp = http
        .post(stack.webhook_url("zendesk"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("262144 byte limit"),
        "{body}"
    );
    let served = stack.emulator.take_requests().await.unwrap();
    assert_eq!(served.get("sqs.SendMessage"), None, "{served:?}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_api_follows_an_event_and_needs_a_token() {
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let hook = fixtures::slack_message(
        &stack.signing.slack,
        "EvStatus1",
        "C0SUPPORT",
        "what is the meaning of life",
        Utc::now(),
    );
    let (status, body) = hook.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 202);
    let url = format!(
        "{}/events/{}",
        stack.webhook_base,
        body["event_id"].as_str().unwrap()
    );

    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 401);
    assert_eq!(
        http.get(&url)
            .bearer_auth("guess")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let token = stack.signing.status_token.clone();
    let last = wait_for("the event to reach review", Duration::from_secs(30), || {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let v: Value = http
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["status"] == "in review").then_some(v)
        }
    })
    .await;
    // Why it went to a human (for this text: no confident route), as the decision record says.
    assert_eq!(last["path"], "review", "{last}");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("below the review threshold") || reason.contains("no route for category"),
        "{last}"
    );
    let missing = http
        .get(format!("{}/events/nope", stack.webhook_base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    stack.stop();
}

/// The one DynamoDB write that fails: intake's `queued_at` mark (as a dropped connection would
/// fail it, at the SDK's edge; every other call reaches the emulator).
#[derive(Debug)]
struct QueuedAtFails;

impl aws_sdk_dynamodb::config::Intercept for QueuedAtFails {
    fn name(&self) -> &'static str {
        "QueuedAtFails"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let update = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::update_item::UpdateItemInput>();
        match update.and_then(|u| u.update_expression()) {
            Some(e) if e.contains("queued_at") => Err("connection reset by peer".into()),
            _ => Ok(()),
        }
    }
}

/// intake's `queued_at` write fails after the enqueue went through. The delivery is accepted all the same; a
/// redelivery inside the claim's window is told to retry (409), one past it is queued again under
/// the same event id — and classify's one decision and act's keys make the two copies one post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_queued_at_write_queues_a_late_retry_again_as_the_same_event_acting_once() {
    use lambda_runtime::{Context, LambdaEvent};
    use switchyard::decisions::DecisionStore;
    use switchyard::handlers::intake::{handler as intake, Intake};
    let stack = LocalStack::start().await.unwrap();
    let p = &stack.provisioned;
    let table = &p.refs["DecisionsTable"];
    let aws = stack.function_aws("intake").await.unwrap();
    let settings = switchyard::settings::Settings::from_map(stack.local_env("intake").unwrap());
    let mut deps = Intake::from_settings(&aws, &settings).unwrap();
    let config = switchyard_infra::emulator::sdk_config_as(
        &stack.emulator.endpoint,
        stack.provisioned.keys.get("intake"),
    )
    .await;
    let failing = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(QueuedAtFails)
            .build(),
    );
    deps.decisions = DecisionStore::new(failing, table);
    // Copies land where nobody polls, to be counted, then go on to classify (intake's own key
    // may send to its queue only).
    let parking = p.queue_url("ClassifyDLQ").unwrap().to_owned();
    deps.classify_queue_url = parking.clone();
    deps.sqs = stack.aws.sqs.clone();

    let hook = fixtures::slack_message(
        &stack.signing.slack,
        "EvQueuedAt",
        "C0SUPPORT",
        "Checkout is down with 500 errors [queued_at]",
        Utc::now(),
    );
    let deliver = |claim_for: Duration| {
        let mut ctx = Context::default();
        ctx.deadline = (Utc::now() + claim_for).timestamp_millis() as u64;
        intake(&deps, LambdaEvent::new(hook.function_url_event(), ctx))
    };
    let first = deliver(Duration::from_secs(2)).await.unwrap();
    assert_eq!(first.status_code, 202, "{:?}", first.body);
    let event_id = serde_json::from_str::<Value>(first.body.as_deref().unwrap()).unwrap()
        ["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = stack
        .decisions()
        .unwrap()
        .get(&event_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, "accepted", "queued, but not marked so");

    let inside = deliver(Duration::from_secs(2)).await.unwrap();
    assert_eq!(inside.status_code, 409, "{:?}", inside.body);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let late = deliver(Duration::from_secs(2)).await.unwrap();
    assert_eq!(late.status_code, 202, "{:?}", late.body);
    assert!(
        late.body.as_deref().unwrap().contains(&event_id),
        "{:?}",
        late.body
    );

    let mut bodies = Vec::new();
    while bodies.len() < 2 {
        let got = stack
            .aws
            .sqs
            .receive_message()
            .queue_url(&parking)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        let got = got.messages.unwrap_or_default();
        assert!(!got.is_empty(), "two copies queued, found {}", bodies.len());
        bodies.extend(got.into_iter().filter_map(|m| m.body));
    }
    for body in &bodies {
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap()["id"],
            event_id.as_str()
        );
        stack
            .aws
            .sqs
            .send_message()
            .queue_url(p.queue_url("ClassifyQueue").unwrap())
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let decisions = stack.decisions().unwrap();
    // Both copies through classify and act: the event done and both queues empty (nothing
    // waiting, in flight or delayed).
    wait_for("both copies handled", Duration::from_secs(60), || async {
        let r = decisions.get(&event_id).await.ok()??;
        let classify = stack.queue_depth("ClassifyQueue").await.ok()?;
        let act = stack.queue_depth("ActQueue").await.ok()?;
        (r.status == "done" && classify + act == 0).then_some(())
    })
    .await;
    let posts = stack
        .sandbox
        .ledger()
        .into_iter()
        .filter(|e| {
            e.operation == "chat.postMessage"
                && e.detail["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("[queued_at]"))
        })
        .count();
    assert_eq!(posts, 1);
    stack.stop();
}

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
        max_receives: 5,
        drift: None,
        links: None,
        documents: None,
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

/// Which of intake's dependencies is down for the first delivery.
#[derive(Clone, Copy, Debug)]
enum Down {
    Sqs,
    Dynamodb,
}

/// A delivery while `down` is unreachable is answered 503 with Retry-After (the sender keeps it),
/// and the sender's retry of the same delivery, once it is back, is accepted, not taken for a
/// duplicate: the failed attempt left no claim behind.
async fn intake_answers_503_then_accepts_the_retry(down: Down) {
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
        .http_client(switchyard::http::sdk_http_client())
        .build();
    let aws = stack.function_aws("intake").await.unwrap();
    let decisions = |ddb| DecisionStore::new(ddb, &p.refs["DecisionsTable"]);
    let mut deps = Intake {
        sqs: aws.sqs.clone(),
        secrets: switchyard::secrets::SecretCache::new(
            aws.secrets.clone(),
            std::time::Duration::from_secs(60),
        ),
        classify_queue_url: p.queue_url("ClassifyQueue").unwrap().to_owned(),
        signing_secret_id: p.refs["IntakeSigningSecret"].clone(),
        max_body_bytes: 256 * 1024,
        public_base_url: None,
        decisions: decisions(aws.ddb.clone()),
        replay_window: chrono::Duration::days(30),
        gates: Default::default(),
        limiter: None,
        hubspot_min_version: switchyard::vendors::hubspot::inbound::Version::V3,
        door: None,
    };
    match down {
        Down::Sqs => deps.sqs = aws_sdk_sqs::Client::new(&dead),
        Down::Dynamodb => deps.decisions = decisions(aws_sdk_dynamodb::Client::new(&dead)),
    }
    let hook = switchyard_infra::fixtures::slack_message(
        &stack.signing.slack,
        "EvDown1",
        "C1",
        "checkout is down",
        chrono::Utc::now(),
    );
    let request = || hook.function_url_event();
    let answer = intake(&deps, LambdaEvent::new(request(), Context::default()))
        .await
        .unwrap();
    assert_eq!(answer.status_code, 503, "{down:?}: {:?}", answer.body);
    assert!(answer.headers.contains_key("retry-after"), "{down:?}");

    // It is back: the vendor's retry of the same delivery is accepted.
    deps.sqs = aws.sqs.clone();
    deps.decisions = decisions(aws.ddb.clone());
    let back = intake(&deps, LambdaEvent::new(request(), Context::default()))
        .await
        .unwrap();
    assert_eq!(back.status_code, 202, "{down:?}: {:?}", back.body);
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_answers_503_when_sqs_is_down_and_the_retry_is_accepted() {
    intake_answers_503_then_accepts_the_retry(Down::Sqs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_answers_503_when_dynamodb_is_down_and_the_retry_is_accepted() {
    intake_answers_503_then_accepts_the_retry(Down::Dynamodb).await;
}

/// A worker crashed after the vendor's success and before its record: its claim is stuck
/// INPROGRESS until the Lambda deadline. After that, SQS redelivers and another worker acts —
/// and the vendor-side key (Zendesk `external_id`) keeps it to one ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_vendor_call_and_the_record_still_makes_one_effect() {
    use switchyard::handlers::act::{handler as act, Act};
    use switchyard::idempotency::{payload_hash, Claim};
    use switchyard::routing::ActMessage;
    use switchyard::routing::PlannedAction;

    let stack = LocalStack::start().await.unwrap();
    let f = stack.template.function("act").unwrap();
    let env = stack.provisioned.function_env(&stack.template, f).unwrap();
    let deps =
        Act::from_settings(&stack.aws, &switchyard::settings::Settings::from_map(env)).unwrap();
    let action = PlannedAction {
        json: Default::default(),
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
        card_update: false,
        key_stage: None,
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

/// A revoked grant: the connection is marked "needs reconnect", its actions are parked (handed
/// back delayed, not dead-lettered, not sent to review one by one), a human is alerted once, and
/// the token endpoint is asked once — not once per action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_parks_the_connections_actions_and_alerts_a_human_once() {
    use switchyard::handlers::act::{handler as act, Act};

    let stack = LocalStack::start().await.unwrap();
    let c = &stack.sandbox.credentials;
    let secret_id = stack.provisioned.refs["SlackConnectionSecret"].clone();
    switchyard_tests::revoke_slack(&stack).await;
    let f = stack.template.function("act").unwrap();
    let env = stack.provisioned.function_env(&stack.template, f).unwrap();
    let deps =
        Act::from_settings(&stack.aws, &switchyard::settings::Settings::from_map(env)).unwrap();
    let message = |i: usize| {
        let msg = slack_post(&format!("ev-parked-{i}"));
        record(
            Some(&format!("m-{i}")),
            &serde_json::to_string(&msg).unwrap(),
        )
    };
    for round in 0..2 {
        let mut batch = SqsEvent::default();
        batch.records = (0..3).map(|i| message(round * 3 + i)).collect();
        let resp = act(&deps, LambdaEvent::new(batch, Context::default()))
            .await
            .unwrap();
        assert!(resp.batch_item_failures.is_empty(), "parked, not failed");
    }
    let refusals = stack
        .sandbox
        .ledger()
        .iter()
        .filter(|e| e.operation == "oauth.v2.access refused")
        .count();
    assert_eq!(refusals, 1, "the token endpoint was asked once");
    assert_eq!(
        stack.queue_depth("ReviewQueue").await.unwrap(),
        1,
        "one alert"
    );
    assert_eq!(
        stack.queue_depth("ActQueue").await.unwrap(),
        6,
        "every action waits in the queue"
    );
    assert_eq!(stack.queue_depth("ActDLQ").await.unwrap(), 0);
    for i in 0..6 {
        let d = deps
            .decisions
            .get(&format!("ev-parked-{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.status, "parked");
        assert!(
            d.reason.as_deref().unwrap().contains("needs reconnect"),
            "{:?}",
            d.reason
        );
        // explain tells the parked attempt and what it waits for.
        let story = switchyard_infra::ops::render_story(&d);
        assert!(story.contains("slack.post_message "), "{story}");
        assert!(
            story.contains("state       parked: slack needs reconnect"),
            "{story}"
        );
    }

    // Reconnected: the same parked message goes through.
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&secret_id)
        .secret_string(
            serde_json::json!({
                "type": "oauth2_refresh", "base_url": stack.sandbox.base_url("slack"),
                "access_token": c.slack_access_token, "refresh_token": c.slack_refresh_token,
                "client_id": c.slack_client_id, "client_secret": c.slack_client_secret,
                "expires_at": (chrono::Utc::now() + chrono::Duration::hours(8)).to_rfc3339()
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let fresh = Act::from_settings(
        &stack.aws,
        &switchyard::settings::Settings::from_map(
            stack.provisioned.function_env(&stack.template, f).unwrap(),
        ),
    )
    .unwrap();
    let mut batch = SqsEvent::default();
    batch.records = vec![message(0)];
    act(&fresh, LambdaEvent::new(batch, Context::default()))
        .await
        .unwrap();
    let d = fresh.decisions.get("ev-parked-0").await.unwrap().unwrap();
    assert_eq!(d.status, "done");
    stack.stop();
}

/// A token that expires mid-run (the vendor says so before `expires_at`): the next action
/// refreshes it once and succeeds; nothing fails, nothing goes to review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_mid_run_is_refreshed_once_and_the_action_succeeds() {
    use switchyard::handlers::act::{handler as act, Act};

    let stack = LocalStack::start().await.unwrap();
    let f = stack.template.function("act").unwrap();
    let deps = Act::from_settings(
        &stack.aws,
        &switchyard::settings::Settings::from_map(
            stack.provisioned.function_env(&stack.template, f).unwrap(),
        ),
    )
    .unwrap();
    let message = |i: usize| {
        let msg = slack_post(&format!("ev-mid-{i}"));
        let mut batch = SqsEvent::default();
        batch.records = vec![record(
            Some(&format!("m-{i}")),
            &serde_json::to_string(&msg).unwrap(),
        )];
        batch
    };
    let resp = act(&deps, LambdaEvent::new(message(1), Context::default()))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    // The local canary probes Slack once at start: let it finish so it cannot take the fault.
    let results = stack.canary_results.clone();
    switchyard_tests::wait_for(
        "the canary's first run",
        std::time::Duration::from_secs(20),
        || {
            let done = !results.lock().unwrap().is_empty();
            async move { done.then_some(()) }
        },
    )
    .await;
    // Slack now answers the stored token with `token_expired`.
    stack.sandbox.inject(
        "slack",
        switchyard_infra::sandbox::faults::Fault::ExpiredToken,
        1,
    );
    let resp = act(&deps, LambdaEvent::new(message(2), Context::default()))
        .await
        .unwrap();
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(stack.sandbox.slack_rotations(), 1, "one refresh");
    for i in [1, 2] {
        let d = deps.decisions.get(&format!("ev-mid-{i}")).await.unwrap();
        assert_eq!(d.unwrap().status, "done");
    }
    let posts = stack
        .sandbox
        .ledger()
        .iter()
        .filter(|e| e.operation == "chat.postMessage")
        .count();
    assert_eq!(posts, 2);
    stack.stop();
}

/// Another integration on the same Zendesk account spends most of its minute: the remaining
/// count in act's first answer slows every worker to what is left, so the next action waits
/// (handed back) instead of meeting a 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_another_integration_spends_slows_every_worker_before_a_429() {
    use switchyard::connectors::Connector;
    use switchyard::handlers::act::{handler as act, Act};
    use switchyard::pacing::Admission;

    let stack = LocalStack::start().await.unwrap();
    stack.sandbox.set_zendesk_rate_limit(Some(20));
    stack.sandbox.seed_zendesk_ticket(7, "Refund");
    let f = stack.template.function("act").unwrap();
    let deps = Act::from_settings(
        &stack.aws,
        &switchyard::settings::Settings::from_map(
            stack.provisioned.function_env(&stack.template, f).unwrap(),
        ),
    )
    .unwrap();
    // The other integration: 14 calls with the same account's credential, not through pacing.
    let secret_id = stack.provisioned.refs["ZendeskConnectionSecret"].clone();
    let credential = deps
        .connectors
        .secrets
        .credential(&secret_id)
        .await
        .unwrap();
    let other = switchyard::vendors::zendesk::outbound::Zendesk::new(
        switchyard::connectors::http_client(),
        credential,
    )
    .unwrap();
    for _ in 0..14 {
        other.probe().await.unwrap();
    }
    let update = |i: usize| {
        let mut msg = slack_post(&format!("ev-shared-{i}"));
        msg.actions[0] = switchyard::routing::PlannedAction {
            json: Default::default(),
            connector: "zendesk".into(),
            action: "update_ticket".into(),
            params: [
                ("ticket_id".to_owned(), "7".to_owned()),
                ("comment".to_owned(), format!("note {i}")),
            ]
            .into(),
        };
        let mut batch = SqsEvent::default();
        batch.records = vec![record(
            Some(&format!("m-{i}")),
            &serde_json::to_string(&msg).unwrap(),
        )];
        batch
    };
    act(&deps, LambdaEvent::new(update(1), Context::default()))
        .await
        .unwrap();
    let done = deps.decisions.get("ev-shared-1").await.unwrap().unwrap();
    assert_eq!(done.status, "done");
    // Five left for the rest of the minute: about ten seconds apart, for every worker.
    let now = chrono::Utc::now().timestamp_micros();
    match deps
        .pacer
        .reserve(
            "zendesk",
            &secret_id,
            None,
            now,
            switchyard::pacing::IN_FUNCTION_WAIT,
        )
        .await
        .unwrap()
    {
        Admission::Wait { retry_after } => assert!(
            retry_after > std::time::Duration::from_secs(5),
            "{retry_after:?}"
        ),
        go => panic!("the configured pace alone would go at once: {go:?}"),
    }
    act(&deps, LambdaEvent::new(update(2), Context::default()))
        .await
        .unwrap();
    // Not done: the record says it waits, and why.
    let waiting = deps.decisions.get("ev-shared-2").await.unwrap().unwrap();
    assert_eq!(waiting.status, "waiting");
    // No vendor call was made: the wait is the record's note, not an attempt.
    assert!(waiting.attempts.is_empty(), "{:?}", waiting.attempts);
    let note = waiting.note.as_ref().unwrap();
    assert_eq!(note["status"], "waiting");
    assert_eq!(note["why"], "no budget");
    assert_eq!(waiting.held.get("waiting zendesk"), Some(&1));
    // Its slot is already reserved: it comes back then, and calls without asking again.
    assert!(note["slot_reserved_at"].is_string(), "{note:?}");
    assert_eq!(
        stack.queue_depth("ActQueue").await.unwrap(),
        1,
        "handed back"
    );
    // (The local canary's probe at start is one more call on the account.)
    assert_eq!(stack.sandbox.zendesk_requests().1, 0, "no 429");
    stack.stop();
}

/// An act message with one Slack post for event `id`.
fn slack_post(id: &str) -> switchyard::routing::ActMessage {
    let event: switchyard::event::Event = serde_json::from_value(serde_json::json!({
        "id": id, "source": "zendesk", "event_type": "ticket.created",
        "delivery_id": format!("d-{id}"), "object_id": null, "subject": "Checkout is down",
        "text": null, "requester": null, "occurred_at": null,
        "received_at": "2026-12-01T10:31:00Z", "raw": {}
    }))
    .unwrap();
    switchyard::routing::ActMessage {
        event,
        category: "outage".into(),
        confidence: 0.9,
        actions: vec![switchyard::routing::PlannedAction {
            json: Default::default(),
            connector: "slack".into(),
            action: "post_message".into(),
            params: [
                ("channel".to_owned(), "#incidents".to_owned()),
                ("text".to_owned(), "Checkout is down".to_owned()),
            ]
            .into(),
        }],
        review_reason: None,
        card_update: false,
        key_stage: None,
    }
}

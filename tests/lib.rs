//! Helpers for the end-to-end tests.

use std::future::Future;
use std::time::{Duration, Instant};

/// Poll `check` until it yields `Some`, or fail after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The event's decision record once it reaches a terminal state (done, in review, failed).
pub async fn settled(
    stack: &switchyard_infra::stack::LocalStack,
    event_id: &str,
) -> switchyard::decisions::DecisionRecord {
    settled_within(stack, event_id, Duration::from_secs(30)).await
}

/// [`settled`], waiting up to `timeout`.
pub async fn settled_within(
    stack: &switchyard_infra::stack::LocalStack,
    event_id: &str,
    timeout: Duration,
) -> switchyard::decisions::DecisionRecord {
    let decisions = stack.decisions().unwrap();
    wait_for("the event's decision record to settle", timeout, || {
        let decisions = decisions.clone();
        async move {
            decisions
                .get(event_id)
                .await
                .unwrap()
                .filter(|r| matches!(r.status.as_str(), "done" | "in_review" | "failed"))
        }
    })
    .await
}

/// act's dependencies as the template configures them, except that its hand-backs land in
/// ActDLQ, which no worker polls, so a test can inspect and replay them.
pub fn parked_act(
    stack: &switchyard_infra::stack::LocalStack,
) -> (switchyard::handlers::act::Act, String) {
    let f = stack.template.function("act").unwrap();
    let env = stack.provisioned.function_env(&stack.template, f).unwrap();
    let mut deps = switchyard::handlers::act::Act::from_settings(
        &stack.aws,
        &switchyard::settings::Settings::from_map(env),
    )
    .unwrap();
    let parking = stack.provisioned.queue_url("ActDLQ").unwrap().to_owned();
    deps.act_queue_url = parking.clone();
    (deps, parking)
}

/// Slack's connection with an expired token and a refresh token Slack has revoked: the next use
/// needs a person to reconnect it (act parks the work).
pub async fn revoke_slack(stack: &switchyard_infra::stack::LocalStack) {
    let c = &stack.sandbox.credentials;
    let revoked = serde_json::json!({
        "type": "oauth2_refresh", "base_url": stack.sandbox.base_url("slack"),
        "access_token": "xoxe.xoxb-expired", "refresh_token": "xoxe-1-revoked",
        "client_id": c.slack_client_id, "client_secret": c.slack_client_secret,
        "expires_at": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()
    });
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&stack.provisioned.refs["SlackConnectionSecret"])
        .secret_string(revoked.to_string())
        .send()
        .await
        .unwrap();
}

/// An act message: one action for a Slack-reported outage.
pub fn act_body(
    event_id: &str,
    connector: &str,
    action: &str,
    params: serde_json::Value,
) -> String {
    serde_json::json!({
        "event": {"id": event_id, "source": "slack", "event_type": "message", "delivery_id": event_id,
                  "object_id": null, "subject": "Checkout is down", "text": null, "requester": null,
                  "occurred_at": null, "received_at": "2026-11-30T10:31:00Z", "raw": {}},
        "category": "outage", "confidence": 0.9,
        "actions": [{"connector": connector, "action": action, "params": params}]
    })
    .to_string()
}

/// The one message act handed back to the parking queue, as the next invocation receives it
/// (body and message attributes).
pub async fn handed_back(
    stack: &switchyard_infra::stack::LocalStack,
    parking: &str,
    id: &str,
    wait_secs: i32,
) -> aws_lambda_events::event::sqs::SqsMessage {
    let out = stack
        .aws
        .sqs
        .receive_message()
        .queue_url(parking)
        .message_attribute_names("All")
        .wait_time_seconds(wait_secs)
        .send()
        .await
        .unwrap();
    let again = out.messages.unwrap_or_default().remove(0);
    let mut m = message(id, again.body.as_deref().unwrap(), 1);
    for (k, v) in again.message_attributes.unwrap_or_default() {
        let mut a = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
        a.string_value = v.string_value;
        a.data_type = Some(v.data_type);
        m.message_attributes.insert(k, a);
    }
    m
}

pub fn message(
    id: &str,
    body: &str,
    receive_count: u32,
) -> aws_lambda_events::event::sqs::SqsMessage {
    let mut m = aws_lambda_events::event::sqs::SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body.into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

/// classify with the rules classifier (no model, no LLM), sending act messages to `act_queue`
/// and review messages to ReviewDLQ (which nobody polls).
pub fn classify_deps(
    stack: &switchyard_infra::stack::LocalStack,
    config: &str,
    act_queue: &str,
) -> switchyard::handlers::classify::Classify {
    let p = &stack.provisioned;
    switchyard::handlers::classify::Classify {
        sqs: stack.aws.sqs.clone(),
        decisions: switchyard::decisions::DecisionStore::new(
            stack.aws.ddb.clone(),
            &p.refs["DecisionsTable"],
        ),
        routing: switchyard::routing::RoutingConfig::load(config).unwrap(),
        classifier: switchyard::classifier::Classifier {
            model: None,
            llm: None,
        },
        act_queue_url: act_queue.to_owned(),
        review_queue_url: p.queue_url("ReviewDLQ").unwrap().to_owned(),
        max_receives: 5,
        drift: None,
        links: None,
        documents: None,
    }
}

/// The metrics recorder is one per process, and a flush takes everything recorded since the last
/// one, whichever stack recorded it. A test that counts metrics holds this for its whole run, and
/// so does every other test that starts a stack in its binary: no count leaks in from a stack
/// running beside it (the demo test once saw a fifth Zendesk `ActionsDone` that way). What the
/// last test recorded and never flushed (an invocation cut off when its runtime ended) is
/// dropped here, or the next stack's first flush would count it.
pub async fn one_stack_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let alone = ONE.lock().await;
    switchyard::metrics::flush();
    alone
}

/// The EMF documents the functions wrote for `metric`: (dimensions, document). The recorder is
/// one per process: hold [`one_stack_at_a_time`] in every test of a binary that counts.
pub fn emf(
    stack: &switchyard_infra::stack::LocalStack,
    metric: &str,
) -> Vec<(Vec<String>, serde_json::Value)> {
    stack
        .stats
        .metrics
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
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

/// The sum of `metric` over `docs`: the total (`None`) or one dimension's value.
pub fn total(
    docs: &[(Vec<String>, serde_json::Value)],
    metric: &str,
    dim: Option<(&str, &str)>,
) -> f64 {
    docs.iter()
        .filter(|(dims, d)| match dim {
            None => dims.is_empty(),
            Some((k, v)) => dims == &[k.to_owned()] && d[k] == v,
        })
        .map(|(_, d)| d[metric].as_f64().unwrap_or(0.0))
        .sum()
}

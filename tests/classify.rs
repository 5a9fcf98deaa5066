//! classify with an LLM: the SaaS sandbox's stand-in endpoint answers well, badly, slowly or not
//! at all; the handler is called directly against the emulator's real resources.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use switchyard::decisions::DecisionRecord;
use switchyard::handlers::classify::{handler, Classify};
use switchyard::settings::Settings;
use switchyard_infra::sandbox::llm::LlmMode;
use switchyard_infra::stack::LocalStack;

/// Classify as deployed with `LlmModel` set, its outputs sent to queues nobody polls.
fn classify_with_llm(stack: &LocalStack, budget_ms: u64) -> Classify {
    let f = stack.template.function("classify").unwrap();
    let mut env: HashMap<String, String> =
        stack.provisioned.function_env(&stack.template, f).unwrap();
    let p = &stack.provisioned;
    env.insert("LLM_MODEL".into(), "sandbox-classifier".into());
    env.insert("LLM_BUDGET_MS".into(), budget_ms.to_string());
    env.insert(
        "ACT_QUEUE_URL".into(),
        p.queue_url("ActDLQ").unwrap().into(),
    );
    env.insert(
        "REVIEW_QUEUE_URL".into(),
        p.queue_url("ReviewDLQ").unwrap().into(),
    );
    Classify::from_settings(&stack.aws, &Settings::from_map(env)).unwrap()
}

async fn classify(
    deps: &Classify,
    id: &str,
    source: &str,
    object_id: &str,
    text: &str,
) -> DecisionRecord {
    let event = serde_json::json!({
        "id": id, "source": source, "event_type": "created", "delivery_id": id,
        "object_id": object_id, "subject": text, "text": null, "requester": null,
        "occurred_at": null, "received_at": "2026-11-28T10:31:00Z", "raw": {}
    });
    let mut m = SqsMessage::default();
    m.message_id = Some(format!("m-{id}"));
    m.body = Some(event.to_string());
    let mut batch = SqsEvent::default();
    batch.records = vec![m];
    let resp = handler(deps, LambdaEvent::new(batch, Context::default()))
        .await
        .unwrap();
    assert!(
        resp.batch_item_failures.is_empty(),
        "{id}: the record failed"
    );
    deps.decisions
        .get(id)
        .await
        .unwrap()
        .expect("a decision record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_answers_route_and_bad_answers_go_to_review_never_crash() {
    let stack = LocalStack::start().await.unwrap();
    let deps = classify_with_llm(&stack, 3_000);
    let good = classify(
        &deps,
        "ev-good",
        "zendesk",
        "35436",
        "I was charged twice this month, please refund the duplicate payment",
    )
    .await;
    assert_eq!(
        (
            good.backend.as_deref(),
            good.category.as_str(),
            good.path.as_str()
        ),
        (Some("llm"), "billing", "act")
    );
    assert!(good.confidence > 0.6 && good.fallback.is_none(), "{good:?}");
    assert_eq!(
        good.input.as_deref(),
        Some("I was charged twice this month, please refund the duplicate payment")
    );
    // The embedded model's opinion is kept as a signal.
    assert!(
        good.signals
            .as_deref()
            .unwrap_or_default()
            .contains("model:"),
        "{good:?}"
    );

    let bad = [
        (LlmMode::Malformed, "llm:malformed answer"),
        (LlmMode::Answer("spam", 0.97), "llm:unknown label"),
        (
            LlmMode::Answer("billing", 1.7),
            "llm:confidence outside 0..1",
        ),
        (LlmMode::Refusal, "llm:refused"),
        (LlmMode::Truncated, "llm:answer cut off"),
    ];
    for (i, (mode, signal)) in bad.into_iter().enumerate() {
        stack.sandbox.set_llm_mode(mode);
        let id = format!("ev-bad-{i}");
        let d = classify(
            &deps,
            &id,
            "zendesk",
            "35437",
            "I was charged twice this month, please refund",
        )
        .await;
        assert_eq!(
            (d.backend.as_deref(), d.path.as_str(), d.confidence),
            (Some("llm"), "review", 0.0),
            "{mode:?}: {d:?}"
        );
        assert!(
            d.signals.as_deref().unwrap_or_default().contains(signal),
            "{mode:?}: {d:?}"
        );
        assert!(
            d.reason
                .as_deref()
                .unwrap_or_default()
                .contains("below the review threshold"),
            "{d:?}"
        );
    }
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_down_slow_or_rate_limited_falls_back_to_the_embedded_model() {
    let stack = LocalStack::start().await.unwrap();
    let deps = classify_with_llm(&stack, 1_000);
    let cases = [
        (LlmMode::Down, "HTTP 503"),
        (LlmMode::Slow(5_000), "did not answer within 1000 ms"),
        (LlmMode::RateLimited(30), "rate limited"),
    ];
    for (i, (mode, why)) in cases.into_iter().enumerate() {
        stack.sandbox.set_llm_mode(mode);
        let calls = stack.sandbox.llm_calls();
        let id = format!("ev-fallback-{i}");
        let started = std::time::Instant::now();
        let d = classify(
            &deps,
            &id,
            "jira",
            "OPS-7",
            "Checkout is down and customers cannot pay",
        )
        .await;
        assert_eq!(
            (d.backend.as_deref(), d.category.as_str()),
            (Some("model"), "outage"),
            "{mode:?}: {d:?}"
        );
        assert!(
            d.fallback.as_deref().unwrap_or_default().contains(why),
            "{mode:?}: {d:?}"
        );
        // explain says the LLM was not used and why, and what the model decided instead.
        let story = switchyard_infra::ops::render_story(&d);
        assert!(story.contains("classified  outage by model"), "{story}");
        assert!(story.contains("; LLM not used: "), "{story}");
        assert!(story.contains(why), "{story}");
        // A 30 s Retry-After does not fit a 1 s budget: no second call, no waiting.
        if let LlmMode::RateLimited(_) = mode {
            assert_eq!(stack.sandbox.llm_calls() - calls, 1);
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
    }
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confident_llm_and_model_that_disagree_go_to_review() {
    let stack = LocalStack::start().await.unwrap();
    let deps = classify_with_llm(&stack, 3_000);
    stack.sandbox.set_llm_mode(LlmMode::Answer("billing", 0.95));
    let d = classify(
        &deps,
        "ev-disagree",
        "zendesk",
        "35438",
        "I forgot my password and the reset email never arrives",
    )
    .await;
    assert_eq!(
        (d.backend.as_deref(), d.path.as_str()),
        (Some("llm"), "review"),
        "{d:?}"
    );
    let reason = d.reason.unwrap_or_default();
    assert!(
        reason.contains("\"billing\"") && reason.contains("\"access\""),
        "{reason}"
    );
    stack.stop();
}

//! What a security team asks about the public endpoint: a flood of forged requests is refused
//! without reaching a queue while real events flow; a signed body dated before the delivery-id
//! window (the key that caught repeats has expired) is refused; Salesforce's unsigned outbound
//! messages can be required to carry an endpoint token.

use chrono::{Duration, Utc};
use serde_json::json;
use switchyard_infra::fixtures;
use switchyard_infra::stack::LocalStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_bodies_dated_before_the_replay_window_are_refused() {
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let jira = |delivery: &str, at| {
        fixtures::jira_issue_created(
            &stack.signing.jira,
            delivery,
            "OPS-9",
            "Checkout down",
            "500s",
            at,
        )
    };
    // Captured 31 days ago, its delivery key long expired: correctly signed, and refused.
    let old = jira("jira-replayed", Utc::now() - Duration::days(31));
    let (status, body) = old.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 401, "{body}");
    let reason = body["error"].as_str().unwrap();
    assert!(
        reason.contains("older than the 30-day replay window"),
        "{reason}"
    );
    // Within the window it is an ordinary delivery.
    let recent = jira("jira-recent", Utc::now() - Duration::days(29));
    assert_eq!(
        recent.send(&http, &stack.webhook_base).await.unwrap().0,
        202
    );

    // HubSpot signs occurredAt inside the body (v1 and v2 sign no time at all).
    let url = format!(
        "https://{}/webhooks/hubspot",
        stack.webhook_base.trim_start_matches("http://")
    );
    let at = (Utc::now() - Duration::days(40)).timestamp_millis();
    let events = json!([{"eventId": 7, "subscriptionId": 1, "portalId": 62515, "appId": 7, "occurredAt": at,
        "subscriptionType": "contact.creation", "attemptNumber": 0, "objectId": 123, "changeSource": "CRM"}]);
    let hook = fixtures::hubspot_batch(&stack.signing.hubspot, &url, &events, Utc::now());
    let (status, body) = hook.send(&http, &stack.webhook_base).await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("replay window"),
        "{body}"
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_outbound_messages_can_be_required_to_carry_an_endpoint_token() {
    let stack = LocalStack::start().await.unwrap();
    let env = stack
        .provisioned
        .function_env(stack.template.function("intake").unwrap())
        .unwrap();
    // Configure a token before intake first reads its secret.
    let mut secret: serde_json::Value = serde_json::from_str(&stack.signing.secret_json()).unwrap();
    let token = "sf-endpoint-4f1c9a7e2b6d8035c1e9f7a2";
    secret["salesforce_token"] = json!([token]);
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&env["INTAKE_SECRET_ID"])
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let hook = |n: &str| {
        fixtures::salesforce_case(
            &stack.signing.salesforce_org,
            n,
            "5005g00000XXXXXAAA",
            "Refund",
        )
    };
    let send = |hook: fixtures::SignedWebhook, query: &'static str| {
        let req = hook.headers.iter().fold(
            http.post(format!("{}/webhooks/salesforce{query}", stack.webhook_base))
                .body(hook.body.clone()),
            |req, (k, v)| req.header(k, v),
        );
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    // The organization id alone is not a secret: refused without the token, or with a wrong one.
    let (status, text) = send(hook("04l5g00000XXXXXAA1"), "").await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("endpoint URL with its token"), "{text}");
    assert!(!text.contains(token));
    assert_eq!(
        send(hook("04l5g00000XXXXXAA2"), "?token=sf-endpoint-wrong")
            .await
            .0,
        401
    );
    let (status, text) = send(
        hook("04l5g00000XXXXXAA3"),
        "?token=sf-endpoint-4f1c9a7e2b6d8035c1e9f7a2",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("<Ack>true</Ack>"), "{text}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_requests_is_refused_while_real_events_flow() {
    // The bench's own run, short: it fails itself if a real event does not settle or a forged
    // request reaches a decision record.
    let r = switchyard_infra::flood::flood(3, 4, 3).await.unwrap();
    assert!(r.forged_sent > 100, "{} forged requests", r.forged_sent);
    assert_eq!(r.forged_refused, r.forged_sent);
    assert_eq!(r.forged_accepted, 0);
    assert_eq!(r.settle_flood_ms.len(), 3);
}

//! What a security team asks about the public endpoint: a flood of forged requests is refused
//! without reaching a queue while real events flow; a signed body dated before the delivery-id
//! window (the key that caught repeats has expired) is refused; Salesforce's unsigned outbound
//! messages can be required to carry an endpoint token.

use chrono::{Duration, Utc};
use serde_json::json;
use switchyard_infra::fixtures;
use switchyard_infra::stack::LocalStack;

/// intake's environment on this stack, as the template gives it.
fn intake_env(stack: &LocalStack) -> std::collections::HashMap<String, String> {
    stack
        .provisioned
        .function_env(&stack.template, stack.template.function("intake").unwrap())
        .unwrap()
}

/// Another intake instance on this stack (a second Lambda environment), to call directly.
fn intake_instance(stack: &LocalStack) -> switchyard::handlers::intake::Intake {
    let settings = switchyard::settings::Settings::from_map(intake_env(stack));
    switchyard::handlers::intake::Intake::from_settings(&stack.aws, &settings).unwrap()
}

/// The canary's first run (at start) reads its connections: after it, only the test calls AWS.
async fn canary_ran(stack: &LocalStack) {
    switchyard_tests::wait_for(
        "the canary's first run",
        std::time::Duration::from_secs(30),
        || async { (!stack.canary_results.lock().unwrap().is_empty()).then_some(()) },
    )
    .await;
}

/// Add `key` to the intake secret (before intake first reads it: it caches the secret).
async fn add_to_intake_secret(stack: &LocalStack, key: &str, value: serde_json::Value) {
    let mut secret: serde_json::Value = serde_json::from_str(&stack.signing.secret_json()).unwrap();
    secret[key] = value;
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&intake_env(stack)["INTAKE_SECRET_ID"])
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap();
}

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
async fn salesforce_outbound_messages_need_the_endpoint_token_and_fail_closed_without_one() {
    use lambda_runtime::LambdaEvent;
    let stack = LocalStack::start().await.unwrap();
    let token = stack.signing.salesforce_token.clone();
    let http = reqwest::Client::new();
    let hook = |n: &str| {
        fixtures::salesforce_case(
            &stack.signing.salesforce_org,
            n,
            "5005g00000XXXXXAAA",
            "Refund",
        )
    };
    // The organization id alone is not a secret: refused without the token, or with a wrong one.
    let (status, body) = hook("04l5g00000XXXXXAA1")
        .send(&http, &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    let text = body["error"].as_str().unwrap();
    assert!(text.contains("endpoint URL with its token"), "{text}");
    assert!(!text.contains(&token));
    let (status, _) = hook("04l5g00000XXXXXAA2")
        .with_token("sf-endpoint-wrong")
        .send(&http, &stack.webhook_base)
        .await
        .unwrap();
    assert_eq!(status, 401);
    let resp = hook("04l5g00000XXXXXAA3")
        .with_token(&token)
        .request(&http, &stack.webhook_base)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("<Ack>true</Ack>"));

    // A deployment whose secret lists no token refuses every outbound message, whatever the
    // URL carries (a fresh intake instance reads the secret anew).
    add_to_intake_secret(&stack, "salesforce_token", json!([])).await;
    let deps = intake_instance(&stack);
    let req = hook("04l5g00000XXXXXAA4")
        .with_token(&token)
        .function_url_event();
    let ctx = switchyard_infra::runner::context("intake", std::time::Duration::from_secs(10));
    let r = switchyard::handlers::intake::handler(&deps, LambdaEvent::new(req, ctx))
        .await
        .unwrap();
    assert_eq!(r.status_code, 401, "{:?}", r.body);
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

/// Signing secrets are cached, so a refusal of any kind costs no AWS request at all: counted by
/// the emulator itself, with classify and act not running (nothing else would call AWS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_every_kind_make_no_aws_request() {
    let overrides = [(
        "SourceAllowedIps".to_owned(),
        "salesforce=192.0.2.0/24".to_owned(),
    )];
    let stack = LocalStack::start_hosting(&overrides, &["classify", "act"])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = &stack.webhook_base;
    canary_ran(&stack).await;
    let ticket = |delivery: &str, at| {
        fixtures::zendesk_ticket_created(
            &stack.signing.zendesk,
            delivery,
            42,
            "Refund",
            "twice",
            at,
        )
    };
    let warm_hook = ticket("zd-warm", Utc::now());
    let (status, accepted) = warm_hook.send(&http, base).await.unwrap();
    assert_eq!(status, 202, "{accepted}");
    let warm = stack.emulator.take_requests().await.unwrap();
    assert!(
        warm.contains_key("dynamodb.UpdateItem") && warm.contains_key("sqs.SendMessage"),
        "an accepted event is counted: {warm:?}"
    );

    let forged = fixtures::zendesk_ticket_created(
        "not-the-secret",
        "zd-forged",
        42,
        "Refund",
        "x",
        Utc::now(),
    );
    let stale = ticket("zd-stale", Utc::now() - Duration::minutes(20));
    let salesforce = fixtures::salesforce_case(
        &stack.signing.salesforce_org,
        "04l5g00000XXXXXAA9",
        "5005g00000XXXXXAAA",
        "Refund",
    );
    let mut too_large = ticket("zd-large", Utc::now());
    too_large.body = "x".repeat(300 * 1024);
    let mut wrong_type = ticket("zd-type", Utc::now());
    wrong_type.headers[0].1 = "text/plain".into();
    let event_id = accepted["event_id"].as_str().unwrap();
    let mut refusals = Vec::new();
    for (hook, want) in [
        (forged, 401),
        (stale, 401),
        (salesforce, 403),
        (too_large, 413),
        (wrong_type, 415),
    ] {
        refusals.push((hook.source, want, hook.send(&http, base).await.unwrap().0));
    }
    let get = |path: String, token: &'static str| {
        let http = http.clone();
        async move {
            http.get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    refusals.push((
        "status, wrong token",
        401,
        get(format!("/events/{event_id}"), "guess").await,
    ));
    refusals.push((
        "status, bad id",
        400,
        get("/events/a.b".into(), "guess").await,
    ));
    refusals.push((
        "unknown source",
        404,
        http.post(format!("{base}/webhooks/myspace"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    ));
    refusals.push((
        "GET a webhook",
        405,
        get("/webhooks/zendesk".into(), "").await,
    ));
    for (what, want, got) in &refusals {
        assert_eq!(got, want, "{what}");
    }
    let during = stack.emulator.take_requests().await.unwrap();
    assert!(during.is_empty(), "refusals made AWS requests: {during:?}");

    // The counter is live: the same event once more is a duplicate, read from DynamoDB.
    assert_eq!(warm_hook.send(&http, base).await.unwrap().0, 200);
    let after = stack.emulator.take_requests().await.unwrap();
    assert!(
        after.keys().any(|k| k.starts_with("dynamodb.")),
        "{after:?}"
    );
    stack.stop();
}

/// A ceiling is kept in the shared budget table: forged requests do not spend it, a second intake
/// instance sees the same budget, the sender is told when to retry, and other sources are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_ceiling_is_shared_by_every_instance_and_unspent_by_forgeries() {
    use lambda_runtime::{Context, LambdaEvent};
    use switchyard::handlers::intake;

    // 12 a minute: one now, then one every 5.5 s (a ceiling's burst is a 24th of its count, at
    // least one), wide enough that a slow machine still sends the next ones inside it.
    let overrides = [("SourceCeilings".to_owned(), "zendesk=12/minute".to_owned())];
    let stack = LocalStack::start_hosting(&overrides, &["classify", "act"])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = &stack.webhook_base;
    let ticket = |delivery: &str| {
        fixtures::zendesk_ticket_created(
            &stack.signing.zendesk,
            delivery,
            7,
            "Refund",
            "twice",
            Utc::now(),
        )
    };
    for i in 0..5 {
        let forged = fixtures::zendesk_ticket_created(
            "wrong",
            &format!("f{i}"),
            7,
            "Refund",
            "x",
            Utc::now(),
        );
        assert_eq!(forged.send(&http, base).await.unwrap().0, 401);
    }
    assert_eq!(
        ticket("c1").send(&http, base).await.unwrap().0,
        202,
        "forgeries spent nothing"
    );

    let resp = ticket("c2").request(&http, base).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&wait), "retry after {wait} s");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ceiling for zendesk"),
        "{body}"
    );

    // Another instance (a second Lambda environment) shares the budget.
    let other = intake_instance(&stack);
    let req = ticket("c3").function_url_event();
    let answer = intake::handler(&other, LambdaEvent::new(req, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer.status_code, 429, "{:?}", answer.body);

    // Other sources have no ceiling; after the wait, zendesk is admitted again.
    let slack = fixtures::slack_message(
        &stack.signing.slack,
        "Ev0CEIL1",
        "C024BE91L",
        "hello",
        Utc::now(),
    );
    assert_eq!(slack.send(&http, base).await.unwrap().0, 202);
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(ticket("c2").send(&http, base).await.unwrap().0, 202);
    stack.stop();
}

/// A status token listed under `"status:<source>"` reads that source's events only; another
/// source's event answers as an unknown one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_status_token_reads_only_its_sources_events() {
    let stack = LocalStack::start_hosting(&[], &["classify", "act"])
        .await
        .unwrap();
    let scoped = "slack-status-7f3e2a91c4d85b60";
    add_to_intake_secret(&stack, "status:slack", json!([scoped])).await;
    let http = reqwest::Client::new();
    let base = &stack.webhook_base;
    let zd = fixtures::zendesk_ticket_created(
        &stack.signing.zendesk,
        "zd-scope",
        9,
        "Refund",
        "x",
        Utc::now(),
    );
    let (_, zd) = zd.send(&http, base).await.unwrap();
    let slack = fixtures::slack_message(
        &stack.signing.slack,
        "Ev0SCOPE1",
        "C024BE91L",
        "hello",
        Utc::now(),
    );
    let (_, sl) = slack.send(&http, base).await.unwrap();
    let read = |id: &serde_json::Value, token: &str| {
        let req = http
            .get(format!("{base}/events/{}", id.as_str().unwrap()))
            .bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(read(&sl["event_id"], scoped).await.0, 200);
    let (status, text) = read(&zd["event_id"], scoped).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("no event"), "{text}");
    assert_eq!(
        read(&zd["event_id"], &stack.signing.status_token).await.0,
        200
    );
    stack.stop();
}

/// What a replay can do, per scheme: a request captured as it was sent, replayed through intake
/// itself within the delivery key's retention and one second after the key expired.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AfterExpiry {
    /// The scheme signs a time (a header, or the body's own date): refused with 401.
    Refused,
    /// Nothing signed says when (GitHub, Twilio; Salesforce signs nothing): only the key stopped
    /// it, and after its retention the replay is a new event — the residual risk docs/security.md lists.
    AcceptedAgain,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_replayed_after_its_delivery_key_expired() {
    use AfterExpiry::*;

    let (stack, deps) = replay_bench().await;
    let retention = deps.replay_window;
    let t0 = Utc::now();
    let cases = captured(&stack.signing, t0);
    let send = |hook: &fixtures::SignedWebhook, at| send_at(&stack, &deps, hook.clone(), at);
    for (scheme, hook, after_expiry) in &cases {
        let (status, queued, body) = send(hook, t0).await;
        assert!(
            (200..300).contains(&status) && queued == 1,
            "{scheme} as sent: {status} {body}"
        );
        // Within the key's retention, nothing is queued again, whichever check stops it.
        let (status, queued, body) = send(hook, t0 + retention - Duration::hours(1)).await;
        assert_eq!(
            queued, 0,
            "{scheme} replayed within the retention: {status} {body}"
        );
        let (status, queued, body) = send(hook, t0 + retention + Duration::seconds(1)).await;
        match after_expiry {
            Refused => {
                assert_eq!(
                    (status, queued),
                    (401, 0),
                    "{scheme} replayed after the key expired: {body}"
                );
            }
            AcceptedAgain => {
                assert_eq!(
                    queued, 1,
                    "{scheme}: docs/security.md says only the key protects it: {status} {body}"
                );
            }
        }
    }
    stack.stop();
}

/// One request per scheme (and Salesforce) as a sender would have sent it at `t0`, and what a
/// replay after its delivery key expired meets.
fn captured(
    k: &fixtures::SigningKeys,
    t0: chrono::DateTime<Utc>,
) -> Vec<(&'static str, fixtures::SignedWebhook, AfterExpiry)> {
    use AfterExpiry::*;
    let url = |source: &str| format!("https://hooks.example.com/webhooks/{source}");
    let hubspot = |event_id: u64| {
        json!([{"eventId": event_id, "subscriptionId": 1, "portalId": 62515, "appId": 7, "occurredAt": t0.timestamp_millis(),
                "subscriptionType": "contact.creation", "attemptNumber": 0, "objectId": 123, "changeSource": "CRM"}])
    };
    vec![
        (
            "zendesk",
            fixtures::zendesk_ticket_created(&k.zendesk, "zd-r1", 5, "Refund", "twice", t0),
            Refused,
        ),
        (
            "slack",
            fixtures::slack_message(&k.slack, "Ev0REPLAY1", "C024BE91L", "hello", t0),
            Refused,
        ),
        (
            "jira",
            fixtures::jira_issue_created(&k.jira, "jira-r1", "OPS-1", "Down", "500s", t0),
            Refused,
        ),
        (
            "hubspot-v1",
            fixtures::hubspot_legacy(&k.hubspot, false, &url("hubspot"), &hubspot(101)),
            Refused,
        ),
        (
            "hubspot-v2",
            fixtures::hubspot_legacy(&k.hubspot, true, &url("hubspot"), &hubspot(102)),
            Refused,
        ),
        (
            "hubspot-v3",
            fixtures::hubspot_batch(&k.hubspot, &url("hubspot"), &hubspot(103), t0),
            Refused,
        ),
        (
            "teams",
            fixtures::teams_message(&k.teams, "1485983408511", "printer on fire", t0),
            Refused,
        ),
        (
            "stripe",
            fixtures::stripe_event(&k.stripe, "evt_1ReplayTest", t0),
            Refused,
        ),
        (
            "standard-webhooks",
            fixtures::standard_webhook(&k.standard, "msg_replay1", false, t0),
            Refused,
        ),
        (
            "svix",
            fixtures::standard_webhook(&k.standard, "msg_replay2", true, t0),
            Refused,
        ),
        (
            "github",
            fixtures::github_issue_opened(
                &k.github,
                "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                7,
                "Invoice page 500",
            ),
            AcceptedAgain,
        ),
        (
            "twilio",
            fixtures::twilio_sms(
                &k.twilio,
                &url("twilio"),
                "SM1f0e8ae6ade43cb3c0ce4525424e404f",
                "my order?",
            ),
            AcceptedAgain,
        ),
        (
            "salesforce",
            fixtures::salesforce_case(
                &k.salesforce_org,
                "04l5g00000XXXXXAR1",
                "5005g00000XXXXXAAA",
                "Refund",
            )
            .with_token(&k.salesforce_token),
            AcceptedAgain,
        ),
    ]
}

/// A stack whose classify and act run elsewhere (nothing drains the queue), after the canary's
/// first run, and an intake instance of a deployment that still takes HubSpot's older versions,
/// so every scheme can be sent and counted in the emulator.
async fn replay_bench() -> (LocalStack, switchyard::handlers::intake::Intake) {
    let stack = LocalStack::start_hosting(&[], &["classify", "act"])
        .await
        .unwrap();
    canary_ran(&stack).await;
    let mut deps = intake_instance(&stack);
    deps.hubspot_min_version = switchyard::vendors::hubspot::inbound::Version::V1;
    (stack, deps)
}

/// Send `hook` through intake itself at `at`: the status, how many messages were queued (counted
/// by the emulator) and the body.
async fn send_at(
    stack: &LocalStack,
    deps: &switchyard::handlers::intake::Intake,
    hook: fixtures::SignedWebhook,
    at: chrono::DateTime<Utc>,
) -> (i64, u64, String) {
    use lambda_runtime::LambdaEvent;
    let mut req = hook.function_url_event();
    req.request_context.domain_name = Some("hooks.example.com".into());
    let ctx = switchyard_infra::runner::context("intake", std::time::Duration::from_secs(10));
    stack.emulator.take_requests().await.unwrap();
    let r = switchyard::handlers::intake::handler_at(deps, LambdaEvent::new(req, ctx), at)
        .await
        .unwrap();
    let queued = stack
        .emulator
        .take_requests()
        .await
        .unwrap()
        .get("sqs.SendMessage")
        .copied()
        .unwrap_or(0);
    (r.status_code, queued, r.body.unwrap_or_default())
}

/// Delivery-id headers: a resend may put anything in them.
const ID_HEADERS: &[&str] = &[
    "x-github-delivery",
    "x-atlassian-webhook-identifier",
    "i-twilio-idempotency-token",
    "x-zendesk-webhook-id",
    "webhook-id",
    "svix-id",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_resent_under_a_fresh_delivery_id_is_not_a_new_event() {
    let (stack, deps) = replay_bench().await;
    let t0 = Utc::now();
    for (scheme, mut hook, _) in captured(&stack.signing, t0) {
        // Twilio's token header is optional: the capture carries one.
        if scheme == "twilio" {
            hook.headers
                .push(("i-twilio-idempotency-token".into(), "tw-first".into()));
        }
        let (status, queued, body) = send_at(&stack, &deps, hook.clone(), t0).await;
        assert!(
            (200..300).contains(&status) && queued == 1,
            "{scheme} as sent: {status} {body}"
        );
        // `explain` still finds the event by the vendor's own (unsigned) delivery id.
        if let Some((_, vendor_id)) = hook.headers.iter().find(|(k, _)| {
            ["x-github-delivery", "x-atlassian-webhook-identifier"].contains(&k.as_str())
        }) {
            let found = switchyard_infra::ops::find(&deps.decisions, vendor_id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{scheme}: no event for delivery {vendor_id}"));
            assert_eq!(found.source, scheme);
            assert!(found.delivery_id.starts_with("sha256:"), "{found:?}");
        }
        let mut resent = hook.clone();
        let mut changed = 0;
        for (k, v) in resent.headers.iter_mut() {
            if ID_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                *v = format!("fresh-{}", uuid::Uuid::new_v4());
                changed += 1;
            }
        }
        let (status, queued, body) = send_at(&stack, &deps, resent, t0).await;
        assert_eq!(
            queued, 0,
            "{scheme} resent with {changed} fresh id header(s): {status} {body}"
        );
        // A scheme that signs its id refuses the resend; the others answer it as the duplicate
        // it is (200, in the vendor's own reply where it expects one).
        assert!(status == 401 || status == 200, "{scheme}: {status} {body}");
        if ["github", "jira", "twilio"].contains(&scheme) {
            assert_eq!((changed, status), (1, 200), "{scheme}: {body}");
            assert!(body.contains("duplicate"), "{scheme}: {body}");
        }
    }
    stack.stop();
}

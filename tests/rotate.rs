//! The rotate function's four steps, called directly against the emulator (moto cannot run
//! rotation code) with the SaaS sandbox as Slack's token endpoint.

use lambda_runtime::{Context, LambdaEvent};
use switchyard::connectors::http_client;
use switchyard::handlers::rotate::{handler, run_step, Rotate, RotateError, RotationEvent};
use switchyard::secrets::{read_stage, Credential, AWSCURRENT};
use switchyard_infra::stack::LocalStack;

fn step(step: &str, secret: &str, token: &str) -> RotationEvent {
    RotationEvent {
        step: step.into(),
        secret_id: secret.into(),
        client_request_token: token.into(),
        rotation_token: Some("rotation-token".into()),
    }
}

/// The rotate function as Secrets Manager invokes it: with its role's grants only.
async fn rotate_deps(stack: &LocalStack) -> Rotate {
    let f = stack.template.function("rotate").unwrap();
    let env = stack.provisioned.function_env(&stack.template, f).unwrap();
    let aws = stack.function_aws("rotate").await.unwrap();
    Rotate::from_settings(&aws, &switchyard::settings::Settings::from_map(env))
}

async fn current_access_token(stack: &LocalStack, secret: &str) -> String {
    use secrecy::ExposeSecret;
    let v = read_stage(&stack.aws.secrets, secret, AWSCURRENT)
        .await
        .unwrap();
    match Credential::parse(secret, &v).unwrap() {
        Credential::Oauth2Refresh { access_token, .. } => access_token.expose_secret().to_owned(),
        other => panic!("unexpected credential {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_steps_rotate_the_slack_token_once_and_are_idempotent() {
    let stack = LocalStack::start().await.unwrap();
    let secret = stack.provisioned.refs["SlackConnectionSecret"].clone();
    let deps = rotate_deps(&stack).await;
    let before = current_access_token(&stack, &secret).await;

    // Rotation not enabled yet: every step refuses.
    let err = run_step(
        &deps,
        &step(
            "createSecret",
            &secret,
            "00000000-0000-4000-8000-000000000000",
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RotateError::NotEnabled(_)), "{err}");

    // Secrets Manager starts a rotation: a value-less version under the request token, AWSPENDING.
    let token = begin_rotation_like_secrets_manager(&stack, &secret).await;

    let unknown = run_step(
        &deps,
        &step(
            "createSecret",
            &secret,
            "11111111-1111-4111-8111-111111111111",
        ),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(unknown, RotateError::UnknownToken { .. }),
        "{unknown}"
    );

    for _round in 0..2 {
        for s in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
            handler(
                &deps,
                LambdaEvent::new(
                    serde_json::to_value(step(s, &secret, &token)).unwrap(),
                    Context::default(),
                ),
            )
            .await
            .unwrap();
        }
    }
    let after = current_access_token(&stack, &secret).await;
    assert_ne!(before, after, "AWSCURRENT must hold the new token");
    assert_eq!(
        stack.sandbox.slack_rotations(),
        1,
        "the single-use refresh token is spent exactly once"
    );

    // The new token works with the connector, through the normal path.
    let probe = switchyard::vendors::slack::outbound::auth_test(
        &http_client(),
        &stack.sandbox.base_url("slack"),
        &after.into(),
    )
    .await;
    assert!(probe.is_ok(), "{probe:?}");
    stack.stop();
}

/// Put the secret in the state real Secrets Manager creates before it calls `createSecret`:
/// rotation enabled, AWSCURRENT unchanged, and a version with no value labelled AWSPENDING.
/// moto's `RotateSecret` without a runnable Lambda instead completes a "rotation" itself (it moves
/// AWSCURRENT to that empty version), so the labels are put back where AWS would have them.
async fn begin_rotation_like_secrets_manager(stack: &LocalStack, secret: &str) -> String {
    let sm = &stack.aws.secrets;
    let current =
        |meta: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput| {
            meta.version_ids_to_stages()
                .unwrap()
                .iter()
                .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
                .map(|(id, _)| id.clone())
                .unwrap()
        };
    let original = current(&sm.describe_secret().secret_id(secret).send().await.unwrap());
    let token = uuid::Uuid::new_v4().to_string();
    sm.rotate_secret()
        .secret_id(secret)
        .client_request_token(&token)
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    sm.update_secret_version_stage()
        .secret_id(secret)
        .version_stage(AWSCURRENT)
        .move_to_version_id(&original)
        .remove_from_version_id(&token)
        .send()
        .await
        .unwrap();
    sm.update_secret_version_stage()
        .secret_id(secret)
        .version_stage(switchyard::secrets::AWSPENDING)
        .move_to_version_id(&token)
        .send()
        .await
        .unwrap();
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_token_rotates_by_test_only_and_a_dead_one_fails_the_rotation() {
    use secrecy::ExposeSecret;
    let stack = LocalStack::start().await.unwrap();
    let secret = stack.provisioned.refs["ZendeskConnectionSecret"].clone();
    let deps = rotate_deps(&stack).await;
    let before = read_stage(&stack.aws.secrets, &secret, AWSCURRENT)
        .await
        .unwrap();
    let token = begin_rotation_like_secrets_manager(&stack, &secret).await;
    for s in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        run_step(&deps, &step(s, &secret, &token)).await.unwrap();
    }
    let after = read_stage(&stack.aws.secrets, &secret, AWSCURRENT)
        .await
        .unwrap();
    assert_eq!(
        before.expose_secret(),
        after.expose_secret(),
        "the same token, now proven to work"
    );

    // The token was revoked in Zendesk: testSecret fails the rotation, naming the secret only.
    let dead = serde_json::json!({"type": "api_token", "base_url": stack.sandbox.base_url("zendesk"),
        "email": stack.sandbox.credentials.zendesk_email, "api_token": "revoked-zendesk-token"});
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(dead.to_string())
        .send()
        .await
        .unwrap();
    let token = begin_rotation_like_secrets_manager(&stack, &secret).await;
    run_step(&deps, &step("createSecret", &secret, &token))
        .await
        .unwrap();
    let e = run_step(&deps, &step("testSecret", &secret, &token))
        .await
        .unwrap_err();
    assert!(matches!(&e, RotateError::TestFailed { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("401") || text.contains("authentication"),
        "{text}"
    );
    assert!(
        !text.contains("revoked-zendesk-token"),
        "the secret leaked: {text}"
    );
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_refresher_renews_only_tokens_expiring_within_its_window() {
    let stack = LocalStack::start().await.unwrap();
    let secret = stack.provisioned.refs["SlackConnectionSecret"].clone();
    let c = &stack.sandbox.credentials;
    let soon = serde_json::json!({
        "type": "oauth2_refresh", "base_url": stack.sandbox.base_url("slack"),
        "access_token": c.slack_access_token, "refresh_token": c.slack_refresh_token,
        "client_id": c.slack_client_id, "client_secret": c.slack_client_secret,
        "expires_at": (chrono::Utc::now() + chrono::Duration::minutes(20)).to_rfc3339()
    });
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(soon.to_string())
        .send()
        .await
        .unwrap();
    let deps = rotate_deps(&stack).await;
    let run = || async {
        handler(
            &deps,
            LambdaEvent::new(
                serde_json::json!({"refresh_within_minutes": 45}),
                Context::default(),
            ),
        )
        .await
        .unwrap()
    };
    let outcome = |report: &serde_json::Value, connection: &str| {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["connection"] == connection)
            .map(|r| r["outcome"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let first = run().await;
    assert_eq!(outcome(&first, "slack"), "refreshed");
    assert_eq!(outcome(&first, "zendesk"), "not_oauth");
    assert_ne!(
        current_access_token(&stack, &secret).await,
        c.slack_access_token
    );
    // The new token lives 12 hours: the next run leaves it alone.
    let second = run().await;
    assert_eq!(outcome(&second, "slack"), "fresh");
    assert_eq!(stack.sandbox.slack_rotations(), 1);

    let e = handler(
        &deps,
        LambdaEvent::new(
            serde_json::json!({"source": "aws.events"}),
            Context::default(),
        ),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("refresh_within_minutes"), "{e}");
    stack.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_bearer_connection_rotates_by_minting_a_new_token() {
    let stack = LocalStack::start().await.unwrap();
    let secret = stack.provisioned.refs["SalesforceConnectionSecret"].clone();
    let c = &stack.sandbox.credentials;
    let jwt = serde_json::json!({"type": "oauth2_jwt_bearer", "base_url": "https://placeholder.my.salesforce.com",
        "token_url": format!("{}/services/oauth2/token", stack.sandbox.base_url("salesforce")),
        "client_id": c.salesforce_client_id, "subject": c.salesforce_username,
        "audience": "https://login.salesforce.com", "private_key": c.salesforce_private_key});
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(jwt.to_string())
        .send()
        .await
        .unwrap();
    let deps = rotate_deps(&stack).await;
    let token = begin_rotation_like_secrets_manager(&stack, &secret).await;
    for s in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        run_step(&deps, &step(s, &secret, &token)).await.unwrap();
    }
    let v = read_stage(&stack.aws.secrets, &secret, AWSCURRENT)
        .await
        .unwrap();
    let current = Credential::parse(&secret, &v).unwrap();
    assert!(
        current.access_token().is_some(),
        "a minted token is current"
    );
    assert_eq!(current.base_url(), stack.sandbox.base_url("salesforce"));
    // The minted token is a live session at the org.
    switchyard::vendors::build("salesforce", http_client(), current)
        .unwrap()
        .probe()
        .await
        .unwrap();
    stack.stop();
}

/// A worker refreshes between createSecret and finishSecret (its token was rejected): finishing
/// must not demote the worker's newer token to the rotation's, whose refresh token the worker
/// just spent. And the rotation refreshed under the workers' lease: one exchange each, no
/// `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_secret_keeps_a_newer_token_a_worker_stored_during_the_rotation() {
    let stack = LocalStack::start().await.unwrap();
    let secret = stack.provisioned.refs["SlackConnectionSecret"].clone();
    let deps = rotate_deps(&stack).await;
    let token = begin_rotation_like_secrets_manager(&stack, &secret).await;
    for s in ["createSecret", "setSecret", "testSecret"] {
        run_step(&deps, &step(s, &secret, &token)).await.unwrap();
    }
    let rotated = current_access_token(&stack, &secret).await;
    assert_eq!(stack.sandbox.slack_rotations(), 1);

    // A worker's call was refused with the rotated token: it refreshes (under the lease).
    let worker = deps.refresher.clone().unwrap();
    worker.credential(&secret, Some(&rotated)).await.unwrap();
    let newer = current_access_token(&stack, &secret).await;
    assert_ne!(newer, rotated);
    assert_eq!(stack.sandbox.slack_rotations(), 2);

    run_step(&deps, &step("finishSecret", &secret, &token))
        .await
        .unwrap();
    assert_eq!(current_access_token(&stack, &secret).await, newer);
    let probe = switchyard::vendors::slack::outbound::auth_test(
        &http_client(),
        &stack.sandbox.base_url("slack"),
        &newer.into(),
    )
    .await;
    assert!(probe.is_ok(), "{probe:?}");
    stack.stop();
}

/// A first deploy: connection secrets hold placeholders and Secrets Manager rotates them at
/// once. A connection the deployment does not use (`Connectors`) rotates as a no-op instead of
/// failing, and no vendor is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_not_in_use_rotates_as_a_no_op_so_a_first_deploy_is_green() {
    let stack = LocalStack::start().await.unwrap();
    let secret = stack.provisioned.refs["SlackConnectionSecret"].clone();
    stack
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&secret)
        .secret_string("placeholder: store the slack credential here")
        .send()
        .await
        .unwrap();
    let f = stack.template.function("rotate").unwrap();
    let mut env = stack.provisioned.function_env(&stack.template, f).unwrap();
    env.insert("CONNECTORS".into(), "zendesk".into());
    let deps = Rotate::from_settings(&stack.aws, &switchyard::settings::Settings::from_map(env));
    let token = begin_rotation_like_secrets_manager(&stack, &secret).await;
    for s in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        run_step(&deps, &step(s, &secret, &token)).await.unwrap();
    }
    use secrecy::ExposeSecret;
    let after = read_stage(&stack.aws.secrets, &secret, AWSCURRENT)
        .await
        .unwrap();
    assert_eq!(
        after.expose_secret(),
        "placeholder: store the slack credential here"
    );
    assert_eq!(stack.sandbox.slack_rotations(), 0);
    stack.stop();
}

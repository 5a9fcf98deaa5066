//! OAuth refresh under a lease: concurrent workers, single-use refresh tokens, revoked grants.
//! moto runs serially so the lease's conditional write is atomic, as DynamoDB's is.

use std::collections::HashMap;

use secrecy::ExposeSecret;
use switchyard::connectors::auth::{AuthError, Refresher};
use switchyard::connectors::Connector;
use switchyard::secrets::{Credential, SecretCache};
use switchyard_infra::emulator::Emulator;
use switchyard_infra::sandbox::Sandbox;

struct World {
    _emulator: Emulator,
    sandbox: Sandbox,
    refresher: Refresher,
    secret_id: String,
}

/// The Slack connection stored with an access token that expired an hour ago.
async fn world(refresh_token: Option<&str>) -> World {
    let emulator = Emulator::start_serial().unwrap();
    let config = emulator.sdk_config().await;
    let sandbox = Sandbox::start().await.unwrap();
    let c = &sandbox.credentials;
    let slack = serde_json::json!({
        "type": "oauth2_refresh", "base_url": sandbox.base_url("slack"),
        "access_token": "xoxe.xoxb-expired", "refresh_token": refresh_token.unwrap_or(&c.slack_refresh_token),
        "client_id": c.slack_client_id, "client_secret": c.slack_client_secret,
        "expires_at": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()
    });
    let template = switchyard_infra::template::Template::load(
        &switchyard_infra::repo_root().join("template.yaml"),
    )
    .unwrap();
    let prefix = format!("sy-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let secrets = HashMap::from([("SlackConnectionSecret".to_owned(), slack.to_string())]);
    let p = switchyard_infra::provision::provision(&config, &template, &prefix, &secrets)
        .await
        .unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    World {
        refresher: Refresher {
            cache: SecretCache::new(sm.clone(), std::time::Duration::from_secs(300)),
            sm,
            ddb: aws_sdk_dynamodb::Client::new(&config),
            table: p.refs["PacingTable"].clone(),
            http: switchyard::connectors::http_client(),
            escrow_key: Some(switchyard::connectors::auth::EscrowKey {
                kms: aws_sdk_kms::Client::new(&config),
                key_id: p.refs["EscrowKey"].clone(),
            }),
        },
        secret_id: p.refs["SlackConnectionSecret"].clone(),
        sandbox,
        _emulator: emulator,
    }
}

/// `n` workers asking for the credential at once, each with its own cache (as separate Lambda
/// instances have).
async fn workers(w: &World, n: usize) -> Vec<Result<Credential, AuthError>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut r = w.refresher.clone();
        r.cache = SecretCache::new(r.sm.clone(), std::time::Duration::from_secs(300));
        let id = w.secret_id.clone();
        tasks.push(tokio::spawn(async move { r.credential(&id, None).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn access_token(c: &Credential) -> String {
    match c {
        Credential::Oauth2Refresh { access_token, .. } => access_token.expose_secret().to_owned(),
        other => panic!("not oauth: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_workers_with_an_expired_token_make_exactly_one_refresh() {
    let w = world(None).await;
    let mut tokens = Vec::new();
    for c in workers(&w, 8).await {
        tokens.push(access_token(&c.expect("no worker fails")));
    }
    assert_eq!(
        w.sandbox.slack_rotations(),
        1,
        "one refresh, not one per worker"
    );
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every worker uses the one new token");
    // And it works.
    let slack = switchyard::vendors::slack::outbound::Slack::new(
        switchyard::connectors::http_client(),
        w.refresher.cache.credential(&w.secret_id).await.unwrap(),
    )
    .unwrap();
    slack.probe().await.unwrap();
    w.sandbox.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_is_refreshed_once_and_a_revoked_grant_needs_a_human() {
    let w = world(None).await;
    let first = w.refresher.credential(&w.secret_id, None).await.unwrap();
    let fresh = access_token(&first);
    // Fresh and not rejected: no refresh.
    w.refresher.credential(&w.secret_id, None).await.unwrap();
    assert_eq!(w.sandbox.slack_rotations(), 1);
    // The vendor rejected the fresh token (revoked server-side, say): refresh again, once.
    let again = w
        .refresher
        .credential(&w.secret_id, Some(&fresh))
        .await
        .unwrap();
    assert_ne!(access_token(&again), fresh);
    assert_eq!(w.sandbox.slack_rotations(), 2);
    // A stale token that is no longer the stored one does not trigger another refresh.
    w.refresher
        .credential(&w.secret_id, Some(&fresh))
        .await
        .unwrap();
    assert_eq!(w.sandbox.slack_rotations(), 2);
    w.sandbox.stop();

    // A refresh token the vendor no longer honours: re-authorization, named, without the secret.
    let revoked = world(Some("xoxe-1-revoked")).await;
    let e = revoked
        .refresher
        .credential(&revoked.secret_id, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AuthError::ReauthRequired { reason, .. } if reason.contains("invalid_refresh_token")),
        "{e}"
    );
    assert!(
        !e.to_string().contains("xoxe-1-revoked"),
        "the secret leaked: {e}"
    );
    revoked.sandbox.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_refresh_cools_down_so_eight_workers_make_one_token_call_not_a_storm() {
    let w = world(None).await;
    // The token endpoint is down for the next eight requests.
    w.sandbox.inject(
        "slack",
        switchyard_infra::sandbox::faults::Fault::ServerError(503),
        8,
    );
    for c in workers(&w, 8).await {
        let e = c.unwrap_err();
        // Every worker is told to wait (act hands its work back delayed), none to fail.
        assert!(
            matches!(&e, AuthError::Cooldown { retry_after, reason, .. }
                if *retry_after <= switchyard::connectors::auth::COOLDOWN && reason.contains("503")),
            "{e}"
        );
    }
    assert_eq!(
        w.sandbox.pending_faults("slack"),
        7,
        "exactly one request reached the token endpoint"
    );
    assert_eq!(w.sandbox.slack_rotations(), 0);
    w.sandbox.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_grant_is_asked_once_then_marked_until_a_new_credential_is_stored() {
    let w = world(Some("xoxe-1-revoked")).await;
    for c in workers(&w, 6).await {
        let e = c.unwrap_err();
        assert!(matches!(&e, AuthError::ReauthRequired { .. }), "{e}");
    }
    let refusals = |sb: &Sandbox| {
        sb.ledger()
            .iter()
            .filter(|e| e.operation == "oauth.v2.access refused")
            .count()
    };
    assert_eq!(refusals(&w.sandbox), 1, "the refused grant was asked once");

    // A human reconnects: a new refresh token is stored; the mark no longer applies.
    let c = &w.sandbox.credentials;
    let reconnected = serde_json::json!({
        "type": "oauth2_refresh", "base_url": w.sandbox.base_url("slack"),
        "access_token": "xoxe.xoxb-expired", "refresh_token": c.slack_refresh_token,
        "client_id": c.slack_client_id, "client_secret": c.slack_client_secret,
        "expires_at": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()
    });
    w.refresher
        .sm
        .put_secret_value()
        .secret_id(&w.secret_id)
        .secret_string(reconnected.to_string())
        .send()
        .await
        .unwrap();
    w.refresher.credential(&w.secret_id, None).await.unwrap();
    assert_eq!(w.sandbox.slack_rotations(), 1);
    w.sandbox.stop();
}

/// Secrets Manager refuses the write after Slack issued a new token (and spent the single-use
/// refresh token): the new token is kept in escrow and the next lease holder stores it, so the
/// connection survives without a second exchange and without a human.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_vendor_issued_is_not_lost_when_storing_it_fails() {
    let w = world(None).await;
    let dead = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(
            aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
                aws_sdk_secretsmanager::config::Credentials::for_tests(),
            ),
        )
        .endpoint_url("http://127.0.0.1:9")
        .http_client(switchyard::http::sdk_http_client())
        .build();
    let mut failing = w.refresher.clone();
    failing.sm = aws_sdk_secretsmanager::Client::new(&dead);
    let e = failing.credential(&w.secret_id, None).await.unwrap_err();
    assert!(e.to_string().contains("escrow"), "{e}");
    assert_eq!(
        w.sandbox.slack_rotations(),
        1,
        "the vendor issued a new token"
    );

    // The cooldown passes (its lease item goes), and the next worker takes the lease.
    w.refresher
        .ddb
        .delete_item()
        .table_name(&w.refresher.table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("lease#{}", w.secret_id)),
        )
        .send()
        .await
        .unwrap();
    // The escrow holds the token sealed under the escrow key: no plain text in the table.
    let escrow = w
        .refresher
        .ddb
        .get_item()
        .table_name(&w.refresher.table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("escrow#{}", w.secret_id)),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the token is in escrow");
    let mut next = w.refresher.clone();
    next.cache = SecretCache::new(next.sm.clone(), std::time::Duration::from_secs(300));
    let c = next.credential(&w.secret_id, None).await.unwrap();
    assert_eq!(w.sandbox.slack_rotations(), 1, "no second exchange");
    let stored = next.cache.get(&w.secret_id).await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.expose_secret()).unwrap();
    let item = format!("{escrow:?}");
    for field in ["access_token", "refresh_token", "client_secret"] {
        let value = stored[field].as_str().unwrap();
        assert!(
            !item.contains(value),
            "{field} in plain text in the escrow item"
        );
    }
    assert!(escrow.contains_key("sealed") && !escrow.contains_key("value"));
    let slack =
        switchyard::vendors::slack::outbound::Slack::new(switchyard::connectors::http_client(), c)
            .unwrap();
    slack.probe().await.unwrap();
    w.sandbox.stop();
}

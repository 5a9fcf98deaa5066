//! Minted tokens (OAuth client credentials, JWT bearer) and vendor session rules, against the
//! sandbox's Salesforce token endpoint. moto runs serially so the lease is atomic.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::ExposeSecret;
use switchyard::connectors::auth::Refresher;
use switchyard::connectors::ResolveError;
use switchyard::secrets::{Credential, SecretCache};
use switchyard::settings::Settings;
use switchyard::vendors::Connectors;
use switchyard_infra::emulator::Emulator;
use switchyard_infra::sandbox::Sandbox;

struct World {
    _emulator: Emulator,
    sandbox: Sandbox,
    sm: aws_sdk_secretsmanager::Client,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    secret_id: String,
}

impl World {
    /// One worker: its own cache, as a separate Lambda instance has.
    fn connectors(&self) -> Connectors {
        let cache = SecretCache::new(self.sm.clone(), Duration::from_secs(300));
        Connectors {
            refresher: Some(Refresher {
                cache: cache.clone(),
                sm: self.sm.clone(),
                ddb: self.ddb.clone(),
                table: self.table.clone(),
                http: switchyard::connectors::http_client(),
                escrow_key: None,
            }),
            ..Connectors::new(
                switchyard::connectors::http_client(),
                cache,
                Settings::from_map(HashMap::from([(
                    "SALESFORCE_SECRET_ID".to_owned(),
                    self.secret_id.clone(),
                )])),
            )
        }
    }

    async fn stored(&self) -> Credential {
        let v = switchyard::secrets::read_stage(&self.sm, &self.secret_id, "AWSCURRENT")
            .await
            .unwrap();
        Credential::parse(&self.secret_id, &v).unwrap()
    }
}

async fn world(credential: impl FnOnce(&Sandbox) -> serde_json::Value) -> World {
    let emulator = Emulator::start_serial().unwrap();
    let config = emulator.sdk_config().await;
    let sandbox = Sandbox::start().await.unwrap();
    let template = switchyard_infra::template::Template::load(
        &switchyard_infra::repo_root().join("template.yaml"),
    )
    .unwrap();
    let prefix = format!("sy-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let secrets = HashMap::from([(
        "SalesforceConnectionSecret".to_owned(),
        credential(&sandbox).to_string(),
    )]);
    let p = switchyard_infra::provision::provision(&config, &template, &prefix, &secrets)
        .await
        .unwrap();
    World {
        sm: aws_sdk_secretsmanager::Client::new(&config),
        ddb: aws_sdk_dynamodb::Client::new(&config),
        table: p.refs["PacingTable"].clone(),
        secret_id: p.refs["SalesforceConnectionSecret"].clone(),
        sandbox,
        _emulator: emulator,
    }
}

fn jwt_bearer(sb: &Sandbox, session: serde_json::Value) -> serde_json::Value {
    let c = &sb.credentials;
    serde_json::json!({
        "type": "oauth2_jwt_bearer", "base_url": "https://placeholder.my.salesforce.com",
        "token_url": format!("{}/services/oauth2/token", sb.base_url("salesforce")),
        "client_id": c.salesforce_client_id, "subject": c.salesforce_username,
        "audience": "https://login.salesforce.com", "private_key": c.salesforce_private_key,
        "session": session
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jwt_bearer_mints_one_token_for_all_workers_and_stores_it() {
    let w = world(|sb| jwt_bearer(sb, serde_json::json!({}))).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let connectors = w.connectors();
        tasks.push(tokio::spawn(async move {
            connectors
                .get("salesforce")
                .await?
                .probe()
                .await
                .map_err(|e| ResolveError::Unknown(e.to_string()))
        }));
    }
    for t in tasks {
        let probe = t.await.unwrap().expect("every worker's call succeeds");
        assert!(probe.detail.contains("daily API requests"), "{probe:?}");
    }
    assert_eq!(
        w.sandbox.salesforce_sessions().0,
        1,
        "one token minted, not one per worker"
    );
    let stored = w.stored().await;
    assert!(stored.access_token().is_some() && stored.expires_at().is_some());
    // The token answer's instance_url is where the org lives: calls go there.
    assert_eq!(stored.base_url(), w.sandbox.base_url("salesforce"));
    w.sandbox.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_mint_and_a_refused_grant_names_the_reason_not_the_secret() {
    let w = world(|sb| {
        let c = &sb.credentials;
        serde_json::json!({
            "type": "oauth2_client_credentials", "base_url": sb.base_url("salesforce"),
            "token_url": format!("{}/services/oauth2/token", sb.base_url("salesforce")),
            "client_id": c.salesforce_client_id, "client_secret": c.salesforce_client_secret
        })
    })
    .await;
    w.connectors()
        .get("salesforce")
        .await
        .unwrap()
        .probe()
        .await
        .unwrap();
    assert_eq!(w.sandbox.salesforce_sessions().0, 1);

    // The admin revoked the app's approval and the stored token has expired.
    w.sandbox.revoke_salesforce_app(true);
    let mut expired: serde_json::Value = serde_json::from_str(
        switchyard::secrets::read_stage(&w.sm, &w.secret_id, "AWSCURRENT")
            .await
            .unwrap()
            .expose_secret(),
    )
    .unwrap();
    expired["expires_at"] = serde_json::json!("2020-01-01T00:00:00Z");
    w.sm.put_secret_value()
        .secret_id(&w.secret_id)
        .secret_string(expired.to_string())
        .send()
        .await
        .unwrap();
    let e = match w.connectors().get("salesforce").await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a revoked app must not yield a connector"),
    };
    assert!(e.contains("user hasn't approved this consumer"), "{e}");
    assert!(
        !e.contains(&w.sandbox.credentials.salesforce_client_secret),
        "{e}"
    );
    w.sandbox.stop();
}

/// An org that ends sessions after 2 s or 5 calls: four workers make 48 calls across several
/// sessions, re-authenticating before either limit, and not one call is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_ending_by_age_or_call_count_never_fail_a_call() {
    let policy = serde_json::json!({"max_age_seconds": 2, "max_calls": 5});
    let w = world(|sb| jwt_bearer(sb, policy)).await;
    w.sandbox
        .set_salesforce_session_policy(Some(Duration::from_secs(2)), Some(5));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let connectors = w.connectors();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..12 {
                let c = connectors
                    .session_call("salesforce")
                    .await
                    .unwrap()
                    .unwrap();
                if let Err(e) = c.probe().await {
                    failures.push(e.to_string());
                }
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            failures
        }));
    }
    for t in tasks {
        let failures = t.await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    }
    let (minted, ended) = w.sandbox.salesforce_sessions();
    assert_eq!(ended, 0, "no call met an ended session");
    assert!(
        minted >= 48 / 5,
        "{minted} sessions for 48 calls of at most 5 each"
    );
    w.sandbox.stop();
}

/// The control: without the policy the same org refuses calls once a session is used up — the
/// sandbox enforces what the test above avoids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_policy_the_sixth_call_meets_an_ended_session() {
    let w = world(|sb| jwt_bearer(sb, serde_json::json!({}))).await;
    w.sandbox.set_salesforce_session_policy(None, Some(5));
    let connectors = w.connectors();
    let mut results = Vec::new();
    for _ in 0..6 {
        // No policy: nothing to reserve, the stored token is used as it is.
        assert!(connectors
            .session_call("salesforce")
            .await
            .unwrap()
            .is_none());
        let c = connectors.get("salesforce").await.unwrap();
        results.push(c.probe().await.is_ok());
    }
    assert_eq!(results, [true, true, true, true, true, false]);
    assert_eq!(w.sandbox.salesforce_sessions().1, 1);
    w.sandbox.stop();
}

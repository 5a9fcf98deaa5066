//! canary: on a schedule, prove each configured connector still authenticates. A passing probe
//! also closes that credential's circuit breaker (the vendor is back).

use std::time::Instant;

use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use tracing::{info, warn};

use crate::connectors::Connectors;

#[derive(Clone, Debug)]
pub struct Canary {
    pub connectors: Connectors,
    /// With `PACING_TABLE` set.
    pub breaker: Option<crate::pacing::Breaker>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeResult {
    pub connector: String,
    pub ok: bool,
    pub latency_ms: u64,
    pub detail: String,
}

impl Canary {
    /// A canary reads credentials fresh each minute, so a rotated or revoked one shows at once.
    pub fn from_settings(aws: &crate::aws::AwsClients, s: &crate::settings::Settings) -> Self {
        let secrets = crate::secrets::SecretCache::new(
            aws.secrets.clone(),
            std::time::Duration::from_secs(60),
        );
        Canary {
            connectors: Connectors::new(crate::connectors::http_client(), secrets, s.clone()),
            breaker: s
                .optional("PACING_TABLE")
                .map(|t| crate::pacing::Breaker::new(aws.ddb.clone(), t)),
        }
    }
}

/// The scheduled event's content does not matter: every run checks every configured connector.
pub async fn handler(
    deps: &Canary,
    _event: LambdaEvent<serde_json::Value>,
) -> Result<Vec<ProbeResult>, Error> {
    let mut results = Vec::new();
    crate::metrics::register(crate::metrics::CANARY_FAILURES);
    for name in deps.connectors.settings.configured_connectors() {
        let started = Instant::now();
        let outcome = crate::calls::within(crate::calls::CallContext::new("probe"), async {
            match deps.connectors.get(name).await {
                Ok(c) => c.probe().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let result = match outcome {
            Ok(o) => {
                info!(connector = name, latency_ms, detail = %o.detail, "canary passed");
                if let (Some(b), Some(secret)) = (
                    &deps.breaker,
                    deps.connectors.settings.connection_secret_id(name),
                ) {
                    let key = crate::pacing::breaker_key(name, secret);
                    if let Err(e) = b.success(&key).await {
                        warn!(connector = name, error = %e, "could not close the circuit");
                    }
                }
                ProbeResult {
                    connector: name.into(),
                    ok: true,
                    latency_ms,
                    detail: o.detail,
                }
            }
            Err(detail) => {
                warn!(connector = name, latency_ms, %detail, "canary failed");
                crate::metrics::count(crate::metrics::CANARY_FAILURES, "connector", name);
                ProbeResult {
                    connector: name.into(),
                    ok: false,
                    latency_ms,
                    detail,
                }
            }
        };
        results.push(result);
    }
    Ok(results)
}

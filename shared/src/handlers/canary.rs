//! canary: on a schedule, prove each configured connector still authenticates. A passing probe
//! also closes that credential's circuit breaker (the vendor is back). Every `DRIFT_CHECK_EVERY`
//! (default 24 h), or when the event asks (`{"structure": true}`), it also checks each
//! connection's API structure and write requirements (`drift::check`).

use std::time::Instant;

use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use tracing::{info, warn};

use crate::vendors::Connectors;

/// What the canary needs: the connectors to probe and, when configured, breaker and drift store.
#[derive(Clone, Debug)]
pub struct Canary {
    /// The configured connectors to probe, reading credentials fresh each minute.
    pub connectors: Connectors,
    /// With `PACING_TABLE` set.
    pub breaker: Option<crate::pacing::Breaker>,
    /// With `DRIFT_TABLE` set: structure checks, their findings and snapshots.
    pub drift: Option<crate::drift::store::DriftStore>,
    /// The routes, for write requirements and the routes a finding affects.
    pub routing: crate::routing::RoutingConfig,
    /// How often each connection's structure is checked (`DRIFT_CHECK_EVERY`, default 24 h).
    pub structure_every: std::time::Duration,
}

/// One connector's canary probe: the handler returns one per configured connector.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeResult {
    /// The name of the connector probed, e.g. `zendesk`.
    pub connector: String,
    /// Whether the probe passed (the credential still authenticates).
    pub ok: bool,
    /// How long building the connector and probing took, in milliseconds.
    pub latency_ms: u64,
    /// What the probe reported when it passed, or the error when it failed.
    pub detail: String,
    /// When this run checked the connection's structure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structure: Option<crate::connectors::structure::StructureCheck>,
}

impl Canary {
    /// A canary reads credentials fresh each minute, so a rotated or revoked one shows at once.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Result<Self, Error> {
        let secrets = crate::secrets::SecretCache::new(
            aws.secrets.clone(),
            std::time::Duration::from_secs(60),
        );
        let structure_every = match s.optional("DRIFT_CHECK_EVERY") {
            Some(t) => {
                crate::settings::parse_interval(t).map_err(|e| format!("DRIFT_CHECK_EVERY: {e}"))?
            }
            None => std::time::Duration::from_secs(24 * 3600),
        };
        crate::connectors::declared::check_compiled()?;
        Ok(Canary {
            connectors: Connectors::new(crate::connectors::http_client(), secrets, s.clone()),
            breaker: s
                .optional("PACING_TABLE")
                .map(|t| crate::pacing::Breaker::new(aws.ddb.clone(), t)),
            drift: s
                .optional("DRIFT_TABLE")
                .map(|t| crate::drift::store::DriftStore::new(aws.ddb.clone(), t)),
            routing: crate::routing::RoutingConfig::from_settings(s)?,
            structure_every,
        })
    }

    /// Whether `name`'s structure is due a check (forced, or none for `structure_every`).
    async fn structure_due(&self, name: &str, forced: bool) -> bool {
        let Some(store) = &self.drift else {
            return false;
        };
        if forced {
            return true;
        }
        match store.checked_at(name).await {
            Ok(Some(at)) => chrono::Utc::now()
                .signed_duration_since(at)
                .to_std()
                .is_ok_and(|since| since >= self.structure_every),
            Ok(None) => true,
            Err(e) => {
                warn!(connector = name, error = %e, "could not read the last structure check");
                false
            }
        }
    }
}

/// Every run probes every configured connector; `{"structure": true}` in the event also checks
/// every connection's structure now (`switchyard canary`), otherwise when it is due.
pub async fn handler(
    deps: &Canary,
    event: LambdaEvent<serde_json::Value>,
) -> Result<Vec<ProbeResult>, Error> {
    let forced = event.payload.get("structure") == Some(&serde_json::Value::Bool(true));
    let mut results = Vec::new();
    crate::metrics::register(crate::metrics::CANARY_FAILURES);
    crate::metrics::register(crate::metrics::DRIFT_FINDINGS);
    for name in crate::vendors::configured(&deps.connectors.settings) {
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
                    crate::vendors::secret_id(&deps.connectors.settings, name),
                ) {
                    let key = crate::pacing::breaker_key(name, &secret);
                    if let Err(e) = b.success(&key).await {
                        warn!(connector = name, error = %e, "could not close the circuit");
                    }
                }
                ProbeResult {
                    connector: name.into(),
                    ok: true,
                    latency_ms,
                    detail: o.detail,
                    structure: structure(deps, name, forced).await,
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
                    structure: None,
                }
            }
        };
        results.push(result);
    }
    // A heartbeat where `switchyard smoke` can read it, also when nothing is configured yet.
    if let Some(store) = &deps.drift {
        if let Err(e) = store.set_canary_ran(chrono::Utc::now()).await {
            warn!(error = %e, "could not record the canary's run");
        }
    }
    Ok(results)
}

/// The connection's structure check, when due (its probe passed: the credential works).
async fn structure(
    deps: &Canary,
    name: &str,
    forced: bool,
) -> Option<crate::connectors::structure::StructureCheck> {
    let store = deps.drift.as_ref()?;
    if !deps.structure_due(name, forced).await {
        return None;
    }
    let check = crate::calls::within(crate::calls::CallContext::new("drift"), async {
        match deps.connectors.get(name).await {
            Ok(c) => {
                crate::connectors::structure::check_structure(
                    name,
                    c.as_ref(),
                    store,
                    &deps.routing,
                    chrono::Utc::now(),
                )
                .await
            }
            Err(e) => crate::connectors::structure::StructureCheck {
                error: Some(e.to_string()),
                ..Default::default()
            },
        }
    })
    .await;
    if let Some(e) = &check.error {
        warn!(connector = name, error = %e, "structure check incomplete");
        crate::metrics::count(crate::metrics::CANARY_FAILURES, "connector", name);
    }
    notify(deps, &check).await;
    Some(check)
}

/// Tell a human, through the drift route, of each new finding that needs one (warning or
/// breaking): once, when it is first raised. A notice that fails is logged; the finding stays
/// listed and alarmed.
async fn notify(deps: &Canary, check: &crate::connectors::structure::StructureCheck) {
    let news = check
        .findings
        .iter()
        .filter(|r| r.new && r.finding.severity >= crate::drift::Severity::Warning);
    for r in news {
        for (i, notice) in deps
            .routing
            .drift_notices(&r.id, &r.finding.line(), &r.finding.routes)
            .iter()
            .enumerate()
        {
            let key = format!("drift#{}#{}#{i}", r.id, chrono::Utc::now().timestamp());
            let sent = match deps.connectors.get(&notice.connector).await {
                Ok(c) => c.perform(notice, &key).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(_) => info!(finding = %r.id, connector = %notice.connector, "drift notice sent"),
                Err(e) => warn!(finding = %r.id, connector = %notice.connector, error = %e,
                                "drift notice failed"),
            }
        }
    }
}

/// The canary's report for a person: each connection's probe and structure check, then every
/// open finding (new or acknowledged), most severe first.
pub fn render(results: &[ProbeResult], open: &[crate::drift::store::Stored]) -> String {
    let mut o = format!(
        "{:<11} {:<6} {:<34} {}\n",
        "connection", "auth", "structure checked", "findings this run"
    );
    for r in results {
        let (checked, found) = match &r.structure {
            None => ("not due (or no drift table)".to_owned(), "-".to_owned()),
            Some(c) => {
                let records = c
                    .records
                    .iter()
                    .map(|(object, n)| format!("{object} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let new = c.findings.iter().filter(|f| f.new).count();
                let mut found = format!(
                    "{new} new, {} known, {} resolved",
                    c.findings.len() - new,
                    c.resolved.len()
                );
                if let Some(e) = &c.error {
                    found.push_str(&format!("; INCOMPLETE: {e}"));
                }
                (
                    if records.is_empty() {
                        "nothing to read".into()
                    } else {
                        records
                    },
                    found,
                )
            }
        };
        o.push_str(&format!(
            "{:<11} {:<6} {:<34} {}\n",
            r.connector,
            if r.ok { "ok" } else { "FAILED" },
            checked,
            if r.ok { found } else { r.detail.clone() }
        ));
    }
    let mut open: Vec<&crate::drift::store::Stored> = open
        .iter()
        .filter(|s| s.state != crate::drift::store::state::RESOLVED)
        .collect();
    open.sort_by(|a, b| {
        b.finding
            .severity
            .cmp(&a.finding.severity)
            .then(b.last_seen.cmp(&a.last_seen))
    });
    if open.is_empty() {
        o.push_str("\nNo open API drift findings.\n");
        return o;
    }
    o.push_str(&format!("\nOpen API drift findings ({}):\n", open.len()));
    for s in open {
        let f = &s.finding;
        o.push_str(&format!("{}  {}\n", s.id, f.line()));
        if let Some(e) = &f.example {
            o.push_str(&format!("          example: {e}\n"));
        }
        if !f.routes.is_empty() {
            o.push_str(&format!("          affects: {}\n", f.routes.join("; ")));
        }
        o.push_str(&format!(
            "          {} by {}; first seen {}, last seen {}, seen {}×\n",
            s.state, s.source, s.first_seen, s.last_seen, s.times_seen
        ));
    }
    o.push_str("Acknowledge one with `switchyard canary ack <id>`.\n");
    o
}

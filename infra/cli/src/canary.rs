//! `switchyard canary`: run the canary now — every connection's probe and its structure check —
//! and print the open API drift findings; `switchyard canary ack <id>` acknowledges one.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use switchyard::drift::store::{state, DriftStore, Stored};
use switchyard::handlers::canary::{self, ProbeResult};

#[derive(Subcommand)]
pub enum CanaryCommand {
    /// Mark a finding acknowledged: it stays listed (and is not alerted again) until the
    /// change is gone, when the canary resolves it.
    Ack {
        /// The finding's id, as `switchyard canary` prints it.
        id: String,
    },
}

const NEEDS: &str = "DRIFT_TABLE (the stack output DriftTableName), each connection's \
<NAME>_SECRET_ID and AWS credentials with a region; for the local stack, paste the `export` \
lines `switchyard local --stay-up` prints, or use --local";

fn store_from_env(aws: &switchyard::aws::AwsClients) -> Result<DriftStore> {
    let table = std::env::var("DRIFT_TABLE")
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| format!("no drift table configured: set {NEEDS}"))?;
    Ok(DriftStore::new(aws.ddb.clone(), table))
}

async fn open_findings(store: &DriftStore) -> Result<Vec<Stored>> {
    let mut all = Vec::new();
    for c in switchyard::vendors::drift_owners() {
        all.extend(store.list(c).await?);
    }
    Ok(all)
}

/// Run the canary with its structure checks; exit code 1 when a probe failed or a breaking
/// finding is open.
pub async fn run(command: Option<CanaryCommand>, json: bool, local: bool) -> Result<i32> {
    if let Some(CanaryCommand::Ack { id }) = command {
        let aws = switchyard::aws::AwsClients::from_env().await;
        let store = store_from_env(&aws)?;
        for c in switchyard::vendors::drift_owners() {
            if store
                .set_state(c, &id, state::ACKNOWLEDGED, chrono::Utc::now())
                .await?
            {
                println!("finding {id} ({c}) acknowledged");
                return Ok(0);
            }
        }
        bail!("no finding {id:?} in {}", store.table);
    }
    let (results, open, stack) = if local {
        local_canary().await?
    } else {
        let aws = switchyard::aws::AwsClients::from_env().await;
        let store = store_from_env(&aws)?;
        let settings = switchyard::settings::Settings::from_env();
        if switchyard::vendors::configured(&settings).is_empty() {
            bail!("no connection configured: set {NEEDS}");
        }
        let deps =
            canary::Canary::from_settings(&aws, &settings).map_err(|e| anyhow::anyhow!(e))?;
        let event = lambda_runtime::LambdaEvent::new(
            serde_json::json!({"structure": true}),
            lambda_runtime::Context::default(),
        );
        let results = canary::handler(&deps, event)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        (results, open_findings(&store).await?, None)
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "connections": results,
                "open_findings": open.iter().filter(|s| s.state != state::RESOLVED).collect::<Vec<_>>(),
            }))?
        );
    } else {
        print!("{}", canary::render(&results, &open));
    }
    if let Some(stop) = stack {
        stop();
    }
    let breaking = open.iter().any(|s| {
        s.state == state::NEW && s.finding.severity == switchyard::drift::Severity::Breaking
    });
    Ok(i32::from(breaking || results.iter().any(|r| !r.ok)))
}

/// What `--local` gives: a fresh local stack's probes and findings, and what stops that stack.
type Local = (Vec<ProbeResult>, Vec<Stored>, Option<Box<dyn FnOnce()>>);

#[cfg(feature = "local")]
async fn local_canary() -> Result<Local> {
    let stack = switchyard_infra::stack::LocalStack::start().await?;
    let results = stack.canary_now(None).await?;
    let open = open_findings(&stack.drift_store()?).await?;
    Ok((results, open, Some(Box::new(move || stack.stop()))))
}

#[cfg(not(feature = "local"))]
async fn local_canary() -> Result<Local> {
    bail!("--local needs the local stack, which this build of switchyard leaves out (cargo feature `local`)")
}

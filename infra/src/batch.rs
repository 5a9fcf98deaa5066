//! `switchyard batch contacts`: the paced bulk sync of `switchyard::sync` from the command line,
//! with a progress bar — against the local sandbox (`--sandbox`) or against the vendor with the
//! deployment's settings (`<CONNECTOR>_SECRET_ID`, `PACING_TABLE`, AWS from the environment).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use secrecy::SecretString;
use switchyard::pacing::{Breaker, Limiter, Limits, Pacer};
use switchyard::sync::{read_customers, BulkSync, Plan};

fn pacer(ddb: aws_sdk_dynamodb::Client, table: &str, limits: Limits) -> Pacer {
    Pacer {
        limiter: Limiter::new(ddb.clone(), table),
        limits,
        breaker: Breaker::new(ddb, table),
    }
}

pub async fn contacts_cli(
    connector: &str,
    input: &Path,
    window: Duration,
    sandbox: bool,
) -> Result<()> {
    let text = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let customers = read_customers(&text, &input.display().to_string())?;
    let limits = Limits::parse(&std::env::var("RATE_LIMITS").unwrap_or_default())
        .map_err(anyhow::Error::msg)?
        .with_documented(&switchyard::vendors::DOCUMENTED);
    let (sync, _keep) = if sandbox {
        let emulator = crate::emulator::Emulator::start_serial()?;
        let config = emulator.sdk_config().await;
        let template = crate::template::Template::load(&crate::repo_root().join("template.yaml"))?;
        let prefix = format!("sy-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let p = crate::provision::provision(&config, &template, &prefix, &HashMap::new()).await?;
        let sb = crate::sandbox::Sandbox::start().await?;
        // The vendors' smallest documented budgets, enforced by the sandbox.
        sb.set_hubspot_rate_limit(Some(100));
        let credential = match connector {
            "hubspot" => bearer(sb.base_url("hubspot"), &sb.credentials.hubspot_token),
            "salesforce" => bearer(sb.base_url("salesforce"), &sb.credentials.salesforce_token),
            "zendesk" => switchyard::secrets::Credential::ApiToken {
                base_url: sb.base_url("zendesk"),
                email: sb.credentials.zendesk_email.clone(),
                api_token: SecretString::from(sb.credentials.zendesk_token.clone()),
            },
            other => anyhow::bail!("no bulk sync for {other:?} (hubspot, salesforce, zendesk)"),
        };
        let sync = BulkSync {
            http: switchyard::connectors::http_client(),
            pacer: pacer(
                aws_sdk_dynamodb::Client::new(&config),
                &p.refs["PacingTable"],
                limits,
            ),
            credential: "sandbox".into(),
            target: switchyard::vendors::sync_target(connector, credential)?,
        };
        (sync, Some((emulator, sb)))
    } else {
        let aws = switchyard::aws::AwsClients::from_env().await;
        let s = switchyard::settings::Settings::from_env();
        let secret_id = switchyard::vendors::secret_id(&s, connector)
            .with_context(|| format!("{}_SECRET_ID is not set", connector.to_uppercase()))?
            .to_owned();
        let cache = switchyard::secrets::SecretCache::new(
            aws.secrets.clone(),
            switchyard::secrets::CACHE_TTL,
        );
        let credential = cache.credential(&secret_id).await?;
        let table = s.pacing_table().map_err(|e| anyhow::anyhow!(e))?.to_owned();
        let sync = BulkSync {
            http: switchyard::connectors::http_client(),
            pacer: pacer(aws.ddb.clone(), &table, limits),
            credential: secret_id,
            target: switchyard::vendors::sync_target(connector, credential)?,
        };
        (sync, None)
    };
    let plan = Plan::for_target(&customers, sync.target.as_ref());
    eprintln!(
        "{} customers: {} company reads (one per domain) + {} bulk writes + {} job reads = {} calls across {} s",
        plan.rows,
        plan.company_reads,
        plan.batch_writes,
        plan.job_polls,
        plan.calls(),
        window.as_secs()
    );
    let bar = indicatif::ProgressBar::new(plan.rows as u64);
    let report = sync.run(&customers, window, &|n| bar.inc(n as u64)).await?;
    bar.finish_and_clear();
    println!(
        "synced {} contacts ({} refused by {connector}) in {} calls over {:.1} s; 429s met: {}",
        report.synced,
        report.refused,
        report.calls,
        report.elapsed.as_secs_f64(),
        report.rate_limited
    );
    if let Some((_, sb)) = &_keep {
        sb.stop();
    }
    Ok(())
}

/// A sandbox token as a stored credential (the sandbox's own accounts).
fn bearer(base_url: String, token: &str) -> switchyard::secrets::Credential {
    switchyard::secrets::Credential::BearerToken {
        base_url,
        token: SecretString::from(token.to_owned()),
    }
}

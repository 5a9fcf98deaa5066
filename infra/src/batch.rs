//! `switchyard batch hubspot-contacts`: a paced bulk sync. Each input row (a customer) needs a
//! related-record read (its company, found by domain — read once per domain, then cached) and a
//! write (the contact, upserted by e-mail through HubSpot's batch endpoint, 100 per call).
//!
//! Pacing: the plan's calls are spread evenly across the window, and each still takes a slot of
//! the credential's shared budget (the one act uses), so the sync neither bursts nor starves the
//! live automations. A plan that cannot fit the window under the budget is refused up front.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use switchyard::connectors::{read_response, ConnectorError};
use switchyard::pacing::{Pace, Pacer};

/// HubSpot's batch endpoints take at most 100 inputs.
pub const BATCH: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub company_domain: String,
}

pub fn read_customers(path: &Path) -> Result<Vec<Customer>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<HashMap<String, String>>().enumerate() {
        let row = row.with_context(|| format!("{} line {}", path.display(), i + 2))?;
        let get = |k: &str| row.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        let email = get("email");
        if !email.contains('@') {
            bail!(
                "{} line {}: email {email:?} is not an e-mail address",
                path.display(),
                i + 2
            );
        }
        out.push(Customer {
            email,
            firstname: get("firstname"),
            lastname: get("lastname"),
            company_domain: get("company_domain").to_lowercase(),
        });
    }
    Ok(out)
}

/// What the sync will do, before it does it.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub rows: usize,
    pub company_reads: usize,
    pub batch_writes: usize,
}

impl Plan {
    pub fn new(customers: &[Customer]) -> Self {
        let mut domains: Vec<&str> = customers
            .iter()
            .map(|c| c.company_domain.as_str())
            .filter(|d| !d.is_empty())
            .collect();
        domains.sort_unstable();
        domains.dedup();
        Plan {
            rows: customers.len(),
            company_reads: domains.len(),
            batch_writes: customers.len().div_ceil(BATCH),
        }
    }

    pub fn calls(&self) -> usize {
        self.company_reads + self.batch_writes
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub synced: usize,
    pub calls: usize,
    pub rate_limited: usize,
    pub elapsed: Duration,
}

pub struct HubspotSync {
    pub http: reqwest::Client,
    pub base_url: String,
    pub token: SecretString,
    pub pacer: Pacer,
    /// The credential's id (its budget key), shared with act.
    pub credential: String,
}

impl HubspotSync {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        report: &mut Report,
    ) -> Result<Value> {
        loop {
            match self.pacer.wait_turn("hubspot", &self.credential).await? {
                Pace::Go => {}
                Pace::Defer(wait) => {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            report.calls += 1;
            let resp = self
                .http
                .request(method.clone(), format!("{}{path}", self.base_url))
                .bearer_auth(self.token.expose_secret())
                .json(body)
                .send()
                .await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp.text().await?;
            match read_response("hubspot", status, &headers, text) {
                Ok(v) => return Ok(v),
                Err(ConnectorError::RateLimited { retry_after }) => {
                    report.rate_limited += 1;
                    let wait = self
                        .pacer
                        .rate_limited("hubspot", &self.credential, retry_after)
                        .await?;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => bail!("HubSpot refused {path}: {e}"),
            }
        }
    }

    /// Run the plan, its calls spread evenly across `window`.
    pub async fn run(
        &self,
        customers: &[Customer],
        window: Duration,
        progress: &indicatif::ProgressBar,
    ) -> Result<Report> {
        let plan = Plan::new(customers);
        let budget = self.pacer.limits.rate("hubspot");
        let capacity = window.as_secs_f64() / budget.period.as_secs_f64() * f64::from(budget.count);
        if (plan.calls() as f64) > capacity {
            bail!(
                "{} calls do not fit {} s under HubSpot's budget of {} per {} s; widen the window",
                plan.calls(),
                window.as_secs(),
                budget.count,
                budget.period.as_secs()
            );
        }
        let spacing = window / plan.calls().max(1) as u32;
        let started = Instant::now();
        let mut report = Report::default();
        let mut next = Instant::now();
        let mut pace = || {
            let at = next;
            next += spacing;
            tokio::time::sleep_until(at.into())
        };
        progress.set_length(plan.rows as u64);
        let mut companies: HashMap<String, Option<String>> = HashMap::new();
        for chunk in customers.chunks(BATCH) {
            for c in chunk {
                if c.company_domain.is_empty() || companies.contains_key(&c.company_domain) {
                    continue;
                }
                pace().await;
                let found = self
                    .call(Method::POST, "/crm/v3/objects/companies/search", &json!({
                        "filterGroups": [{"filters": [{"propertyName": "domain", "operator": "EQ", "value": c.company_domain}]}],
                        "properties": ["name", "domain"], "limit": 1
                    }), &mut report)
                    .await?;
                let name = found
                    .pointer("/results/0/properties/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                companies.insert(c.company_domain.clone(), name);
            }
            let inputs: Vec<Value> = chunk
                .iter()
                .map(|c| {
                    let mut props =
                        json!({"email": c.email, "firstname": c.firstname, "lastname": c.lastname});
                    if let Some(Some(name)) = companies.get(&c.company_domain) {
                        props["company"] = json!(name);
                    }
                    json!({"idProperty": "email", "id": c.email, "properties": props})
                })
                .collect();
            pace().await;
            self.call(
                Method::POST,
                "/crm/v3/objects/contacts/batch/upsert",
                &json!({"inputs": inputs}),
                &mut report,
            )
            .await?;
            report.synced += chunk.len();
            progress.inc(chunk.len() as u64);
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

/// `switchyard batch hubspot-contacts`: against the sandbox (`sandbox`), or against HubSpot with
/// the deployment's settings (`HUBSPOT_SECRET_ID`, `PACING_TABLE`, AWS from the environment).
pub async fn hubspot_contacts_cli(input: &Path, window: Duration, sandbox: bool) -> Result<()> {
    let customers = read_customers(input)?;
    let plan = Plan::new(&customers);
    eprintln!(
        "{} customers: {} company reads (one per domain) + {} batch writes = {} calls across {} s",
        plan.rows,
        plan.company_reads,
        plan.batch_writes,
        plan.calls(),
        window.as_secs()
    );
    let bar = indicatif::ProgressBar::new(plan.rows as u64);
    let limits =
        switchyard::pacing::Limits::parse(&std::env::var("RATE_LIMITS").unwrap_or_default())
            .map_err(anyhow::Error::msg)?;
    let (report, _keep) = if sandbox {
        let emulator = crate::emulator::Emulator::start_serial()?;
        let config = emulator.sdk_config().await;
        let template = crate::template::Template::load(&crate::repo_root().join("template.yaml"))?;
        let prefix = format!("sy-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let p = crate::provision::provision(&config, &template, &prefix, &HashMap::new()).await?;
        let table = p.refs["PacingTable"].clone();
        let sb = crate::sandbox::Sandbox::start().await?;
        // HubSpot's Free/Starter budget: 100 calls in any ten seconds.
        sb.set_hubspot_rate_limit(Some(100));
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let sync = HubspotSync {
            http: switchyard::connectors::http_client(),
            base_url: sb.base_url("hubspot"),
            token: SecretString::from(sb.credentials.hubspot_token.clone()),
            pacer: Pacer {
                limiter: switchyard::pacing::Limiter::new(ddb.clone(), &table),
                limits,
                breaker: switchyard::pacing::Breaker::new(ddb, &table),
            },
            credential: "sandbox".into(),
        };
        let report = sync.run(&customers, window, &bar).await?;
        let refused = sb.hubspot_counts().1;
        sb.stop();
        (report, Some((emulator, refused)))
    } else {
        let aws = switchyard::aws::AwsClients::from_env().await;
        let s = switchyard::settings::Settings::from_env();
        let secret_id = s
            .connection_secret_id("hubspot")
            .context("HUBSPOT_SECRET_ID is not set")?
            .to_owned();
        let cache = switchyard::secrets::SecretCache::new(
            aws.secrets.clone(),
            switchyard::secrets::CACHE_TTL,
        );
        let credential = cache.credential(&secret_id).await?;
        let base_url = credential.base_url().to_owned();
        let token = match credential {
            switchyard::secrets::Credential::BearerToken { token, .. } => token,
            switchyard::secrets::Credential::Oauth2Refresh { access_token, .. } => access_token,
            _ => bail!("{secret_id} is not a bearer_token or oauth2_refresh credential"),
        };
        let table = s.pacing_table().map_err(|e| anyhow::anyhow!(e))?.to_owned();
        let sync = HubspotSync {
            http: switchyard::connectors::http_client(),
            base_url,
            token,
            pacer: Pacer {
                limiter: switchyard::pacing::Limiter::new(aws.ddb.clone(), &table),
                limits,
                breaker: switchyard::pacing::Breaker::new(aws.ddb.clone(), &table),
            },
            credential: secret_id,
        };
        (sync.run(&customers, window, &bar).await?, None)
    };
    bar.finish_and_clear();
    println!(
        "synced {} contacts in {} calls over {:.1} s; 429s met: {}",
        report.synced,
        report.calls,
        report.elapsed.as_secs_f64(),
        report.rate_limited
    );
    Ok(())
}

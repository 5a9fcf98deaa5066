//! `switchyard smoke`: after a deploy, is the stack really working? It reads the stack's outputs
//! and checks what no template linter can: a signed test event goes through intake, classify and
//! act to its end (under the reserved source `smoke`, which act completes without a vendor
//! call), the alarm topic can be published to by CloudWatch and reaches somebody, and the
//! canary has been running. The same checks run against AWS and against the local stack.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use aws_config::SdkConfig;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::json;

/// A stack's outputs, by output key.
pub type Outputs = BTreeMap<String, String>;

/// The outputs of the CloudFormation stack `name`.
pub async fn stack_outputs(config: &SdkConfig, name: &str) -> Result<Outputs> {
    let out = aws_sdk_cloudformation::Client::new(config)
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .with_context(|| format!("reading the outputs of stack {name}"))?;
    let stack = out
        .stacks()
        .first()
        .ok_or_else(|| anyhow!("no stack named {name}"))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// One line of the smoke table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Check {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn row(check: &'static str, result: Result<String>) -> Check {
    match result {
        Ok(detail) => Check {
            check,
            ok: true,
            detail,
        },
        Err(e) => Check {
            check,
            ok: false,
            detail: format!("{e:#}"),
        },
    }
}

/// What to check against, and how long to wait for.
pub struct Smoke<'a> {
    pub outputs: &'a Outputs,
    pub config: &'a SdkConfig,
    /// How long the test event may take to reach its end.
    pub settle: Duration,
    /// The canary must have run within this (twice its schedule, by default).
    pub canary_within: chrono::Duration,
}

impl Smoke<'_> {
    fn output(&self, key: &str) -> Result<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| anyhow!("the stack has no output {key}"))
    }

    /// Every check, in order; the test event first (it takes longest to settle).
    pub async fn run(&self) -> Vec<Check> {
        let sent = Utc::now();
        vec![
            row("test event", self.event().await),
            row("function logs", self.logs(sent).await),
            row("alarm topic key", self.topic_key().await),
            row("alarm subscription", self.subscription().await),
            row("canary", self.canary().await),
        ]
    }

    /// A signed `smoke` event to the function URL, followed through the status endpoint.
    async fn event(&self) -> Result<String> {
        let webhooks = self.output("WebhookUrl")?;
        let secret_id = self.output("IntakeSigningSecretArn")?;
        let secrets = aws_sdk_secretsmanager::Client::new(self.config);
        let value =
            switchyard::secrets::read_stage(&secrets, secret_id, switchyard::secrets::AWSCURRENT)
                .await?;
        let signing = switchyard::secrets::parse_signing(secret_id, &value)?;
        let first = |key: &str| {
            signing
                .get(key)
                .and_then(|l| l.first())
                .map(|s| s.expose_secret().to_owned())
        };
        let key = first("smoke").ok_or_else(|| {
            anyhow!(
                "the intake secret has no \"smoke\" key: add \"smoke\": [\"whsec_<base64>\"] to it"
            )
        })?;
        let status_token = first("status").ok_or_else(|| {
            anyhow!(
                "the intake secret has no \"status\" token: add \"status\": [\"<random>\"] to it"
            )
        })?;
        let now = Utc::now();
        let id = format!("smoke_{}", uuid::Uuid::new_v4().simple());
        let body = json!({"type": "switchyard.smoke", "timestamp": now.timestamp(),
            "data": {"id": id, "subject": "switchyard smoke test"}})
        .to_string();
        let http = reqwest::Client::new();
        let mut req = http.post(format!("{webhooks}smoke")).body(body.clone());
        for (k, v) in crate::fixtures::standard_headers(&key, "webhook", &id, now, &body) {
            req = req.header(k, v);
        }
        let started = Instant::now();
        let answer = req.send().await.context("sending the test event")?;
        let status = answer.status();
        let answer: serde_json::Value = answer.json().await.unwrap_or_default();
        if status.as_u16() != 202 {
            anyhow::bail!("intake answered {status}: {}", answer["error"]);
        }
        let event_id = answer["event_id"].as_str().unwrap_or_default().to_owned();
        let base = webhooks.trim_end_matches("webhooks/");
        loop {
            let state: serde_json::Value = http
                .get(format!("{base}events/{event_id}"))
                .bearer_auth(&status_token)
                .send()
                .await
                .context("reading the event's status")?
                .json()
                .await
                .unwrap_or_default();
            match state["status"].as_str() {
                Some("acted") => {
                    return Ok(format!(
                        "event {event_id} accepted, classified and done in {} ms",
                        started.elapsed().as_millis()
                    ))
                }
                Some(s @ ("failed" | "in review" | "parked")) => {
                    anyhow::bail!("event {event_id} ended {s}: {}", state["reason"])
                }
                s if started.elapsed() > self.settle => anyhow::bail!(
                    "event {event_id} still {} after {} s: is classify or act running?",
                    s.unwrap_or("unknown"),
                    self.settle.as_secs()
                ),
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }

    /// The three functions the test event went through have written to their log groups since
    /// it was sent, and the canary within its schedule (Lambda writes them with each function's
    /// role: a log permission on the wrong group shows here, and so would its lost metrics).
    async fn logs(&self, sent: chrono::DateTime<Utc>) -> Result<String> {
        let groups: Vec<&str> = self.output("FunctionLogGroups")?.split(',').collect();
        let [intake, classify, act, canary, ..] = groups.as_slice() else {
            anyhow::bail!("FunctionLogGroups names {} groups, not six", groups.len());
        };
        let logs = aws_sdk_cloudwatchlogs::Client::new(self.config);
        let latest = |group: &str, since: chrono::DateTime<Utc>| {
            let logs = logs.clone();
            let group = group.to_owned();
            async move {
                logs.filter_log_events()
                    .log_group_name(&group)
                    .start_time(since.timestamp_millis())
                    .limit(1)
                    .send()
                    .await
                    .map(|o| !o.events().is_empty())
                    .map_err(|e| anyhow!("reading {group}: {}", switchyard::aws::error_message(&e)))
            }
        };
        // Delivery to CloudWatch Logs takes seconds: wait for it up to the settle time.
        let started = Instant::now();
        let mut silent: Vec<&str>;
        loop {
            silent = Vec::new();
            for g in [intake, classify, act] {
                if !latest(g, sent).await? {
                    silent.push(g);
                }
            }
            if silent.is_empty() || started.elapsed() > self.settle {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if !silent.is_empty() {
            anyhow::bail!(
                "no line since the test event in {}: can the function write its log group?",
                silent.join(", ")
            );
        }
        if !latest(canary, Utc::now() - self.canary_within).await? {
            anyhow::bail!(
                "no canary line in {canary} within {} min",
                self.canary_within.num_minutes()
            );
        }
        Ok(format!(
            "intake, classify and act logged the test event; the canary within {} min",
            self.canary_within.num_minutes()
        ))
    }

    /// The topic is unencrypted, or under a key whose policy lets CloudWatch use it.
    async fn topic_key(&self) -> Result<String> {
        let topic = self.output("AlarmTopic")?;
        let attrs = aws_sdk_sns::Client::new(self.config)
            .get_topic_attributes()
            .topic_arn(topic)
            .send()
            .await
            .context("reading the alarm topic")?;
        let key = attrs
            .attributes()
            .and_then(|a| a.get("KmsMasterKeyId"))
            .cloned()
            .unwrap_or_default();
        if key.is_empty() {
            return Ok("unencrypted: CloudWatch can publish".into());
        }
        if key.ends_with("alias/aws/sns") {
            anyhow::bail!("encrypted with alias/aws/sns, which CloudWatch cannot use: no alarm would notify anyone");
        }
        let policy = aws_sdk_kms::Client::new(self.config)
            .get_key_policy()
            .key_id(&key)
            .policy_name("default")
            .send()
            .await
            .with_context(|| format!("reading the key policy of {key}"))?
            .policy
            .unwrap_or_default();
        if cloudwatch_may_use(&policy) {
            Ok(format!(
                "{key}: its policy lets cloudwatch.amazonaws.com publish"
            ))
        } else {
            anyhow::bail!("{key}'s policy has no statement letting cloudwatch.amazonaws.com use it (kms:Decrypt, kms:GenerateDataKey*)")
        }
    }

    /// At least one confirmed subscription (an unconfirmed e-mail receives nothing).
    async fn subscription(&self) -> Result<String> {
        let topic = self.output("AlarmTopic")?;
        let sns = aws_sdk_sns::Client::new(self.config);
        let subs = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .send()
            .await
            .context("listing the alarm topic's subscriptions")?;
        let mut confirmed = Vec::new();
        let mut pending = 0;
        for s in subs.subscriptions() {
            let arn = s.subscription_arn().unwrap_or_default();
            let waiting = arn == "PendingConfirmation"
                || sns
                    .get_subscription_attributes()
                    .subscription_arn(arn)
                    .send()
                    .await
                    .ok()
                    .and_then(|a| {
                        a.attributes()
                            .and_then(|m| m.get("PendingConfirmation"))
                            .cloned()
                    })
                    .is_some_and(|v| v == "true");
            if waiting {
                pending += 1;
            } else {
                confirmed.push(format!(
                    "{} {}",
                    s.protocol().unwrap_or_default(),
                    s.endpoint().unwrap_or_default()
                ));
            }
        }
        subscribers(&confirmed, pending)
    }

    /// The canary's last run (its heartbeat in the drift table) is recent enough.
    async fn canary(&self) -> Result<String> {
        let table = self.output("DriftTableName")?;
        let store = switchyard::drift::store::DriftStore::new(
            aws_sdk_dynamodb::Client::new(self.config),
            table,
        );
        let ran = store
            .canary_ran_at()
            .await?
            .ok_or_else(|| anyhow!("the canary has never run"))?;
        let ago = Utc::now() - ran;
        if ago > self.canary_within {
            anyhow::bail!(
                "last ran {} min ago, more than {} min: is its schedule enabled?",
                ago.num_minutes(),
                self.canary_within.num_minutes()
            );
        }
        Ok(format!("ran {} s ago", ago.num_seconds()))
    }
}

/// The verdict on a topic's subscriptions: somebody confirmed, or why nobody is told.
fn subscribers(confirmed: &[String], pending: usize) -> Result<String> {
    match (confirmed.is_empty(), pending) {
        (false, _) => Ok(format!("{} confirmed: {}", confirmed.len(), confirmed.join(", "))),
        (true, 0) => anyhow::bail!("nobody is subscribed: no alarm reaches a person (deploy with AlarmEmail, or subscribe your pager)"),
        (true, n) => anyhow::bail!("{n} subscription(s) waiting for confirmation: click the link SNS sent"),
    }
}

/// Whether a key policy has an Allow statement for `cloudwatch.amazonaws.com` with the two
/// actions publishing to an encrypted topic needs.
pub fn cloudwatch_may_use(policy: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy) else {
        return false;
    };
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    statements.iter().any(|s| {
        let actions = list(&s["Action"]);
        let has = |a: &str| actions.iter().any(|x| x == a || x == "kms:*");
        s["Effect"] == "Allow"
            && list(&s["Principal"]["Service"])
                .iter()
                .any(|p| p == "cloudwatch.amazonaws.com")
            && has("kms:Decrypt")
            && (has("kms:GenerateDataKey*") || has("kms:GenerateDataKey"))
    })
}

/// The table `switchyard smoke` prints.
pub fn render(checks: &[Check]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["check", "result", "detail"]);
    for c in checks {
        table.add_row([c.check, if c.ok { "ok" } else { "FAILED" }, &c.detail]);
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unconfirmed_subscription_reaches_nobody() {
        let pending = subscribers(&[], 1).unwrap_err().to_string();
        assert!(pending.contains("waiting for confirmation"), "{pending}");
        assert!(subscribers(&[], 0).is_err());
        assert!(subscribers(&["email a@b".into()], 1).is_ok());
    }

    #[test]
    fn a_key_policy_without_cloudwatch_is_refused() {
        let account_only = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"kms:*","Resource":"*"}]}"#;
        assert!(!cloudwatch_may_use(account_only));
        let decrypt_only = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":["kms:Decrypt"],"Resource":"*"}]}"#;
        assert!(!cloudwatch_may_use(decrypt_only));
        let ours = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":["kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*"}]}"#;
        assert!(cloudwatch_may_use(ours));
        assert!(!cloudwatch_may_use("not json"));
    }
}

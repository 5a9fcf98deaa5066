//! The whole local stack in one value: emulator, resources from `template.yaml`, SaaS sandbox,
//! and the runner hosting the five handlers. The demo and the end-to-end tests start it the same way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;
use switchyard::aws::AwsClients;
use switchyard::decisions::DecisionStore;
use switchyard::handlers::canary::ProbeResult;
use switchyard::handlers::{act, canary, classify, intake};
use switchyard::settings::Settings;
use tokio::task::JoinHandle;

use crate::emulator::Emulator;
use crate::fixtures::SigningKeys;
use crate::local_credentials::{described_secrets, local_secrets};
use crate::provision::{function_users, provision, Provisioned};
use crate::runner::{self, Stats};
use crate::sandbox::Sandbox;
use crate::template::Template;

pub struct LocalStack {
    pub emulator: Emulator,
    pub sandbox: Sandbox,
    pub template: Template,
    pub provisioned: Provisioned,
    pub aws: AwsClients,
    pub signing: SigningKeys,
    /// `http://127.0.0.1:PORT`; webhooks go to `{webhook_base}/webhooks/{source}`.
    pub webhook_base: String,
    pub stats: Arc<Stats>,
    pub canary_results: Arc<Mutex<Vec<ProbeResult>>>,
    /// A routing config the functions use instead of the compiled-in one (`ROUTING_CONFIG`).
    pub routing_config: Option<std::path::PathBuf>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalStack {
    pub async fn start() -> Result<Self> {
        Self::start_with(&[]).await
    }

    /// Start with template parameters overridden, as `sam deploy --parameter-overrides` would.
    pub async fn start_with(overrides: &[(String, String)]) -> Result<Self> {
        Self::start_hosting(overrides, &[]).await
    }

    /// Start with the functions reading `routing` (a `routing.toml`) instead of the shipped one.
    pub async fn start_routed(routing: &str) -> Result<Self> {
        Self::start_full(&[], &[], Some(routing)).await
    }

    /// Start, leaving the functions named in `elsewhere` (classify, act) to worker processes
    /// (`workers::Worker`, fed by [`hosting`](Self::hosting)).
    pub async fn start_hosting(overrides: &[(String, String)], elsewhere: &[&str]) -> Result<Self> {
        Self::start_full(overrides, elsewhere, None).await
    }

    async fn start_full(
        overrides: &[(String, String)],
        elsewhere: &[&str],
        routing: Option<&str>,
    ) -> Result<Self> {
        let mut template = Template::load(&crate::repo_root().join("template.yaml"))?;
        // The sandbox plays every vendor, so every connection is in use (a deploy names its own).
        template
            .parameters
            .insert("Connectors".into(), switchyard::vendors::names().join(","));
        // Somebody to notify: moto confirms an e-mail subscription at once (AWS waits for the
        // click, which `switchyard smoke` checks for).
        template
            .parameters
            .insert("AlarmEmail".into(), "oncall@example.invalid".into());
        // The local stack's name: every resource's, and the described connectors' secrets live
        // under it (`<stack>/ConnectionSecretPrefix`), one stack's apart from another's.
        let prefix = format!("sy-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        for (name, value) in overrides {
            let Some(slot) = template.parameters.get_mut(name) else {
                anyhow::bail!(
                    "template.yaml has no parameter {name:?} (it has: {})",
                    template
                        .parameters
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            *slot = value.clone();
        }
        // IAM enforced: the stack is provisioned as the emulator's administrator, and each
        // function runs as a user holding only its template role's policies.
        let emulator = Emulator::start_enforcing_iam().await?;
        let config = emulator.sdk_config().await;
        let aws = AwsClients::new(&config);
        let sandbox = Sandbox::start().await?;
        let signing = SigningKeys::random();
        let mut provisioned = provision(
            &config,
            &template,
            &prefix,
            &local_secrets(&sandbox, &signing),
        )
        .await?;
        function_users(&config, &template, &mut provisioned).await?;
        described_secrets(
            &aws,
            &format!("{prefix}/{}", template.parameters["ConnectionSecretPrefix"]),
            &sandbox,
        )
        .await?;
        let stats = Arc::new(Stats::default());
        let _ = stats
            .metrics_file
            .set(std::env::temp_dir().join(format!("{prefix}-metrics.jsonl")));
        let canary_results = Arc::new(Mutex::new(Vec::new()));
        let mut stack = Self {
            emulator,
            sandbox,
            template,
            provisioned,
            aws,
            signing,
            webhook_base: String::new(),
            stats,
            canary_results,
            routing_config: None,
            tasks: Vec::new(),
        };
        if let Some(text) = routing {
            let path = std::env::temp_dir().join(format!("{prefix}-routing.toml"));
            std::fs::write(&path, text)?;
            stack.routing_config = Some(path);
        }
        stack.start_functions(elsewhere).await?;
        Ok(stack)
    }

    /// What a worker process needs to host a function against this stack's emulator.
    pub fn hosting(&self) -> Result<crate::workers::Hosting> {
        let mut functions = std::collections::BTreeMap::new();
        for name in crate::workers::HOSTABLE {
            let f = self.template.function(name)?;
            let mappings = self.mapping_defs(name)?;
            functions.insert(
                name.to_owned(),
                crate::workers::FunctionHosting {
                    key: self.provisioned.keys.get(name).cloned(),
                    log_group: Some(self.log_group(name)?),
                    env: self.local_env(name)?,
                    timeout_secs: f.timeout_secs,
                    mappings,
                },
            );
        }
        Ok(crate::workers::Hosting {
            endpoint: self.emulator.endpoint.clone(),
            functions,
            metrics_file: self.stats.metrics_file.get().cloned(),
        })
    }

    /// The clients `binary` runs with: signed with its own user's key, so the emulator allows
    /// it exactly what its role allows on AWS.
    pub async fn function_aws(&self, binary: &str) -> Result<AwsClients> {
        let key = self
            .provisioned
            .keys
            .get(binary)
            .with_context(|| format!("no IAM user for {binary}"))?;
        Ok(AwsClients::new(
            &crate::emulator::sdk_config_as(&self.emulator.endpoint, Some(key)).await,
        ))
    }

    /// A stream in `binary`'s log group, written with its own key (as Lambda does, with the
    /// function's role).
    pub async fn log_sink(&self, binary: &str) -> Result<runner::LogSink> {
        let key = self.provisioned.keys.get(binary);
        let config = crate::emulator::sdk_config_as(&self.emulator.endpoint, key).await;
        runner::LogSink::open(&config, &self.log_group(binary)?).await
    }

    /// `/aws/lambda/<function name>`, as the template names each function's group.
    pub fn log_group(&self, binary: &str) -> Result<String> {
        let f = self.template.function(binary)?;
        let name = self
            .provisioned
            .refs
            .get(&f.logical_id)
            .with_context(|| format!("no function {}", f.logical_id))?;
        Ok(format!("/aws/lambda/{name}"))
    }

    fn settings(&self, binary: &str) -> Result<(Settings, Duration)> {
        let f = self.template.function(binary)?;
        Ok((
            Settings::from_map(self.local_env(binary)?),
            Duration::from_secs(f.timeout_secs),
        ))
    }

    /// The function's environment from the template, plus what only the local stack needs:
    /// intake and act answer Slack's `response_url`s on the sandbox (on AWS, Slack's own only), and
    /// classify fetches the sandbox's signed file URLs over loopback HTTP (on AWS, never).
    pub fn local_env(&self, binary: &str) -> Result<std::collections::HashMap<String, String>> {
        let mut env = self
            .provisioned
            .function_env(&self.template, self.template.function(binary)?)?;
        if let Some(path) = &self.routing_config {
            env.insert("ROUTING_CONFIG".into(), path.display().to_string());
        }
        if binary == "intake" || binary == "act" {
            env.insert(
                "SLACK_RESPONSE_URL_BASE".into(),
                format!("http://{}/slack-hooks/", self.sandbox.addr),
            );
        }
        if binary == "classify" {
            env.insert("DOCUMENT_LOOPBACK_URLS".into(), "allow".into());
        }
        Ok(env)
    }

    async fn start_functions(&mut self, elsewhere: &[&str]) -> Result<()> {
        // One recorder for the process; each invocation's EMF lines are collected after it.
        switchyard::metrics::init(true);
        let (s, timeout) = self.settings("intake")?;
        let deps = Arc::new(intake::Intake::from_settings(
            &self.function_aws("intake").await?,
            &s,
        )?);
        let stats = self.stats.clone();
        let sink = Arc::new(self.log_sink("intake").await?);
        let handler: runner::UrlHandler = Arc::new(move |e| {
            let (deps, stats, sink) = (deps.clone(), stats.clone(), sink.clone());
            Box::pin(async move { stats.logged(Some(&sink), intake::handler(&deps, e)).await })
        });
        let (addr, task) = runner::serve_function_url(handler, timeout, self.stats.clone()).await?;
        self.webhook_base = format!("http://{addr}");
        self.provisioned.attrs.insert(
            "IntakeFunctionUrl.FunctionUrl".into(),
            format!("{}/", self.webhook_base),
        );
        self.tasks.push(task);

        if !elsewhere.contains(&"classify") {
            self.start_classify().await?;
        }
        if !elsewhere.contains(&"act") {
            self.start_act().await?;
        }
        self.start_canary().await
    }

    async fn start_classify(&mut self) -> Result<()> {
        let (s, _) = self.settings("classify")?;
        let aws = self.function_aws("classify").await?;
        let deps =
            Arc::new(classify::Classify::from_settings(&aws, &s).map_err(|e| anyhow::anyhow!(e))?);
        let stats = self.stats.clone();
        let sink = Arc::new(self.log_sink("classify").await?);
        let classify_handler: runner::SqsHandler = Arc::new(move |e| {
            let (deps, stats, sink) = (deps.clone(), stats.clone(), sink.clone());
            Box::pin(async move { stats.logged(Some(&sink), classify::handler(&deps, e)).await })
        });
        // The event source mapping polls with the function's role, as Lambda's does.
        self.start_mappings("classify", &aws.sqs, classify_handler)
    }

    async fn start_act(&mut self) -> Result<()> {
        let (s, _) = self.settings("act")?;
        let aws = self.function_aws("act").await?;
        let deps = Arc::new(act::Act::from_settings(&aws, &s).map_err(|e| anyhow::anyhow!(e))?);
        let stats = self.stats.clone();
        let sink = Arc::new(self.log_sink("act").await?);
        let act_handler: runner::SqsHandler = Arc::new(move |e| {
            let (deps, stats, sink) = (deps.clone(), stats.clone(), sink.clone());
            Box::pin(async move { stats.logged(Some(&sink), act::handler(&deps, e)).await })
        });
        self.start_mappings("act", &aws.sqs, act_handler)
    }

    /// The canary on its schedule. Its first run (probes and the first structure snapshot) is
    /// over before the stack is handed out, so nothing a caller does next races it.
    async fn start_canary(&mut self) -> Result<()> {
        let (s, timeout) = self.settings("canary")?;
        let aws = self.function_aws("canary").await?;
        let deps =
            Arc::new(canary::Canary::from_settings(&aws, &s).map_err(|e| anyhow::anyhow!(e))?);
        let sink = Arc::new(self.log_sink("canary").await?);
        for expression in &self.template.function("canary")?.schedules {
            let every = runner::parse_rate(expression)?;
            let (deps, results) = (deps.clone(), self.canary_results.clone());
            let (stats, sink) = (self.stats.clone(), sink.clone());
            let run = move || -> runner::BoxFut<()> {
                let (deps, results, stats, sink) =
                    (deps.clone(), results.clone(), stats.clone(), sink.clone());
                Box::pin(async move {
                    let event = lambda_runtime::LambdaEvent::new(
                        json!({"source": "aws.scheduler"}),
                        runner::context("canary", timeout),
                    );
                    if let Ok(r) = stats
                        .logged(Some(&sink), canary::handler(&deps, event))
                        .await
                    {
                        *results.lock().expect("canary results") = r;
                    }
                })
            };
            run().await;
            self.tasks
                .push(runner::start_schedule_after("canary", every, every, run));
        }
        Ok(())
    }

    /// A function's SQS event source mappings, resolved against this stack's queues.
    fn mapping_defs(&self, binary: &str) -> Result<Vec<crate::workers::MappingDef>> {
        let f = self.template.function(binary)?;
        f.sqs_events
            .iter()
            .map(|ev| {
                Ok(crate::workers::MappingDef {
                    queue_url: self.provisioned.queue_url(&ev.queue)?.to_owned(),
                    queue_arn: self
                        .provisioned
                        .arns
                        .get(&ev.queue)
                        .cloned()
                        .unwrap_or_default(),
                    batch_size: ev.batch_size,
                    concurrency: ev.maximum_concurrency,
                })
            })
            .collect()
    }

    fn start_mappings(
        &mut self,
        binary: &str,
        sqs: &aws_sdk_sqs::Client,
        handler: runner::SqsHandler,
    ) -> Result<()> {
        let timeout = Duration::from_secs(self.template.function(binary)?.timeout_secs);
        for m in self.mapping_defs(binary)? {
            let mapping = m.mapping(binary, timeout, handler.clone());
            self.tasks.extend(runner::start_mapping(
                sqs.clone(),
                mapping,
                self.stats.clone(),
            ));
        }
        Ok(())
    }

    pub fn webhook_url(&self, source: &str) -> String {
        format!("{}/webhooks/{source}", self.webhook_base)
    }

    pub fn decisions(&self) -> Result<DecisionStore> {
        let table = self
            .provisioned
            .refs
            .get("DecisionsTable")
            .context("no DecisionsTable")?;
        Ok(DecisionStore::new(self.aws.ddb.clone(), table))
    }

    pub fn drift_store(&self) -> Result<switchyard::drift::store::DriftStore> {
        let table = self
            .provisioned
            .refs
            .get("DriftTable")
            .context("no DriftTable")?;
        Ok(switchyard::drift::store::DriftStore::new(
            self.aws.ddb.clone(),
            table,
        ))
    }

    /// Run the canary now with its structure checks (`switchyard canary`), under `routing`
    /// instead of the configured routes when given.
    pub async fn canary_now(
        &self,
        routing: Option<switchyard::routing::RoutingConfig>,
    ) -> Result<Vec<ProbeResult>> {
        let (s, timeout) = self.settings("canary")?;
        let mut deps = canary::Canary::from_settings(&self.function_aws("canary").await?, &s)
            .map_err(|e| anyhow::anyhow!(e))?;
        if let Some(r) = routing {
            deps.routing = r;
        }
        let event = lambda_runtime::LambdaEvent::new(
            json!({"structure": true}),
            runner::context("canary", timeout),
        );
        let results = self
            .stats
            .flushed(canary::handler(&deps, event))
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        *self.canary_results.lock().expect("canary results") = results.clone();
        Ok(results)
    }

    /// What the ops commands read (`explain`, `stats`), pointed at this stack.
    pub async fn deployment(&self) -> Result<crate::ops::Deployment> {
        Ok(crate::ops::Deployment {
            decisions: self.decisions()?,
            cloudwatch: aws_sdk_cloudwatch::Client::new(&self.emulator.sdk_config().await),
            metrics_file: self.stats.metrics_file.get().cloned(),
        })
    }

    /// Invoke the sync function as its schedule would (`input` = the schedule's Input), after
    /// putting `csv` where it reads its export (`request.key`, or its default key).
    pub async fn sync(
        &self,
        csv: &[u8],
        input: serde_json::Value,
    ) -> Result<switchyard::handlers::sync::SyncSummary> {
        use switchyard::handlers::sync;
        let (s, timeout) = self.settings("sync")?;
        let deps = sync::SyncDeps::from_settings(&self.function_aws("sync").await?, &s)
            .map_err(|e| anyhow::anyhow!(e))?;
        let key = input
            .get("key")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&deps.default_key)
            .to_owned();
        self.aws
            .s3()
            .put_object()
            .bucket(&deps.bucket)
            .key(key)
            .body(csv.to_vec().into())
            .send()
            .await
            .context("uploading the sync input")?;
        sync::handler(
            &deps,
            lambda_runtime::LambdaEvent::new(input, runner::context("sync", timeout)),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))
    }

    /// `switchyard doctor` over the connections the canary is configured with.
    pub async fn doctor(&self) -> Result<Vec<switchyard::doctor::Report>> {
        let planned = switchyard::routing::RoutingConfig::from_env()?.planned_actions();
        self.doctor_for(&planned).await
    }

    /// `switchyard doctor` against the actions of another routing config.
    pub async fn doctor_for(
        &self,
        planned: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    ) -> Result<Vec<switchyard::doctor::Report>> {
        let (s, _) = self.settings("canary")?;
        let secrets = switchyard::secrets::SecretCache::new(
            self.aws.secrets.clone(),
            Duration::from_secs(60),
        );
        let connectors =
            switchyard::vendors::Connectors::new(switchyard::connectors::http_client(), secrets, s);
        let marks = self
            .provisioned
            .refs
            .get("PacingTable")
            .map(|t| switchyard::reconnect::Reconnect::new(self.aws.ddb.clone(), t));
        Ok(switchyard::doctor::check(&connectors, planned, marks.as_ref()).await)
    }

    /// The template's `Outputs` as a deploy would show them, resolved against this stack
    /// (those whose condition does not hold are left out): what `switchyard smoke` reads.
    pub fn outputs(&self) -> Result<crate::smoke::Outputs> {
        let mut out = crate::smoke::Outputs::new();
        for (key, (condition, value)) in &self.template.outputs {
            if let Some(c) = condition {
                if !self.template.holds(c)? {
                    continue;
                }
            }
            let value = self.template.branch(value)?.unwrap_or(value);
            let resolved = match crate::template::joined(value) {
                Some((sep, items)) => items
                    .iter()
                    .map(|i| self.provisioned.resolve(i))
                    .collect::<Result<Vec<_>>>()
                    .map(|v| v.join(&sep)),
                None => self.provisioned.resolve(value),
            };
            out.insert(
                key.clone(),
                resolved.with_context(|| format!("output {key}"))?,
            );
        }
        Ok(out)
    }

    /// `export NAME=value` lines that point the ops commands (explain, stats, doctor) at this
    /// stack from another shell: the emulator's endpoint and its administrator's key, and the
    /// settings the deployed functions get (tables, queues, connection secrets).
    pub fn exports(&self) -> Result<String> {
        let mut vars: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        for f in ["canary", "act", "intake"] {
            vars.extend(
                self.provisioned
                    .function_env(&self.template, self.template.function(f)?)?,
            );
        }
        vars.remove("RUST_LOG");
        vars.retain(|_, v| !v.is_empty());
        vars.insert("AWS_ENDPOINT_URL".into(), self.emulator.endpoint.clone());
        let admin = self
            .emulator
            .admin
            .clone()
            .context("the emulator has no administrator key")?;
        vars.insert("AWS_ACCESS_KEY_ID".into(), admin.id);
        vars.insert("AWS_SECRET_ACCESS_KEY".into(), admin.secret);
        vars.insert("AWS_REGION".into(), crate::emulator::REGION.into());
        if let Some(f) = self.stats.metrics_file.get() {
            vars.insert("SWITCHYARD_METRICS_FILE".into(), f.display().to_string());
        }
        Ok(vars
            .iter()
            .map(|(k, v)| format!("export {k}='{v}'\n"))
            .collect())
    }

    /// Messages waiting, in flight or delayed (handed back to wait for budget).
    pub async fn queue_depth(&self, logical_id: &str) -> Result<u64> {
        queue_depth(&self.aws.sqs, self.provisioned.queue_url(logical_id)?).await
    }

    /// What IAM refused so far, one line per kind of request: `act: dynamodb.PutItem (2×)`.
    /// Empty when every function had the grants it used.
    pub async fn denied(&self) -> Result<Vec<String>> {
        let who = |key: &str| {
            self.provisioned
                .keys
                .iter()
                .find(|(_, k)| k.id == key)
                .map(|(f, _)| f.clone())
                .or_else(|| {
                    (self.emulator.admin.as_ref().map(|a| a.id.as_str()) == Some(key))
                        .then(|| "administrator".to_owned())
                })
                .unwrap_or_else(|| format!("unknown key {key}"))
        };
        Ok(self
            .emulator
            .denied()
            .await?
            .into_iter()
            .map(|(what, n)| {
                let (op, key) = what.rsplit_once(' ').unwrap_or((what.as_str(), "-"));
                format!("{}: {op} ({n}×)", who(key))
            })
            .collect())
    }

    pub fn stop(self) {
        if let Some(f) = self.stats.metrics_file.get() {
            let _ = std::fs::remove_file(f);
        }
        for t in &self.tasks {
            t.abort();
        }
        self.sandbox.stop();
        // The emulator process is killed when `self.emulator` drops here.
    }
}

/// Messages waiting, in flight or delayed in one queue.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await?;
    let attrs = out.attributes.unwrap_or_default();
    let get = |k: QueueAttributeName| {
        attrs
            .get(&k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(get(QueueAttributeName::ApproximateNumberOfMessages)
        + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        + get(QueueAttributeName::ApproximateNumberOfMessagesDelayed))
}

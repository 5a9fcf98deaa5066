//! Functions hosted by their own worker process, so a test or the soak can kill one the way a
//! Lambda dies (SIGKILL: no destructor, no cleanup, claims left in progress, messages in flight)
//! and start another against the emulator state the first left behind.
//!
//! The stack writes a [`Hosting`] file (the emulator's endpoint and, per function, its resolved
//! environment and its queue mappings); `switchyard worker --hosting FILE --function act` reads it
//! and polls those queues exactly as the in-process runner does.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use switchyard::aws::AwsClients;
use switchyard::handlers::{act, classify};
use switchyard::settings::Settings;

use crate::runner::{self, Mapping, Stats};

/// The functions a worker process can host (the SQS-driven ones).
pub const HOSTABLE: [&str; 2] = ["classify", "act"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hosting {
    /// The AWS-API emulator every worker talks to.
    pub endpoint: String,
    pub functions: BTreeMap<String, FunctionHosting>,
    /// Where the functions' EMF lines go (the local stand-in for CloudWatch that
    /// `switchyard stats` reads), shared with the stack's own functions.
    #[serde(default)]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FunctionHosting {
    /// The function's own IAM key (with IAM enforced), so it runs with its role's grants only.
    #[serde(default)]
    pub key: Option<crate::emulator::AccessKey>,
    /// The function's log group, which it writes with its own key.
    #[serde(default)]
    pub log_group: Option<String>,
    pub env: HashMap<String, String>,
    pub timeout_secs: u64,
    pub mappings: Vec<MappingDef>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MappingDef {
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub concurrency: u32,
}

impl MappingDef {
    /// The runner's mapping for this queue, calling `handler` with `timeout` as its deadline.
    pub fn mapping(
        &self,
        function: &str,
        timeout: Duration,
        handler: runner::SqsHandler,
    ) -> Mapping {
        Mapping {
            function: function.to_owned(),
            queue_url: self.queue_url.clone(),
            queue_arn: self.queue_arn.clone(),
            batch_size: self.batch_size,
            concurrency: self.concurrency,
            timeout,
            handler,
        }
    }
}

impl Hosting {
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a hosting file", path.display()))
    }
}

/// Host `function` in this process until it is killed (or its parent goes away).
pub async fn run(hosting: &Hosting, function: &str) -> Result<()> {
    let Some(f) = hosting.functions.get(function) else {
        bail!(
            "the hosting file has no function {function:?} (it has: {})",
            hosting
                .functions
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let config = crate::emulator::sdk_config_as(&hosting.endpoint, f.key.as_ref()).await;
    let aws = AwsClients::new(&config);
    let settings = Settings::from_map(f.env.clone());
    switchyard::metrics::init(true);
    let stats = Arc::new(Stats::default());
    if let Some(path) = &hosting.metrics_file {
        let _ = stats.metrics_file.set(path.clone());
    }
    let sink = match &f.log_group {
        Some(group) => Some(Arc::new(runner::LogSink::open(&config, group).await?)),
        None => None,
    };
    let handler: runner::SqsHandler = match function {
        "classify" => {
            let deps = Arc::new(
                classify::Classify::from_settings(&aws, &settings)
                    .map_err(|e| anyhow::anyhow!(e))?,
            );
            let (stats, sink) = (stats.clone(), sink.clone());
            Arc::new(move |e| {
                let (deps, stats, sink) = (deps.clone(), stats.clone(), sink.clone());
                Box::pin(async move {
                    stats
                        .logged(sink.as_deref(), classify::handler(&deps, e))
                        .await
                })
            })
        }
        "act" => {
            let deps =
                Arc::new(act::Act::from_settings(&aws, &settings).map_err(|e| anyhow::anyhow!(e))?);
            let (stats, sink) = (stats.clone(), sink.clone());
            Arc::new(move |e| {
                let (deps, stats, sink) = (deps.clone(), stats.clone(), sink.clone());
                Box::pin(async move { stats.logged(sink.as_deref(), act::handler(&deps, e)).await })
            })
        }
        other => bail!(
            "{other} is not hosted by a worker (only {})",
            HOSTABLE.join(", ")
        ),
    };
    let mut tasks = Vec::new();
    for m in &f.mappings {
        tasks.extend(runner::start_mapping(
            aws.sqs.clone(),
            m.mapping(
                function,
                Duration::from_secs(f.timeout_secs),
                handler.clone(),
            ),
            stats.clone(),
        ));
    }
    eprintln!(
        "switchyard worker: {function} polling {} queue(s)",
        f.mappings.len()
    );
    // A worker whose stack went away (its parent killed) stops too: no orphans.
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
    }
}

/// A worker process; killed (SIGKILL) when dropped.
pub struct Worker {
    child: Child,
    pub function: String,
}

/// Set in a worker's environment when its log lines should be printed (the worker then installs
/// the JSON subscriber, and its parent passes its stdout through).
pub const WORKER_LOG: &str = "SWITCHYARD_WORKER_LOG";

impl Worker {
    /// Start `exe worker --hosting FILE --function NAME` (`exe`: the `switchyard` binary). With
    /// `logs`, the worker writes its JSON log lines to this process's stdout (`--logs`), as the
    /// in-process functions do; `SWITCHYARD_WORKER_LOG` set in the environment does the same.
    pub fn spawn(exe: &Path, hosting: &Path, function: &str, logs: bool) -> Result<Self> {
        let logs = logs || std::env::var_os(WORKER_LOG).is_some();
        let out = || {
            if logs {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let mut command = Command::new(exe);
        command
            .args(["worker", "--hosting"])
            .arg(hosting)
            .args(["--function", function])
            .stdin(Stdio::null())
            .stdout(out())
            .stderr(out());
        if logs {
            command.env(WORKER_LOG, "1");
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting a {function} worker ({})", exe.display()))?;
        Ok(Self {
            child,
            function: function.to_owned(),
        })
    }

    /// Kill it as Lambda's sandbox dies: SIGKILL, nothing runs after.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

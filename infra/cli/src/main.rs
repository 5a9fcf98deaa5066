//! The `switchyard` command-line tool.

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
#[cfg(feature = "local")]
mod bench;
mod canary;
mod commands;
mod operator;

#[cfg(feature = "local")]
use switchyard_infra::{demo, stack::LocalStack};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "AI automation wired safely into the SaaS tools where work happens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse a vendor date (ISO 8601, RFC 2822, HTTP-date, epoch s/ms/µs, Slack ts) to RFC 3339 UTC.
    ParseDate { input: String },
    /// Train, evaluate and cross-validate the embedded classifier.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Check webhooks by hand.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Check documents offline, as classify would see them.
    #[command(subcommand)]
    Document(DocumentCommand),
    /// Is every configured connection ready? Exits 1 when one is not.
    Doctor {
        /// One JSON object per connection instead of the table.
        #[arg(long)]
        json: bool,
        /// Check the local stack's connections (emulator + sandbox) instead of the deployment's
        /// (`*_SECRET_ID` and AWS settings from the environment).
        #[arg(long)]
        local: bool,
    },
    /// Run the canary now: every connection's probe and API structure check (read-only calls),
    /// then the open API drift findings. Exits 1 when a probe failed or a new breaking finding
    /// is open. `switchyard canary ack <id>` acknowledges a finding.
    Canary {
        #[command(subcommand)]
        command: Option<canary::CanaryCommand>,
        #[arg(long)]
        json: bool,
        /// Check a fresh local stack (emulator + sandbox) instead of the deployment's
        /// connections (`DRIFT_TABLE`, `*_SECRET_ID` and AWS settings from the environment).
        #[arg(long)]
        local: bool,
    },
    /// The whole story of one event: what arrived, how it was classified and why, the route,
    /// every action attempt with the vendor's answers, and where it is now.
    Explain {
        /// switchyard's event id, or the vendor's delivery id (looked up over the last 7 days).
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// What happened in a window: received, accepted, rejected by reason, duplicates,
    /// auto-routed, reviewed, failed, per source, category and connector, vendor latency.
    Stats {
        /// The window up to now: 24h, 90m, 7d.
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(long)]
        json: bool,
    },
    /// Move dead-lettered messages back to their queue (from its DLQ): receive, filter, send,
    /// delete. Safe to interrupt and rerun: the stages' keys absorb a copy sent twice.
    Redrive {
        /// Which queue to refill from its DLQ: classify, act or review.
        #[arg(long, value_parser = ["classify", "act", "review"])]
        queue: String,
        /// Only messages with source=…, event=…, connector=… or category=… (repeatable; all must hold).
        #[arg(long)]
        filter: Vec<switchyard_infra::redrive::Filter>,
        /// Count what would move, move nothing.
        #[arg(long)]
        dry_run: bool,
        /// Move at most this many.
        #[arg(long)]
        max: Option<u64>,
        /// At most this many messages per second.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// After a deploy: a signed test event through intake, classify and act to its end (the
    /// reserved source `smoke`, which act completes without a vendor call), the alarm topic's
    /// key and a confirmed subscription, and the canary's last run. Prints a table; exits 1 on
    /// a problem. Reads the stack's outputs (`--stack`), or a file of them (`--outputs`, or
    /// `SWITCHYARD_OUTPUTS`, which `switchyard local --stay-up` prints).
    Smoke {
        /// The CloudFormation stack (its outputs, with credentials from the environment).
        #[arg(long, conflicts_with = "outputs")]
        stack: Option<String>,
        /// A JSON object of output name → value.
        #[arg(long, env = "SWITCHYARD_OUTPUTS")]
        outputs: Option<std::path::PathBuf>,
        /// How long the test event may take to be done.
        #[arg(long, default_value_t = 60)]
        settle_secs: u64,
        /// The canary must have run within this many minutes (twice its 15-minute schedule).
        #[arg(long, default_value_t = 30)]
        canary_within_minutes: i64,
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "local")]
    /// Host one function (classify or act) in this process against a running local stack, as
    /// its own Lambda would be: kill it, start another, and it carries on from the state left.
    Worker {
        /// The hosting file the stack wrote (emulator endpoint, the function's environment).
        #[arg(long)]
        hosting: std::path::PathBuf,
        #[arg(long, value_parser = ["classify", "act"])]
        function: String,
    },
    #[cfg(feature = "local")]
    /// Crash-and-fault soak: N signed webhooks (with redeliveries and concurrent duplicates)
    /// while classify and act run as worker processes SIGKILLed K times, with vendor faults;
    /// reports faults served, kills by what the killed worker held, terminal states and effects
    /// per event from the records and the sandbox's ledger.
    Soak {
        #[arg(long, default_value_t = 1000)]
        events: usize,
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// Of the kills, how many are aimed at the worst moment: act killed after a vendor made
        /// the effect and before its answer arrived (default: a third of --kills, rounded up).
        #[arg(long)]
        aimed: Option<usize>,
        /// The kill schedule's seed (printed by every run): the same seed, the same plan.
        #[arg(long)]
        seed: Option<u64>,
        /// No vendor faults (kills only).
        #[arg(long)]
        no_faults: bool,
        /// Stop waiting for the pipeline to drain after this many seconds.
        #[arg(long, default_value_t = 900)]
        settle_secs: u64,
        /// End with one JSON line: events, terminal, duplicated, lost, in_flight, …
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "local")]
    /// The SaaS sandbox on its own (every vendor, on loopback), with its admin API under
    /// `/_admin` (ledger, faults, storm, tickets) for any test suite; Ctrl-C stops it.
    Sandbox {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Run an event again (its copy read from the review queue or a DLQ): by default under the
    /// same keys, so actions already done are skipped; --as-new repeats everything it plans.
    Replay {
        id: String,
        #[arg(long, value_parser = ["classify", "act"], default_value = "act")]
        from: String,
        /// A new event id and new keys: what it plans runs again even if it was done.
        #[arg(long)]
        as_new: bool,
        /// Go ahead with an --as-new replay after its plan is shown.
        #[arg(long)]
        yes: bool,
    },
    /// The human-review inbox: list and show read the decision records (no queue message is
    /// received, so looking never dead-letters an item); resolve acts on or dismisses one.
    #[command(subcommand)]
    Review(ReviewCommand),
    #[cfg(feature = "local")]
    /// Paced bulk work that spreads its calls across a window.
    #[command(subcommand)]
    Batch(BatchCommand),
    #[cfg(feature = "local")]
    /// Benchmarks that need the emulator and the sandbox.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Check how a connector reads vendor responses.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    #[cfg(feature = "local")]
    /// Run the whole pipeline locally (AWS emulator + SaaS sandbox), send demo webhooks, print a summary.
    Local {
        /// Stay up after the demo so you can send your own webhooks (Ctrl-C stops everything).
        #[arg(long)]
        stay_up: bool,
        /// Print the functions' JSON logs (on stdout, between the demo's lines).
        #[arg(long)]
        logs: bool,
        /// Template parameters as NAME=VALUE, like `sam deploy --parameter-overrides`; e.g.
        /// `LlmModel=sandbox` classifies with the sandbox's stand-in LLM.
        /// Several may follow one flag (`A=1 B=2`, or as one quoted string), as with SAM; SAM's
        /// `ParameterKey=A,ParameterValue=1` form works too.
        #[arg(long = "parameter-overrides", num_args = 1..)]
        overrides: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DocumentCommand {
    /// What a file is (text, scanned, encrypted, corrupt, image, unsupported) and what it gives;
    /// exits 0 whatever the file is.
    Inspect {
        file: std::path::PathBuf,
        /// One JSON object: kind, mime, pages, text_chars, language (ISO 639-3), reason.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Verify a recorded request: prints `valid` (exit 0) or `invalid: REASON` (exit 1).
    Verify {
        /// {"scheme","secret","method","url","headers","body","now"?}
        case: std::path::PathBuf,
    },
    /// Print the canonical event(s) a vendor payload normalizes to.
    Normalize {
        #[arg(long)]
        source: String,
        file: std::path::PathBuf,
        /// A request header the vendor sends (e.g. `X-GitHub-Event: issues`); repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// Events waiting for a human, oldest first.
    List {
        /// How far back to look: 24h, 7d, 14d.
        #[arg(long, default_value = "14d")]
        since: String,
        #[arg(long)]
        json: bool,
    },
    /// One item's whole story (as `switchyard explain`).
    Show { id: String },
    /// Close an item: act on it as a category, or dismiss it.
    Resolve {
        id: String,
        /// Act as this category: its route plans the actions, act performs them once.
        #[arg(long, conflicts_with = "dismiss", required_unless_present = "dismiss")]
        act: Option<String>,
        /// Close it without acting.
        #[arg(long)]
        dismiss: bool,
        /// Why (kept on the decision record).
        #[arg(long, default_value = "handled by hand")]
        note: String,
    },
}

#[cfg(feature = "local")]
#[derive(Subcommand)]
enum BatchCommand {
    /// Upsert customers (CSV: email,firstname,lastname,company_domain) as contacts through the
    /// vendor's bulk endpoint, each linked to its company (read once per domain).
    Contacts {
        /// hubspot (batch upsert, 100 per call), salesforce (sObject Collections, 200 per call) or
        /// zendesk (users/create_or_update_many, 100 per job).
        #[arg(long, default_value = "hubspot")]
        connector: String,
        #[arg(long)]
        input: std::path::PathBuf,
        /// Spread the calls across this many seconds.
        #[arg(long, default_value_t = 600)]
        window_seconds: u64,
        /// Against the local SaaS sandbox (and emulator) instead of HubSpot.
        #[arg(long)]
        sandbox: bool,
    },
}

#[derive(Subcommand)]
enum ConnectorCommand {
    /// Validate a connector description (shared/connectors/NAME.toml); with --event, print the
    /// requests it would send for a sample event under the routing config, sending nothing.
    Check {
        file: std::path::PathBuf,
        /// A normalized event, an act message, or what `switchyard explain --json` prints.
        #[arg(long)]
        event: Option<std::path::PathBuf>,
        /// The base URL to show (the connection secret holds the real one).
        #[arg(long, default_value = "https://api.example.invalid")]
        base_url: String,
    },
    /// Triage a recorded response: prints {"outcome","retry_after_ms","reason"} as one JSON line.
    Triage {
        /// zendesk, jira, slack, teams, hubspot, salesforce or oauth2 (a token endpoint).
        #[arg(long)]
        vendor: String,
        /// {"status": 429, "headers": {"Name": "value"} or [["Name", "value"]], "body": "…"}
        response: std::path::PathBuf,
        /// Unix seconds that absolute reset times are measured from (default: the clock).
        #[arg(long)]
        now: Option<f64>,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    #[arg(long, default_value_t = switchyard::model::TrainConfig::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = switchyard::model::TrainConfig::default().learning_rate)]
    learning_rate: f32,
    /// Keep features seen in at least this many messages.
    #[arg(long, default_value_t = switchyard::model::TrainConfig::default().min_df)]
    min_df: u32,
}

impl TrainArgs {
    fn config(&self) -> switchyard::model::TrainConfig {
        switchyard::model::TrainConfig {
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            min_df: self.min_df,
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Train from a CSV with a `text,category` header.
    Train {
        #[arg(long)]
        data: std::path::PathBuf,
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        train: TrainArgs,
    },
    /// Write the built-in model (trained from shared/examples/support-desk.csv) to OUT; the
    /// functions load it compiled in from shared/examples/support-desk.model.
    Builtin {
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Accuracy, macro-F1, latency and accuracy/coverage per confidence threshold.
    Eval {
        #[arg(long)]
        model: std::path::PathBuf,
        #[arg(long)]
        data: std::path::PathBuf,
    },
    /// k-fold cross-validation on one labelled CSV (tune here, never on a test split).
    Cv {
        #[arg(long)]
        data: std::path::PathBuf,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        #[command(flatten)]
        train: TrainArgs,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Model(ModelCommand::Train { data, out, train }) => {
            std::process::exit(commands::model_train(&data, &out, &train.config()))
        }
        Command::Model(ModelCommand::Builtin { out }) => {
            let model = switchyard::classifier::train_builtin()?;
            model.save(&out)?;
            println!(
                "built-in model: {} categories, {} features; wrote {}",
                model.labels.len(),
                model.vocab.len(),
                out.display()
            );
            Ok(())
        }
        Command::Model(ModelCommand::Eval { model, data }) => {
            std::process::exit(commands::model_eval(&model, &data))
        }
        Command::Model(ModelCommand::Cv { data, folds, train }) => {
            std::process::exit(commands::model_cv(&data, folds, &train.config()))
        }
        Command::ParseDate { input } => std::process::exit(commands::parse_date(&input)),
        Command::Webhook(WebhookCommand::Verify { case }) => {
            std::process::exit(commands::webhook_verify(&case))
        }
        Command::Document(DocumentCommand::Inspect { file, json }) => {
            std::process::exit(commands::document_inspect(&file, json))
        }
        Command::Webhook(WebhookCommand::Normalize {
            source,
            file,
            headers,
        }) => std::process::exit(commands::webhook_normalize(&source, &file, &headers)),
        Command::Smoke {
            stack,
            outputs,
            settle_secs,
            canary_within_minutes,
            json,
        } => {
            let config = switchyard::aws::config_loader().load().await;
            let outputs = match (stack, outputs) {
                (Some(name), _) => switchyard_infra::smoke::stack_outputs(&config, &name).await?,
                (None, Some(path)) => serde_json::from_slice(
                    &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                )
                .with_context(|| format!("{} is not a JSON object of outputs", path.display()))?,
                (None, None) => anyhow::bail!(
                    "name the stack (--stack NAME) or a file of its outputs (--outputs FILE)"
                ),
            };
            let checks = switchyard_infra::smoke::Smoke {
                outputs: &outputs,
                config: &config,
                settle: std::time::Duration::from_secs(settle_secs),
                canary_within: chrono::Duration::minutes(canary_within_minutes),
            }
            .run()
            .await;
            if json {
                for c in &checks {
                    println!("{}", serde_json::to_string(c)?);
                }
            } else {
                print!("{}", switchyard_infra::smoke::render(&checks));
            }
            if checks.iter().any(|c| !c.ok) {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Doctor { json, local } => {
            let (reports, stack) = if local {
                local_stack_doctor().await?
            } else {
                let aws = switchyard::aws::AwsClients::from_env().await;
                let s = switchyard::settings::Settings::from_env();
                let secrets = switchyard::secrets::SecretCache::new(
                    aws.secrets.clone(),
                    std::time::Duration::from_secs(60),
                );
                let marks = s
                    .pacing_table()
                    .ok()
                    .map(|t| switchyard::reconnect::Reconnect::new(aws.ddb.clone(), t));
                let connectors = switchyard::vendors::Connectors::new(
                    switchyard::connectors::http_client(),
                    secrets,
                    s,
                );
                (
                    switchyard::doctor::check(
                        &connectors,
                        &switchyard::routing::RoutingConfig::from_env()?.planned_actions(),
                        marks.as_ref(),
                    )
                    .await,
                    None,
                )
            };
            if reports.is_empty() {
                eprintln!(
                    "no connection configured: set each connection's secret id ({}; \
                     CONNECTION_SECRET_PREFIX for described connectors) and AWS credentials \
                     with a region, or paste the `export` lines `switchyard local --stay-up` \
                     prints; `--local` checks a fresh local stack",
                    switchyard::vendors::BUILT_IN
                        .iter()
                        .map(|v| format!("{}_SECRET_ID", v.name.to_ascii_uppercase()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                std::process::exit(1);
            }
            if json {
                for r in &reports {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                print!("{}", switchyard::doctor::render(&reports));
            }
            if let Some(stop) = stack {
                stop();
            }
            if reports.is_empty() || reports.iter().any(|r| !r.ready) {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Explain { id, json } => {
            let dep = switchyard_infra::ops::Deployment::from_env().await?;
            match switchyard_infra::ops::find(&dep.decisions, &id).await? {
                Some(r) if json => println!("{}", switchyard_infra::ops::story_json(&r)),
                Some(r) => print!("{}", switchyard_infra::ops::render_story(&r)),
                None => {
                    eprintln!("no event {id:?}: not an event id, nor a delivery id of the last 7 days (records are kept 30 days)");
                    std::process::exit(1);
                }
            }
            Ok(())
        }
        Command::Stats { since, json } => {
            let window = switchyard_infra::ops::parse_since(&since)?;
            let dep = switchyard_infra::ops::Deployment::from_env().await?;
            let s = switchyard_infra::ops::stats(&dep, chrono::Utc::now() - window).await?;
            if json {
                println!("{s}");
            } else {
                print!("{}", switchyard_infra::ops::render_stats(&s));
            }
            Ok(())
        }
        Command::Redrive {
            queue,
            filter,
            dry_run,
            max,
            rate,
        } => operator::redrive(&queue, filter, dry_run, max, rate).await,
        Command::Review(cmd) => {
            use operator as op;
            match cmd {
                ReviewCommand::List { since, json } => op::review_list(&since, json).await,
                ReviewCommand::Show { id } => op::review_show(&id).await,
                ReviewCommand::Resolve { id, act, note, .. } => {
                    op::review_resolve(&id, act, note).await
                }
            }
        }
        Command::Replay {
            id,
            from,
            as_new,
            yes,
        } => operator::replay(&id, &from, as_new, yes).await,
        #[cfg(feature = "local")]
        Command::Sandbox { port } => operator::sandbox(port).await,
        #[cfg(feature = "local")]
        Command::Soak {
            events,
            kills,
            aimed,
            seed,
            no_faults,
            settle_secs,
            json,
        } => {
            let cfg = switchyard_infra::soak::SoakConfig {
                events,
                kills,
                aimed,
                seed,
                faults: !no_faults,
                settle: std::time::Duration::from_secs(settle_secs),
            };
            let exe = std::env::current_exe()?;
            let bar = indicatif::ProgressBar::new_spinner();
            let report =
                switchyard_infra::soak::run(&cfg, &exe, &|m| bar.set_message(m.to_owned())).await?;
            bar.finish_and_clear();
            print!("{report}");
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            std::process::exit(if report.clean() { 0 } else { 1 })
        }
        #[cfg(feature = "local")]
        Command::Worker { hosting, function } => {
            if std::env::var_os(switchyard_infra::workers::WORKER_LOG).is_some() {
                switchyard::telemetry::init();
            }
            let hosting = switchyard_infra::workers::Hosting::read(&hosting)?;
            switchyard_infra::workers::run(&hosting, &function).await
        }
        #[cfg(feature = "local")]
        Command::Batch(BatchCommand::Contacts {
            connector,
            input,
            window_seconds,
            sandbox,
        }) => {
            switchyard_infra::batch::contacts_cli(
                &connector,
                &input,
                std::time::Duration::from_secs(window_seconds),
                sandbox,
            )
            .await
        }
        #[cfg(feature = "local")]
        Command::Bench(command) => bench::run(command).await,
        Command::Canary {
            command,
            json,
            local,
        } => std::process::exit(canary::run(command, json, local).await?),
        Command::Connector(ConnectorCommand::Check {
            file,
            event,
            base_url,
        }) => std::process::exit(commands::connector_check(
            &file,
            event.as_deref(),
            &base_url,
        )),
        Command::Connector(ConnectorCommand::Triage {
            vendor,
            response,
            now,
        }) => std::process::exit(commands::connector_triage(&vendor, &response, now)),
        #[cfg(feature = "local")]
        Command::Local {
            stay_up,
            logs,
            overrides,
        } => {
            if logs {
                switchyard::telemetry::init();
            }
            let overrides = commands::parameter_overrides(&overrides)?;
            local(stay_up, logs, &overrides).await
        }
    }
}

/// What stops a local stack a command started for itself.
type StopStack = Box<dyn FnOnce()>;

/// `doctor --local`: a fresh local stack's connections.
#[cfg(feature = "local")]
async fn local_stack_doctor() -> Result<(Vec<switchyard::doctor::Report>, Option<StopStack>)> {
    let stack = LocalStack::start().await?;
    let reports = stack.doctor().await?;
    Ok((reports, Some(Box::new(move || stack.stop()))))
}

#[cfg(not(feature = "local"))]
async fn local_stack_doctor() -> Result<(Vec<switchyard::doctor::Report>, Option<StopStack>)> {
    anyhow::bail!("--local needs the local stack, which this build of switchyard leaves out (cargo feature `local`)")
}

#[cfg(feature = "local")]
async fn local(stay_up: bool, logs: bool, overrides: &[(String, String)]) -> Result<()> {
    eprintln!("switchyard: starting the local stack…");
    // classify and act run in worker processes of their own, as separate Lambdas would.
    let hosted = switchyard_infra::workers::HOSTABLE;
    let stack = LocalStack::start_hosting(overrides, &hosted).await?;
    let hosting = std::env::temp_dir().join(format!("{}-hosting.json", stack.provisioned.prefix));
    stack.hosting()?.write(&hosting)?;
    let exe = std::env::current_exe()?;
    let workers = hosted
        .iter()
        .map(|f| switchyard_infra::workers::Worker::spawn(&exe, &hosting, f, logs))
        .collect::<Result<Vec<_>>>()?;
    println!("AWS emulator     {}", stack.emulator.endpoint);
    println!("SaaS sandbox     http://{}", stack.sandbox.addr);
    println!(
        "webhook URL      {}/webhooks/{{source}} (zendesk, slack, jira, github, hubspot, teams, …)",
        stack.webhook_base
    );
    println!(
        "resources        {} queues, tables and secrets from template.yaml (prefix {})",
        stack.provisioned.refs.len(),
        stack.provisioned.prefix
    );
    let pids: Vec<String> = workers
        .iter()
        .map(|w| format!("{} (pid {})", w.function, w.pid()))
        .collect();
    println!("worker processes {}", pids.join(", "));
    let http = reqwest::Client::new();
    let webhooks = demo::demo_webhooks(&stack);
    let summary = demo::run(&stack, &http, &webhooks).await?;
    print!("{}", summary.render());
    println!("\nswitchyard doctor (the local connections)");
    print!("{}", switchyard::doctor::render(&stack.doctor().await?));
    println!("\nswitchyard canary (after the sandbox's Zendesk renamed a ticket field)");
    let drift = stack.drift_store()?;
    let mut open = Vec::new();
    for c in switchyard::vendors::drift_owners() {
        open.extend(drift.list(c).await?);
    }
    print!(
        "{}",
        switchyard::handlers::canary::render(&summary.canary, &open)
    );
    let dep = stack.deployment().await?;
    let low = summary
        .decisions
        .iter()
        .filter(|d| d.path == switchyard::decisions::PATH_REVIEW)
        .min_by(|a, b| a.confidence.total_cmp(&b.confidence));
    if let Some(low) = low {
        if let Some(r) = dep.decisions.get(&low.event_id).await? {
            println!(
                "\nswitchyard explain {} (the low-confidence event)",
                r.event_id
            );
            print!("{}", switchyard_infra::ops::render_story(&r));
        }
    }
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    println!("\nswitchyard stats --since 1h (this run)");
    print!(
        "{}",
        switchyard_infra::ops::render_stats(&switchyard_infra::ops::stats(&dep, since).await?)
    );
    if !summary.denied.is_empty() {
        anyhow::bail!(
            "IAM refused {} kind(s) of request: template.yaml misses a grant the code needs ({})",
            summary.denied.len(),
            summary.denied.join("; ")
        );
    }
    if stay_up {
        // Dated now: Jira's timestamp must be within intake's 30-day window.
        let body = format!(
            r#"{{"webhookEvent":"jira:issue_created","timestamp":{},"issue":{{"key":"OPS-9","fields":{{"summary":"Payment page error 500"}}}}}}"#,
            chrono::Utc::now().timestamp_millis()
        );
        let sig = hex::encode(switchyard::webhook::signature::hmac_sha256(
            stack.signing.jira.as_bytes(),
            &[body.as_bytes()],
        ));
        println!("\nThe stack stays up. Send your own webhook, e.g. a signed Jira issue:");
        println!(
            "  curl -i {} -H 'content-type: application/json' -H 'x-atlassian-webhook-identifier: my-delivery-1' -H 'x-hub-signature: sha256={sig}' -d '{body}'",
            stack.webhook_url("jira")
        );
        let (console, console_task) =
            switchyard_infra::console::serve(switchyard_infra::console::ConsoleState::of(&stack)?)
                .await?;
        println!("\nConsole (read-only, loopback only): http://{console}/");
        let outputs =
            std::env::temp_dir().join(format!("{}-outputs.json", stack.provisioned.prefix));
        std::fs::write(&outputs, serde_json::to_vec_pretty(&stack.outputs()?)?)?;
        println!("\nPoint the ops commands (explain, stats, doctor, smoke) at this stack from another terminal:");
        print!("{}", stack.exports()?);
        println!("export SWITCHYARD_OUTPUTS='{}'", outputs.display());
        println!(
            "Status of an event: curl -H 'authorization: Bearer {}' {}/events/EVENT_ID",
            stack.signing.status_token, stack.webhook_base
        );
        println!(
            "Ctrl-C (or SIGTERM: `kill {}`) stops everything.",
            std::process::id()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            stopped = tokio::signal::ctrl_c() => stopped?,
            _ = term.recv() => {}
        }
        console_task.abort();
        let _ = std::fs::remove_file(&outputs);
    }
    let ok = summary.settled && summary.rejected.len() == 1;
    drop(workers);
    let _ = std::fs::remove_file(&hosting);
    stack.stop();
    if !ok {
        anyhow::bail!("the demo did not settle as expected; rerun with --logs to see why");
    }
    Ok(())
}

//! The operator's recovery commands as the CLI runs them: what each reads from the environment
//! (the stack outputs, or the `export` lines `switchyard local --stay-up` prints) and what it
//! prints. The work itself is in `redrive`, `review`, `replay` and the sandbox.

use anyhow::{anyhow, bail, Result};

use switchyard_infra::review::{render_list, Resolution, Review};

/// A stack output the command needs, from the environment, with a message that says where
/// to get it.
fn output(var: &str) -> Result<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
        anyhow!(
            "{var} is not set (a stack output) with AWS credentials and a region; for the local stack, paste the `export` lines `switchyard local --stay-up` prints"
        )
    })
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&switchyard::aws::config_loader().load().await)
}

/// `switchyard redrive`.
pub async fn redrive(
    queue: &str,
    filters: Vec<switchyard_infra::redrive::Filter>,
    dry_run: bool,
    max: Option<u64>,
    rate: Option<f64>,
) -> Result<()> {
    let Some((_, var)) = switchyard_infra::redrive::QUEUES
        .iter()
        .find(|(q, _)| *q == queue)
    else {
        bail!("no queue {queue:?}; one of classify, act, review");
    };
    let redrive = switchyard_infra::redrive::Redrive {
        sqs: sqs().await,
        queue_url: output(var)?,
        filters,
        dry_run,
        max,
        rate,
    };
    let bar = indicatif::ProgressBar::new_spinner();
    let report = redrive
        .run(&|r| bar.set_message(format!("examined {}, moved {}", r.examined, r.moved)))
        .await?;
    bar.finish_and_clear();
    let verb = if dry_run { "dry run: " } else { "" };
    println!("{verb}{report}");
    Ok(())
}

/// `switchyard review list`.
pub async fn review_list(since: &str, json: bool) -> Result<()> {
    let dep = switchyard_infra::ops::Deployment::from_env().await?;
    let since = chrono::Utc::now() - switchyard_infra::ops::parse_since(since)?;
    let items = switchyard_infra::review::waiting(&dep.decisions, since).await?;
    if json {
        let items: Vec<_> = items
            .iter()
            .map(switchyard_infra::ops::story_json)
            .collect();
        println!("{}", serde_json::Value::from(items));
    } else {
        print!("{}", render_list(&items));
    }
    Ok(())
}

/// `switchyard review show`.
pub async fn review_show(id: &str) -> Result<()> {
    let dep = switchyard_infra::ops::Deployment::from_env().await?;
    match switchyard_infra::ops::find(&dep.decisions, id).await? {
        Some(r) => print!("{}", switchyard_infra::ops::render_story(&r)),
        None => bail!("no event {id}"),
    }
    Ok(())
}

/// `switchyard review resolve`: act on it as `act` (a category), or dismiss it with `note`.
pub async fn review_resolve(id: &str, act: Option<String>, note: String) -> Result<()> {
    let dep = switchyard_infra::ops::Deployment::from_env().await?;
    let review = Review {
        sqs: sqs().await,
        decisions: dep.decisions.clone(),
        review_queue_url: output("REVIEW_QUEUE_URL")?,
        act_queue_url: output("ACT_QUEUE_URL")?,
        routing: switchyard::routing::RoutingConfig::from_env()?,
        operator: std::env::var("USER").unwrap_or_else(|_| "an operator".into()),
    };
    let how = match act {
        Some(category) => Resolution::Act { category },
        None => Resolution::Dismiss { note },
    };
    let done = review.resolve(id, &how).await?;
    if let Some(why) = &done.handed_to_act {
        println!(
            "event {} decided; act carries it out ({why})",
            done.event_id
        );
        return Ok(());
    }
    match how {
        Resolution::Act { category } => println!(
            "event {} resolved as {category}: sent to act ({}); {} review message(s) removed",
            done.event_id,
            done.actions.join(", "),
            done.removed
        ),
        Resolution::Dismiss { .. } => println!(
            "event {} dismissed; {} review message(s) removed",
            done.event_id, done.removed
        ),
    }
    Ok(())
}

/// `switchyard replay`: `from` is `act` or `classify`; an `--as-new` replay needs `yes`.
pub async fn replay(id: &str, from: &str, as_new: bool, yes: bool) -> Result<()> {
    use switchyard_infra::replay::{Replay, Stage};
    let dep = switchyard_infra::ops::Deployment::from_env().await?;
    let replay = Replay {
        sqs: sqs().await,
        decisions: dep.decisions.clone(),
        classify_queue_url: output("CLASSIFY_QUEUE_URL")?,
        act_queue_url: output("ACT_QUEUE_URL")?,
        review_queue_url: output("REVIEW_QUEUE_URL")?,
        routing: switchyard::routing::RoutingConfig::from_env()?,
    };
    let stage = if from == "classify" {
        Stage::Classify
    } else {
        Stage::Act
    };
    let plan = replay.plan(id, stage, as_new).await?;
    print!("{plan}");
    if as_new && !yes {
        println!("nothing sent: add --yes to replay it as a new event");
        return Ok(());
    }
    replay.run(&plan).await?;
    println!("sent; `switchyard explain {}` follows it", plan.runs_as);
    Ok(())
}

/// `switchyard sandbox`: the SaaS sandbox on its own until Ctrl-C.
#[cfg(feature = "local")]
pub async fn sandbox(port: u16) -> Result<()> {
    let sandbox = switchyard_infra::sandbox::Sandbox::start_on(port).await?;
    let base = format!("http://{}", sandbox.addr);
    println!("SaaS sandbox     {base}/{{zendesk,slack,jira,salesforce,hubspot,teams,llm}}");
    println!("admin API        {base}/_admin/ledger (GET), /_admin/faults, /_admin/storm, /_admin/zendesk/tickets (POST)");
    let c = &sandbox.credentials;
    println!(
        "credentials      zendesk {} / {}, jira {} / {}, hubspot {}",
        c.zendesk_email, c.zendesk_token, c.jira_email, c.jira_token, c.hubspot_token
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

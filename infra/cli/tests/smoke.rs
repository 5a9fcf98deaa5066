//! `switchyard smoke` against `switchyard local --stay-up`, as an operator runs it after a deploy
//! (from another shell, with the `export` lines the stack printed), then `kill -9` of that stack
//! taking every process it started down with it; and each check failing on a stack broken the
//! way a real deploy can be.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use switchyard_infra::smoke::{Check, Smoke};
use switchyard_infra::stack::LocalStack;

/// Every live process descended from `pid`, from /proc (a process's parent is the field after
/// its state in `stat`; zombies are not alive).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: the command may hold spaces; read after its last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next().and_then(|f| f.parse().ok()));
        if let (Some(state), Some(ppid)) = (state, ppid) {
            if state != "Z" {
                parents.push((p, ppid));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, pp)| *pp == parent) {
            found.push(*child);
            frontier.push(*child);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

#[test]
fn smoke_passes_from_another_shell_and_kill_9_of_the_stack_takes_every_child_down() {
    let mut local = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["local", "--stay-up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The `export NAME='value'` lines, up to the last of them. The stack's output is read to
    // its end on a thread of its own: a closed pipe would kill the stack at its next line.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = local.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut env = HashMap::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(300)) {
        if let Some((k, v)) = line
            .strip_prefix("export ")
            .and_then(|kv| kv.split_once('='))
        {
            env.insert(k.to_owned(), v.trim_matches('\'').to_owned());
            if k == "SWITCHYARD_OUTPUTS" {
                break;
            }
        }
    }
    assert!(env.contains_key("SWITCHYARD_OUTPUTS"), "no outputs line");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("smoke")
        .env_clear()
        .envs(&env)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    // The emulator and the two worker processes at least.
    let children = descendants(local.id());
    assert!(children.len() >= 3, "{children:?}");
    local.kill().unwrap(); // SIGKILL: no destructor runs, nothing is cleaned up
    let _ = local.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while children.iter().any(|p| alive(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let left: Vec<_> = children.iter().filter(|p| alive(**p)).collect();
    assert!(
        left.is_empty(),
        "still running after kill -9 of the stack: {left:?}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "smoke failed:\n{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "test event",
        "alarm topic key",
        "alarm subscription",
        "canary",
    ] {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(check))
            .unwrap_or_else(|| panic!("no {check} row:\n{table}"));
        assert!(line.contains(" ok "), "{line}");
    }
    assert!(table.contains("classified and done"), "{table}");
}

async fn smoke(stack: &LocalStack) -> Vec<Check> {
    let outputs = stack.outputs().unwrap();
    let config = stack.emulator.sdk_config().await;
    Smoke {
        outputs: &outputs,
        config: &config,
        settle: Duration::from_secs(30),
        canary_within: chrono::Duration::minutes(30),
    }
    .run()
    .await
}

fn failed<'c>(checks: &'c [Check], name: &str) -> &'c Check {
    let c = checks.iter().find(|c| c.check == name).unwrap();
    assert!(!c.ok, "{name} should have failed: {checks:?}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_check_fails_on_a_stack_broken_the_way_a_deploy_can_be() {
    let stack = LocalStack::start().await.unwrap();
    let healthy = smoke(&stack).await;
    assert!(!healthy.is_empty());
    assert!(healthy.iter().all(|c| c.ok), "{healthy:?}");
    let outputs = stack.outputs().unwrap();
    let topic = &outputs["AlarmTopic"];
    let config = stack.emulator.sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&config);

    // The topic under the AWS-managed key, which CloudWatch cannot use.
    sns.set_topic_attributes()
        .topic_arn(topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value("alias/aws/sns")
        .send()
        .await
        .unwrap();
    // Nobody subscribed (moto confirms every subscription at once, so the unconfirmed case is
    // the unit test `smoke::tests::an_unconfirmed_subscription_reaches_nobody`).
    let subs = sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
        .unwrap();
    for s in subs.subscriptions() {
        sns.unsubscribe()
            .subscription_arn(s.subscription_arn().unwrap())
            .send()
            .await
            .unwrap();
    }
    // The intake secret without its smoke key.
    let secret = &outputs["IntakeSigningSecretArn"];
    aws_sdk_secretsmanager::Client::new(&config)
        .put_secret_value()
        .secret_id(secret)
        .secret_string(r#"{"status": ["t0ken"]}"#)
        .send()
        .await
        .unwrap();
    // The canary never ran (its heartbeat gone).
    aws_sdk_dynamodb::Client::new(&config)
        .delete_item()
        .table_name(&outputs["DriftTableName"])
        .key(
            "connector",
            aws_sdk_dynamodb::types::AttributeValue::S("_canary".into()),
        )
        .key(
            "item",
            aws_sdk_dynamodb::types::AttributeValue::S("ran".into()),
        )
        .send()
        .await
        .unwrap();

    let broken = smoke(&stack).await;
    assert!(failed(&broken, "canary").detail.contains("never run"));
    // The event was refused at intake: classify and act never logged it.
    let logs = failed(&broken, "function logs");
    assert!(logs.detail.contains("ClassifyFunction"), "{logs:?}");
    assert!(failed(&broken, "alarm topic key")
        .detail
        .contains("alias/aws/sns"));
    assert!(failed(&broken, "alarm subscription")
        .detail
        .contains("nobody is subscribed"));
    assert!(failed(&broken, "test event").detail.contains("\"smoke\""));
    stack.stop();
}

#[tokio::test]
async fn the_stack_flag_reads_the_outputs_cloudformation_keeps() {
    // `--stack NAME` on AWS: DescribeStacks, here against a stack moto's CloudFormation made.
    let emulator = switchyard_infra::emulator::Emulator::start().unwrap();
    let config = emulator.sdk_config().await;
    let template = r#"{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"WebhookUrl": {"Value": "https://abc.lambda-url.us-east-1.on.aws/webhooks/"},
                    "ClassifyQueueUrl": {"Value": {"Ref": "Q"}}}}"#;
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name("switchyard")
        .template_body(template)
        .send()
        .await
        .unwrap();
    let outputs = switchyard_infra::smoke::stack_outputs(&config, "switchyard")
        .await
        .unwrap();
    assert_eq!(
        outputs["WebhookUrl"],
        "https://abc.lambda-url.us-east-1.on.aws/webhooks/"
    );
    assert!(
        outputs["ClassifyQueueUrl"].contains("switchyard-Q-"),
        "{outputs:?}"
    );
    let missing = switchyard_infra::smoke::stack_outputs(&config, "nope")
        .await
        .unwrap_err();
    assert!(format!("{missing:#}").contains("stack nope"), "{missing:#}");
}

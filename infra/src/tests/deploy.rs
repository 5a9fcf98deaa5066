//! What AWS enforces and the linters do not: checked on the template itself, each test for a
//! finding a first real deploy would have met (alarms that cannot notify, logs that cannot
//! land, DLQs that lose messages, data deleted with the stack).

use serde_yaml_ng::Value;

use crate::template::{expr, Expr};

/// The template as YAML, with resource attributes (`DeletionPolicy`) the loader does not keep.
fn resources() -> serde_yaml_ng::Mapping {
    let text = std::fs::read_to_string(crate::repo_root().join("template.yaml")).unwrap();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    doc["Resources"].as_mapping().unwrap().clone()
}

fn of_type(r: &serde_yaml_ng::Mapping, kind: &str) -> Vec<(String, Value)> {
    r.iter()
        .filter(|(_, v)| v["Type"].as_str() == Some(kind))
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

fn referenced(v: &Value) -> Option<String> {
    match expr(v)? {
        Expr::Ref(id) | Expr::GetAtt(id, _) => Some(id),
        Expr::Literal(_) | Expr::Sub(_) => None,
    }
}

#[test]
fn the_alarm_topics_key_lets_cloudwatch_publish() {
    let r = resources();
    let topic = &r["AlarmTopic"]["Properties"];
    // alias/aws/sns cannot be used by CloudWatch: a key of our own, named by reference.
    let key_id = referenced(&topic["KmsMasterKeyId"])
        .unwrap_or_else(|| panic!("the topic's key is not a key of this stack: {topic:?}"));
    let key = &r[key_id.as_str()];
    assert_eq!(key["Type"].as_str(), Some("AWS::KMS::Key"));
    let statements = key["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence()
        .unwrap();
    let for_cloudwatch = statements
        .iter()
        .find(|s| s["Principal"]["Service"].as_str() == Some("cloudwatch.amazonaws.com"))
        .expect("a key policy statement for cloudwatch.amazonaws.com");
    assert_eq!(for_cloudwatch["Effect"].as_str(), Some("Allow"));
    let actions: Vec<&str> = for_cloudwatch["Action"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for needed in ["kms:Decrypt", "kms:GenerateDataKey*"] {
        assert!(actions.contains(&needed), "{needed} missing: {actions:?}");
    }
    // The account keeps control of its key (a key policy without it locks everyone out).
    assert!(statements
        .iter()
        .any(|s| s["Action"].as_str() == Some("kms:*") && s["Principal"]["AWS"] != Value::Null));
}

#[test]
fn every_dead_letter_queue_keeps_messages_longer_than_its_source() {
    // SQS keeps a moved message's first enqueue time: a DLQ no longer-lived than its source
    // deletes what it receives as it lands.
    const DEFAULT_RETENTION: u64 = 345_600;
    let r = resources();
    let retention = |q: &Value| {
        q["Properties"]["MessageRetentionPeriod"]
            .as_u64()
            .unwrap_or(DEFAULT_RETENTION)
    };
    let mut pairs = 0;
    for (id, q) in of_type(&r, "AWS::SQS::Queue") {
        let Some(target) = referenced(&q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        else {
            continue;
        };
        pairs += 1;
        let dlq = &r[target.as_str()];
        assert!(
            retention(dlq) > retention(&q),
            "{target} keeps {} s, no longer than {id}'s {} s",
            retention(dlq),
            retention(&q)
        );
    }
    assert!(pairs >= 3, "{pairs} queues with a DLQ");
}

#[test]
fn each_functions_log_permission_names_its_own_log_group() {
    // Not a name pattern: CloudFormation shortens generated function names for long stacks.
    let r = resources();
    let text = std::fs::read_to_string(crate::repo_root().join("template.yaml")).unwrap();
    assert!(
        !text.contains("log-group:/aws/lambda/${AWS::StackName}"),
        "a log permission matches function names by pattern"
    );
    for (id, f) in of_type(&r, "AWS::Serverless::Function") {
        let role = referenced(&f["Properties"]["Role"]).unwrap();
        let group = of_type(&r, "AWS::Logs::LogGroup")
            .into_iter()
            .find(|(_, g)| {
                let name = format!("{:?}", g["Properties"]["LogGroupName"]);
                name.contains(&format!("${{{id}}}"))
            })
            .map(|(gid, _)| gid)
            .unwrap_or_else(|| panic!("{id} has no log group of its own"));
        let granted = of_type(&r, "AWS::IAM::Policy").into_iter().any(|(_, p)| {
            let props = &p["Properties"];
            let roles = props["Roles"].as_sequence().cloned().unwrap_or_default();
            roles
                .iter()
                .any(|v| referenced(v).as_deref() == Some(role.as_str()))
                && props["PolicyDocument"]["Statement"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|s| {
                        referenced(&s["Resource"]).as_deref() == Some(group.as_str())
                            && format!("{:?}", s["Action"]).contains("logs:PutLogEvents")
                    })
        });
        assert!(
            granted,
            "{role} may not write to {group} ({id}'s log group)"
        );
    }
}

#[test]
fn tables_and_secrets_outlive_the_stack() {
    let r = resources();
    let mut kept = 0;
    for kind in ["AWS::DynamoDB::Table", "AWS::SecretsManager::Secret"] {
        for (id, v) in of_type(&r, kind) {
            kept += 1;
            for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
                assert_eq!(v[policy].as_str(), Some("Retain"), "{id}: {policy}");
            }
            if kind == "AWS::DynamoDB::Table" {
                let p = &v["Properties"];
                assert_eq!(
                    p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
                    Some(true),
                    "{id}: point-in-time recovery"
                );
                assert_eq!(p["DeletionProtectionEnabled"].as_bool(), Some(true), "{id}");
            }
        }
    }
    assert!(kept >= 10, "{kept} tables and secrets");
}

#[test]
fn a_quiet_hour_is_judged_by_the_volume_band_not_by_missing_data() {
    let r = resources();
    let alarm = &r["VolumeDropAlarm"]["Properties"];
    // Missing data as breaching paged every night: intake emits its zeros only when invoked.
    assert_eq!(alarm["TreatMissingData"].as_str(), Some("notBreaching"));
    let metrics = alarm["Metrics"].as_sequence().unwrap();
    let filled = metrics
        .iter()
        .find(|m| {
            m["Expression"]
                .as_str()
                .is_some_and(|e| e.starts_with("FILL("))
        })
        .expect("the accepted count with its gaps filled with zero");
    let band = metrics
        .iter()
        .find(|m| m["Id"].as_str() == alarm["ThresholdMetricId"].as_str())
        .unwrap();
    assert_eq!(
        band["Expression"].as_str(),
        Some(
            format!(
                "ANOMALY_DETECTION_BAND({}, 3)",
                filled["Id"].as_str().unwrap()
            )
            .as_str()
        )
    );
    // The detector models the same filled series, or the band has no model behind it.
    let detector = &r["AcceptedEventsAnomaly"]["Properties"]["MetricMathAnomalyDetector"];
    let queries = format!("{:?}", detector["MetricDataQueries"]);
    assert!(queries.contains("FILL(raw, 0)"), "{queries}");
}

#[test]
fn sync_may_list_its_bucket_so_a_missing_export_is_not_a_403() {
    // Without s3:ListBucket, S3 answers a missing key with 403 AccessDenied, not NoSuchKey: the
    // quiet no-op for a night without an export would be an error and two alarms.
    let r = resources();
    let role = format!("{:?}", r["SyncRole"]["Properties"]["Policies"]);
    assert!(
        role.contains("s3:ListBucket") && role.contains("SyncBucket"),
        "{role}"
    );
}

#[test]
fn scheduled_functions_have_a_heartbeat_and_a_failure_destination() {
    // Invoked asynchronously (a schedule, Secrets Manager): a run that fails every retry must
    // land somewhere a person is told of, and a run that never happens must page too.
    let r = resources();
    let alarms = of_type(&r, "AWS::CloudWatch::Alarm");
    for (id, f) in of_type(&r, "AWS::Serverless::Function") {
        let events = format!("{:?}", f["Properties"]["Events"]);
        if !events.contains("Schedule") {
            continue;
        }
        let destination = referenced(
            &f["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"],
        )
        .unwrap_or_else(|| panic!("{id} has no failure destination"));
        assert!(
            alarms.iter().any(|(_, a)| format!("{:?}", a["Properties"]["Dimensions"])
                .contains(&destination)),
            "nothing watches {destination}"
        );
        let heartbeat = alarms.iter().find(|(_, a)| {
            let p = &a["Properties"];
            p["MetricName"].as_str() == Some("Invocations")
                && referenced(&p["Dimensions"][0]["Value"]).as_deref() == Some(id.as_str())
        });
        let (aid, a) = heartbeat.unwrap_or_else(|| panic!("{id} has no heartbeat alarm"));
        let p = &a["Properties"];
        // No run is no datapoint: here, and only here, missing data is the failure.
        assert_eq!(p["TreatMissingData"].as_str(), Some("breaching"), "{aid}");
        assert_eq!(
            p["ComparisonOperator"].as_str(),
            Some("LessThanThreshold"),
            "{aid}"
        );
    }
}

#[test]
fn the_mtls_domain_can_prove_ownership_of_an_imported_certificate() {
    // API Gateway refuses an imported or private CA certificate without
    // OwnershipVerificationCertificateArn: the domain would fail to deploy.
    let r = resources();
    let config = format!(
        "{:?}",
        r["IntakeMtlsDomain"]["Properties"]["DomainNameConfigurations"]
    );
    assert!(
        config.contains("OwnershipVerificationCertificateArn"),
        "{config}"
    );
    assert!(config.contains("MtlsOwnershipCertificateArn"), "{config}");
}

#[test]
fn described_connectors_secrets_live_under_the_stacks_own_name() {
    // A prefix shared by every stack in an account would let one stack read another's
    // credentials: the functions' setting and their grant both start with the stack's name.
    let r = resources();
    let text = format!("{r:?}");
    assert!(
        !text.contains(r#"secret:${ConnectionSecretPrefix}"#),
        "a grant without the stack name"
    );
    for (id, f) in of_type(&r, "AWS::Serverless::Function") {
        let v = &f["Properties"]["Environment"]["Variables"]["CONNECTION_SECRET_PREFIX"];
        if v.is_null() {
            continue;
        }
        assert_eq!(
            expr(v),
            Some(Expr::Sub(
                "${AWS::StackName}/${ConnectionSecretPrefix}".into()
            )),
            "{id}"
        );
    }
}

#[test]
fn every_alarm_says_why_missing_data_means_what_it_says() {
    // `notBreaching` on a metric that only appears when something happens is right; on a
    // heartbeat it would hide the failure. The comment above each TreatMissingData says which.
    let text = std::fs::read_to_string(crate::repo_root().join("template.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut stated = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("TreatMissingData:") {
            stated += 1;
            assert!(
                i > 0 && lines[i - 1].trim_start().starts_with('#'),
                "line {}: TreatMissingData without a comment saying why",
                i + 1
            );
        }
    }
    let alarms = of_type(&resources(), "AWS::CloudWatch::Alarm").len();
    assert_eq!(
        stated, alarms,
        "every alarm states its missing-data behaviour"
    );
}

/// Every statement a role is granted (inline and attached policies).
fn role_statements(role: &str) -> Vec<Value> {
    role_statements_with(role, &[])
}

/// The same, with template parameters set as a deploy would set them.
fn role_statements_with(role: &str, parameters: &[(&str, &str)]) -> Vec<Value> {
    let mut t = crate::template::Template::load(&crate::repo_root().join("template.yaml")).unwrap();
    for (name, value) in parameters {
        assert!(t.parameters.contains_key(*name), "no parameter {name}");
        t.parameters.insert((*name).to_owned(), (*value).to_owned());
    }
    t.role_statements(role).into_iter().cloned().collect()
}

/// Actions the Service Authorization Reference lists with no resource type: `*` is the only
/// resource a statement can name for them.
const UNSCOPED_ACTIONS: [&str; 1] = ["textract:DetectDocumentText"];

#[test]
fn documents_are_kept_only_when_asked_private_and_expiring() {
    let r = resources();
    let bucket = &r["DocumentBucket"];
    assert_eq!(bucket["Condition"].as_str(), Some("KeepDocuments"));
    let rule = &bucket["Properties"]["LifecycleConfiguration"]["Rules"][0];
    assert_eq!(rule["Status"].as_str(), Some("Enabled"));
    assert_eq!(
        referenced(&rule["ExpirationInDays"]).as_deref(),
        Some("DocumentRetentionDays"),
        "documents expire after the days asked for"
    );
    let block = &bucket["Properties"]["PublicAccessBlockConfiguration"];
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[flag].as_bool(), Some(true), "{flag}");
    }
    let puts = |parameters: &[(&str, &str)]| -> Vec<String> {
        role_statements_with("ClassifyRole", parameters)
            .into_iter()
            .filter(|s| {
                listed(&s["Action"])
                    .iter()
                    .any(|a| a.as_str() == Some("s3:PutObject"))
            })
            .map(|s| match expr(&s["Resource"]) {
                Some(Expr::Sub(text)) => text,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert!(puts(&[]).is_empty(), "nothing is kept by default");
    assert_eq!(
        puts(&[("DocumentRetentionDays", "7")]),
        vec!["${DocumentBucket.Arn}/documents/*".to_owned()]
    );
}

#[test]
fn ocr_is_granted_to_classify_only_when_it_is_turned_on() {
    let grants = |on: &[(&str, &str)]| -> Vec<Value> {
        role_statements_with("ClassifyRole", on)
            .into_iter()
            .flat_map(|s| listed(&s["Action"]))
            .filter(|a| a.as_str().is_some_and(|a| a.starts_with("textract:")))
            .collect()
    };
    assert!(grants(&[]).is_empty(), "OCR is off by default");
    assert_eq!(
        grants(&[("DocumentOcr", "textract")]),
        vec![Value::String("textract:DetectDocumentText".into())]
    );
    for role in [
        "IntakeRole",
        "ActRole",
        "CanaryRole",
        "SyncRole",
        "RotateRole",
    ] {
        let any = role_statements_with(role, &[("DocumentOcr", "textract")])
            .iter()
            .flat_map(|s| listed(&s["Action"]))
            .any(|a| a.as_str().is_some_and(|a| a.starts_with("textract:")));
        assert!(!any, "{role} may use Textract");
    }
}

fn listed(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    }
}

// The local stack enforces IAM (each function runs as a user holding its role's policies), but
// moto's evaluation passes condition keys it does not know and never sees what Lambda itself
// does with a role. What it cannot refuse is checked here, on the policy as written.

#[test]
fn intake_may_touch_only_its_own_pacing_items() {
    // moto lets a `dynamodb:LeadingKeys` condition through whatever the key: so the condition
    // is read here. Without it, a flaw in intake's public path could rewrite any budget or lease.
    let on_pacing: Vec<Value> = role_statements("IntakeRole")
        .into_iter()
        .filter(|s| referenced(&s["Resource"]).as_deref() == Some("PacingTable"))
        .collect();
    assert!(
        !on_pacing.is_empty(),
        "intake has no grant on the pacing table"
    );
    for s in on_pacing {
        let keys = &s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        assert_eq!(
            listed(keys),
            vec![Value::String("intake#*".into())],
            "intake's pacing grant must be limited to intake#<source> items: {s:?}"
        );
    }
}

#[test]
fn lambda_sends_failures_with_a_grant_the_role_has() {
    // An asynchronous invocation's failure record is sent by Lambda *with the function's role*;
    // locally nothing invokes asynchronously, so the grant is checked here.
    let r = resources();
    for (id, f) in of_type(&r, "AWS::Serverless::Function") {
        let Some(dest) = referenced(
            &f["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"],
        ) else {
            continue;
        };
        let role = referenced(&f["Properties"]["Role"]).unwrap();
        let granted = role_statements(&role).iter().any(|s| {
            listed(&s["Action"]).contains(&Value::String("sqs:SendMessage".into()))
                && listed(&s["Resource"])
                    .iter()
                    .any(|x| referenced(x).as_deref() == Some(dest.as_str()))
        });
        assert!(
            granted,
            "{id}: {role} may not send to its failure destination {dest}"
        );
    }
}

#[test]
fn no_function_role_grants_every_action_or_every_resource() {
    // Least privilege: a `*` would pass every local test and hide every missing grant.
    let r = resources();
    for (id, _) in of_type(&r, "AWS::IAM::Role") {
        for s in role_statements_with(&id, &[("DocumentOcr", "textract")]) {
            let actions = listed(&s["Action"]);
            for a in &actions {
                let a = a.as_str().unwrap_or_default();
                assert!(!a.contains('*'), "{id}: action {a}");
            }
            let unscoped = actions
                .iter()
                .all(|a| UNSCOPED_ACTIONS.contains(&a.as_str().unwrap_or_default()));
            for x in listed(&s["Resource"]) {
                assert!(
                    x.as_str() != Some("*") || unscoped,
                    "{id}: a statement on every resource: {s:?}"
                );
            }
        }
    }
}

#[test]
fn secret_values_in_the_template_are_frozen() {
    // CloudFormation writes a new version of a secret whenever its `SecretString` or
    // `GenerateSecretString` changes: an edit to a placeholder here would overwrite the live
    // credential (or every webhook signing secret) on the next deploy. So they never change;
    // the shapes to store are in docs/deploying.md, and a new connection gets a new secret.
    let r = resources();
    let frozen = [
        (
            "IntakeSigningSecret",
            "GenerateSecretString",
            r#"{"SecretStringTemplate":"{\"zendesk\":[],\"slack\":[],\"jira\":[],\"github\":[],\"hubspot\":[],\"teams\":[],\"stripe\":[],\"standard-webhooks\":[],\"svix\":[],\"twilio\":[],\"salesforce\":[],\"status\":[]}","GenerateStringKey":"salesforce_token","PasswordLength":40,"ExcludePunctuation":true}"#,
        ),
        (
            "ZendeskConnectionSecret",
            "SecretString",
            r#"{"type":"api_token","base_url":"https://your-subdomain.zendesk.com","email":"","api_token":""}"#,
        ),
        (
            "JiraConnectionSecret",
            "SecretString",
            r#"{"type":"api_token","base_url":"https://your-site.atlassian.net","email":"","api_token":""}"#,
        ),
        (
            "SalesforceConnectionSecret",
            "SecretString",
            r#"{"type":"bearer_token","base_url":"https://your-domain.my.salesforce.com","token":""}"#,
        ),
        (
            "HubspotConnectionSecret",
            "SecretString",
            r#"{"type":"bearer_token","base_url":"https://api.hubapi.com","token":""}"#,
        ),
        (
            "TeamsConnectionSecret",
            "SecretString",
            r#"{"type":"webhook_url","url":""}"#,
        ),
        (
            "WebhookConnectionSecret",
            "SecretString",
            r#"{"type":"signed_webhook","url":"https://example.com/hooks","secret":""}"#,
        ),
        (
            "SlackConnectionSecret",
            "SecretString",
            r#"{"type":"oauth2_refresh","base_url":"https://slack.com","access_token":"","refresh_token":"","client_id":"","client_secret":""}"#,
        ),
        (
            "LlmSecret",
            "SecretString",
            r#"{"type":"bearer_token","base_url":"https://api.openai.com/v1","token":""}"#,
        ),
        (
            "DecisionLinkSecret",
            "GenerateSecretString",
            r#"{"PasswordLength":48,"ExcludePunctuation":true}"#,
        ),
    ];
    let secrets = of_type(&r, "AWS::SecretsManager::Secret");
    assert_eq!(
        secrets.len(),
        frozen.len(),
        "a secret was added or removed: freeze it here"
    );
    for (id, property, value) in frozen {
        let expected: serde_json::Value = if property == "SecretString" {
            serde_json::Value::String(value.to_owned())
        } else {
            serde_json::from_str(value).unwrap()
        };
        let actual = serde_json::to_value(&r[id]["Properties"][property]).unwrap();
        assert_eq!(
            actual, expected,
            "{id}.{property} changed: the next deploy would overwrite the stored value"
        );
    }
}

/// `cargo lambda build --release` (what `sam build` runs) fills in `strip`, `lto`,
/// `codegen-units` and `panic = "abort"` where the release profile is silent. Abort would end
/// the whole batch at one panicking message, which `batch.rs` isolates by unwinding: the
/// profile must say each of them itself.
#[test]
fn the_release_profile_says_what_cargo_lambda_would_otherwise_choose() {
    let manifest = std::fs::read_to_string(crate::repo_root().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    let release = &manifest["profile"]["release"];
    assert_eq!(
        release.get("panic").and_then(|v| v.as_str()),
        Some("unwind")
    );
    for key in ["strip", "lto", "codegen-units"] {
        assert!(
            release.get(key).is_some(),
            "profile.release.{key} is not set"
        );
    }
}

//! Creates on the emulator the queues, tables and secrets `template.yaml` declares, named
//! `{prefix}-{LogicalId}` so parallel runs never collide, and resolves each function's
//! environment (`!Ref`, `!GetAtt`) to the created resources.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, Context, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::Value;

use crate::emulator::{iam_user, AccessKey};
use crate::template::{expr, Expr, FunctionDef, Template};

/// What was created: for each logical id, its `Ref` value and its ARN.
#[derive(Clone, Debug, Default)]
pub struct Provisioned {
    pub prefix: String,
    pub refs: HashMap<String, String>,
    pub arns: HashMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    /// With IAM enforced: each function's access key (by binary), whose user carries exactly
    /// the policies of the function's template role.
    pub keys: HashMap<String, AccessKey>,
    /// Other attributes `!Sub` may name (`IntakeFunctionUrl.FunctionUrl`), set by the stack.
    pub attrs: HashMap<String, String>,
}

/// The account moto serves (its default): what `${AWS::AccountId}` is locally.
pub const ACCOUNT_ID: &str = "123456789012";

impl Provisioned {
    pub fn resolve(&self, v: &Value) -> Result<String> {
        match expr(v).ok_or_else(|| anyhow!("cannot resolve {v:?} locally"))? {
            Expr::Literal(s) => Ok(s),
            Expr::Ref(id) => self
                .refs
                .get(&id)
                .or_else(|| self.parameters.get(&id))
                .cloned()
                .or_else(|| pseudo(&id, &self.prefix))
                .ok_or_else(|| anyhow!("!Ref {id}: not provisioned locally")),
            Expr::GetAtt(id, attr) if attr == "Arn" => self
                .arns
                .get(&id)
                .cloned()
                .ok_or_else(|| anyhow!("!GetAtt {id}.Arn: not provisioned locally")),
            Expr::GetAtt(id, attr) => Err(anyhow!("!GetAtt {id}.{attr} is not supported locally")),
            // `${Name}` is a parameter, a provisioned resource or a pseudo parameter; the
            // local stack's name is its prefix.
            Expr::Sub(text) => {
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..]
                        .find('}')
                        .ok_or_else(|| anyhow!("!Sub {text:?}: unclosed ${{"))?;
                    let name = &rest[start + 2..start + end];
                    let value = match name {
                        _ if name.starts_with("AWS::") => pseudo(name, &self.prefix),
                        _ if name.ends_with(".Arn") => {
                            self.arns.get(name.trim_end_matches(".Arn")).cloned()
                        }
                        _ if name.contains('.') => self.attrs.get(name).cloned(),
                        _ => self
                            .refs
                            .get(name)
                            .or_else(|| self.parameters.get(name))
                            .cloned(),
                    };
                    out.push_str(
                        &value.ok_or_else(|| anyhow!("!Sub {text:?}: no {name} locally"))?,
                    );
                    rest = &rest[start + end + 1..];
                }
                out.push_str(rest);
                Ok(out)
            }
        }
    }

    /// A JSON document (a key policy) with every intrinsic in it resolved.
    pub fn resolve_tree(&self, v: &Value) -> Result<serde_json::Value> {
        Ok(match v {
            Value::Mapping(m) if m.len() == 1 && expr(v).is_some() => {
                serde_json::Value::String(self.resolve(v)?)
            }
            Value::Tagged(_) => serde_json::Value::String(self.resolve(v)?),
            Value::Mapping(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        Ok((
                            k.as_str().unwrap_or_default().to_owned(),
                            self.resolve_tree(v)?,
                        ))
                    })
                    .collect::<Result<_>>()?,
            ),
            Value::Sequence(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|i| self.resolve_tree(i))
                    .collect::<Result<_>>()?,
            ),
            other => serde_json::to_value(other)?,
        })
    }

    /// The environment the function gets in AWS, with local resource ids.
    /// A function's environment as deployed: `!If`s take the branch the parameters choose.
    pub fn function_env(
        &self,
        template: &Template,
        f: &FunctionDef,
    ) -> Result<HashMap<String, String>> {
        f.env
            .iter()
            .map(|(k, v)| {
                let v = template.branch(v)?.unwrap_or(v);
                Ok((
                    k.clone(),
                    self.resolve(v)
                        .with_context(|| format!("{}: {k}", f.logical_id))?,
                ))
            })
            .collect()
    }

    pub fn queue_url(&self, logical_id: &str) -> Result<&str> {
        self.refs
            .get(logical_id)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("no queue {logical_id}"))
    }
}

/// Provision everything. `secret_values` replaces the template's placeholder `SecretString`s.
pub async fn provision(
    config: &SdkConfig,
    template: &Template,
    prefix: &str,
    secret_values: &HashMap<String, String>,
) -> Result<Provisioned> {
    let mut p = Provisioned {
        prefix: prefix.to_owned(),
        parameters: template.parameters.clone(),
        ..Default::default()
    };
    let sqs = aws_sdk_sqs::Client::new(config);
    let ddb = aws_sdk_dynamodb::Client::new(config);
    let sm = aws_sdk_secretsmanager::Client::new(config);

    // Queues first without redrive (a DLQ must exist before a queue can point at it).
    let queues: Vec<_> = template.of_kind("AWS::SQS::Queue").collect();
    for (id, q) in &queues {
        let mut req = sqs.create_queue().queue_name(format!("{prefix}-{id}"));
        for (prop, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
            (
                "ReceiveMessageWaitTimeSeconds",
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
            ),
        ] {
            if let Some(v) = q.properties.get(prop) {
                req = req.attributes(attr, p.resolve(v)?);
            }
        }
        let url = req
            .send()
            .await
            .with_context(|| format!("creating queue {id}"))?
            .queue_url
            .unwrap_or_default();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?;
        let arn = attrs
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| anyhow!("queue {id} has no ARN"))?;
        p.refs.insert((*id).clone(), url);
        p.arns.insert((*id).clone(), arn);
    }
    for (id, q) in &queues {
        let Some(redrive) = q.properties.get("RedrivePolicy") else {
            continue;
        };
        let target = p.resolve(
            redrive
                .get("deadLetterTargetArn")
                .ok_or_else(|| anyhow!("{id}: redrive without target"))?,
        )?;
        let max = redrive
            .get("maxReceiveCount")
            .and_then(Value::as_u64)
            .unwrap_or(5);
        let policy =
            serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": max}).to_string();
        sqs.set_queue_attributes()
            .queue_url(p.queue_url(id)?)
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .send()
            .await
            .with_context(|| format!("setting the redrive policy of {id}"))?;
    }

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    );
    for (id, _) in template.created("AWS::S3::Bucket")? {
        // Bucket names are lower-case DNS labels.
        let name = format!("{prefix}-{id}").to_lowercase();
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .with_context(|| format!("creating bucket {id}"))?;
        p.arns.insert(id.clone(), format!("arn:aws:s3:::{name}"));
        p.refs.insert(id.clone(), name);
    }

    for (id, t) in template.of_kind("AWS::DynamoDB::Table") {
        let name = format!("{prefix}-{id}");
        let mut req = ddb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest);
        for a in t
            .properties
            .get("AttributeDefinitions")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let kind = match a.get("AttributeType").and_then(Value::as_str) {
                Some("N") => ScalarAttributeType::N,
                Some("B") => ScalarAttributeType::B,
                _ => ScalarAttributeType::S,
            };
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(
                        a.get("AttributeName")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    )
                    .attribute_type(kind)
                    .build()?,
            );
        }
        for k in key_schema(t.properties.get("KeySchema"))? {
            req = req.key_schema(k);
        }
        // Indexes as the template declares them (projection ALL: the tools read whole records).
        for g in t
            .properties
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(
                        g.get("IndexName")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    )
                    .set_key_schema(Some(key_schema(g.get("KeySchema"))?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()?,
            );
        }
        let out = req
            .send()
            .await
            .with_context(|| format!("creating table {id}"))?;
        let arn = out
            .table_description
            .and_then(|d| d.table_arn)
            .unwrap_or_default();
        if let Some(ttl) = t.properties.get("TimeToLiveSpecification") {
            if let Some(attr) = ttl.get("AttributeName").and_then(Value::as_str) {
                ddb.update_time_to_live()
                    .table_name(&name)
                    .time_to_live_specification(
                        TimeToLiveSpecification::builder()
                            .attribute_name(attr)
                            .enabled(true)
                            .build()?,
                    )
                    .send()
                    .await
                    .with_context(|| format!("enabling TTL on {id}"))?;
            }
        }
        p.refs.insert(id.clone(), name);
        p.arns.insert(id.clone(), arn);
    }

    // Keys first: the escrow key's id is a function setting. Each with its key policy, which
    // `switchyard smoke` reads (moto keeps it; it does not evaluate it).
    let kms = aws_sdk_kms::Client::new(config);
    for (id, k) in template.created("AWS::KMS::Key")? {
        let mut req = kms.create_key().description(format!("{prefix}-{id}"));
        if let Some(policy) = k.properties.get("KeyPolicy") {
            req = req.policy(p.resolve_tree(policy)?.to_string());
        }
        let out = req
            .send()
            .await
            .with_context(|| format!("creating key {id}"))?;
        let meta = out
            .key_metadata
            .ok_or_else(|| anyhow!("creating key {id}: no key metadata"))?;
        p.refs.insert(id.clone(), meta.key_id.clone());
        p.arns.insert(id.clone(), meta.arn.unwrap_or_default());
    }

    // Function names (a deploy's are `<stack>-<LogicalId>-<suffix>`), and their log groups,
    // which the functions write with their own roles (`*LogsPolicy`).
    for (id, _) in template.of_kind("AWS::Serverless::Function") {
        p.refs.insert(id.clone(), format!("{prefix}-{id}"));
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    for (id, g) in template.of_kind("AWS::Logs::LogGroup") {
        let name = p.resolve(
            g.properties
                .get("LogGroupName")
                .ok_or_else(|| anyhow!("{id} has no LogGroupName"))?,
        )?;
        logs.create_log_group()
            .log_group_name(&name)
            .send()
            .await
            .with_context(|| format!("creating log group {id}"))?;
        // Its `Arn` attribute, as CloudFormation gives it (every stream in the group).
        p.arns.insert(
            id.clone(),
            format!(
                "arn:aws:logs:{}:{ACCOUNT_ID}:log-group:{name}:*",
                crate::emulator::REGION
            ),
        );
        p.refs.insert(id.clone(), name);
    }

    // The alarm topic (under its key) and its subscription, as the template's conditions say.
    let sns = aws_sdk_sns::Client::new(config);
    for (id, t) in template.created("AWS::SNS::Topic")? {
        let mut req = sns.create_topic().name(format!("{prefix}-{id}"));
        if let Some(key) = t.properties.get("KmsMasterKeyId") {
            req = req.attributes("KmsMasterKeyId", p.resolve(key)?);
        }
        let arn = req
            .send()
            .await
            .with_context(|| format!("creating topic {id}"))?
            .topic_arn
            .unwrap_or_default();
        p.refs.insert(id.clone(), arn.clone());
        p.arns.insert(id.clone(), arn);
    }
    for (id, sub) in template.created("AWS::SNS::Subscription")? {
        let prop = |name: &str| {
            sub.properties
                .get(name)
                .ok_or_else(|| anyhow!("{id} has no {name}"))
                .and_then(|v| p.resolve(v))
        };
        sns.subscribe()
            .topic_arn(prop("TopicArn")?)
            .protocol(prop("Protocol")?)
            .endpoint(prop("Endpoint")?)
            .send()
            .await
            .with_context(|| format!("creating subscription {id}"))?;
    }

    for (id, s) in template.of_kind("AWS::SecretsManager::Secret") {
        let value = match secret_values.get(id) {
            Some(v) => v.clone(),
            None => match s.properties.get("GenerateSecretString") {
                Some(g) => generated(g),
                None => s
                    .properties
                    .get("SecretString")
                    .and_then(Value::as_str)
                    .unwrap_or("{}")
                    .to_owned(),
            },
        };
        let out = sm
            .create_secret()
            .name(format!("{prefix}-{id}"))
            .secret_string(value)
            .send()
            .await
            .with_context(|| format!("creating secret {id}"))?;
        let arn = out.arn.unwrap_or_default();
        p.refs.insert(id.clone(), arn.clone());
        p.arns.insert(id.clone(), arn);
    }
    Ok(p)
}

/// A pseudo parameter's local value; the local stack's name is its prefix.
fn pseudo(name: &str, prefix: &str) -> Option<String> {
    Some(match name {
        "AWS::StackName" => prefix.to_owned(),
        "AWS::Partition" => "aws".to_owned(),
        "AWS::Region" => crate::emulator::REGION.to_owned(),
        "AWS::AccountId" => ACCOUNT_ID.to_owned(),
        _ => return None,
    })
}

/// One IAM user per function, carrying its template role's inline policies with every
/// `Resource` resolved to the local resources, so each function runs with exactly the grants it
/// has on AWS (the emulator must be enforcing IAM for that to mean anything).
pub async fn function_users(
    config: &SdkConfig,
    template: &Template,
    p: &mut Provisioned,
) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(config);
    for f in &template.functions {
        let policy = role_policy(template, f, p)?;
        // IAM user names are at most 64 characters; the prefix is 11.
        let user = format!("{}-{}", p.prefix, f.binary);
        let key = iam_user(&iam, &user, &policy).await?;
        p.keys.insert(f.binary.clone(), key);
    }
    Ok(())
}

/// Every statement `f`'s role is granted, as one policy document resolved locally.
pub fn role_policy(
    template: &Template,
    f: &FunctionDef,
    p: &Provisioned,
) -> Result<serde_json::Value> {
    let role = template.role_of(f)?;
    let mut statements = Vec::new();
    for st in template.role_statements(&role) {
        let resources = match &st["Resource"] {
            Value::Sequence(items) => items
                .iter()
                .map(|r| p.resolve(r))
                .collect::<Result<Vec<_>>>(),
            other => p.resolve(other).map(|r| vec![r]),
        }
        .with_context(|| format!("{role}: a statement's Resource"))?;
        let mut out = serde_json::json!({
            "Effect": st["Effect"].as_str().unwrap_or("Allow"),
            "Action": serde_json::to_value(&st["Action"])?,
            "Resource": resources,
        });
        if let Some(c) = st.get("Condition") {
            out["Condition"] = serde_json::to_value(c)?;
        }
        statements.push(out);
    }
    Ok(serde_json::json!({"Version": "2012-10-17", "Statement": statements}))
}

/// What Secrets Manager stores for a `GenerateSecretString`: the template's JSON with a random
/// alphanumeric value under `GenerateStringKey` (or that value alone, without a template).
fn generated(g: &Value) -> String {
    let len = g
        .get("PasswordLength")
        .and_then(Value::as_u64)
        .unwrap_or(32) as usize;
    let random: String = std::iter::repeat_with(|| uuid::Uuid::new_v4().simple().to_string())
        .flat_map(|u| u.chars().collect::<Vec<_>>())
        .take(len)
        .collect();
    let template = g.get("SecretStringTemplate").and_then(Value::as_str);
    let key = g.get("GenerateStringKey").and_then(Value::as_str);
    match (template, key) {
        (Some(t), Some(k)) => {
            let mut v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
            v[k] = serde_json::Value::String(random);
            v.to_string()
        }
        _ => random,
    }
}

/// A template `KeySchema` list as the SDK's key elements.
fn key_schema(schema: Option<&Value>) -> Result<Vec<KeySchemaElement>> {
    schema
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|k| {
            let kind = if k.get("KeyType").and_then(Value::as_str) == Some("RANGE") {
                KeyType::Range
            } else {
                KeyType::Hash
            };
            Ok(KeySchemaElement::builder()
                .attribute_name(
                    k.get("AttributeName")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
                .key_type(kind)
                .build()?)
        })
        .collect()
}

//! Reads `template.yaml`, so the local stack provisions exactly what SAM deploys and hands each
//! function exactly the environment the template gives it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_yaml_ng::Value;

#[derive(Clone, Debug)]
pub struct Resource {
    pub kind: String,
    pub properties: Value,
    /// The resource's `Condition`, when it has one.
    pub condition: Option<String>,
}

/// A function as the local runner needs to know it.
#[derive(Clone, Debug)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub timeout_secs: u64,
    /// `MemorySize` (the function's, else the Globals'; Lambda's default 128).
    pub memory_mb: u64,
    /// Globals merged with the function's own variables (unresolved expressions).
    pub env: BTreeMap<String, Value>,
    pub sqs_events: Vec<SqsEventDef>,
    /// Schedule expressions, e.g. `rate(15 minutes)`.
    pub schedules: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct SqsEventDef {
    /// Logical id of the queue.
    pub queue: String,
    pub batch_size: i32,
    pub maximum_concurrency: u32,
    pub report_batch_item_failures: bool,
}

/// A CloudFormation expression the local stack can resolve.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Literal(String),
    Ref(String),
    GetAtt(String, String),
    /// `!Sub "text ${Name} text"` (the one-string form).
    Sub(String),
}

#[derive(Clone, Debug)]
pub struct Template {
    pub resources: BTreeMap<String, Resource>,
    /// `Conditions`, unevaluated (see [`Template::holds`]).
    pub conditions: BTreeMap<String, Value>,
    /// `Outputs`: each value (unresolved) and its condition.
    pub outputs: BTreeMap<String, (Option<String>, Value)>,
    pub parameters: BTreeMap<String, String>,
    pub functions: Vec<FunctionDef>,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let doc: Value =
            serde_yaml_ng::from_str(text).context("template.yaml is not valid YAML")?;
        let mut parameters = BTreeMap::new();
        if let Some(Value::Mapping(params)) = doc.get("Parameters") {
            for (k, v) in params {
                if let (Some(name), Some(default)) = (k.as_str(), v.get("Default")) {
                    parameters.insert(name.to_owned(), scalar(default).unwrap_or_default());
                }
            }
        }
        let Some(Value::Mapping(res)) = doc.get("Resources") else {
            return Err(anyhow!("template has no Resources"));
        };
        let mut resources = BTreeMap::new();
        for (k, v) in res {
            let id = k
                .as_str()
                .ok_or_else(|| anyhow!("resource id is not a string"))?
                .to_owned();
            let kind = v
                .get("Type")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{id} has no Type"))?
                .to_owned();
            let properties = v.get("Properties").cloned().unwrap_or(Value::Null);
            let condition = v
                .get("Condition")
                .and_then(Value::as_str)
                .map(str::to_owned);
            resources.insert(
                id,
                Resource {
                    kind,
                    properties,
                    condition,
                },
            );
        }
        let globals = doc.get("Globals").and_then(|g| g.get("Function"));
        let global_env = env_map(globals);
        let global_timeout = globals
            .and_then(|g| g.get("Timeout"))
            .and_then(Value::as_u64);
        let global_memory = globals
            .and_then(|g| g.get("MemorySize"))
            .and_then(Value::as_u64);
        let mut functions = Vec::new();
        for (id, r) in &resources {
            if r.kind != "AWS::Serverless::Function" {
                continue;
            }
            let meta = res.get(id.as_str()).and_then(|v| v.get("Metadata"));
            let binary = meta
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{id} lacks Metadata.BuildProperties.Binary"))?
                .to_owned();
            let p = &r.properties;
            let mut env = global_env.clone();
            env.extend(env_map(Some(p)));
            let mut sqs_events = Vec::new();
            let mut schedules = Vec::new();
            if let Some(Value::Mapping(events)) = p.get("Events") {
                for ev in events.values() {
                    let props = ev.get("Properties").cloned().unwrap_or(Value::Null);
                    match ev.get("Type").and_then(Value::as_str) {
                        Some("SQS") => {
                            let queue = match props.get("Queue").map(expr) {
                                Some(Some(Expr::GetAtt(q, _))) => q,
                                _ => {
                                    return Err(anyhow!(
                                        "{id}: SQS event Queue must be !GetAtt Queue.Arn"
                                    ))
                                }
                            };
                            let concurrency = props
                                .get("ScalingConfig")
                                .and_then(|s| s.get("MaximumConcurrency"))
                                .and_then(|v| resolve_scalar(v, &parameters))
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(2);
                            let rbif = props
                                .get("FunctionResponseTypes")
                                .and_then(Value::as_sequence)
                                .is_some_and(|s| {
                                    s.iter()
                                        .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                                });
                            sqs_events.push(SqsEventDef {
                                queue,
                                batch_size: props
                                    .get("BatchSize")
                                    .and_then(Value::as_i64)
                                    .unwrap_or(10)
                                    as i32,
                                maximum_concurrency: concurrency,
                                report_batch_item_failures: rbif,
                            });
                        }
                        Some("Schedule") | Some("ScheduleV2") => {
                            let key = if props.get("Schedule").is_some() {
                                "Schedule"
                            } else {
                                "ScheduleExpression"
                            };
                            if let Some(s) =
                                props.get(key).and_then(|v| resolve_scalar(v, &parameters))
                            {
                                schedules.push(s);
                            }
                        }
                        _ => {}
                    }
                }
            }
            functions.push(FunctionDef {
                logical_id: id.clone(),
                binary,
                timeout_secs: p
                    .get("Timeout")
                    .and_then(Value::as_u64)
                    .or(global_timeout)
                    .unwrap_or(3),
                memory_mb: p
                    .get("MemorySize")
                    .and_then(Value::as_u64)
                    .or(global_memory)
                    .unwrap_or(128),
                env,
                sqs_events,
                schedules,
            });
        }
        let conditions = match doc.get("Conditions") {
            Some(Value::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
                .collect(),
            _ => BTreeMap::new(),
        };
        let outputs = match doc.get("Outputs") {
            Some(Value::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| {
                    let condition = v
                        .get("Condition")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    Some((k.as_str()?.to_owned(), (condition, v.get("Value")?.clone())))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Ok(Self {
            resources,
            conditions,
            outputs,
            parameters,
            functions,
        })
    }

    /// Whether a resource is created with the current parameters: no `Condition`, or one that
    /// holds (`Fn::Equals`, `Not`, `And`, `Or` and `Condition` over parameters).
    pub fn creates(&self, resource: &Resource) -> Result<bool> {
        match &resource.condition {
            None => Ok(true),
            Some(name) => self.holds(name),
        }
    }

    pub fn holds(&self, name: &str) -> Result<bool> {
        let v = self
            .conditions
            .get(name)
            .ok_or_else(|| anyhow!("no condition {name}"))?;
        self.eval(v)
    }

    /// `!If [condition, then, else]`: the branch the parameters choose; `None` for any other value.
    pub fn branch<'v>(&self, v: &'v Value) -> Result<Option<&'v Value>> {
        let arg = match v {
            Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "If" => &t.value,
            Value::Mapping(m) if m.len() == 1 && m.contains_key("Fn::If") => &m["Fn::If"],
            _ => return Ok(None),
        };
        match arg.as_sequence().map(Vec::as_slice) {
            Some([c, yes, no]) => Ok(Some(if self.holds(c.as_str().unwrap_or_default())? {
                yes
            } else {
                no
            })),
            _ => Err(anyhow!("!If takes a condition and two values")),
        }
    }

    /// The logical id of the role `f` runs with (`Role: !GetAtt X.Arn`).
    pub fn role_of(&self, f: &FunctionDef) -> Result<String> {
        match self.resources[&f.logical_id]
            .properties
            .get("Role")
            .and_then(expr)
        {
            Some(Expr::GetAtt(id, _)) => Ok(id),
            other => Err(anyhow!(
                "{}: Role is {other:?}, not a role of the template",
                f.logical_id
            )),
        }
    }

    /// Every statement `role` is granted: its inline policies', and those of the
    /// `AWS::IAM::Policy` resources attached to it (the `*LogsPolicy`s).
    pub fn role_statements(&self, role: &str) -> Vec<&Value> {
        // A policy whose condition does not hold is not created, so it grants nothing (and a
        // condition the template does not define grants nothing either).
        let policies = self.created("AWS::IAM::Policy").unwrap_or_default();
        let attached = policies.into_iter().filter(|(_, pol)| {
            pol.properties
                .get("Roles")
                .and_then(Value::as_sequence)
                .is_some_and(|roles| {
                    roles
                        .iter()
                        .any(|r| expr(r) == Some(Expr::Ref(role.to_owned())))
                })
        });
        self.resources[role]
            .properties
            .get("Policies")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .chain(attached.map(|(_, pol)| &pol.properties))
            .flat_map(|policy| {
                policy["PolicyDocument"]["Statement"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
            })
            .collect()
    }

    fn eval(&self, v: &Value) -> Result<bool> {
        let (name, arg) = match v {
            Value::Tagged(t) => (
                t.tag.to_string().trim_start_matches('!').to_owned(),
                &t.value,
            ),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, val) = m.iter().next().expect("one entry");
                let k = k.as_str().unwrap_or_default();
                (k.trim_start_matches("Fn::").to_owned(), val)
            }
            other => return Err(anyhow!("not a condition: {other:?}")),
        };
        let items = || arg.as_sequence().cloned().unwrap_or_default();
        match name.as_str() {
            "Condition" => self.holds(arg.as_str().unwrap_or_default()),
            "Not" => Ok(!self.eval(items().first().ok_or_else(|| anyhow!("empty Not"))?)?),
            "And" => items().iter().try_fold(true, |a, c| Ok(a && self.eval(c)?)),
            "Or" => items()
                .iter()
                .try_fold(false, |a, c| Ok(a || self.eval(c)?)),
            "Equals" => {
                let pair = items();
                let value = |v: &Value| resolve_scalar(v, &self.parameters).unwrap_or_default();
                match pair.as_slice() {
                    [a, b] => Ok(value(a) == value(b)),
                    _ => Err(anyhow!("Equals takes two values")),
                }
            }
            other => Err(anyhow!(
                "condition function {other} is not supported locally"
            )),
        }
    }

    pub fn function(&self, binary: &str) -> Result<&FunctionDef> {
        self.functions
            .iter()
            .find(|f| f.binary == binary)
            .ok_or_else(|| anyhow!("template.yaml has no function built from binary {binary:?}"))
    }

    /// Every resource of `kind` the template declares, created or not.
    pub fn of_kind<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Resource)> + 'a {
        self.resources.iter().filter(move |(_, r)| r.kind == kind)
    }

    /// The resources of `kind` a deploy with the current parameters creates: those without a
    /// `Condition`, and those whose condition holds.
    pub fn created<'a>(&'a self, kind: &'a str) -> Result<Vec<(&'a String, &'a Resource)>> {
        let mut out = Vec::new();
        for (id, r) in self.of_kind(kind) {
            if self.creates(r)? {
                out.push((id, r));
            }
        }
        Ok(out)
    }
}

fn env_map(holder: Option<&Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Some(Value::Mapping(vars)) = holder
        .and_then(|h| h.get("Environment"))
        .and_then(|e| e.get("Variables"))
    {
        for (k, v) in vars {
            if let Some(k) = k.as_str() {
                out.insert(k.to_owned(), v.clone());
            }
        }
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A scalar, or a `!Ref` to a parameter's default.
fn resolve_scalar(v: &Value, parameters: &BTreeMap<String, String>) -> Option<String> {
    match expr(v)? {
        Expr::Literal(s) => Some(s),
        Expr::Ref(name) => parameters.get(&name).cloned(),
        Expr::GetAtt(..) | Expr::Sub(_) => None,
    }
}

/// `!Join [separator, [items]]`: the separator and the items (unresolved).
pub fn joined(v: &Value) -> Option<(String, Vec<Value>)> {
    let arg = match v {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "Join" => &t.value,
        Value::Mapping(m) if m.len() == 1 => m.get("Fn::Join")?,
        _ => return None,
    };
    match arg.as_sequence()?.as_slice() {
        [sep, items] => Some((sep.as_str()?.to_owned(), items.as_sequence()?.clone())),
        _ => None,
    }
}

/// Read `!Ref X`, `{Ref: X}`, `!GetAtt X.Attr`, `!GetAtt [X, Attr]`, `{Fn::GetAtt: …}` or a scalar.
pub fn expr(v: &Value) -> Option<Expr> {
    if let Some(s) = scalar(v) {
        return Some(Expr::Literal(s));
    }
    let (name, arg) = match v {
        Value::Tagged(t) => (
            t.tag.to_string().trim_start_matches('!').to_owned(),
            t.value.clone(),
        ),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, val) = m.iter().next()?;
            (
                k.as_str()?.trim_start_matches("Fn::").to_owned(),
                val.clone(),
            )
        }
        _ => return None,
    };
    match name.as_str() {
        "Ref" => Some(Expr::Ref(arg.as_str()?.to_owned())),
        "Sub" => Some(Expr::Sub(arg.as_str()?.to_owned())),
        "GetAtt" => match arg {
            Value::String(s) => {
                let (id, attr) = s.split_once('.')?;
                Some(Expr::GetAtt(id.to_owned(), attr.to_owned()))
            }
            Value::Sequence(seq) if seq.len() == 2 => Some(Expr::GetAtt(
                seq[0].as_str()?.to_owned(),
                seq[1].as_str()?.to_owned(),
            )),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_template_describes_the_pipeline() {
        let t = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        let classify = t.function("classify").unwrap();
        assert_eq!(classify.sqs_events[0].queue, "ClassifyQueue");
        assert!(classify.sqs_events[0].report_batch_item_failures);
        assert_eq!(
            classify.env.get("ACT_QUEUE_URL").and_then(expr),
            Some(Expr::Ref("ActQueue".into()))
        );
        let act = t.function("act").unwrap();
        assert_eq!(
            act.sqs_events[0].maximum_concurrency.to_string(),
            t.parameters["ActMaximumConcurrency"]
        );
        assert_eq!(
            t.function("canary").unwrap().schedules,
            vec![t.parameters["CanarySchedule"].clone()]
        );
    }

    #[test]
    fn visibility_timeouts_are_at_least_six_consumer_timeouts() {
        let t = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        for f in &t.functions {
            for ev in &f.sqs_events {
                let q = &t.resources[&ev.queue];
                let vis = q
                    .properties
                    .get("VisibilityTimeout")
                    .and_then(Value::as_u64)
                    .unwrap_or(30);
                assert!(
                    vis >= 6 * f.timeout_secs,
                    "{}: {vis} < 6 x {}",
                    ev.queue,
                    f.timeout_secs
                );
            }
        }
        for (id, q) in t.of_kind("AWS::SQS::Queue") {
            let is_dlq = t.of_kind("AWS::SQS::Queue").any(|(_, other)| {
                other
                    .properties
                    .get("RedrivePolicy")
                    .and_then(|r| r.get("deadLetterTargetArn"))
                    .and_then(expr)
                    == Some(Expr::GetAtt(id.clone(), "Arn".into()))
            });
            // A function's failure destination is a dead-letter queue for its async invocations.
            let is_destination = t.of_kind("AWS::Serverless::Function").any(|(_, f)| {
                f.properties
                    .get("EventInvokeConfig")
                    .and_then(|c| c.get("DestinationConfig"))
                    .and_then(|d| d.get("OnFailure"))
                    .and_then(|o| o.get("Destination"))
                    .and_then(expr)
                    == Some(Expr::GetAtt(id.clone(), "Arn".into()))
            });
            let max = q
                .properties
                .get("RedrivePolicy")
                .and_then(|r| r.get("maxReceiveCount"))
                .and_then(Value::as_u64);
            assert!(
                is_dlq || is_destination || max.is_some_and(|m| m >= 5),
                "{id} has no DLQ with maxReceiveCount >= 5"
            );
        }
    }

    /// Every secret, table and queue a function's environment names is one its role may use —
    /// and no more than that is needed to catch a connector added without its permission.
    #[test]
    fn each_function_role_covers_what_its_environment_names() {
        let t = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        let exprs = |v: &Value| -> Vec<Expr> {
            match v {
                Value::Sequence(items) => items.iter().filter_map(expr).collect(),
                other => expr(other).into_iter().collect(),
            }
        };
        for f in &t.functions {
            let role = t.role_of(f).unwrap();
            let grants: Vec<(Vec<String>, Vec<Expr>)> = t
                .role_statements(&role)
                .into_iter()
                .map(|st| {
                    let actions = match &st["Action"] {
                        Value::Sequence(a) => a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect(),
                        Value::String(a) => vec![a.clone()],
                        _ => vec![],
                    };
                    (actions, exprs(&st["Resource"]))
                })
                .collect();
            let allowed = |action: &str, resource: &Expr| {
                grants
                    .iter()
                    .any(|(a, r)| a.iter().any(|x| x == action) && r.contains(resource))
            };
            for (name, value) in &f.env {
                let Some(Expr::Ref(target)) = expr(value) else {
                    continue;
                };
                let Some(res) = t.resources.get(&target) else {
                    continue;
                };
                let arn = Expr::GetAtt(target.clone(), "Arn".into());
                let ok = match res.kind.as_str() {
                    "AWS::SecretsManager::Secret" => {
                        allowed("secretsmanager:GetSecretValue", &Expr::Ref(target.clone()))
                    }
                    "AWS::DynamoDB::Table" => {
                        allowed("dynamodb:UpdateItem", &arn) || allowed("dynamodb:PutItem", &arn)
                    }
                    "AWS::SQS::Queue" => allowed("sqs:SendMessage", &arn),
                    // Object ARNs are a !Sub of the bucket's: any s3:GetObject grant counts.
                    "AWS::S3::Bucket" => grants
                        .iter()
                        .any(|(a, _)| a.iter().any(|x| x == "s3:GetObject")),
                    _ => true,
                };
                assert!(
                    ok,
                    "{}: {name} names {target}, which its role {role} may not use",
                    f.logical_id
                );
            }
        }
    }
}

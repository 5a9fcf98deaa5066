//! The template's alarms, checked for the shape CloudWatch needs and for what they must cover:
//! cfn-lint accepts an anomaly alarm without `ThresholdMetricId`, or an alarm that tells nobody.

use serde_yaml_ng::Value;

use crate::template::{expr, Expr, Template};

fn template() -> Template {
    Template::load(&crate::repo_root().join("template.yaml")).unwrap()
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The logical id a dimension value names (`!GetAtt Q.QueueName`, `!Ref F`).
fn dimension_target(p: &Value, name: &str) -> Option<String> {
    p.get("Dimensions")?.as_sequence()?.iter().find_map(|d| {
        (text(d, "Name")? == name).then_some(())?;
        match expr(d.get("Value")?)? {
            Expr::Ref(id) | Expr::GetAtt(id, _) => Some(id),
            Expr::Literal(_) | Expr::Sub(_) => None,
        }
    })
}

#[test]
fn every_alarm_tells_a_person_when_it_fires_and_when_it_clears() {
    let t = template();
    let alarms: Vec<_> = t.of_kind("AWS::CloudWatch::Alarm").collect();
    assert!(alarms.len() >= 20, "{} alarms", alarms.len());
    for (id, a) in alarms {
        let p = &a.properties;
        for key in ["AlarmActions", "OKActions"] {
            let actions = p.get(key).and_then(Value::as_sequence);
            assert!(actions.is_some_and(|s| !s.is_empty()), "{id} has no {key}");
        }
        assert!(
            p.get("TreatMissingData").is_some(),
            "{id}: say what missing data means"
        );
        assert!(
            text(p, "AlarmDescription").is_some_and(|d| d.len() > 20),
            "{id}: the description is what the person paged reads"
        );
    }
}

#[test]
fn anomaly_alarms_name_their_band_and_plain_alarms_their_metric() {
    let t = template();
    for (id, a) in t.of_kind("AWS::CloudWatch::Alarm") {
        let p = &a.properties;
        let op = text(p, "ComparisonOperator").unwrap_or_else(|| panic!("{id}: no operator"));
        let band_op = op.contains("Lower") || op.contains("Upper");
        let metrics = p.get("Metrics").and_then(Value::as_sequence);
        let band = metrics.into_iter().flatten().find(|m| {
            text(m, "Expression").is_some_and(|e| e.starts_with("ANOMALY_DETECTION_BAND("))
        });
        match band {
            Some(b) => {
                assert!(band_op, "{id}: a band alarm compares with LessThanLowerThreshold or GreaterThanUpperThreshold, not {op}");
                assert_eq!(
                    text(p, "ThresholdMetricId"),
                    text(b, "Id"),
                    "{id}: ThresholdMetricId must name the band"
                );
                assert!(
                    p.get("Threshold").is_none(),
                    "{id}: a band alarm has no fixed threshold"
                );
                let watched = text(b, "Expression").unwrap();
                let inner = watched
                    .trim_start_matches("ANOMALY_DETECTION_BAND(")
                    .split([',', ')'])
                    .next()
                    .unwrap()
                    .trim();
                let target = metrics
                    .into_iter()
                    .flatten()
                    .find(|m| text(m, "Id") == Some(inner));
                assert!(
                    target.is_some_and(|m| m.get("ReturnData").and_then(Value::as_bool) == Some(true)),
                    "{id}: the band's metric {inner} must be defined and returned"
                );
            }
            None => {
                assert!(
                    !band_op,
                    "{id}: {op} needs an ANOMALY_DETECTION_BAND and ThresholdMetricId"
                );
                assert!(
                    p.get("ThresholdMetricId").is_none(),
                    "{id}: ThresholdMetricId without a band"
                );
                assert!(p.get("Threshold").is_some(), "{id}: no Threshold");
                match metrics {
                    Some(ms) => {
                        let returned = ms
                            .iter()
                            .filter(|m| m.get("ReturnData").and_then(Value::as_bool) == Some(true))
                            .count();
                        assert_eq!(
                            returned, 1,
                            "{id}: a metric-math alarm returns exactly one series"
                        );
                    }
                    None => {
                        for key in ["Namespace", "MetricName", "Statistic", "Period"] {
                            assert!(p.get(key).is_some(), "{id}: no {key}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn queues_functions_and_volume_each_have_their_alarm() {
    let t = template();
    let alarms: Vec<&Value> = t
        .of_kind("AWS::CloudWatch::Alarm")
        .map(|(_, a)| &a.properties)
        .collect();
    let watching = |metric: &str, dimension: &str, target: &str| {
        alarms.iter().any(|p| {
            text(p, "MetricName") == Some(metric)
                && dimension_target(p, dimension).as_deref() == Some(target)
        })
    };
    for (id, _) in t.of_kind("AWS::SQS::Queue") {
        if id.ends_with("DLQ") {
            assert!(
                watching("ApproximateNumberOfMessagesVisible", "QueueName", id),
                "no alarm on {id}'s depth"
            );
        } else {
            assert!(
                watching("ApproximateAgeOfOldestMessage", "QueueName", id),
                "no alarm on {id}'s oldest message"
            );
        }
    }
    for f in &t.functions {
        for metric in ["Errors", "Throttles"] {
            assert!(
                watching(metric, "FunctionName", &f.logical_id),
                "no {metric} alarm for {}",
                f.logical_id
            );
        }
        let logs = t.of_kind("AWS::Logs::LogGroup").any(|(_, g)| {
            g.properties.get("RetentionInDays").is_some()
                && format!("{:?}", g.properties.get("LogGroupName")).contains(&f.logical_id)
        });
        assert!(logs, "{} has no log group with a retention", f.logical_id);
    }
    // A volume drop: intake's accepted events under their band, a silent hour counted as zero
    // (`tests::deploy::a_quiet_hour_is_judged_by_the_volume_band_not_by_missing_data`).
    let volume = alarms.iter().find(|p| {
        text(p, "ComparisonOperator") == Some("LessThanLowerThreshold")
            && format!("{:?}", p.get("Metrics")).contains(switchyard::metrics::EVENTS_ACCEPTED)
    });
    let volume = volume.expect("a volume-drop alarm on EventsAccepted");
    assert!(format!("{:?}", volume.get("Metrics")).contains("FILL("));
    assert!(t.of_kind("AWS::CloudWatch::AnomalyDetector").count() >= 2);
    assert_eq!(t.of_kind("AWS::CloudWatch::Dashboard").count(), 1);
}

#[test]
fn alarms_watch_only_metrics_the_functions_emit() {
    use switchyard::metrics as m;
    let emitted = [
        m::WEBHOOKS_RECEIVED,
        m::EVENTS_ACCEPTED,
        m::WEBHOOKS_REJECTED,
        m::DUPLICATES,
        m::EVENTS_CLASSIFIED,
        m::SENT_TO_REVIEW,
        m::LLM_FALLBACKS,
        m::ACTIONS_DONE,
        m::ACTIONS_FAILED,
        m::BUDGET_WAITS,
        m::ACTIONS_PARKED,
        m::END_TO_END_LATENCY,
        m::VENDOR_LATENCY,
        m::VENDOR_ERRORS,
        m::VENDOR_RATE_LIMITED,
        m::AUTH_FAILURES,
        m::CANARY_FAILURES,
        m::DRIFT_FINDINGS,
    ];
    let t = template();
    let mut names = Vec::new();
    for kind in ["AWS::CloudWatch::Alarm", "AWS::CloudWatch::AnomalyDetector"] {
        for (_, a) in t.of_kind(kind) {
            let yaml = serde_yaml_ng::to_string(&a.properties).unwrap();
            if yaml.contains("Namespace: switchyard") {
                names.push(yaml);
            }
        }
    }
    assert!(!names.is_empty());
    for yaml in names {
        for name in yaml
            .lines()
            .filter_map(|l| l.trim().strip_prefix("MetricName: "))
        {
            assert!(
                emitted.contains(&name),
                "an alarm watches {name}, which no function emits"
            );
        }
    }
}

use super::*;

/// Action keys must outlive the longest wait work can be handed back for, or resumed work
/// would find its finished actions' keys gone and repeat them.
#[test]
fn action_keys_outlive_parking_and_a_days_budget_wait() {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let aws = crate::aws::AwsClients::new(&config);
    for (park_days, want_days) in [(None, 5), (Some("1"), 3), (Some("10"), 12)] {
        let mut vars: std::collections::HashMap<String, String> = [
            ("IDEMPOTENCY_TABLE", "i"),
            ("DECISIONS_TABLE", "d"),
            ("PACING_TABLE", "p"),
            ("ACT_QUEUE_URL", "q"),
            ("REVIEW_QUEUE_URL", "r"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(d) = park_days {
            vars.insert("MAX_PARK_DAYS".into(), d.into());
        }
        let act = Act::from_settings(&aws, &crate::settings::Settings::from_map(vars)).unwrap();
        assert_eq!(
            act.idempotency.ttl_secs,
            want_days * 86_400,
            "{park_days:?}"
        );
        assert!(act.idempotency.ttl_secs > act.max_park.num_seconds());
    }
}

/// A run's last completion is kept on the record only while the record outlives the action keys;
/// with a shorter `DecisionRetentionDays`, a late duplicate must still find it, on the key.
#[test]
fn completions_go_on_the_record_only_if_it_outlives_the_keys() {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let aws = crate::aws::AwsClients::new(&config);
    for (retention, on_record) in [(None, true), (Some("5"), true), (Some("1"), false)] {
        let mut vars: std::collections::HashMap<String, String> = [
            ("IDEMPOTENCY_TABLE", "i"),
            ("DECISIONS_TABLE", "d"),
            ("PACING_TABLE", "p"),
            ("ACT_QUEUE_URL", "q"),
            ("REVIEW_QUEUE_URL", "r"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(days) = retention {
            vars.insert("DECISION_RETENTION_DAYS".into(), days.into());
        }
        let act = Act::from_settings(&aws, &crate::settings::Settings::from_map(vars)).unwrap();
        assert_eq!(
            admit::record_outlives_keys(&act),
            on_record,
            "{retention:?}"
        );
    }
}

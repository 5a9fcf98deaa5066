use super::*;

/// act built from its settings, with `extra` beside the required ones.
fn act_with(extra: &[(&str, &str)]) -> Act {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let aws = crate::aws::AwsClients::new(&config);
    let vars: std::collections::HashMap<String, String> = [
        ("IDEMPOTENCY_TABLE", "i"),
        ("DECISIONS_TABLE", "d"),
        ("PACING_TABLE", "p"),
        ("ACT_QUEUE_URL", "q"),
        ("REVIEW_QUEUE_URL", "r"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    Act::from_settings(&aws, &crate::settings::Settings::from_map(vars)).unwrap()
}

/// Action keys must outlive the longest wait work can be handed back for, or resumed work
/// would find its finished actions' keys gone and repeat them.
#[test]
fn action_keys_outlive_parking_and_a_days_budget_wait() {
    for (park_days, want_days) in [(None, 5), (Some("1"), 3), (Some("10"), 12)] {
        let extra: Vec<_> = park_days
            .map(|d| ("MAX_PARK_DAYS", d))
            .into_iter()
            .collect();
        let act = act_with(&extra);
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
    for (retention, on_record) in [(None, true), (Some("5"), true), (Some("1"), false)] {
        let extra: Vec<_> = retention
            .map(|d| ("DECISION_RETENTION_DAYS", d))
            .into_iter()
            .collect();
        let act = act_with(&extra);
        assert_eq!(
            admit::record_outlives_keys(&act),
            on_record,
            "{retention:?}"
        );
    }
}

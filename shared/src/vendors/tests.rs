//! The registry: names, documented limits, configured connections, secrets.

use super::*;

mod triage;

#[test]
fn every_built_in_name_is_unique_and_found() {
    for v in BUILT_IN {
        assert!(std::ptr::eq(built_in(v.name).unwrap(), v), "{}", v.name);
    }
    let mut names: Vec<_> = BUILT_IN.iter().map(|v| v.name).collect();
    names.dedup();
    assert_eq!(names.len(), BUILT_IN.len());
    assert!(built_in("casebook").is_none() && is_known("casebook"));
    // No compiled-in description takes a built-in's name (the registry would hide it).
    let built_in_names = BUILT_IN.map(|v| v.name);
    for d in crate::connectors::declared::all() {
        assert!(!built_in_names.contains(&d.name()), "{}", d.file);
    }
}

fn with(connectors: Option<&str>) -> crate::settings::Settings {
    let mut vars: std::collections::HashMap<String, String> = BUILT_IN
        .iter()
        .map(|v| {
            let c = v.name;
            (
                format!("{}_SECRET_ID", c.to_ascii_uppercase()),
                format!("arn:{c}"),
            )
        })
        .collect();
    if let Some(list) = connectors {
        vars.insert("CONNECTORS".into(), list.into());
    }
    crate::settings::Settings::from_map(vars)
}

#[test]
fn connectors_names_the_connections_in_use_and_empty_means_none() {
    assert_eq!(configured(&with(None)).len(), BUILT_IN.len());
    assert!(configured(&with(Some(""))).is_empty());
    let some = with(Some("zendesk, slack"));
    assert_eq!(configured(&some), ["zendesk", "slack"]);
    assert_eq!(secret_id(&some, "jira"), None);
    assert_eq!(secret_id(&some, "slack").as_deref(), Some("arn:slack"));
}

#[test]
fn a_described_connections_secret_lives_under_the_prefix() {
    let mut vars = std::collections::HashMap::new();
    vars.insert(
        "CONNECTION_SECRET_PREFIX".to_owned(),
        "sy/connection/".to_owned(),
    );
    vars.insert("ZENDESK_SECRET_ID".to_owned(), "arn:zendesk".to_owned());
    let s = crate::settings::Settings::from_map(vars);
    assert_eq!(
        secret_id(&s, "casebook").as_deref(),
        Some("sy/connection/casebook")
    );
    assert_eq!(secret_id(&s, "zendesk").as_deref(), Some("arn:zendesk"));
    assert!(configured(&s).contains(&"casebook"));
    // A built-in connection the deployment does not name has none (rotate names only the
    // connections it may rotate).
    assert_eq!(secret_id(&s, "teams"), None);
    assert!(!configured(&s).contains(&"teams"));
}

#[test]
fn documented_limits_lie_beneath_rate_limits() {
    use crate::pacing::Limits;
    let day = Duration::from_secs(86_400);
    let documented = Limits::default().with_documented(&DOCUMENTED);
    // A built-in vendor's line: its pace, its ceilings, its narrower classes.
    assert_eq!(documented.rate("zendesk"), per(200, 60));
    assert_eq!(
        documented.ceilings("hubspot"),
        [Rate::ceiling(250_000, day)]
    );
    assert_eq!(
        documented.class_rate("slack", "post_message#C1"),
        Some(per(1, 1))
    );
    // A described connector's [limits].
    assert_eq!(documented.rate("casebook").count, 600);
    assert_eq!(documented.concurrency("casebook"), Some(4));
    // RATE_LIMITS wins over both.
    let overridden = Limits::parse("casebook=30/minute,zendesk=700/minute")
        .unwrap()
        .with_documented(&DOCUMENTED);
    assert_eq!(overridden.rate("casebook").count, 30);
    assert_eq!(overridden.rate("zendesk"), Rate::per_minute(700));
}

use super::describe::Description;
use super::*;

fn parse_err(text: &str) -> DescriptionError {
    Description::parse("bad.toml", text).unwrap_err()
}

const MINIMAL: &str = r#"
name = "records"
[auth]
kind = "bearer"
[probe]
path = "/me"
"#;

#[test]
fn the_compiled_in_descriptions_are_valid() {
    check_compiled().unwrap();
    let casebook = get("casebook").expect("the example is compiled in");
    assert_eq!(casebook.file, "casebook.toml");
    let policy = casebook.description.session_policy();
    assert_eq!(
        (policy.max_age_seconds, policy.max_calls),
        (Some(86_400), Some(1_000))
    );
    // Its [limits], as parsed (the registry documents them beneath RATE_LIMITS).
    assert_eq!(
        casebook.limits.configured("casebook").unwrap()[0].count,
        600
    );
    assert_eq!(casebook.limits.configured_cap("casebook"), Some(4));
}

#[test]
fn a_malformed_description_is_refused_with_its_line() {
    // TOML syntax: the parser's own position.
    let e = parse_err("name = \"records\"\n[auth]\nkind = \"bearer\"\n[probe\npath = \"/me\"\n");
    assert_eq!(e.line, 4, "{e}");
    // An unknown field (a typo) names itself and its line.
    let text = format!("{MINIMAL}\n[actions.note]\nmethod = \"POST\"\npath = \"/notes\"\njsno = {{ a = \"b\" }}\nidempotent = true\n");
    let e = parse_err(&text);
    assert!(e.message.contains("unknown field `jsno`"), "{e}");
    assert_eq!(e.line, 11, "{e}");
    // A write without an idempotency strategy: the action's line.
    let text =
        format!("{MINIMAL}\n[actions.note]\nmethod = \"POST\"\npath = \"/notes/{{param.id}}\"\n");
    let e = parse_err(&text);
    assert!(
        e.message
            .contains("action note: a POST needs an idempotency strategy"),
        "{e}"
    );
    assert_eq!(e.to_string().split(':').nth(1), Some("8"), "{e}");
    // A secret where an action's template may not have one.
    let text = format!("{MINIMAL}\n[actions.note]\nmethod = \"PUT\"\nidempotent = true\npath = \"/notes\"\njson = {{ token = \"{{secret.password}}\" }}\n");
    let e = parse_err(&text);
    assert!(
        e.message.contains("{secret.password} is not allowed"),
        "{e}"
    );
    // A lookup that cannot find anything: the action does not carry the key.
    let text = format!("{MINIMAL}\n[actions.note]\nmethod = \"POST\"\npath = \"/notes\"\nidempotency.lookup = {{ path = \"/notes\", query = {{ ref = \"{{key}}\" }}, found = \"/0/id\" }}\n");
    assert!(parse_err(&text)
        .message
        .contains("both the request and the lookup must use {key}"));
    // Triage: a bad status class (a name clashing with a built-in: see `load`, below).
    let text = format!("{MINIMAL}\n[[triage]]\nstatus = \"6xx\"\nkind = \"retry\"\n");
    let e = parse_err(&text);
    assert!(e.message.contains("\"6xx\" is neither"), "{e}");
    assert_eq!(e.line, 8);
    assert!(parse_err(&MINIMAL.replace("bearer", "api_key"))
        .message
        .contains("exactly one of header or query"));
}

fn casebook() -> &'static Description {
    &get("casebook").unwrap().description
}

fn response(status: u16, body: &str) -> crate::connectors::triage::Response {
    crate::connectors::triage::Response {
        status,
        headers: vec![],
        body: body.into(),
    }
}

#[test]
fn triage_rules_read_what_the_system_really_answers() {
    use crate::connectors::triage::Kind;
    let now = chrono::Utc::now();
    let v = triage::triage(
        casebook(),
        &response(
            400,
            r#"{"code":1003,"message":"Too many requests. Retry in 2 seconds.","retry_in":2}"#,
        ),
        now,
    );
    assert_eq!(
        (v.kind, v.retry_after),
        (Kind::RateLimited, Some(std::time::Duration::from_secs(2)))
    );
    let v = triage::triage(
        casebook(),
        &response(
            422,
            r#"{"errors":[{"field":"matter_type","message":"can't be blank"}]}"#,
        ),
        now,
    );
    assert_eq!(v.kind, Kind::Permanent);
    let e = crate::connectors::ConnectorError::from_verdict(v);
    assert_eq!(e.refused_fields(), ["matter_type"]);
    let v = triage::triage(
        casebook(),
        &response(
            403,
            "<html><body>Source IP 203.0.113.7 is not on the allow list</body></html>",
        ),
        now,
    );
    assert_eq!(
        v.refusal,
        crate::connectors::Refusal::IpAllowList,
        "{}",
        v.reason
    );
    // The defaults beneath the rules: a proxy's HTML page is retried, a 200 page is no success.
    assert_eq!(
        triage::triage(casebook(), &response(502, "<html>Bad Gateway</html>"), now).kind,
        Kind::Transient
    );
    assert_eq!(
        triage::triage(casebook(), &response(200, "<html>Sign in</html>"), now).kind,
        Kind::Transient
    );
    assert_eq!(
        triage::triage(
            casebook(),
            &response(400, r#"{"message":"bad title"}"#),
            now
        )
        .kind,
        Kind::Permanent
    );
}

#[test]
fn dates_in_each_backends_format_read_as_one_instant() {
    let d = &casebook().dates;
    assert_eq!(
        read_described_date(d, "12/03/2026 09:05").as_deref(),
        Some("2026-12-03T14:05:00.000Z")
    );
    assert_eq!(read_described_date(d, "2026-12-03"), None);
    let at = |v: serde_json::Value| {
        crate::dates::parse_json(&v)
            .map(|d| crate::dates::format(&d))
            .ok()
    };
    assert_eq!(
        at(serde_json::json!(1796306700000u64)).as_deref(),
        Some("2026-12-03T14:05:00.000Z")
    );
    assert_eq!(
        at(serde_json::json!("2026-12-03T14:05:00Z")).as_deref(),
        Some("2026-12-03T14:05:00.000Z")
    );
}

#[test]
fn requests_are_filled_encoded_and_signed_without_a_secret_in_sight() {
    let creds = Credential::SessionLogin {
        connector: "casebook".into(),
        base_url: "https://casebook.example/base".into(),
        access_token: Some("s3ss10n".to_owned().into()),
        issued_at: None,
        expires_at: None,
        session: Default::default(),
    };
    let c = Declared::new(
        get("casebook").unwrap(),
        crate::connectors::http_client(),
        creds,
    )
    .unwrap();
    let a = c.action("open_case").unwrap();
    let value = |n: &str| match n {
        "param.matter" => Some("M-1/../admin".to_owned()),
        "param.title" => Some("Lease dispute".to_owned()),
        "param.description" => Some("Tenant writes".to_owned()),
        "key" => Some("act-key-1".to_owned()),
        _ => None,
    };
    let req = c
        .request(&a.request(), &value, None)
        .unwrap()
        .build()
        .unwrap();
    // A parameter cannot step out of its path segment.
    assert_eq!(
        req.url().as_str(),
        "https://casebook.example/base/api/v2/matters/M-1%2F..%2Fadmin/cases"
    );
    let auth = req.headers().get("x-casebook-session").unwrap();
    assert!(auth.is_sensitive());
    let body: serde_json::Value =
        serde_json::from_slice(req.body().unwrap().as_bytes().unwrap()).unwrap();
    assert_eq!(body["external_ref"], "act-key-1");
    // A missing parameter is named, and nothing is built.
    let err = c
        .request(
            &a.request(),
            &|n| (n != "param.title").then(|| value(n)).flatten(),
            None,
        )
        .err()
        .unwrap();
    assert!(err.to_string().contains("{param.title}"), "{err}");
    // A whole segment of `..` or `.` would pop the path; empty would drop a step: refused.
    for bad in ["..", ".", ""] {
        let err = c
            .request(
                &a.request(),
                &|n| match n {
                    "param.matter" => Some(bad.to_owned()),
                    _ => value(n),
                },
                None,
            )
            .err()
            .unwrap();
        assert!(
            matches!(&err, ConnectorError::Unsupported(m) if m.contains("not an id")),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn a_preview_shows_each_request_for_a_sample_event_with_secrets_redacted() {
    let routing = crate::routing::RoutingConfig::load(crate::routing::DEFAULT_CONFIG).unwrap();
    let event: crate::event::Event = serde_json::from_value(serde_json::json!({
        "id": "ev-1", "source": "zendesk", "event_type": "ticket.created", "delivery_id": "d-1",
        "object_id": "35439", "subject": "Subpoena for account records",
        "text": "Please confirm receipt of the subpoena.", "requester": null, "occurred_at": null,
        "received_at": "2026-12-04T10:31:00Z", "raw": {}
    }))
    .unwrap();
    let shown = preview::preview(
        get("casebook").unwrap(),
        &routing,
        &event,
        "https://casebook.example",
    )
    .unwrap();
    assert!(
        shown.contains("POST https://casebook.example/api/v2/sessions"),
        "{shown}"
    );
    assert!(shown.contains(r#""password":"[redacted]""#), "{shown}");
    assert!(
        shown.contains("route \"legal\" → casebook.open_case:"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "GET https://casebook.example/api/v2/cases?external_ref=%5Bidempotency+key%5D"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("POST https://casebook.example/api/v2/matters/M-INTAKE/cases"),
        "{shown}"
    );
    assert!(shown.contains("x-casebook-session: [redacted]"), "{shown}");
    assert!(
        shown.contains(r#""title":"Subpoena for account records""#),
        "{shown}"
    );
}

#[test]
fn a_date_documented_in_several_formats_is_no_drift_but_a_missing_field_is() {
    use crate::drift::{compare::compare, profile::Profile, FindingKind};
    let contract = get("casebook").unwrap().contract.unwrap();
    let shape = contract.shape("case");
    let case = |n: u64, opened: serde_json::Value| {
        serde_json::json!({"number": format!("CB-{n}"), "status": "open", "title": "t",
                           "external_ref": null, "opened_at": opened})
    };
    let first = [
        case(1, "2026-12-03T14:05:00Z".into()),
        case(2, "12/03/2026 09:05".into()),
    ];
    let later = [
        case(3, 1796306700000u64.into()),
        case(4, "2026-12-03T14:05:00Z".into()),
    ];
    let before = Profile::build(&first, shape);
    let found = compare(
        "casebook",
        "case",
        shape,
        &Profile::build(&later, shape),
        Some(&before),
    );
    assert!(found.is_empty(), "{found:?}");
    assert!(compare("casebook", "case", shape, &before, None).is_empty());
    let gone: Vec<serde_json::Value> = later
        .iter()
        .cloned()
        .map(|mut c| {
            c.as_object_mut().unwrap().remove("status");
            c
        })
        .collect();
    let found = compare(
        "casebook",
        "case",
        shape,
        &Profile::build(&gone, shape),
        Some(&before),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].kind, found[0].path.as_str()),
        (FindingKind::FieldMissing, "status")
    );
}

#[test]
fn a_key_field_strategy_must_carry_the_key_and_a_base_url_may_come_from_the_description() {
    let with_field = |body: &str| {
        format!("{MINIMAL}\n[actions.upsert]\nmethod = \"POST\"\npath = \"/records\"\njson = {body}\nidempotency.field = \"external_id\"\n")
    };
    assert!(Description::parse(
        "ok.toml",
        &with_field(r#"{ external_id = "{key}", name = "{param.name}" }"#)
    )
    .is_ok());
    let e = parse_err(&with_field(r#"{ name = "{param.name}" }"#));
    assert!(e.message.contains("must set external_id to {key}"), "{e}");
    let both = format!("{MINIMAL}\n[actions.upsert]\nmethod = \"POST\"\npath = \"/r\"\njson = {{ id = \"{{key}}\" }}\nidempotency = {{ field = \"id\", header = \"Idempotency-Key\" }}\n");
    assert!(parse_err(&both)
        .message
        .contains("exactly one of header, field or lookup"));

    // One shared host in the description; a tenant's own in its secret wins.
    let text = MINIMAL.replace("[auth]", "base_url = \"https://records.example\"\n[auth]");
    let loaded: &'static Described = Box::leak(Box::new(
        load(&[("records.toml", &text)], &[]).unwrap().remove(0),
    ));
    let token = |base_url: &str| Credential::BearerToken {
        base_url: base_url.into(),
        token: "t".to_owned().into(),
    };
    let c = Declared::new(loaded, crate::connectors::http_client(), token("")).unwrap();
    assert_eq!(c.base_url, "https://records.example");
    let c = Declared::new(
        loaded,
        crate::connectors::http_client(),
        token("https://tenant.example"),
    )
    .unwrap();
    assert_eq!(c.base_url, "https://tenant.example");
    // A built-in connector's name is refused, on its line.
    let taken = MINIMAL.replace("name = \"records\"", "name = \"zendesk\"");
    let e = load(&[("zendesk.toml", &taken)], &["zendesk", "slack"])
        .err()
        .unwrap();
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "name \"zendesk\" is a built-in connector's")
    );
    let bare: &'static Described = Box::leak(Box::new(
        load(&[("bare.toml", MINIMAL)], &[]).unwrap().remove(0),
    ));
    let e = Declared::new(bare, crate::connectors::http_client(), token(""))
        .err()
        .unwrap();
    assert!(e.to_string().contains("has no base URL"), "{e}");
}

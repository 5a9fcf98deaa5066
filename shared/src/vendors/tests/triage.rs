//! Triage against response bodies as the vendors document them.

use chrono::{DateTime, Utc};

use crate::connectors::triage::{Kind, Response};
use crate::connectors::wait::as_millis_ceil;
use crate::vendors::triage;

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn t(
    vendor: &str,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> (Kind, Option<u64>, String) {
    let r = Response {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.to_owned(),
    };
    let v = triage(vendor, &r, now()).expect("known vendor");
    (v.kind, v.retry_after.map(as_millis_ceil), v.reason)
}

fn kind(vendor: &str, status: u16, body: &str) -> Kind {
    t(vendor, status, &[], body).0
}

#[test]
fn unknown_vendor_is_none() {
    assert!(triage("myspace", &Response::default(), now()).is_none());
}

#[test]
fn zendesk() {
    assert_eq!(kind("zendesk", 201, r#"{"ticket":{"id":35436}}"#), Kind::Ok);
    let (k, wait, _) = t(
        "zendesk",
        429,
        &[("Retry-After", "93")],
        "Rate limit for ticket updates exceeded, please wait before updating this ticket again",
    );
    assert_eq!((k, wait), (Kind::RateLimited, Some(93_000)));
    assert_eq!(
        kind("zendesk", 401, r#"{"error":"Couldn't authenticate you"}"#),
        Kind::Auth
    );
    let (k, _, reason) = t(
        "zendesk",
        422,
        &[],
        r#"{"error":"RecordInvalid","description":"Record validation errors","details":{"base":[{"description":"Requester: Email is invalid"}]}}"#,
    );
    assert_eq!(k, Kind::Permanent);
    assert!(reason.contains("RecordInvalid"), "{reason}");
    let (k, _, reason) = t(
        "zendesk",
        404,
        &[],
        r#"{"error":{"title":"No help desk at foo.zendesk.com","message":"There is no help desk configured at this address."}}"#,
    );
    assert_eq!(k, Kind::Permanent);
    assert!(reason.contains("No help desk"), "{reason}");
    assert_eq!(
        kind("zendesk", 409, r#"{"error":"RecordConflict"}"#),
        Kind::Transient
    );
    let (k, wait, _) = t(
        "zendesk",
        503,
        &[("Retry-After", "60")],
        "<html><body>Maintenance</body></html>",
    );
    assert_eq!((k, wait), (Kind::Transient, Some(60_000)));
    assert_eq!(
        kind("zendesk", 200, "<html>Please wait</html>"),
        Kind::Transient
    );
    assert_eq!(
        kind(
            "zendesk",
            403,
            r#"{"error":"Forbidden","description":"You do not have access to this page."}"#
        ),
        Kind::Permanent
    );
}

#[test]
fn jira() {
    assert_eq!(kind("jira", 204, ""), Kind::Ok);
    let (k, wait, reason) = t(
        "jira",
        429,
        &[
            ("X-RateLimit-Reset", "2026-11-28T12:01Z"),
            ("RateLimit-Reason", "jira-burst-based"),
        ],
        "",
    );
    assert_eq!((k, wait), (Kind::RateLimited, Some(60_000)));
    assert!(reason.contains("jira-burst-based"));
    let (k, wait, _) = t("jira", 503, &[("Retry-After", "5")], "");
    assert_eq!((k, wait), (Kind::Transient, Some(5_000)));
    let (k, _, reason) = t(
        "jira",
        400,
        &[],
        r#"{"errorMessages":[],"errors":{"summary":"You must specify a summary of the issue."}}"#,
    );
    assert_eq!(k, Kind::Permanent);
    assert!(reason.contains("summary: You must specify"), "{reason}");
    assert_eq!(kind("jira", 401, ""), Kind::Auth);
    assert_eq!(
        kind(
            "jira",
            404,
            r#"{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}"#
        ),
        Kind::Permanent
    );
}

#[test]
fn slack_errors_inside_200() {
    assert_eq!(
        kind(
            "slack",
            200,
            r#"{"ok":true,"channel":"C1","ts":"1503435956.000247"}"#
        ),
        Kind::Ok
    );
    let (k, _, reason) = t(
        "slack",
        200,
        &[],
        r#"{"ok":true,"warning":"missing_charset","response_metadata":{"warnings":["missing_charset"]}}"#,
    );
    assert_eq!(k, Kind::Ok);
    assert!(reason.contains("missing_charset"));
    let (k, wait, _) = t(
        "slack",
        200,
        &[("Retry-After", "30")],
        r#"{"ok":false,"error":"ratelimited"}"#,
    );
    assert_eq!((k, wait), (Kind::RateLimited, Some(30_000)));
    let (k, wait, _) = t("slack", 429, &[("Retry-After", "3")], "");
    assert_eq!((k, wait), (Kind::RateLimited, Some(3_000)));
    assert_eq!(
        kind("slack", 200, r#"{"ok":false,"error":"token_expired"}"#),
        Kind::Auth
    );
    assert_eq!(
        kind("slack", 200, r#"{"ok":false,"error":"invalid_auth"}"#),
        Kind::Auth
    );
    assert_eq!(
        kind("slack", 200, r#"{"ok":false,"error":"token_revoked"}"#),
        Kind::ReauthRequired
    );
    let (k, _, reason) = t(
        "slack",
        200,
        &[],
        r#"{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"channels:read"}"#,
    );
    assert_eq!(k, Kind::Permanent);
    assert!(reason.contains("missing_scope"));
    assert_eq!(
        kind("slack", 200, r#"{"ok":false,"error":"channel_not_found"}"#),
        Kind::Permanent
    );
    assert_eq!(
        kind("slack", 200, r#"{"ok":false,"error":"internal_error"}"#),
        Kind::Transient
    );
    assert_eq!(kind("slack", 200, r#"{"channel":"C1"}"#), Kind::Transient);
    assert_eq!(
        kind("slack", 503, "<html>Service Unavailable</html>"),
        Kind::Transient
    );
    // Incoming webhooks speak plain text.
    assert_eq!(kind("slack", 200, "ok"), Kind::Ok);
    assert_eq!(kind("slack", 400, "invalid_payload"), Kind::Permanent);
    assert_eq!(kind("slack", 404, "no_service"), Kind::ReauthRequired);
}

#[test]
fn teams() {
    assert_eq!(kind("teams", 200, "1"), Kind::Ok);
    assert_eq!(kind("teams", 202, ""), Kind::Ok);
    let (k, _, reason) = t("teams", 200, &[], "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=msgapi-canary-eus2-0,cv=deadbeef.");
    assert_eq!(k, Kind::RateLimited);
    assert!(reason.contains("HTTP error 429"));
    assert_eq!(kind("teams", 200, "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413 with ContextId x"), Kind::Permanent);
    assert_eq!(
        kind(
            "teams",
            400,
            "Bad payload received by generic incoming webhook."
        ),
        Kind::Permanent
    );
    assert_eq!(
        kind("teams", 410, "Connector configuration not found"),
        Kind::ReauthRequired
    );
    let (k, wait, _) = t(
        "teams",
        429,
        &[("Retry-After", "47")],
        r#"{"error":{"code":"TooManyRequests","message":"Too many requests","innerError":{"code":"throttledRequest"}}}"#,
    );
    assert_eq!((k, wait), (Kind::RateLimited, Some(47_000)));
    assert_eq!(
        kind(
            "teams",
            401,
            r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired or is not yet valid."}}"#
        ),
        Kind::Auth
    );
    assert_eq!(
        kind(
            "teams",
            403,
            r#"{"error":{"code":"Forbidden","message":"Missing role permissions on the request."}}"#
        ),
        Kind::Permanent
    );
}

#[test]
fn hubspot_policy_implies_the_wait() {
    let body = |policy: &str| {
        format!(
            r#"{{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"c7a2a4e1-1d8d-4a4e-9f0a-3a3b8d1b0c11","policyName":"{policy}","groupName":"api"}}"#
        )
    };
    let (k, wait, reason) = t(
        "hubspot",
        429,
        &[("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")],
        &body("TEN_SECONDLY_ROLLING"),
    );
    assert_eq!((k, wait), (Kind::RateLimited, Some(10_000)));
    assert!(reason.contains("TEN_SECONDLY_ROLLING"));
    assert_eq!(t("hubspot", 429, &[], &body("SECONDLY")).1, Some(1_000));
    assert_eq!(t("hubspot", 429, &[], &body("DAILY")).1, None);
    // A Retry-After, when sent, wins.
    assert_eq!(
        t("hubspot", 429, &[("Retry-After", "2")], &body("SECONDLY")).1,
        Some(2_000)
    );
    assert_eq!(
        kind(
            "hubspot",
            401,
            r#"{"status":"error","message":"The OAuth token used to make this call expired 2 hour(s) ago.","correlationId":"x","category":"EXPIRED_AUTHENTICATION"}"#
        ),
        Kind::Auth
    );
    let (k, _, reason) = t(
        "hubspot",
        403,
        &[],
        r#"{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","correlationId":"x","errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.objects.contacts.write"]}}],"category":"MISSING_SCOPES"}"#,
    );
    assert_eq!(k, Kind::Permanent);
    assert!(reason.contains("MISSING_SCOPES"));
    assert_eq!(
        kind(
            "hubspot",
            409,
            r#"{"status":"error","message":"Contact already exists. Existing ID: 151","correlationId":"x","category":"CONFLICT"}"#
        ),
        Kind::Permanent
    );
    assert_eq!(
        kind(
            "hubspot",
            400,
            r#"{"status":"error","message":"Property values were not valid","category":"VALIDATION_ERROR"}"#
        ),
        Kind::Permanent
    );
    assert_eq!(
        kind("hubspot", 502, "<html>502 Bad Gateway</html>"),
        Kind::Transient
    );
    assert_eq!(
        kind(
            "hubspot",
            201,
            r#"{"id":"512","properties":{},"createdAt":"2026-11-28T12:00:00.000Z"}"#
        ),
        Kind::Ok
    );
}

#[test]
fn salesforce_403_can_be_a_rate_limit() {
    assert_eq!(
        kind(
            "salesforce",
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#
        ),
        Kind::RateLimited
    );
    assert_eq!(
        kind(
            "salesforce",
            403,
            r#"[{"message":"insufficient access rights on object id","errorCode":"INSUFFICIENT_ACCESS_OR_READONLY"}]"#
        ),
        Kind::Permanent
    );
    assert_eq!(
        kind(
            "salesforce",
            401,
            r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
        ),
        Kind::Auth
    );
    assert_eq!(
        kind(
            "salesforce",
            400,
            r#"[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW","fields":[]}]"#
        ),
        Kind::Transient
    );
    assert_eq!(
        kind(
            "salesforce",
            400,
            r#"[{"message":"Required fields are missing: [Subject]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Subject"]}]"#
        ),
        Kind::Permanent
    );
    assert_eq!(
        kind(
            "salesforce",
            300,
            r#"["/services/data/v62.0/sobjects/Case/500xx1","/services/data/v62.0/sobjects/Case/500xx2"]"#
        ),
        Kind::Permanent
    );
    assert_eq!(
        kind(
            "salesforce",
            201,
            r#"{"id":"500xx000003DIkAAM","success":true,"errors":[]}"#
        ),
        Kind::Ok
    );
    let (k, _, reason) = t(
        "salesforce",
        200,
        &[],
        r#"[{"id":"500xx1","success":true,"errors":[]},{"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access","fields":[]}]}]"#,
    );
    assert_eq!(k, Kind::Transient);
    assert!(reason.starts_with("1 of 2 records failed"), "{reason}");
    assert_eq!(
        kind("salesforce", 503, "<html>Service Unavailable</html>"),
        Kind::Transient
    );
}

#[test]
fn oauth2_token_endpoint() {
    let (k, _, reason) = t(
        "oauth2",
        200,
        &[],
        r#"{"access_token":"SECRET-ACCESS","token_type":"Bearer","expires_in":3600,"refresh_token":"SECRET-REFRESH"}"#,
    );
    assert_eq!(k, Kind::Ok);
    assert!(
        !reason.contains("SECRET"),
        "a token leaked into the reason: {reason}"
    );
    assert_eq!(
        kind(
            "oauth2",
            400,
            r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#
        ),
        Kind::ReauthRequired
    );
    assert_eq!(
        kind(
            "oauth2",
            401,
            r#"{"error":"invalid_client","error_description":"invalid client credentials"}"#
        ),
        Kind::ReauthRequired
    );
    // HubSpot's token endpoint, in its own words: a refused grant, not a bad request.
    let (k, _, reason) = t(
        "oauth2",
        400,
        &[],
        r#"{"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token","correlationId":"0d5ab5cd-4c47-4bfe-b1b4-8d1dd5d3f3d1"}"#,
    );
    assert_eq!(k, Kind::ReauthRequired, "{reason}");
    assert!(
        reason.contains("BAD_REFRESH_TOKEN") && reason.contains("reconnect"),
        "{reason}"
    );
    assert_eq!(
        kind("oauth2", 400, r#"{"error":"unsupported_grant_type"}"#),
        Kind::Permanent
    );
    assert_eq!(
        kind("oauth2", 503, r#"{"error":"temporarily_unavailable"}"#),
        Kind::Transient
    );
    assert_eq!(
        kind(
            "oauth2",
            200,
            r#"{"ok":false,"error":"invalid_refresh_token"}"#
        ),
        Kind::ReauthRequired
    );
    let (k, wait, _) = t(
        "oauth2",
        429,
        &[("Retry-After", "Sat, 28 Nov 2026 12:00:10 GMT")],
        "Too Many Requests",
    );
    assert_eq!((k, wait), (Kind::RateLimited, Some(10_000)));
    let (k, _, reason) = t(
        "oauth2",
        200,
        &[],
        r#"{"token_type":"Bearer","refresh_token":"SECRET-REFRESH"}"#,
    );
    assert_eq!(k, Kind::Transient);
    assert!(!reason.contains("SECRET"));
}

#[test]
fn waits_only_accompany_retryable_outcomes() {
    let (k, wait, _) = t(
        "zendesk",
        404,
        &[("Retry-After", "5")],
        r#"{"error":"RecordNotFound"}"#,
    );
    assert_eq!((k, wait), (Kind::Permanent, None));
    let (k, wait, _) = t("jira", 429, &[], "");
    assert_eq!((k, wait), (Kind::RateLimited, None));
}

/// A write refused for a field names the field, so the refusal becomes a drift finding: the
/// fields travel as a fact of the verdict (and the error act sees), and the reason says them too.
#[test]
fn validation_errors_name_their_fields() {
    use crate::connectors::ConnectorError;
    let fields = |vendor: &str, status: u16, body: &str| {
        let r = Response {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        };
        let v = triage(vendor, &r, now()).expect("known vendor");
        assert_eq!(v.kind, Kind::Permanent, "{}", v.reason);
        let e = ConnectorError::from_verdict(v.clone());
        let fields = e.refused_fields().to_vec();
        if !fields.is_empty() {
            assert!(v.reason.contains(&fields.join(", ")), "{}", v.reason);
        }
        fields
    };
    // Zendesk RecordInvalid: `details` keyed by field, `base` entries by `field_key`.
    assert_eq!(
        fields(
            "zendesk",
            422,
            r#"{"error":"RecordInvalid","description":"Record validation errors","details":{"base":[{"description":"Product area: needed","error":null,"field_key":360012345678}],"priority":[{"description":"Priority: is invalid"}]}}"#
        ),
        vec!["custom_field.360012345678", "priority"]
    );
    // Jira: `errors` maps field ids to messages.
    assert_eq!(
        fields(
            "jira",
            400,
            r#"{"errorMessages":[],"errors":{"customfield_10042":"Product area is required."}}"#
        ),
        vec!["customfield_10042"]
    );
    // Salesforce REQUIRED_FIELD_MISSING lists the fields by API name.
    assert_eq!(
        fields(
            "salesforce",
            400,
            r#"[{"message":"Required fields are missing: [Product_Area__c]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Product_Area__c"]}]"#
        ),
        vec!["Product_Area__c"]
    );
    // A refusal about no field names none.
    assert!(fields(
        "zendesk",
        404,
        r#"{"error":"RecordNotFound","description":"Not found"}"#
    )
    .is_empty());
}

/// What a refusal was travels as a fact of the verdict, read from each vendor's own words once,
/// here: `doctor` names the fix and hubspot's drift check finds a missing property by it.
#[test]
fn refusals_are_facts_of_the_verdict() {
    use crate::connectors::Refusal;
    let refusal = |vendor: &str, status: u16, body: &str| {
        let r = Response {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        };
        triage(vendor, &r, now()).expect("known vendor").refusal
    };
    // Atlassian's documented allow-list answer, and Slack's `accesslimited`.
    assert_eq!(
        refusal(
            "jira",
            403,
            r#"{"errorMessages":["The IP address has been rejected because it is not on the allowed list. See your admin for more information."],"errors":{}}"#
        ),
        Refusal::IpAllowList
    );
    assert_eq!(
        refusal("slack", 200, r#"{"ok":false,"error":"accesslimited"}"#),
        Refusal::IpAllowList
    );
    // A 403 that is not about the network is a missing permission; a 404 a missing object.
    assert_eq!(
        refusal(
            "zendesk",
            403,
            r#"{"error":"Forbidden","description":"You do not have access to this page."}"#
        ),
        Refusal::MissingPermission
    );
    assert_eq!(
        refusal(
            "hubspot",
            403,
            r#"{"status":"error","message":"This app hasn't been granted all required scopes","category":"MISSING_SCOPES"}"#
        ),
        Refusal::MissingPermission
    );
    assert_eq!(
        refusal(
            "hubspot",
            404,
            r#"{"status":"error","message":"Unable to find property","category":"OBJECT_NOT_FOUND"}"#
        ),
        Refusal::NotFound
    );
    assert_eq!(
        refusal("slack", 200, r#"{"ok":false,"error":"channel_not_found"}"#),
        Refusal::NotFound
    );
    // A refusal without more to say says nothing more.
    assert_eq!(
        refusal("zendesk", 409, r#"{"error":"Conflict"}"#),
        Refusal::Unspecified
    );
}

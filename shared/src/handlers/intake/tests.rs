//! intake refusals that must happen before any AWS call.
use super::*;
use lambda_runtime::Context;

/// Deps whose clients point nowhere: these requests must be refused before any AWS call.
fn offline_deps() -> Intake {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let aws = crate::aws::AwsClients::new(&config);
    Intake {
        sqs: aws.sqs.clone(),
        secrets: SecretCache::new(aws.secrets.clone(), std::time::Duration::from_secs(60)),
        classify_queue_url: "q".into(),
        signing_secret_id: "s".into(),
        max_body_bytes: 1024,
        public_base_url: None,
        decisions: DecisionStore::new(aws.ddb.clone(), "d"),
        replay_window: chrono::Duration::days(30),
        gates: Default::default(),
        limiter: None,
        hubspot_min_version: crate::vendors::hubspot::inbound::Version::V3,
        door: None,
    }
}

fn request(method: &str, path: &str, body: &str, base64: bool) -> LambdaFunctionUrlRequest {
    let mut r = LambdaFunctionUrlRequest::default();
    r.raw_path = Some(path.into());
    r.request_context.http.method = Some(method.into());
    r.body = Some(body.into());
    r.is_base64_encoded = base64;
    r
}

async fn call(req: LambdaFunctionUrlRequest) -> (i64, serde_json::Value) {
    let resp = handler(&offline_deps(), LambdaEvent::new(req, Context::default()))
        .await
        .unwrap();
    (
        resp.status_code,
        serde_json::from_str(resp.body.as_deref().unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn unknown_source_is_404_with_the_valid_paths() {
    let (status, body) = call(request("POST", "/webhooks/myspace", "{}", false)).await;
    assert_eq!(status, 404);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("/webhooks/{zendesk|slack|jira|github"));
}

#[tokio::test]
async fn non_post_is_405() {
    let (status, _) = call(request("GET", "/webhooks/zendesk", "", false)).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn oversized_body_is_413_and_wrong_content_type_is_415() {
    let (status, body) = call(request("POST", "/webhooks/slack", &"x".repeat(2000), false)).await;
    assert_eq!(status, 413);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("over the 1024 byte limit"));
    let mut r = request("POST", "/webhooks/slack", "{}", false);
    r.headers
        .insert("content-type", http::HeaderValue::from_static("text/plain"));
    assert_eq!(call(r).await.0, 415);
}

#[tokio::test]
async fn a_status_request_without_an_id_is_a_client_error_not_please_retry() {
    for path in ["/events/", "/events/a%2Fb", "/events/../x"] {
        let (status, body) = call(request("GET", path, "", false)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]
            .as_str()
            .unwrap()
            .contains("event id is required"));
    }
}

#[tokio::test]
async fn a_content_type_of_non_ascii_bytes_is_415_not_absent() {
    let mut r = request("POST", "/webhooks/zendesk", "{}", false);
    r.headers.insert(
        "content-type",
        http::HeaderValue::from_bytes(b"application/json\xff").unwrap(),
    );
    let (status, body) = call(r).await;
    assert_eq!(status, 415, "{body}");
    assert!(body["error"].as_str().unwrap().contains("non-ASCII"));
}

#[tokio::test]
async fn broken_base64_body_is_400() {
    let (status, body) = call(request("POST", "/webhooks/slack", "***", true)).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("base64"));
}

#[tokio::test]
async fn secrets_store_down_is_503_so_the_vendor_retries() {
    let resp = handler(
        &offline_deps(),
        LambdaEvent::new(
            request("POST", "/webhooks/slack", "{}", false),
            Context::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status_code, 503);
    assert!(resp.headers.contains_key("retry-after"));
}

/// An API Gateway HTTP API request (payload format 2.0, here from a mutual-TLS custom domain, in
/// the shape AWS documents) is read as a function URL request; the domain and source-address
/// gates apply to it before any AWS call.
#[tokio::test]
async fn an_http_api_request_is_read_and_gated_by_domain_and_address() {
    let payload = |domain: &str, ip: &str| {
        serde_json::json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/webhooks/salesforce", "rawQueryString": "",
            "headers": {"content-type": "text/xml; charset=utf-8", "host": domain, "x-forwarded-for": ip},
            "requestContext": {
                "accountId": "123456789012", "apiId": "a1b2c3d4e5",
                "authentication": {"clientCert": {"clientCertPem": "-----BEGIN CERTIFICATE-----\nMIIC…",
                    "issuerDN": "CN=Example Client CA", "serialNumber": "1", "subjectDN": "CN=proxy.salesforce.com",
                    "validity": {"notAfter": "Aug  5 00:28:21 2030 GMT", "notBefore": "Aug 29 00:28:21 2025 GMT"}}},
                "domainName": domain, "domainPrefix": "hooks",
                "http": {"method": "POST", "path": "/webhooks/salesforce", "protocol": "HTTP/1.1", "sourceIp": ip, "userAgent": "Jakarta Commons-HttpClient/3.1"},
                "requestId": "LV7fzho-PHcEJPw=", "routeKey": "$default", "stage": "$default",
                "time": "04/Dec/2026:15:08:21 +0000", "timeEpoch": 1796396901067_i64
            },
            "body": "<soapenv:Envelope/>", "isBase64Encoded": false
        })
    };
    let mut deps = offline_deps();
    deps.gates = Gates::parse(
        "salesforce=96.43.144.0/20",
        "salesforce=hooks.example.com",
        "",
    )
    .unwrap();
    let answer = |p: serde_json::Value| {
        let req: LambdaFunctionUrlRequest = serde_json::from_value(p).unwrap();
        let deps = deps.clone();
        async move {
            let r = handler(&deps, LambdaEvent::new(req, Context::default()))
                .await
                .unwrap();
            (r.status_code, r.body.unwrap_or_default())
        }
    };
    // Through the domain, from an allowed address: past both gates, to the secrets (offline: 503).
    assert_eq!(
        answer(payload("hooks.example.com", "96.43.144.26")).await.0,
        503
    );
    // The function URL's own domain goes around mutual TLS: refused, before any AWS call.
    let (status, body) = answer(payload(
        "abcdefgh.lambda-url.us-east-1.on.aws",
        "96.43.144.26",
    ))
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("only through https://hooks.example.com"),
        "{body}"
    );
    let (status, body) = answer(payload("hooks.example.com", "203.0.113.5")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        !body.contains("203.0.113.5"),
        "the caller's address is not echoed: {body}"
    );
}

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
        idempotency: IdempotencyStore::new(aws.ddb.clone(), "t"),
        classify_queue_url: "q".into(),
        signing_secret_id: "s".into(),
        max_body_bytes: 1024,
        public_base_url: None,
        decisions: DecisionStore::new(aws.ddb.clone(), "d"),
        replay_window: chrono::Duration::days(30),
        gates: Default::default(),
        limiter: None,
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

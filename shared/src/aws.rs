//! AWS SDK clients, built once per process (in `main` or by the local runner) and shared.

use aws_config::SdkConfig;

/// The clients every handler may need. Cheap to clone (each is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// SQS, for the queues between the pipeline stages.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB, for the idempotency, decision, pacing and drift stores.
    pub ddb: aws_sdk_dynamodb::Client,
    /// Secrets Manager, for signing secrets and vendor credentials.
    pub secrets: aws_sdk_secretsmanager::Client,
    config: SdkConfig,
}

impl AwsClients {
    /// Builds the clients from one loaded SDK configuration, kept for the clients built on request.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(config),
            ddb: aws_sdk_dynamodb::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            config: config.clone(),
        }
    }

    /// KMS, for the escrow key (built with the refresher, once per process).
    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config)
    }

    /// Textract, for OCR of scanned documents (classify, when `DOCUMENT_OCR` says so); built on
    /// request like S3's.
    pub fn textract(&self) -> aws_sdk_textract::Client {
        aws_sdk_textract::Client::new(&self.config)
    }

    /// An S3 client, built on request: only sync reads S3, and a function that never asks links
    /// none of S3's client (0.3 MB of each arm64 binary). Build it once, in `main`.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        // A local endpoint (the emulator) has no per-bucket host names.
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.config)
                .force_path_style(self.config.endpoint_url().is_some())
                .build(),
        )
    }

    /// Load the standard AWS configuration chain (env, profile, IMDS/Lambda role), over the one
    /// TLS stack ([`crate::http`]). `AWS_ENDPOINT_URL` points every client at the local emulator.
    pub async fn from_env() -> Self {
        Self::new(&config_loader().load().await)
    }
}

/// The standard configuration chain with the HTTPS client of [`crate::http`]: what every SDK
/// client in switchyard, the CLI's included, is built from.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::http::sdk_http_client())
}

/// One of the DynamoDB stores switchyard keeps its records in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// Action keys (`IdempotencyTable`).
    Idempotency,
    /// Decision records (`DecisionsTable`).
    Decisions,
    /// Budgets, breakers, leases, marks (`PacingTable`).
    Pacing,
    /// Structure snapshots and findings (`DriftTable`).
    Drift,
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Store::Idempotency => "idempotency store",
            Store::Decisions => "decision store",
            Store::Pacing => "pacing table",
            Store::Drift => "drift table",
        })
    }
}

/// A request to one of the stores failed: which store, and what DynamoDB said (its code and
/// message, never an item), or what the store could not read. A later try may succeed.
#[derive(Debug, thiserror::Error)]
#[error("{store} (DynamoDB) failed: {message}")]
pub struct StoreError {
    /// The store the failed request went to.
    pub store: Store,
    /// What DynamoDB said (its code and message) or what the store could not read.
    pub message: String,
}

/// A conditional write's result, where a failed condition means there was nothing to do.
pub(crate) fn unless_condition_failed<O, E, R>(
    store: Store,
    sent: Result<O, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<(), StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match sent {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().and_then(|se| se.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(())
        }
        Err(e) => Err(StoreError::new(store, error_message(&e))),
    }
}

impl StoreError {
    /// A failure of `store`, described by `message` (log-safe: never an item).
    pub fn new(store: Store, message: impl Into<String>) -> Self {
        StoreError {
            store,
            message: message.into(),
        }
    }

    /// An SDK error, in the log-safe words of [`error_message`].
    pub(crate) fn sdk<E, R>(store: Store, e: &aws_sdk_sqs::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError::new(store, error_message(e))
    }
}

/// A short, log-safe description of an SDK error: the service's code and message, or the
/// transport failure — without the raw HTTP response the default `Display` chain includes.
pub fn error_message<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        aws_sdk_sqs::error::SdkError::ServiceError(se) => {
            let err = se.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("ServiceError"),
                err.message().unwrap_or("no message")
            )
        }
        other => aws_sdk_sqs::error::DisplayErrorContext(other).to_string(),
    }
}

/// The outcome of a conditional write to `store`: `Ok(true)` written, `Ok(false)` its condition
/// did not hold, `Err` anything else (described as [`error_message`] does).
pub fn conditional<T, E, R>(
    store: Store,
    out: Result<T, aws_sdk_sqs::error::SdkError<E, R>>,
) -> Result<bool, StoreError>
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match out {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(StoreError::new(store, error_message(&e))),
    }
}

//! sync: the scheduled bulk sync (EventBridge, nightly by default). It reads the customer export
//! from S3 (`s3://SYNC_BUCKET/<key>`, CSV `email,firstname,lastname,company_domain`) and upserts
//! them as contacts of one connector through its bulk endpoint, spread across a window and under
//! the credential's shared budget (`crate::sync`).
//!
//! The schedule's `Input` may name `connector`, `key` and `window_seconds`; the function's
//! settings give the defaults. The window must end before the function's timeout: one run is one
//! invocation (an input too big for the window is refused up front, before any call).

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use crate::pacing::Pacer;
use crate::sync::{read_customers, BulkSync, SyncError};

use crate::vendors::Connectors;

/// Time kept back from the function's deadline for reading the input and reporting.
const MARGIN: Duration = Duration::from_secs(30);

/// What the sync function needs: its clients, where the export lives, and the defaults.
#[derive(Clone, Debug)]
pub struct SyncDeps {
    /// Reads the customer export.
    pub s3: aws_sdk_s3::Client,
    /// The bucket holding the export (`SYNC_BUCKET`).
    pub bucket: String,
    /// The export's key when the input names none (`SYNC_INPUT_KEY`, default `customers.csv`).
    pub default_key: String,
    /// The connector synced to when the input names none (`SYNC_CONNECTOR`, default `hubspot`).
    pub default_connector: String,
    /// The window the calls are spread across when the input sets none (`SYNC_WINDOW_SECONDS`,
    /// default 600 s).
    pub default_window: Duration,
    /// The credential's shared call budget (the one act uses), a slot per call.
    pub pacer: Pacer,
    /// Connection secrets and the HTTP client; OAuth credentials are refreshed under the lease.
    pub connectors: Connectors,
}

/// What the schedule's `Input` may set (any other field, e.g. of a plain scheduled event, is
/// ignored).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SyncRequest {
    /// The connector to sync to, instead of the default.
    pub connector: Option<String>,
    /// The export's object key in the sync bucket, instead of the default.
    pub key: Option<String>,
    /// The window to spread the calls across, in seconds, instead of the default.
    pub window_seconds: Option<u64>,
}

impl SyncRequest {
    /// The schedule's input read as a request. A field of the wrong type (`"window_seconds":
    /// "600"`) fails the run, naming it, rather than syncing the defaults nobody asked for.
    pub fn from_input(input: Value) -> Result<SyncRequest, SyncError> {
        serde_path_to_error::deserialize(input).map_err(|e| {
            SyncError::Setup(format!(
                "the schedule's input is not a sync request: `{}`: {}",
                e.path(),
                e.inner()
            ))
        })
    }
}

/// What one run did (the function's result); all zero when the export object does not exist.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SyncSummary {
    /// The connector the contacts were upserted through.
    pub connector: String,
    /// The export's object key in the sync bucket.
    pub key: String,
    /// Customer rows read from the export.
    pub rows: usize,
    /// Rows sent in bulk upserts that the vendor did not refuse.
    pub synced: usize,
    /// Rows the vendor refused one by one (bad e-mail, validation rule).
    pub refused: usize,
    /// Vendor calls made (company reads, bulk writes, job polls), retries after a 429 included.
    pub calls: usize,
    /// Calls the vendor answered as rate limited (each retried after the wait).
    pub rate_limited: usize,
    /// How long the paced calls took, in milliseconds.
    pub elapsed_ms: u128,
}

impl SyncDeps {
    /// From the function's settings: `SYNC_BUCKET` is required, the other `SYNC_*` settings have
    /// defaults; fails when a setting the pacer or the connectors need is missing or invalid.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Result<Self, Error> {
        Ok(SyncDeps {
            s3: aws.s3(),
            bucket: s.get("SYNC_BUCKET")?.to_owned(),
            default_key: s
                .optional("SYNC_INPUT_KEY")
                .unwrap_or("customers.csv")
                .to_owned(),
            default_connector: s.optional("SYNC_CONNECTOR").unwrap_or("hubspot").to_owned(),
            default_window: Duration::from_secs(
                s.optional("SYNC_WINDOW_SECONDS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(600),
            ),
            pacer: Pacer::from_settings(&aws.ddb, s, &crate::vendors::DOCUMENTED)?,
            connectors: Connectors::with_refresher(aws, s)?,
        })
    }
}

/// The Lambda entry point: one [`run`] with the schedule's input (all defaults when the input
/// does not parse) and the time left before the invocation's deadline.
pub async fn handler(deps: &SyncDeps, event: LambdaEvent<Value>) -> Result<SyncSummary, Error> {
    let request = SyncRequest::from_input(event.payload)?;
    let remaining = Duration::from_millis(event.context.deadline).saturating_sub(
        Duration::from_millis(chrono::Utc::now().timestamp_millis() as u64),
    );
    Ok(run(deps, &request, remaining).await?)
}

/// One sync; `time_left` is how long the invocation may still run.
pub async fn run(
    deps: &SyncDeps,
    request: &SyncRequest,
    time_left: Duration,
) -> Result<SyncSummary, SyncError> {
    let connector = request
        .connector
        .as_deref()
        .unwrap_or(&deps.default_connector);
    let key = request.key.as_deref().unwrap_or(&deps.default_key);
    let window = request
        .window_seconds
        .map(Duration::from_secs)
        .unwrap_or(deps.default_window);
    if window + MARGIN > time_left {
        return Err(SyncError::Setup(format!(
            "a {} s window does not end before this invocation's deadline ({} s left); shorten SYNC_WINDOW_SECONDS",
            window.as_secs(),
            time_left.as_secs()
        )));
    }
    let object = match deps
        .s3
        .get_object()
        .bucket(&deps.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(o) => o,
        // No export yet (a fresh deploy, a night without one): nothing to do, and no alarm.
        // S3 says NoSuchKey only to a role with s3:ListBucket; without it, 403.
        Err(e)
            if e.as_service_error()
                .is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key) =>
        {
            info!(bucket = %deps.bucket, %key, %connector, "no export to sync: s3://{}/{key} does not exist; nothing done", deps.bucket);
            return Ok(SyncSummary {
                connector: connector.to_owned(),
                key: key.to_owned(),
                rows: 0,
                synced: 0,
                refused: 0,
                calls: 0,
                rate_limited: 0,
                elapsed_ms: 0,
            });
        }
        Err(e) => {
            return Err(SyncError::Setup(format!(
                "reading s3://{}/{key}: {}",
                deps.bucket,
                s3_error(&e)
            )))
        }
    };
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| SyncError::Setup(format!("reading s3://{}/{key}: {e}", deps.bucket)))?
        .into_bytes();
    let customers = read_customers(&bytes, &format!("s3://{}/{key}", deps.bucket))?;
    let secret_id = crate::vendors::secret_id(&deps.connectors.settings, connector)
        .ok_or_else(|| {
            SyncError::Setup(format!("{connector} has no connection secret configured"))
        })?
        .to_owned();
    let credential = match &deps.connectors.refresher {
        Some(r) => r
            .credential(&secret_id, None)
            .await
            .map_err(|e| SyncError::Setup(e.to_string()))?,
        None => deps
            .connectors
            .secrets
            .credential(&secret_id)
            .await
            .map_err(|e| SyncError::Setup(e.to_string()))?,
    };
    let sync = BulkSync {
        http: deps.connectors.http.clone(),
        pacer: deps.pacer.clone(),
        credential: secret_id,
        target: crate::vendors::sync_target(connector, credential)?,
    };
    let report = sync.run(&customers, window, &|_| {}).await?;
    let summary = SyncSummary {
        connector: connector.to_owned(),
        key: key.to_owned(),
        rows: customers.len(),
        synced: report.synced,
        refused: report.refused,
        calls: report.calls,
        rate_limited: report.rate_limited,
        elapsed_ms: report.elapsed.as_millis(),
    };
    info!(?summary, "sync finished");
    Ok(summary)
}

fn s3_error<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(se) => format!(
            "{}: {}",
            se.err().code().unwrap_or("ServiceError"),
            se.err().message().unwrap_or("no message")
        ),
        other => aws_sdk_s3::error::DisplayErrorContext(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_input_that_does_not_read_fails_the_run_and_names_the_field() {
        // A plain scheduled event's fields are not a request's: the defaults apply.
        let plain = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event"});
        let r = SyncRequest::from_input(plain).unwrap();
        assert_eq!((r.connector, r.key, r.window_seconds), (None, None, None));
        let e = SyncRequest::from_input(serde_json::json!({"window_seconds": "600"})).unwrap_err();
        assert!(e.to_string().contains("window_seconds"), "{e}");
    }
}

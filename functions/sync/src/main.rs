//! sync Lambda (EventBridge schedule): the paced bulk contact sync from an S3 export.
#![recursion_limit = "256"] // the handler future nests deeply enough to need it

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard::aws::AwsClients;
use switchyard::handlers::sync::{handler, SyncDeps};
use switchyard::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchyard::telemetry::init();
    switchyard::metrics::init(false);
    let aws = AwsClients::from_env().await;
    let deps = SyncDeps::from_settings(&aws, &Settings::from_env())?;
    run(service_fn(|event: LambdaEvent<_>| {
        switchyard::metrics::flushed(handler(&deps, event))
    }))
    .await
}

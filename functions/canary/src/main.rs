//! canary Lambda (EventBridge schedule): check every configured connector authenticates, and
//! daily that its API still has the structure switchyard relies on.
#![recursion_limit = "256"] // the handler future nests deeply enough to need it

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard::aws::AwsClients;
use switchyard::handlers::canary::{handler, Canary};
use switchyard::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchyard::telemetry::init();
    switchyard::metrics::init(false);
    let aws = AwsClients::from_env().await;
    let deps = Canary::from_settings(&aws, &Settings::from_env())?;
    run(service_fn(|event: LambdaEvent<_>| {
        switchyard::metrics::flushed(handler(&deps, event))
    }))
    .await
}

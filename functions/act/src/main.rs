//! act Lambda (SQS): perform connector actions exactly once.
#![recursion_limit = "256"] // the handler future nests deeply enough to need it

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard::aws::AwsClients;
use switchyard::handlers::act::{handler, Act};
use switchyard::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchyard::telemetry::init();
    switchyard::metrics::init(false);
    let aws = AwsClients::from_env().await;
    let deps = Act::from_settings(&aws, &Settings::from_env())?;
    run(service_fn(|event: LambdaEvent<_>| {
        switchyard::metrics::flushed(handler(&deps, event))
    }))
    .await
}

//! canary Lambda (EventBridge schedule): check every configured connector authenticates.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard::connectors::{http_client, Connectors};
use switchyard::handlers::canary::{handler, Canary};
use switchyard::{aws::AwsClients, secrets::SecretCache, settings::Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchyard::telemetry::init();
    let aws = AwsClients::from_env().await;
    let secrets = SecretCache::new(aws.secrets.clone(), std::time::Duration::from_secs(60));
    let deps = Canary {
        connectors: Connectors::new(http_client(), secrets, Settings::from_env()),
    };
    run(service_fn(|event: LambdaEvent<_>| handler(&deps, event))).await
}

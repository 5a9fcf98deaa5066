//! act Lambda (SQS): perform connector actions exactly once.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard::connectors::{http_client, Connectors};
use switchyard::handlers::act::{handler, Act};
use switchyard::{
    aws::AwsClients, decisions::DecisionStore, idempotency::IdempotencyStore, secrets::SecretCache,
    settings::Settings,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchyard::telemetry::init();
    let settings = Settings::from_env();
    let aws = AwsClients::from_env().await;
    let secrets = SecretCache::new(aws.secrets.clone(), std::time::Duration::from_secs(300));
    let deps = Act {
        sqs: aws.sqs.clone(),
        idempotency: IdempotencyStore::new(aws.ddb.clone(), settings.idempotency_table()?),
        decisions: DecisionStore::new(aws.ddb.clone(), settings.decisions_table()?),
        review_queue_url: settings.review_queue_url()?.to_owned(),
        connectors: Connectors::new(http_client(), secrets, settings),
    };
    run(service_fn(|event: LambdaEvent<_>| handler(&deps, event))).await
}

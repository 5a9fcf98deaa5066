//! intake Lambda (Function URL): verify, dedupe, enqueue, answer at once.
#![recursion_limit = "256"] // the intake handler future nests deeply enough to need it

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard::handlers::intake::{handler, Intake};
use switchyard::{
    aws::AwsClients, decisions::DecisionStore, idempotency::IdempotencyStore, secrets::SecretCache,
    settings::Settings,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchyard::telemetry::init();
    let settings = Settings::from_env();
    let aws = AwsClients::from_env().await;
    let deps = Intake {
        sqs: aws.sqs.clone(),
        secrets: SecretCache::new(aws.secrets.clone(), std::time::Duration::from_secs(300)),
        idempotency: IdempotencyStore::new(aws.ddb.clone(), settings.idempotency_table()?),
        classify_queue_url: settings.classify_queue_url()?.to_owned(),
        signing_secret_id: settings.intake_secret_id()?.to_owned(),
        max_body_bytes: settings.max_body_bytes(),
        public_base_url: settings.public_base_url(),
        decisions: DecisionStore::new(aws.ddb.clone(), settings.decisions_table()?),
    };
    run(service_fn(|event: LambdaEvent<_>| handler(&deps, event))).await
}

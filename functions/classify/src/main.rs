//! classify Lambda (SQS): decide category and confidence, route to act or human review.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use switchyard::handlers::classify::{handler, Classify};
use switchyard::{
    aws::AwsClients, decisions::DecisionStore, routing::RoutingConfig, settings::Settings,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchyard::telemetry::init();
    let settings = Settings::from_env();
    let aws = AwsClients::from_env().await;
    let deps = Classify {
        sqs: aws.sqs.clone(),
        decisions: DecisionStore::new(aws.ddb.clone(), settings.decisions_table()?),
        routing: RoutingConfig::from_env()?,
        model: switchyard::model::Model::from_env()?,
        act_queue_url: settings.act_queue_url()?.to_owned(),
        review_queue_url: settings.review_queue_url()?.to_owned(),
    };
    run(service_fn(|event: LambdaEvent<_>| handler(&deps, event))).await
}

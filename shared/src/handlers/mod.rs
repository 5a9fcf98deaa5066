//! One module per Lambda: a plain `async fn handler(&Deps, LambdaEvent<T>)` each, called by the
//! function's `main` and, unchanged, by the local runner.

pub mod act;
pub mod canary;
pub mod classify;
pub mod decision;
pub mod intake;
pub mod rotate;
mod status;
pub mod sync;

use aws_sdk_sqs::types::MessageAttributeValue;

/// The correlation-id attribute for an outgoing SQS message.
pub(crate) fn correlation_attr(correlation_id: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(correlation_id)
        .build()
        .expect("data_type is set")
}

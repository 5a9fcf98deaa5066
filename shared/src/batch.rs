//! SQS batch processing with per-record isolation and partial batch responses
//! (`ReportBatchItemFailures`): one bad record — an error or a panic — fails only itself.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;
use tracing::{error, Instrument};

use crate::CORRELATION_ATTR;

/// Why one record failed; the message returns to the queue and is retried (then dead-lettered).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RecordError(pub String);

impl RecordError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        RecordError(e.to_string())
    }
}

/// Whole-batch failure: only when a failed record has no message id to report (never send an
/// empty `itemIdentifier`: Lambda would then fail the whole batch anyway, less clearly).
#[derive(Debug, thiserror::Error)]
#[error("{failed} record(s) failed and at least one has no messageId; retrying the whole batch")]
pub(crate) struct UnreportableFailure {
    pub failed: usize,
}

/// The correlation id a record carries, or its message id for records sent without one.
pub fn correlation_id(message: &SqsMessage) -> String {
    message
        .message_attributes
        .get(CORRELATION_ATTR)
        .and_then(|a| a.string_value.clone())
        .or_else(|| message.message_id.clone())
        .unwrap_or_default()
}

/// How many times SQS has handed this record out (1 on the first receive).
pub fn receive_count(message: &SqsMessage) -> u64 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1)
}

/// Whether this is the record's last receive before its queue moves it to the DLQ
/// (`ApproximateReceiveCount` has reached `maxReceiveCount`).
pub(crate) fn last_receive(message: &SqsMessage, max_receives: u64) -> bool {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n >= max_receives)
}

/// Run `handle` on every record concurrently; report the failures.
pub async fn process<F, Fut>(
    event: SqsEvent,
    handle: F,
) -> Result<SqsBatchResponse, UnreportableFailure>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), RecordError>>,
{
    let runs = event.records.into_iter().map(|message| {
        let id = message.message_id.clone();
        let span = tracing::info_span!("record", message_id = id.as_deref().unwrap_or(""), correlation_id = %correlation_id(&message));
        let fut = std::panic::AssertUnwindSafe(handle(message)).catch_unwind();
        async move {
            let outcome = match fut.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    error!(error = %e, "record failed");
                    Err(())
                }
                Err(_) => {
                    error!("record handler panicked");
                    Err(())
                }
            };
            (id, outcome)
        }
        .instrument(span)
    });
    let results = futures::future::join_all(runs).await;
    let mut response = SqsBatchResponse::default();
    let mut unreportable = false;
    let mut failed = 0;
    for (id, outcome) in results {
        if outcome.is_err() {
            failed += 1;
            match id.filter(|id| !id.is_empty()) {
                Some(id) => {
                    let mut item = BatchItemFailure::default();
                    item.item_identifier = id;
                    response.batch_item_failures.push(item);
                }
                None => unreportable = true,
            }
        }
    }
    if unreportable {
        return Err(UnreportableFailure { failed });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: Option<&str>, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = id.map(Into::into);
        m.body = Some(body.into());
        m
    }

    fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = messages;
        e
    }

    async fn handle(m: SqsMessage) -> Result<(), RecordError> {
        match m.body.as_deref() {
            Some("ok") => Ok(()),
            Some("panic") => panic!("boom"),
            _ => Err(RecordError("bad".into())),
        }
    }

    #[tokio::test]
    async fn only_failed_records_are_reported_even_on_panic() {
        let e = batch(vec![
            message(Some("a"), "ok"),
            message(Some("b"), "bad"),
            message(Some("c"), "panic"),
        ]);
        let r = process(e, handle).await.unwrap();
        let ids: Vec<_> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["b", "c"]);
    }

    #[tokio::test]
    async fn failure_without_id_fails_the_batch_instead_of_an_empty_identifier() {
        let e = batch(vec![message(None, "bad"), message(Some("b"), "ok")]);
        assert_eq!(process(e, handle).await.unwrap_err().failed, 1);
        let e = batch(vec![message(None, "ok")]);
        assert!(process(e, handle)
            .await
            .unwrap()
            .batch_item_failures
            .is_empty());
    }
}

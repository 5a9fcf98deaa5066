//! `switchyard redrive`: move dead-lettered messages back to their queue — receive, filter, send,
//! delete — with a dry run, a cap and a rate. SQS's own message-move task has no filter and no
//! dry run (and the emulator lacks it); this works the same on both.
//!
//! Safe to interrupt and rerun: a message is deleted from the DLQ only after its copy is sent,
//! so an interruption between the two leaves one extra copy, which the stages' idempotency keys
//! absorb (classify answers once per event, act skips actions already done).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use serde_json::Value;

/// The queues that have a DLQ, by the name the command takes.
pub const QUEUES: [(&str, &str); 3] = [
    ("classify", "CLASSIFY_QUEUE_URL"),
    ("act", "ACT_QUEUE_URL"),
    ("review", "REVIEW_QUEUE_URL"),
];

/// One `--filter key=value`: every filter must hold for a message to move.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Source(String),
    Event(String),
    Connector(String),
    Category(String),
}

impl std::str::FromStr for Filter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, v) = s
            .split_once('=')
            .filter(|(_, v)| !v.is_empty())
            .ok_or_else(|| format!("filter {s:?} is not key=value"))?;
        let v = v.to_owned();
        Ok(match k {
            "source" => Filter::Source(v),
            "event" => Filter::Event(v),
            "connector" => Filter::Connector(v),
            "category" => Filter::Category(v),
            _ => {
                return Err(format!(
                    "unknown filter {k:?}; use source=, event=, connector= or category="
                ))
            }
        })
    }
}

impl Filter {
    /// Whether a queued message (an event, an act message or a review message) matches.
    pub fn matches(&self, body: &Value) -> bool {
        // A classify message is the event itself; the others carry it under "event".
        let event = body.get("event").unwrap_or(body);
        match self {
            Filter::Source(s) => event["source"].as_str() == Some(s),
            Filter::Event(id) => event["id"].as_str() == Some(id),
            Filter::Category(c) => body["category"].as_str() == Some(c),
            Filter::Connector(c) => body["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["connector"].as_str() == Some(c))),
        }
    }
}

pub struct Redrive {
    pub sqs: aws_sdk_sqs::Client,
    /// The queue to refill; its DLQ is read from its redrive policy.
    pub queue_url: String,
    pub filters: Vec<Filter>,
    pub dry_run: bool,
    pub max: Option<u64>,
    /// Messages per second, at most.
    pub rate: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub dlq_url: String,
    pub examined: u64,
    pub matched: u64,
    pub moved: u64,
    /// Messages that stay in the DLQ (not matching, over `--max`, or a dry run).
    pub left: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "examined {}, matched {}, moved {}, left in the DLQ {} ({})",
            self.examined, self.matched, self.moved, self.left, self.dlq_url
        )
    }
}

/// How long a message read from the DLQ stays hidden while this run decides about it.
const HOLD: i32 = 120;

impl Redrive {
    pub async fn run(&self, progress: &dyn Fn(&Report)) -> Result<Report> {
        let dlq_url = dead_letter_queue(&self.sqs, &self.queue_url).await?;
        let mut report = Report {
            dlq_url: dlq_url.clone(),
            ..Report::default()
        };
        let mut seen = HashSet::new();
        let mut held = Vec::new();
        let pause = self
            .rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        'receive: loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(HOLD)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .with_context(|| format!("reading {dlq_url}"))?;
            let messages = out.messages.unwrap_or_default();
            let mut new = 0;
            for m in messages {
                let receipt = m.receipt_handle.clone().unwrap_or_default();
                if !seen.insert(m.message_id.clone().unwrap_or_default()) {
                    held.push(receipt);
                    continue;
                }
                new += 1;
                report.examined += 1;
                let body = m.body.as_deref().unwrap_or_default();
                let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                let matches = self.filters.iter().all(|f| f.matches(&parsed));
                if matches {
                    report.matched += 1;
                }
                if !matches || self.dry_run {
                    report.left += 1;
                    held.push(receipt);
                    progress(&report);
                    continue;
                }
                let mut send = self
                    .sqs
                    .send_message()
                    .queue_url(&self.queue_url)
                    .message_body(body);
                // The correlation id goes with it; waits and not-before marks do not (it runs now).
                if let Some(c) = m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get(switchyard::CORRELATION_ATTR))
                {
                    send = send.message_attributes(switchyard::CORRELATION_ATTR, c.clone());
                }
                send.send()
                    .await
                    .with_context(|| format!("sending to {}", self.queue_url))?;
                self.sqs
                    .delete_message()
                    .queue_url(&dlq_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .with_context(|| format!("deleting from {dlq_url}"))?;
                report.moved += 1;
                progress(&report);
                if let Some(p) = pause {
                    tokio::time::sleep(p).await;
                }
                if self.max.is_some_and(|max| report.moved >= max) {
                    break 'receive;
                }
            }
            if new == 0 {
                break;
            }
        }
        // What stays is visible again at once, not hidden for HOLD seconds.
        for receipt in held {
            let _ = self
                .sqs
                .change_message_visibility()
                .queue_url(&dlq_url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
        }
        if self.max.is_some_and(|max| report.moved >= max) {
            report.left = report.left.max(queue_size(&self.sqs, &dlq_url).await?);
        }
        Ok(report)
    }
}

/// The DLQ of a queue, from its redrive policy.
pub async fn dead_letter_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<String> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .with_context(|| format!("reading the redrive policy of {queue_url}"))?
        .attributes
        .unwrap_or_default();
    let Some(policy) = attrs.get(&QueueAttributeName::RedrivePolicy) else {
        bail!("{queue_url} has no dead-letter queue");
    };
    let policy: Value = serde_json::from_str(policy).context("redrive policy is not JSON")?;
    let arn = policy["deadLetterTargetArn"]
        .as_str()
        .context("redrive policy names no deadLetterTargetArn")?;
    // arn:aws:sqs:region:account:name
    let mut parts = arn.rsplitn(3, ':');
    let (name, account) = (parts.next().unwrap_or_default(), parts.next());
    let out = sqs
        .get_queue_url()
        .queue_name(name)
        .set_queue_owner_aws_account_id(account.map(str::to_owned))
        .send()
        .await
        .with_context(|| format!("finding the DLQ {arn}"))?;
    out.queue_url.context("the DLQ has no URL")
}

async fn queue_size(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    Ok(attrs
        .get(&QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// A correlation attribute as the stages send it (for tests that dead-letter by hand).
pub fn correlation(id: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(id)
        .build()
        .expect("data_type is set")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_parse_and_match_every_message_shape() {
        let act = json!({"event": {"id": "e1", "source": "zendesk"}, "category": "billing",
                         "actions": [{"connector": "slack", "action": "post_message"}]});
        let classify = json!({"id": "e2", "source": "jira"});
        let f = |s: &str| s.parse::<Filter>().unwrap();
        assert!(f("source=zendesk").matches(&act));
        assert!(f("event=e1").matches(&act));
        assert!(f("connector=slack").matches(&act));
        assert!(f("category=billing").matches(&act));
        assert!(!f("connector=jira").matches(&act));
        assert!(f("source=jira").matches(&classify) && f("event=e2").matches(&classify));
        assert!("colour=red"
            .parse::<Filter>()
            .unwrap_err()
            .contains("unknown filter"));
        assert!("source"
            .parse::<Filter>()
            .unwrap_err()
            .contains("key=value"));
    }
}

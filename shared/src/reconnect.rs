//! "Needs reconnect": a connection whose grant the vendor refused (`invalid_grant`, a revoked
//! token) is marked in the PacingTable (`reconnect#<secret id>`), keyed to a fingerprint of the
//! stored credential. While the mark matches what is stored, act **parks** that connection's
//! actions — hands them back to the queue delayed, never dead-lettered, never lost — without
//! calling the vendor or its token endpoint again; the first worker to mark it alerts a human.
//! Storing a new credential (reconnecting) changes the fingerprint, and the parked work flows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// How long parked work waits before it looks again.
pub(crate) const PARK_DELAY: Duration = Duration::from_secs(900);
/// A mark outlives any parked message's chain of delays long enough to be seen by a human.
const MARK_TTL_SECS: i64 = 30 * 24 * 3600;
/// How long act trusts its last look at a connection's mark. Marks are rare and keyed to the
/// credential's fingerprint, so a worker that has not seen a fresh one makes at most a few more
/// vendor calls, each refused and parked, instead of a table read before every action.
pub(crate) const CHECK_TTL: Duration = Duration::from_secs(30);

/// Reading or writing a connection's reconnect mark failed.
#[derive(Debug, Error)]
#[error("reconnect mark for {secret_id}: {source}")]
pub struct MarkError {
    /// The connection secret the mark is for.
    pub secret_id: String,
    /// The table's error.
    pub source: crate::aws::StoreError,
}

/// Which stored credential a mark is about; a one-way hash, never the value.
pub fn fingerprint(value: &SecretString) -> String {
    hex::encode(&Sha256::digest(value.expose_secret().as_bytes())[..8])
}

/// The connections' "needs reconnect" marks; clones share the last look at each mark.
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// The DynamoDB client the marks are read and written with.
    pub ddb: aws_sdk_dynamodb::Client,
    /// The pacing table's name; a mark's key there is `reconnect#<secret id>`.
    pub table: String,
    /// Last look per secret: when, at which fingerprint, and the reason if marked.
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    fingerprint: String,
    reason: Option<String>,
}

fn key(secret_id: &str) -> AttributeValue {
    AttributeValue::S(format!("reconnect#{secret_id}"))
}

impl Reconnect {
    /// The marks in `table`, read and written through `ddb`, with no mark looked at yet.
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            ddb,
            table: table.to_owned(),
            seen: Arc::default(),
        }
    }

    /// Mark the credential with this fingerprint as refused (a no-op when it already is).
    pub async fn mark(
        &self,
        secret_id: &str,
        fingerprint: &str,
        reason: &str,
    ) -> Result<(), MarkError> {
        let now = chrono::Utc::now();
        let out = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("id", key(secret_id))
            .item("fingerprint", AttributeValue::S(fingerprint.to_owned()))
            .item("reason", AttributeValue::S(reason.to_owned()))
            .item("since", AttributeValue::S(now.to_rfc3339()))
            .item(
                "expiration",
                AttributeValue::N((now.timestamp() + MARK_TTL_SECS).to_string()),
            )
            .condition_expression("attribute_not_exists(id) OR fingerprint <> :fp")
            .expression_attribute_values(":fp", AttributeValue::S(fingerprint.to_owned()))
            .send()
            .await;
        self.remember(secret_id, fingerprint, Some(reason.to_owned()));
        // Already marked for this credential: nothing to change.
        crate::aws::conditional(crate::aws::Store::Pacing, out)
            .map(|_| ())
            .map_err(|source| MarkError {
                secret_id: secret_id.to_owned(),
                source,
            })
    }

    /// `true` for exactly one caller per marked credential: the one that alerts a human.
    pub(crate) async fn first_alert(
        &self,
        secret_id: &str,
        fingerprint: &str,
    ) -> Result<bool, MarkError> {
        let out = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("id", key(secret_id))
            .update_expression("SET alerted = :fp")
            .condition_expression(
                "fingerprint = :fp AND (attribute_not_exists(alerted) OR alerted <> :fp)",
            )
            .expression_attribute_values(":fp", AttributeValue::S(fingerprint.to_owned()))
            .send()
            .await;
        crate::aws::conditional(crate::aws::Store::Pacing, out).map_err(|source| MarkError {
            secret_id: secret_id.to_owned(),
            source,
        })
    }

    /// [`Reconnect::pending`] for the hot path (act, before every action): this process's last
    /// look, when younger than [`CHECK_TTL`] and about the same credential.
    pub(crate) async fn pending_cached(
        &self,
        secret_id: &str,
        fingerprint: &str,
    ) -> Result<Option<String>, MarkError> {
        if let Some(seen) = self.seen.lock().expect("reconnect cache").get(secret_id) {
            if seen.fingerprint == fingerprint && seen.at.elapsed() < CHECK_TTL {
                return Ok(seen.reason.clone());
            }
        }
        let reason = self.pending(secret_id, fingerprint).await?;
        self.remember(secret_id, fingerprint, reason.clone());
        Ok(reason)
    }

    fn remember(&self, secret_id: &str, fingerprint: &str, reason: Option<String>) {
        self.seen.lock().expect("reconnect cache").insert(
            secret_id.to_owned(),
            Seen {
                at: Instant::now(),
                fingerprint: fingerprint.to_owned(),
                reason,
            },
        );
    }

    /// The refusal's reason while the stored credential is still the refused one (a consistent
    /// read: the refresher asks it under its lease).
    pub async fn pending(
        &self,
        secret_id: &str,
        fingerprint: &str,
    ) -> Result<Option<String>, MarkError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("id", key(secret_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| MarkError {
                secret_id: secret_id.to_owned(),
                source: crate::aws::StoreError::new(
                    crate::aws::Store::Pacing,
                    crate::aws::error_message(&e),
                ),
            })?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let same =
            matches!(item.get("fingerprint"), Some(AttributeValue::S(f)) if f == fingerprint);
        Ok(same.then(|| match item.get("reason") {
            Some(AttributeValue::S(r)) => r.clone(),
            _ => "the vendor refused the credential".to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_per_value_and_do_not_contain_it() {
        let a = fingerprint(&SecretString::from("xoxe-1-abc"));
        let b = fingerprint(&SecretString::from("xoxe-1-abd"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(!a.contains("abc"));
    }
}

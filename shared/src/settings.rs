//! Function settings, read from the environment that `template.yaml` declares.
//!
//! The local runner builds the same map from the same template, so a setting cannot exist in one
//! place and not the other.

use std::collections::HashMap;

use thiserror::Error;

/// A required setting that is unset or empty; holds its name.
#[derive(Debug, Error)]
#[error("missing setting {0}: template.yaml must declare it in the function's Environment")]
pub struct MissingSetting(pub &'static str);

/// A setting that is missing or cannot be read: a function refuses to start with it, naming it.
#[derive(Debug, Error)]
pub enum SettingError {
    /// A required setting is unset or empty.
    #[error(transparent)]
    Missing(#[from] MissingSetting),
    /// A setting is set, but its value cannot be used.
    #[error("setting {name}: {reason}")]
    Invalid {
        /// The setting's name (its environment variable).
        name: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
}

/// What intake accepts unless `MAX_BODY_BYTES` says otherwise.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// The function's settings: environment variables by name (an empty value counts as unset).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    vars: HashMap<String, String>,
}

impl Settings {
    /// The settings in the process's environment.
    pub fn from_env() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    /// The settings in `vars`.
    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self { vars }
    }

    /// A required setting's value; unset or empty is a [`MissingSetting`] naming it.
    pub fn get(&self, name: &'static str) -> Result<&str, MissingSetting> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or(MissingSetting(name))
    }

    /// A setting's value; `None` when it is unset or empty.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A count or a length that must be above zero: `name`'s value, or `default` when it is
    /// unset, unreadable or not positive.
    pub fn positive<T>(&self, name: &str, default: T) -> T
    where
        T: std::str::FromStr + PartialOrd + Default,
    {
        self.optional(name)
            .and_then(|v| v.parse().ok())
            .filter(|n: &T| *n > T::default())
            .unwrap_or(default)
    }

    /// `CLASSIFY_QUEUE_URL`: the queue intake sends accepted events to, for classify.
    pub fn classify_queue_url(&self) -> Result<&str, MissingSetting> {
        self.get("CLASSIFY_QUEUE_URL")
    }
    /// `ACT_QUEUE_URL`: the queue act takes its work from.
    pub fn act_queue_url(&self) -> Result<&str, MissingSetting> {
        self.get("ACT_QUEUE_URL")
    }
    /// `REVIEW_QUEUE_URL`: the queue of events waiting for a person.
    pub fn review_queue_url(&self) -> Result<&str, MissingSetting> {
        self.get("REVIEW_QUEUE_URL")
    }
    pub(crate) fn idempotency_table(&self) -> Result<&str, MissingSetting> {
        self.get("IDEMPOTENCY_TABLE")
    }
    /// `PACING_TABLE`: the DynamoDB table of call budgets, refresh leases and reconnect marks.
    pub fn pacing_table(&self) -> Result<&str, MissingSetting> {
        self.get("PACING_TABLE")
    }
    pub(crate) fn decisions_table(&self) -> Result<&str, MissingSetting> {
        self.get("DECISIONS_TABLE")
    }
    pub(crate) fn intake_secret_id(&self) -> Result<&str, MissingSetting> {
        self.get("INTAKE_SECRET_ID")
    }

    /// `MAX_BODY_BYTES`, or intake's default (256 KiB).
    pub fn max_body_bytes(&self) -> usize {
        self.optional("MAX_BODY_BYTES")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }

    /// How long act keeps parked work waiting for a reconnect before it hands the event to a
    /// human (`MAX_PARK_DAYS`, the template's `MaxParkDays`; default 3).
    pub fn max_park(&self) -> chrono::Duration {
        chrono::Duration::days(self.positive("MAX_PARK_DAYS", 3))
    }

    /// `DELIVERY_KEY_RETENTION_DAYS`: the replay window (default 30 days, past every vendor's retry
    /// schedule): signed bodies dated earlier are refused. Delivery ids live on their decision
    /// records, whose retention caps it.
    pub(crate) fn delivery_key_retention(&self) -> chrono::Duration {
        chrono::Duration::days(self.positive("DELIVERY_KEY_RETENTION_DAYS", 30))
    }

    /// `MAX_RECEIVES`: the consumed queue's `maxReceiveCount` (the template's is 5).
    pub fn max_receives(&self) -> u64 {
        self.optional("MAX_RECEIVES")
            .and_then(|v| v.parse().ok())
            .unwrap_or(5)
    }

    /// `DECISION_RETENTION_DAYS`: how long decision records are kept (default 30).
    pub(crate) fn decision_retention_days(&self) -> Option<i64> {
        self.optional("DECISION_RETENTION_DAYS")
            .and_then(|v| v.parse().ok())
    }

    /// `PUBLIC_BASE_URL`, when set: the base URL senders call, for schemes that sign the URL.
    pub fn public_base_url(&self) -> Option<String> {
        self.optional("PUBLIC_BASE_URL").map(str::to_owned)
    }

    /// The connection secret this deployment names for one connector (`{NAME}_SECRET_ID`),
    /// if it uses that connection. `vendors::secret_id` is the one to ask: it knows which
    /// connectors are described, whose secrets need no name of their own.
    pub(crate) fn connection_secret_id(&self, connector: &str) -> Option<String> {
        if !self.in_use(connector) {
            return None;
        }
        self.optional(&format!("{}_SECRET_ID", connector.to_ascii_uppercase()))
            .map(str::to_owned)
    }

    /// Where a described connector's secret lives when nothing names it:
    /// `CONNECTION_SECRET_PREFIX` + its name (the template's `ConnectionSecretPrefix`: no
    /// template edit per described connector).
    pub(crate) fn described_connection_secret_id(&self, connector: &str) -> Option<String> {
        if !self.in_use(connector) {
            return None;
        }
        let prefix = self.optional("CONNECTION_SECRET_PREFIX")?;
        Some(format!("{prefix}{connector}"))
    }

    /// `CONNECTORS` (the template's `Connectors` parameter, comma-separated) names the
    /// connections a deployment uses; the others are not probed, rotated or acted through, so a
    /// first deploy with placeholder secrets is green. Unset (the local stack, direct tests):
    /// every connection that has a secret id.
    fn in_use(&self, connector: &str) -> bool {
        match self.vars.get("CONNECTORS") {
            None => true,
            Some(list) => list.split(',').map(str::trim).any(|c| c == connector),
        }
    }
}

/// Text that is not an interval like `24h`, `90m` or `7d`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0:?} is not an interval like 24h, 90m or 7d")]
pub struct InvalidInterval(pub String);

/// `24h`, `90m`, `7d`, `3600s` (a bare number is hours) as a duration.
pub fn parse_interval(text: &str) -> Result<std::time::Duration, InvalidInterval> {
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let bad = || InvalidInterval(text.to_owned());
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn a_positive_setting_falls_back_on_unset_unreadable_or_not_positive() {
        let s = Settings::from_map(
            [
                ("PAGES", "7"),
                ("ZERO", "0"),
                ("NEGATIVE", "-2"),
                ("WORDS", "three"),
                ("EMPTY", ""),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        assert_eq!(s.positive("PAGES", 3usize), 7);
        assert_eq!(s.positive("UNSET", 3usize), 3);
        assert_eq!(s.positive("ZERO", 3usize), 3);
        assert_eq!(s.positive("NEGATIVE", 3i64), 3);
        assert_eq!(s.positive("WORDS", 3usize), 3);
        assert_eq!(s.positive("EMPTY", 3usize), 3);
        assert_eq!(s.max_park(), chrono::Duration::days(3));
    }
}

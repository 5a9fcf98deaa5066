//! One folder per vendor, holding everything about it: how its webhooks are verified and
//! normalized (`inbound`), how its API is called and its answers read (`outbound`: actions,
//! triage, contract, probe, grants), its documented limits, and its bulk sync when it has one.
//!
//! [`BUILT_IN`] is the registry: every question asked of a connector by name (build it, read
//! its answer, pace it, sync to it) is answered from its line there. Adding a vendor is its
//! folder, its line below and its sandbox twin (`infra/sandbox/`).

use std::time::Duration;

use crate::connectors::triage::{Draft, Response, Verdict};
use crate::connectors::{Connector, ResolveError};
use crate::pacing::Rate;
use crate::routing::PlannedAction;
use crate::secrets::Credential;
use crate::sync::{SyncError, Target};

mod connections;
pub mod github;
pub mod hubspot;
pub mod inbound;
pub mod jira;
pub mod salesforce;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;
pub mod teams;
pub mod twilio;
pub mod zendesk;

pub(crate) use connections::pacing_class;
pub use connections::{build, Connectors};

/// The connectors built into switchyard, one line each.
pub static BUILT_IN: [&Vendor; 7] = [
    &zendesk::VENDOR,
    &slack::VENDOR,
    &jira::VENDOR,
    &salesforce::VENDOR,
    &hubspot::VENDOR,
    &teams::VENDOR,
    &standard_webhooks::VENDOR,
];

/// What switchyard knows about one built-in connector, by name.
pub struct Vendor {
    /// Its name in routes, secrets (`{NAME}_SECRET_ID`), `RATE_LIMITS` and `CONNECTORS`.
    pub name: &'static str,
    /// Its connector over a stored credential.
    pub(crate) connect: Connect,
    /// How it reads one of the vendor's answers (its retry logic); `None` when the answers are
    /// read by the connector alone (a signed webhook's receiver is anyone's).
    pub(crate) triage: Option<fn(&Response) -> Draft>,
    /// The documented (or conservative) pace for one credential.
    pub pace: Rate,
    /// Documented longer windows beside the pace (a daily cap).
    pub(crate) ceilings: fn() -> Vec<Rate>,
    /// The endpoint class an action falls in when the vendor limits it more narrowly than the
    /// credential (a scope after `#`, e.g. a channel), and that class's documented rate.
    pub(crate) pacing_class: fn(&PlannedAction) -> Option<String>,
    pub(crate) class_rate: fn(&str) -> Option<Rate>,
    /// Its bulk sync target (`sync`), when it has one.
    pub(crate) sync: Option<SyncTarget>,
    /// Whether its credential is a login its probe tests; `false` for a webhook URL, whose
    /// probe checks the setup without calling (posting is its only operation).
    pub login: bool,
}

/// Builds a vendor's connector over a stored credential.
pub(crate) type Connect =
    fn(reqwest::Client, Credential) -> Result<Box<dyn Connector>, ResolveError>;

/// Builds a vendor's bulk sync target over a stored credential.
pub(crate) type SyncTarget = fn(Credential) -> Result<Box<dyn Target>, SyncError>;

/// A built-in connector by name.
pub fn built_in(name: &str) -> Option<&'static Vendor> {
    BUILT_IN.iter().copied().find(|v| v.name == name)
}

/// Every connector switchyard can build: the built-in ones, then the described ones.
pub fn names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = BUILT_IN.iter().map(|v| v.name).collect();
    all.extend(crate::connectors::declared::names());
    all
}

/// Whether `name` is a connector switchyard can build.
pub(crate) fn is_known(name: &str) -> bool {
    built_in(name).is_some() || crate::connectors::declared::get(name).is_some()
}

/// The vendors (and `oauth2`, the OAuth 2.0 token endpoint) whose answers switchyard can read.
pub fn triage_names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = BUILT_IN
        .iter()
        .filter(|v| v.triage.is_some())
        .map(|v| v.name)
        .collect();
    all.push("oauth2");
    all
}

/// Read one answer with `vendor`'s rules (`oauth2`: a token endpoint's). `now` anchors absolute
/// reset times. `None` for a vendor without rules.
pub fn triage(vendor: &str, r: &Response, now: chrono::DateTime<chrono::Utc>) -> Option<Verdict> {
    if vendor == "oauth2" {
        return Some(crate::connectors::triage::oauth2_verdict(r, now));
    }
    let draft = (built_in(vendor)?.triage?)(r);
    Some(draft.finish(r, now))
}

/// Everything findings are kept under: each connector, and each webhook source (findings about
/// what senders deliver).
pub fn drift_owners() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = names();
    for s in crate::event::Source::ALL {
        if !all.contains(&s.as_str()) {
            all.push(s.as_str());
        }
    }
    all
}

/// The bulk sync target for `connector`, from its stored credential.
pub fn sync_target(connector: &str, credential: Credential) -> Result<Box<dyn Target>, SyncError> {
    match built_in(connector).and_then(|v| v.sync) {
        Some(target) => target(credential),
        None => {
            let with: Vec<&str> = BUILT_IN
                .iter()
                .filter(|v| v.sync.is_some())
                .map(|v| v.name)
                .collect();
            Err(SyncError::Setup(format!(
                "no bulk sync for {connector:?} ({})",
                with.join(", ")
            )))
        }
    }
}

/// The limits every connector has without `RATE_LIMITS`: a built-in vendor's documented budget
/// (its line in [`BUILT_IN`]), or a described connector's `[limits]`. What pacing sits on.
pub static DOCUMENTED: Documented = Documented;

/// See [`DOCUMENTED`].
#[derive(Debug)]
pub struct Documented;

impl crate::pacing::Documented for Documented {
    fn windows(&self, connector: &str) -> Option<Vec<Rate>> {
        if let Some(v) = built_in(connector) {
            let mut windows = vec![v.pace];
            windows.extend((v.ceilings)());
            return Some(windows);
        }
        let described = crate::connectors::declared::get(connector)?;
        described.limits.configured(connector).map(<[Rate]>::to_vec)
    }

    fn class_rate(&self, connector: &str, class: &str) -> Option<Rate> {
        (built_in(connector)?.class_rate)(class)
    }

    fn concurrency(&self, connector: &str) -> Option<u32> {
        crate::connectors::declared::get(connector)?
            .limits
            .configured_cap(connector)
    }
}

/// The secret of one connection, if this deployment uses it: its `{NAME}_SECRET_ID`, or for a
/// described connector, its place under `CONNECTION_SECRET_PREFIX`.
pub fn secret_id(settings: &crate::settings::Settings, connector: &str) -> Option<String> {
    settings.connection_secret_id(connector).or_else(|| {
        crate::connectors::declared::get(connector)?;
        settings.described_connection_secret_id(connector)
    })
}

/// The connections this deployment has a secret for (what the canary checks, what rotates).
pub fn configured(settings: &crate::settings::Settings) -> Vec<&'static str> {
    names()
        .into_iter()
        .filter(|c| secret_id(settings, c).is_some())
        .collect()
}

/// `count` calls per `secs` seconds, evenly spaced.
const fn per(count: u32, secs: u64) -> Rate {
    Rate {
        count,
        period: Duration::from_secs(secs),
        burst: 1,
    }
}

/// For a vendor that limits no endpoint class more narrowly than the credential.
fn no_class(_: &PlannedAction) -> Option<String> {
    None
}

fn no_class_rate(_: &str) -> Option<Rate> {
    None
}

fn no_ceilings() -> Vec<Rate> {
    Vec::new()
}

#[cfg(test)]
mod tests;

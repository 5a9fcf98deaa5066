//! Around an action's key: find its connection (parked? credential?) and ask the credential's
//! shared budget before claiming it, claim it, and give it back when the action did not happen.
//! Asking first means an action that must wait is handed back without a claim and its release:
//! two writes (and two requests) less per hand-back, the most of what a burst costs beyond
//! steady traffic. A slot taken for an action whose key turns
//! out done or busy goes unused: the budget under-admits, never over.

use chrono::Utc;
use serde_json::json;
use tracing::warn;

use super::{Act, Paced};
use crate::batch::RecordError;
use crate::connectors::ConnectorError;
use crate::idempotency::{in_progress_until_ms, Claim};
use crate::pacing::{Pace, RESERVE_HORIZON};
use crate::routing::ActMessage;
use crate::routing::PlannedAction;

pub(super) enum Admitted {
    /// A slot is taken for now: call at once through this connector (the paced call does not
    /// ask again).
    Now(Box<dyn crate::connectors::Connector>),
    /// Not asked (a table read failed): the paced call asks, and reports what went wrong.
    Unasked,
    /// Wait for budget (or come back at a reserved slot), parked, or the credential cannot be
    /// had: what the paced call would have answered, before any key is claimed.
    Later(Paced),
}

/// The credential the action's budgets are kept per (its connection's secret).
pub(super) fn credential(deps: &Act, action: &PlannedAction) -> String {
    crate::vendors::secret_id(&deps.connectors.settings, &action.connector)
        .unwrap_or_else(|| "unconfigured".to_owned())
}

/// A slot of the action's budgets (its endpoint class's, then its credential's), sleeping a
/// short wait; one further away is reserved up to the horizon.
pub(super) async fn ask_budget(
    deps: &Act,
    action: &PlannedAction,
    credential: &str,
) -> Result<Pace, crate::aws::StoreError> {
    let class = crate::vendors::pacing_class(action);
    deps.pacer
        .wait_turn_in(
            &action.connector,
            credential,
            class.as_deref(),
            RESERVE_HORIZON,
        )
        .await
}

pub(super) async fn admit(deps: &Act, action: &PlannedAction) -> Admitted {
    // Parked connections and refused credentials are found first, as the paced call would:
    // they neither wait for nor draw on the budget.
    let connector = match connection(deps, action).await {
        Ok(c) => c,
        Err(paced) => return Admitted::Later(paced),
    };
    match ask_budget(deps, action, &credential(deps, action)).await {
        Ok(Pace::Go) => Admitted::Now(connector),
        Ok(Pace::Reserved { at_us }) => Admitted::Later(Paced::Reserved(at_us)),
        Ok(Pace::Defer(wait)) => Admitted::Later(Paced::Wait(wait, "no budget")),
        Err(_) => Admitted::Unasked,
    }
}

/// What claiming an action's key said.
pub(super) enum Keyed {
    /// This worker owns it: call (`reclaimed`: taken over from a holder that ran out of time,
    /// which may have made the effect — the connector looks first).
    Go { reclaimed: bool },
    /// Done already: the result to record, and no call.
    Done(serde_json::Value),
    /// The key was used with another plan.
    Changed,
    /// Another worker holds it (and has not recorded it done): come back when its hold ends.
    Busy(std::time::Duration),
}

/// Claim the `index`-th action's key. A run's last completion is written on the record, not on
/// the key (`decisions::completions`): a key found in progress or taken over is looked up there
/// before the vendor is called.
#[allow(clippy::too_many_arguments)]
pub(super) async fn claim(
    deps: &Act,
    msg: &ActMessage,
    stage: &str,
    index: usize,
    action: &PlannedAction,
    key: &str,
    hash: &str,
    deadline_ms: u64,
) -> Result<Keyed, RecordError> {
    let now = Utc::now();
    let until = in_progress_until_ms(deadline_ms, now);
    let claim = match deps.idempotency.claim(key, hash, now, until).await {
        Ok(Claim::Claimed) => return Ok(Keyed::Go { reclaimed: false }),
        Ok(Claim::Completed { data }) => return Ok(Keyed::Done(json!({ "result": data }))),
        Ok(Claim::PayloadMismatch) => return Ok(Keyed::Changed),
        Ok(claim) => claim,
        Err(e) => return Err(RecordError::new(e)),
    };
    let name = format!("{}.{}", action.connector, action.action);
    let done = deps
        .decisions
        .done_attempt(&msg.event.id, stage, index, &name)
        .await
        .map_err(RecordError::new)?;
    match (done, claim) {
        (Some(done), _) => Ok(Keyed::Done(json!({
            "result": {"object_id": done["object_id"], "detail": done["detail"]}
        }))),
        // Handed back until the hold ends, not failed into the queue's visibility timeout
        // (minutes): the holder may have finished and lost its record.
        (None, Claim::InProgress) => {
            let until = deps.idempotency.held_until_ms(key).await;
            let until = until.map_err(RecordError::new)?.unwrap_or_default();
            let left = (until - Utc::now().timestamp_millis()).clamp(0, 900_000) as u64;
            Ok(Keyed::Busy(std::time::Duration::from_millis(left + 1_000)))
        }
        (None, _) => Ok(Keyed::Go { reclaimed: true }),
    }
}

/// Whether a completion on the record lasts as long as the action's key would keep it: with
/// `DecisionRetentionDays` shorter than the keys' lifetime, completions stay on the keys.
pub(super) fn record_outlives_keys(deps: &Act) -> bool {
    deps.decisions.retention().num_seconds() >= deps.idempotency.ttl_secs
}

/// Give a claimed key back (a hand-back before the claim has none to give). `in_doubt`: the
/// effect may exist (the key was taken over from a worker that died holding it and nobody has
/// looked yet, or a write's answer was lost), so the key keeps that doubt and whichever copy of
/// the work claims it next takes it over and looks before it acts. Deleted, the key would let a
/// copy without the doubt (the original redelivered after a crash, a second plan) act blind.
pub(super) async fn give_back(claimed: bool, in_doubt: bool, deps: &Act, key: &str) {
    if !claimed {
        return;
    }
    let given = if in_doubt {
        deps.idempotency.release_in_doubt(key).await
    } else {
        deps.idempotency.release(key).await
    };
    if let Err(e) = given {
        warn!(error = %e, "could not give the action key back; it frees itself when in-progress expires");
    }
}

/// The action's connector, unless its connection is parked or its credential cannot be had
/// (then what to do instead).
pub(super) async fn connection(
    deps: &Act,
    action: &PlannedAction,
) -> Result<Box<dyn crate::connectors::Connector>, Paced> {
    match super::outcomes::parked(deps, &action.connector).await {
        Ok(Some(reason)) => {
            return Err(Paced::Parked(format!(
                "{} needs reconnect: {reason}",
                action.connector
            )))
        }
        Ok(None) => {}
        Err(e) => return Err(Paced::Failed(e)),
    }
    deps.connectors
        .get(&action.connector)
        .await
        .map_err(resolve)
}

/// What a credential that cannot be had means for the action.
pub(super) fn resolve(e: crate::connectors::ResolveError) -> Paced {
    use crate::connectors::auth::AuthError;
    use crate::connectors::ResolveError;
    match e {
        // Another worker's refresh just failed: wait out its cooldown, no token storm.
        ResolveError::Auth(AuthError::Cooldown { retry_after, .. }) => {
            Paced::Wait(retry_after, "token refresh cooling down")
        }
        ResolveError::Auth(AuthError::ReauthRequired { .. }) => {
            Paced::Done(Err(ConnectorError::ReauthRequired(e.to_string())))
        }
        ResolveError::Auth(_) => Paced::Done(Err(ConnectorError::Transient(e.to_string()))),
        other => Paced::Done(Err(ConnectorError::Unsupported(other.to_string()))),
    }
}

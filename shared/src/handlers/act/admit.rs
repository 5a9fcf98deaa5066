//! Around an action's key: ask the credential's shared budget before claiming it, and give it
//! back when the action did not happen. Asking first means an action that must wait is handed
//! back without a claim and its release: two writes (and two requests) less per hand-back, the
//! most of what a burst costs beyond steady traffic. A slot taken for an action whose key turns
//! out done or busy goes unused: the budget under-admits, never over.

use tracing::warn;

use super::{Act, Paced};
use crate::pacing::{Pace, RESERVE_HORIZON};
use crate::routing::PlannedAction;

pub(super) enum Admitted {
    /// A slot is taken for now: call at once (the paced call does not ask again).
    Now,
    /// Not asked (the connector could not be built, or the pacing table failed): the paced call
    /// asks, and reports what went wrong.
    Unasked,
    /// Wait for budget (or come back at a reserved slot): hand the message back.
    Later(Paced),
}

pub(super) async fn admit(deps: &Act, action: &PlannedAction) -> Admitted {
    let Ok(connector) = deps.connectors.get(&action.connector).await else {
        return Admitted::Unasked;
    };
    let credential = deps
        .connectors
        .settings
        .connection_secret_id(&action.connector)
        .unwrap_or("unconfigured");
    let class = connector.pacing_class(action);
    match deps
        .pacer
        .wait_turn_in(
            &action.connector,
            credential,
            class.as_deref(),
            RESERVE_HORIZON,
        )
        .await
    {
        Ok(Pace::Go) => Admitted::Now,
        Ok(Pace::Reserved { at_us }) => Admitted::Later(Paced::Reserved(at_us)),
        Ok(Pace::Defer(wait)) => Admitted::Later(Paced::Wait(wait, "no budget")),
        Err(_) => Admitted::Unasked,
    }
}

/// Give a claimed key back (a hand-back before the claim has none to give).
pub(super) async fn release_if(claimed: bool, deps: &Act, key: &str) {
    if claimed {
        release(deps, key).await;
    }
}

pub(super) async fn release(deps: &Act, key: &str) {
    if let Err(e) = deps.idempotency.release(key).await {
        warn!(error = %e, "could not release the action key; it frees itself when in-progress expires");
    }
}

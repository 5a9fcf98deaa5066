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
    /// A slot is taken for now: call at once through this connector (the paced call does not
    /// ask again).
    Now(Box<dyn crate::connectors::Connector>),
    /// Not asked (a table read failed): the paced call asks, and reports what went wrong.
    Unasked,
    /// Wait for budget (or come back at a reserved slot), parked, or the credential cannot be
    /// had: what the paced call would have answered, before any key is claimed.
    Later(Paced),
}

pub(super) async fn admit(deps: &Act, action: &PlannedAction) -> Admitted {
    // Parked connections and refused credentials are found first, as the paced call would:
    // they neither wait for nor draw on the budget.
    let connector = match super::connection(deps, action).await {
        Ok(c) => c,
        Err(paced) => return Admitted::Later(paced),
    };
    let credential = deps
        .connectors
        .settings
        .connection_secret_id(&action.connector)
        .unwrap_or("unconfigured");
    let class = crate::connectors::pacing_class(action);
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
        Ok(Pace::Go) => Admitted::Now(connector),
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

async fn release(deps: &Act, key: &str) {
    if let Err(e) = deps.idempotency.release(key).await {
        warn!(error = %e, "could not release the action key; it frees itself when in-progress expires");
    }
}

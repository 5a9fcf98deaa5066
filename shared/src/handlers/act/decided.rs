//! Act's part in a person's decision: a door (intake, for Slack's buttons) decided and sent the
//! event's id here; act carries the decision out ([`Decider::carry_out`]), because a door must
//! answer at once and carrying out reads the review queue.

use tracing::info;

use crate::batch::RecordError;
use crate::handlers::decision::Decider;
use crate::routing::DecidedMessage;

pub(super) async fn decided(decider: &Decider, msg: DecidedMessage) -> Result<(), RecordError> {
    let Some(record) = decider
        .decisions
        .get(&msg.decided)
        .await
        .map_err(RecordError::new)?
    else {
        // A decision is written before it is sent: no record means it expired since.
        info!(event_id = %msg.decided, "decided event has no record any more; nothing to carry out");
        return Ok(());
    };
    let done = decider
        .carry_out(&record, msg.card)
        .await
        .map_err(RecordError)?;
    info!(event_id = %msg.decided, actions = ?done.actions, removed = done.removed, card_updated = done.card_updated, "decision carried out");
    Ok(())
}

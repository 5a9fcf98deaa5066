//! Act's part in a person's decision: a door (intake, for Slack's buttons) decided and sent the
//! event's id here; act carries the decision out ([`Decider::carry_out`]), because a door must
//! answer at once and carrying out reads the review queue. Act also keeps an approval's timers:
//! one reminder, and the expiry with its `on_expiry`.

use std::collections::BTreeMap;

use chrono::Utc;
use tracing::{info, warn};

use crate::batch::RecordError;
use crate::connectors::ConnectorError;
use crate::decisions::state;
use crate::event::Source;
use crate::handlers::decision::{event_of, Decider, Verdict};
use crate::routing::{
    ActMessage, ApprovalTimer, Choice, DecidedMessage, GroupClick, OnExpiry, PlannedAction,
    TimerKind,
};
use crate::vendors::slack::outbound::group_members;
use crate::vendors::slack::review;

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
        .map_err(RecordError::new)?;
    info!(event_id = %msg.decided, actions = ?done.actions, removed = done.removed, card_updated = done.card_updated, "decision carried out");
    Ok(())
}

/// A click by someone the approval does not name, where it names user groups (intake cannot
/// read a group's members: only act holds the bot token). Slack says which of the groups the
/// person is in, now; then the click is decided exactly as intake decides one, and carried out.
pub(super) async fn group_click(deps: &super::Act, ask: GroupClick) -> Result<(), RecordError> {
    let mut member_of = Vec::new();
    for group in &ask.groups {
        match group_members(&deps.connectors, group).await {
            Ok(members) if members.contains(&ask.user) => member_of.push(group.clone()),
            Ok(_) => {}
            // Slack may answer later: the message comes round again.
            Err(
                e @ (ConnectorError::Transient(_)
                | ConnectorError::RateLimited { .. }
                | ConnectorError::Auth(_)
                | ConnectorError::OutcomeUnknown(_)),
            ) => return Err(RecordError(format!("reading user group {group}: {e}"))),
            // A missing scope or an unknown group: nobody is its member until it is fixed.
            Err(e) => {
                warn!(group = %group, error = %e, "a user group's members could not be read; its members cannot decide until they can be")
            }
        }
    }
    let Some(choice) = Choice::from_record(&ask.choice, ask.category.as_deref()) else {
        warn!(event_id = %ask.group_click, choice = %ask.choice, "a group click with an unknown choice; nothing done");
        return Ok(());
    };
    let verdict = deps
        .decider
        .decide(
            &ask.group_click,
            &choice,
            &ask.user,
            "slack",
            ask.note.as_deref(),
            Some(&member_of),
            Utc::now(),
        )
        .await
        .map_err(RecordError::new)?;
    let standing = match verdict {
        Verdict::Decided(r) => {
            metrics::counter!(crate::metrics::HUMAN_DECISIONS, "choice" => choice.as_str())
                .increment(1);
            info!(event_id = %ask.group_click, user = %ask.user, groups = ?member_of, choice = choice.as_str(), "decided by a user group's member");
            Some(*r)
        }
        // This click decided on an earlier receive, and carrying it out failed: carry on.
        Verdict::Already(h) if h.by == ask.user && h.via == "slack" && !h.carried_out => deps
            .decider
            .decisions
            .get(&ask.group_click)
            .await
            .map_err(RecordError::new)?,
        other => {
            info!(event_id = %ask.group_click, user = %ask.user, answer = %other.answer(&ask.group_click), "group click refused");
            deps.answers
                .send(ask.response_url.as_deref(), &other.answer(&ask.group_click))
                .await;
            None
        }
    };
    if let Some(record) = standing {
        deps.decider
            .carry_out(&record, ask.card)
            .await
            .map_err(RecordError::new)?;
    }
    Ok(())
}

/// An approval's timer came due (or is on its way: sent round again until it is). Nothing
/// happens if the event was decided, moved on or expired meanwhile.
pub(super) async fn timer(deps: &super::Act, t: ApprovalTimer) -> Result<(), RecordError> {
    let decider = &deps.decider;
    let left = t.due_ms - Utc::now().timestamp_millis();
    if left > 1_000 {
        let delay = (left / 1000).clamp(1, 900) as i32;
        return send(
            decider,
            &serde_json::to_string(&t).map_err(RecordError::new)?,
            delay,
        )
        .await;
    }
    let Some(record) = decider
        .decisions
        .get(&t.timer)
        .await
        .map_err(RecordError::new)?
    else {
        return Ok(());
    };
    if record.status != state::IN_REVIEW
        || record.human.is_some()
        || record.approval_expired.is_some()
    {
        info!(event_id = %t.timer, kind = ?t.kind, "approval timer: nothing waits any more");
        return Ok(());
    }
    let c = record.classification();
    let source = Source::parse(&record.source).unwrap_or(Source::Smoke);
    let approval = decider.routing.approval_for(source, &c);
    let (_, expires) = approval.timers();
    let asked = record.decided_at.clone().unwrap_or_default();
    match t.kind {
        TimerKind::Remind => {
            metrics::counter!(crate::metrics::APPROVAL_REMINDERS).increment(1);
            let Some(card) = decider.card_of(&record) else {
                return Ok(());
            };
            let who = match approval.approvers.is_empty() {
                true => "anyone here".to_owned(),
                false => approval
                    .approvers
                    .iter()
                    .map(|a| match crate::routing::is_group(a) {
                        // Slack's mention of a user group: its members are notified.
                        true => format!("<!subteam^{a}>"),
                        false => review::who(a, "slack"),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            let expiry = match expires {
                Some(e) => format!(
                    " It expires {} after it was asked, and then {}.",
                    humantime(e),
                    match approval.on_expiry {
                        OnExpiry::Review => "waits for an operator",
                        OnExpiry::Dismiss => "is dismissed",
                    }
                ),
                None => String::new(),
            };
            let text = format!(
                "Reminder for {who}: {} event {} still waits for a decision (asked at {asked}).{expiry}",
                record.source, record.event_id
            );
            let mut params = BTreeMap::from([
                ("channel".to_owned(), card.channel.clone()),
                ("thread_ts".to_owned(), card.ts.clone()),
                ("text".to_owned(), text),
            ]);
            params.retain(|_, v| !v.is_empty());
            let action = PlannedAction::new("slack", "post_message", params);
            notice(decider, &record, action, "reminder").await
        }
        TimerKind::Expire => match approval.on_expiry {
            OnExpiry::Dismiss => {
                let note = format!(
                    "no decision within {}",
                    expires.map(humantime).unwrap_or_default()
                );
                let verdict = decider
                    .decide(
                        &record.event_id,
                        &Choice::Dismiss,
                        "switchyard",
                        "expiry",
                        Some(&note),
                        None,
                        Utc::now(),
                    )
                    .await
                    .map_err(RecordError::new)?;
                // A redelivery after a failed carry-out finds its own decision standing.
                let standing = match verdict {
                    Verdict::Decided(r) => Some(*r),
                    Verdict::Already(h) if h.via == "expiry" && !h.carried_out => decider
                        .decisions
                        .get(&record.event_id)
                        .await
                        .map_err(RecordError::new)?,
                    _ => None,
                };
                if let Some(r) = standing {
                    decider
                        .carry_out(&r, None)
                        .await
                        .map_err(RecordError::new)?;
                }
                Ok(())
            }
            OnExpiry::Review => {
                if !decider
                    .decisions
                    .mark_expired(&record.event_id, Utc::now())
                    .await
                    .map_err(RecordError::new)?
                {
                    return Ok(());
                }
                let Some(card) = decider.card_of(&record) else {
                    return Ok(());
                };
                let event = event_of(&record);
                let line = format!(
                    "*Expired*: no decision within {}; the buttons are gone. It waits for an operator: `switchyard review resolve {}`.",
                    expires.map(humantime).unwrap_or_default(),
                    record.event_id
                );
                let mut action = PlannedAction::new(
                    "slack",
                    "update_message",
                    BTreeMap::from([
                        ("channel".to_owned(), card.channel),
                        ("ts".to_owned(), card.ts),
                        (
                            "text".to_owned(),
                            format!(
                                "{} event {}: the approval expired",
                                record.source, record.event_id
                            ),
                        ),
                        (
                            "blocks".to_owned(),
                            review::decided_card(&event, &line).to_string(),
                        ),
                    ]),
                );
                action.json.insert("blocks".into());
                notice(decider, &record, action, "expiry").await
            }
        },
    }
}

/// `2h`, `90m`, `30s` for a duration from the config.
fn humantime(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// One Slack notice about an approval, performed by act under its own key (`<stage>#<event>#0`).
async fn notice(
    decider: &Decider,
    record: &crate::decisions::DecisionRecord,
    action: PlannedAction,
    stage: &str,
) -> Result<(), RecordError> {
    let msg = ActMessage {
        event: event_of(record),
        category: record.category.clone(),
        confidence: record.confidence,
        actions: vec![action],
        review_reason: None,
        card_update: true,
        key_stage: Some(stage.to_owned()),
    };
    send(
        decider,
        &serde_json::to_string(&msg).map_err(RecordError::new)?,
        0,
    )
    .await
}

async fn send(decider: &Decider, body: &str, delay: i32) -> Result<(), RecordError> {
    decider
        .sqs
        .send_message()
        .queue_url(&decider.act_queue_url)
        .message_body(body)
        .delay_seconds(delay)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| RecordError(format!("sending to act: {}", crate::aws::error_message(&e))))
}

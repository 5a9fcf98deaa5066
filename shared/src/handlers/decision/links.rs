//! Decision links, for review notices where there are no buttons (a Teams incoming webhook,
//! e-mail): one signed, expiring URL per choice, `{base}/decide/{token}`.
//!
//! The token names one event and one choice and when it expires, and carries an HMAC-SHA256 of
//! those under the `DecisionLinkSecret` (hex throughout, so no markup a notice is escaped for can
//! touch it). A GET shows what the link would do and changes nothing — link scanners and chat
//! unfurlers fetch GETs; only the POST from that page decides, through the same one conditional
//! write as every other door, so a link works once: after any decision, every link of the event
//! is answered "already decided". A link names nobody, so it is only made (and only honoured)
//! where the approval names no approvers: holding it is the authority to use it.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::routing::Choice;
use crate::webhook::signature::{ct_eq, hmac_sha256};

/// What a link says.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The event the link decides on.
    pub event_id: String,
    /// What using the link chooses: approve, re-route, dismiss or take over.
    pub choice: Choice,
    /// Unix seconds.
    pub expires: i64,
}

/// Why a link is refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LinkError {
    /// The token does not parse or its HMAC does not match: not made by switchyard, or changed.
    #[error("this decision link is not one switchyard made (or it was changed)")]
    Forged,
    /// The link is genuine but expired, at the time it holds.
    #[error("this decision link expired at {0}")]
    Expired(DateTime<Utc>),
}

const DOMAIN: &[u8] = b"switchyard decision link v1:";

fn mac(key: &SecretString, payload: &[u8]) -> [u8; 32] {
    hmac_sha256(key.expose_secret().as_bytes(), &[DOMAIN, payload])
}

/// The token for `link`.
pub fn sign(key: &SecretString, link: &Link) -> String {
    let category = match &link.choice {
        Choice::Route(c) => c.as_str(),
        _ => "",
    };
    let payload = format!(
        "{}\n{}\n{}\n{}",
        link.event_id,
        link.choice.as_str(),
        category,
        link.expires
    );
    format!(
        "{}.{}",
        hex::encode(payload.as_bytes()),
        hex::encode(mac(key, payload.as_bytes()))
    )
}

/// The link a token names, if switchyard signed it and it has not expired.
pub fn verify(key: &SecretString, token: &str, now: DateTime<Utc>) -> Result<Link, LinkError> {
    let (payload, tag) = token.split_once('.').ok_or(LinkError::Forged)?;
    let (payload, tag) = (
        hex::decode(payload).map_err(|_| LinkError::Forged)?,
        hex::decode(tag).map_err(|_| LinkError::Forged)?,
    );
    if !ct_eq(&mac(key, &payload), &tag) {
        return Err(LinkError::Forged);
    }
    let text = String::from_utf8(payload).map_err(|_| LinkError::Forged)?;
    let parts: Vec<&str> = text.split('\n').collect();
    let [event_id, choice, category, expires] = parts[..] else {
        return Err(LinkError::Forged);
    };
    let category = (!category.is_empty()).then_some(category);
    let choice = Choice::from_record(choice, category).ok_or(LinkError::Forged)?;
    let expires: i64 = expires.parse().map_err(|_| LinkError::Forged)?;
    if now.timestamp() >= expires {
        let at = DateTime::from_timestamp(expires, 0).unwrap_or(now);
        return Err(LinkError::Expired(at));
    }
    Ok(Link {
        event_id: event_id.to_owned(),
        choice,
        expires,
    })
}

/// One line per choice, `Approve: {url}`, for a notice's `{decision.links}`.
pub fn lines(
    key: &SecretString,
    base: &str,
    event_id: &str,
    choices: &[Choice],
    expires: i64,
) -> String {
    choices
        .iter()
        .map(|choice| {
            let token = sign(
                key,
                &Link {
                    event_id: event_id.to_owned(),
                    choice: choice.clone(),
                    expires,
                },
            );
            let label = match choice {
                Choice::Approve => "Approve".to_owned(),
                Choice::Route(c) => format!("Route as {c}"),
                Choice::Dismiss => "Dismiss".to_owned(),
                Choice::TakeOver => "Take over".to_owned(),
            };
            format!("{label}: {}/decide/{token}", base.trim_end_matches('/'))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How long a link lives when its approval names no expiry.
pub(crate) const DEFAULT_LIFE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// What signs links for classify's review notices: the key, and intake's public URL.
#[derive(Clone, Debug)]
pub struct LinkSigner {
    /// Where the signing key is read from, cached.
    pub secrets: crate::secrets::SecretCache,
    /// The secret holding the signing key (`DECISION_LINK_SECRET_ID`).
    pub secret_id: String,
    /// Intake's public URL, which links are made under (`DECISION_LINK_BASE_URL`).
    pub base_url: String,
}

impl LinkSigner {
    /// From `DECISION_LINK_SECRET_ID` and `DECISION_LINK_BASE_URL`; `None` without either.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Option<Self> {
        let secret_id = s.optional("DECISION_LINK_SECRET_ID")?;
        let base_url = s.optional("DECISION_LINK_BASE_URL")?;
        Some(LinkSigner {
            secrets: crate::secrets::SecretCache::new(
                aws.secrets.clone(),
                crate::secrets::CACHE_TTL,
            ),
            secret_id: secret_id.to_owned(),
            base_url: base_url.to_owned(),
        })
    }

    /// The links for an event waiting for a person: Approve (when a route fits its guess), Route
    /// as each category a route acts on for it, Dismiss and Take over; they expire with the
    /// approval (or after [`DEFAULT_LIFE`]).
    pub async fn lines(
        &self,
        routing: &crate::routing::RoutingConfig,
        event: &crate::event::Event,
        c: &crate::routing::Classification,
        now: DateTime<Utc>,
    ) -> Result<String, crate::secrets::SecretError> {
        let approval = routing.approval_for(event.source, c);
        // A link names nobody: where approvers are named, only they decide (buttons, the CLI).
        if !approval.approvers.is_empty() {
            return Ok(format!(
                "(only its approvers decide: in Slack, or `switchyard review resolve {}`)",
                event.id
            ));
        }
        let key = self.secrets.get(&self.secret_id).await?;
        let life = approval.timers().1.unwrap_or(DEFAULT_LIFE).as_secs() as i64;
        let mut choices = Vec::new();
        if routing.has_proposal(event.source, c) {
            choices.push(Choice::Approve);
        }
        choices.extend(
            routing
                .routable(event.source, c)
                .into_iter()
                .filter(|name| {
                    let target = crate::routing::Classification {
                        category: (*name).to_owned(),
                        ..c.clone()
                    };
                    routing
                        .approval_for(event.source, &target)
                        .approvers
                        .is_empty()
                })
                .map(|name| Choice::Route(name.to_owned())),
        );
        choices.extend([Choice::Dismiss, Choice::TakeOver]);
        Ok(lines(
            &key,
            &self.base_url,
            &event.id,
            &choices,
            now.timestamp() + life,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretString {
        SecretString::from("k3y-for-links")
    }

    #[test]
    fn a_link_names_one_event_and_choice_until_it_expires_and_nothing_else_passes() {
        let now = Utc::now();
        let link = Link {
            event_id: "ev-1".into(),
            choice: Choice::Route("billing".into()),
            expires: now.timestamp() + 60,
        };
        let token = sign(&key(), &link);
        assert!(
            token.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.'),
            "{token}"
        );
        assert_eq!(verify(&key(), &token, now), Ok(link.clone()));
        // Another key, a changed byte, a swapped choice, garbage: forged.
        assert_eq!(
            verify(&SecretString::from("other"), &token, now),
            Err(LinkError::Forged)
        );
        let mut bytes = token.clone().into_bytes();
        bytes[3] = if bytes[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            verify(&key(), &String::from_utf8(bytes).unwrap(), now),
            Err(LinkError::Forged)
        );
        let approve = sign(
            &key(),
            &Link {
                choice: Choice::Approve,
                ..link.clone()
            },
        );
        let (payload, _) = approve.split_once('.').unwrap();
        let (_, tag) = token.split_once('.').unwrap();
        assert_eq!(
            verify(&key(), &format!("{payload}.{tag}"), now),
            Err(LinkError::Forged)
        );
        assert_eq!(verify(&key(), "nope", now), Err(LinkError::Forged));
        // At its expiry and after: expired, saying when.
        let later = now + chrono::Duration::seconds(61);
        assert!(matches!(
            verify(&key(), &token, later),
            Err(LinkError::Expired(_))
        ));
    }

    #[test]
    fn lines_hold_one_url_per_choice() {
        let text = lines(
            &key(),
            "https://x.example/",
            "ev-1",
            &[Choice::Approve, Choice::Dismiss],
            99,
        );
        let urls: Vec<&str> = text.lines().collect();
        assert_eq!(urls.len(), 2);
        assert!(
            urls[0].starts_with("Approve: https://x.example/decide/"),
            "{text}"
        );
        assert!(
            urls[1].starts_with("Dismiss: https://x.example/decide/"),
            "{text}"
        );
    }
}

//! `[documents]`: what the person who sent a document switchyard cannot read is told, through
//! the vendor the event came from. One list per case, each reply for one source:
//!
//! ```toml
//! [[documents.password]]   # a password-protected file: ask once for an unprotected copy
//! source = "zendesk"
//! connector = "zendesk"
//! action = "update_ticket"
//! params = { ticket_id = "{event.object_id}", public = "true", comment = "… {document.name} …" }
//! ```
//!
//! `unreadable` is for a corrupt or cut-short upload. A reply is planned with the event's review
//! notices, so act sends it once under the event's key, however often the event is delivered.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{fill_action, placeholder_value, ActionTemplate, ConfigError, PlannedAction, Text};
use crate::event::Event;
use crate::routing::Classification;

/// The `[documents]` table: what senders of a document switchyard cannot read are told.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentReplies {
    /// Replies asking for an unprotected copy of a password-protected file, each for one source.
    #[serde(default)]
    pub password: Vec<Reply>,
    /// Replies asking for a damaged or cut-short upload again, each for one source.
    #[serde(default)]
    pub unreadable: Vec<Reply>,
}

/// One reply, for events from `source`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The source whose events get this reply, as [`Source::as_str`](crate::event::Source::as_str)
    /// names it.
    pub source: String,
    /// The connector the reply goes through, e.g. `zendesk`.
    pub connector: String,
    /// The connector's action that sends it, e.g. `update_ticket`.
    pub action: String,
    /// The route placeholders, and `{document.name}`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// What the requester is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// An unprotected copy of a password-protected document.
    Password,
    /// The upload again: it arrived damaged or cut short.
    Unreadable,
}

impl Reply {
    fn template(&self) -> ActionTemplate {
        ActionTemplate {
            connector: self.connector.clone(),
            action: self.action.clone(),
            params: self.params.clone(),
        }
    }
}

impl DocumentReplies {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (case, replies) in [
            ("password", &self.password),
            ("unreadable", &self.unreadable),
        ] {
            for r in replies {
                let at = format!("documents.{case} reply for {}", r.source);
                if crate::event::Source::parse(&r.source).is_none() {
                    return Err(ConfigError::Invalid(format!("{at}: no such source")));
                }
                let unknown = r
                    .params
                    .values()
                    .flat_map(|v| super::template_names(v))
                    .find(|n| n != "document.name" && !super::PLACEHOLDERS.contains(&n.as_str()));
                if let Some(name) = unknown {
                    return Err(ConfigError::Invalid(format!(
                        "{at} action {}.{}: unknown placeholder {{{name}}}",
                        r.connector, r.action
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every reply's connector and action, for the credentials' checks.
    pub(super) fn templates(&self) -> impl Iterator<Item = ActionTemplate> + '_ {
        self.password
            .iter()
            .chain(&self.unreadable)
            .map(Reply::template)
    }

    /// The replies for `ask` about `document` to the requester of `event`: none when no reply
    /// is configured for its source. The file's name is the sender's text: escaped like it.
    pub fn plan(
        &self,
        event: &Event,
        c: &Classification,
        ask: Ask,
        document: &str,
    ) -> Vec<PlannedAction> {
        let replies = match ask {
            Ask::Password => &self.password,
            Ask::Unreadable => &self.unreadable,
        };
        replies
            .iter()
            .filter(|r| r.source == event.source.as_str())
            .filter_map(|r| {
                let value = |name: &str| match name {
                    "document.name" => Some(document.to_owned()),
                    _ => placeholder_value(name, event, c, None, Text::AsIs),
                };
                fill_action(&r.template(), &value)
                    .inspect_err(|name| {
                        tracing::warn!(placeholder = %name, connector = %r.connector,
                            "a document reply was not sent: its placeholder has no value here")
                    })
                    .ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::routing::RoutingConfig;

    fn with(documents: &str) -> Result<RoutingConfig, String> {
        let text = format!(
            "review_threshold = 0.6\n[[categories]]\nname = \"billing\"\nkeywords = [\"refund\"]\n{documents}"
        );
        RoutingConfig::load(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn replies_are_checked_when_the_config_loads() {
        let bad_source = with("[[documents.password]]\nsource = \"zendesk2\"\nconnector = \"zendesk\"\naction = \"update_ticket\"\n");
        assert!(bad_source
            .unwrap_err()
            .contains("documents.password reply for zendesk2: no such source"));
        let bad_name = with("[[documents.unreadable]]\nsource = \"jira\"\nconnector = \"jira\"\naction = \"add_comment\"\nparams = { comment = \"{document.title}\" }\n");
        assert!(bad_name
            .unwrap_err()
            .contains("unknown placeholder {document.title}"));
        let ok = with("[[documents.unreadable]]\nsource = \"jira\"\nconnector = \"jira\"\naction = \"add_comment\"\nparams = { issue = \"{event.object_id}\", comment = \"{document.name}\" }\n").unwrap();
        assert_eq!(ok.planned_actions()["jira"].len(), 1);
    }

    #[test]
    fn a_reply_goes_to_its_source_only_and_the_name_is_escaped_as_text() {
        let config = with("[[documents.password]]\nsource = \"slack\"\nconnector = \"slack\"\naction = \"post_message\"\nparams = { channel = \"C1\", text = \"Cannot open {document.name}\" }\n").unwrap();
        let mut event =
            crate::routing::tests::event(crate::event::Source::Zendesk, "hello", Some("7"));
        let c = config.classify(&event);
        assert!(config
            .documents
            .plan(&event, &c, super::Ask::Password, "x.pdf")
            .is_empty());
        event.source = crate::event::Source::Slack;
        let planned = config
            .documents
            .plan(&event, &c, super::Ask::Password, "<!channel>.pdf");
        assert_eq!(
            planned[0].params["text"],
            "Cannot open &lt;!channel&gt;.pdf"
        );
        assert!(config
            .documents
            .plan(&event, &c, super::Ask::Unreadable, "x")
            .is_empty());
    }
}

//! The routing config: categories the classifier knows, the confidence needed to act without a
//! human, and which connector actions each category triggers. One TOML file, validated at load.
//!
//! The walking skeleton classifies by keywords; the config shape is what later classifiers
//! (embedded model, LLM) read too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::event::{Event, Source};

/// The config compiled into every binary; `ROUTING_CONFIG` names a file that replaces it.
pub const DEFAULT_CONFIG: &str = include_str!("../routing.toml");

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("routing config: {0}")]
    Parse(String),
    #[error("routing config: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Below this confidence an event goes to human review.
    pub review_threshold: f64,
    pub categories: Vec<Category>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Lower-case words or phrases that signal this category (for the keyword classifier; a
    /// category the embedded model predicts may have none).
    #[serde(default)]
    pub keywords: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub category: String,
    /// Only events from this source; any source when absent.
    #[serde(default)]
    pub source: Option<Source>,
    pub actions: Vec<ActionTemplate>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionTemplate {
    pub connector: String,
    pub action: String,
    /// Values may use `{event.id}`, `{event.source}`, `{event.object_id}`, `{event.subject}`,
    /// `{event.text}`, `{event.summary}` (subject, else the start of the text), `{category}` and
    /// `{confidence}`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// An action with its parameters filled in from one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    pub connector: String,
    pub action: String,
    pub params: BTreeMap<String, String>,
}

/// What the classifier concluded, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Classification {
    pub category: String,
    pub confidence: f64,
    pub scores: BTreeMap<String, f64>,
    /// The evidence, e.g. the keywords that matched.
    pub signals: Vec<String>,
    /// Which classifier decided: `rules` or `model`.
    pub backend: &'static str,
}

/// Where a classified event goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Act(Vec<PlannedAction>),
    Review { reason: String },
}

/// The category an event gets when nothing matches.
pub const UNKNOWN: &str = "unknown";

const PLACEHOLDERS: &[&str] = &[
    "event.id",
    "event.source",
    "event.object_id",
    "event.subject",
    "event.text",
    "event.summary",
    "category",
    "confidence",
];

impl RoutingConfig {
    pub fn load(text: &str) -> Result<Self, ConfigError> {
        // toml's message carries the line and column of the problem.
        let config: RoutingConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The file named by `ROUTING_CONFIG`, or the compiled-in default.
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var("ROUTING_CONFIG") {
            Ok(path) if !path.is_empty() => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError::Parse(format!("cannot read {path}: {e}")))?;
                Self::load(&text)
            }
            _ => Self::load(DEFAULT_CONFIG),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.review_threshold) {
            return Err(ConfigError::Invalid(format!(
                "review_threshold {} is outside 0..=1",
                self.review_threshold
            )));
        }
        for route in &self.routes {
            if !self.categories.iter().any(|c| c.name == route.category) {
                return Err(ConfigError::Invalid(format!(
                    "route for category {:?}: no such category",
                    route.category
                )));
            }
            for action in &route.actions {
                for value in action.params.values() {
                    for name in placeholders(value) {
                        if !PLACEHOLDERS.contains(&name) {
                            return Err(ConfigError::Invalid(format!(
                                "route {:?} action {}.{}: unknown placeholder {{{name}}}",
                                route.category, action.connector, action.action
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Keyword classifier. A category's score is its number of distinct keyword hits;
    /// confidence = (share of all hits) × (1 − 2^−hits): one lone hit gives 0.5, three give 0.875,
    /// and hits for a rival category pull it down.
    pub fn classify(&self, event: &Event) -> Classification {
        let text = event.content().to_lowercase();
        let mut scores = BTreeMap::new();
        let mut signals = Vec::new();
        for category in &self.categories {
            let hits: Vec<&String> = category
                .keywords
                .iter()
                .filter(|k| text.contains(k.as_str()))
                .collect();
            signals.extend(hits.iter().map(|k| format!("{}:{k}", category.name)));
            scores.insert(category.name.clone(), hits.len() as f64);
        }
        let total: f64 = scores.values().sum();
        let best = scores
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(name, hits)| (name.clone(), *hits));
        let (category, confidence) = match best {
            Some((name, hits)) if hits > 0.0 => (name, (hits / total) * (1.0 - 0.5f64.powf(hits))),
            _ => (UNKNOWN.to_owned(), 0.0),
        };
        Classification {
            category,
            confidence,
            scores,
            signals,
            backend: "rules",
        }
    }

    /// Classify with the embedded model; scores are its five most likely categories.
    pub fn classify_with_model(
        &self,
        model: &crate::model::Model,
        event: &Event,
    ) -> Classification {
        let p = model.predict(&event.content());
        let mut ranked: Vec<(usize, f32)> = p.probabilities.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let scores: BTreeMap<String, f64> = ranked
            .iter()
            .take(5)
            .map(|(i, pr)| (model.labels[*i].clone(), f64::from(*pr)))
            .collect();
        let signals = ranked
            .iter()
            .take(3)
            .map(|(i, pr)| format!("model:{}={pr:.3}", model.labels[*i]))
            .collect();
        Classification {
            category: model.labels[p.label].clone(),
            confidence: f64::from(p.confidence),
            scores,
            signals,
            backend: "model",
        }
    }

    /// Choose the route for a classified event.
    pub fn decide(&self, event: &Event, c: &Classification) -> Decision {
        if c.confidence < self.review_threshold {
            return Decision::Review {
                reason: format!(
                    "confidence {:.2} for {:?} is below the review threshold {:.2}",
                    c.confidence, c.category, self.review_threshold
                ),
            };
        }
        let Some(route) = self
            .routes
            .iter()
            .find(|r| r.category == c.category && r.source.is_none_or(|s| s == event.source))
        else {
            return Decision::Review {
                reason: format!(
                    "no route for category {:?} from {}",
                    c.category, event.source
                ),
            };
        };
        let mut planned = Vec::with_capacity(route.actions.len());
        for t in &route.actions {
            let mut params = BTreeMap::new();
            for (k, v) in &t.params {
                let rendered = render(v, event, c);
                let Ok(value) = rendered else {
                    let missing = rendered.unwrap_err();
                    let reason = format!(
                        "action {}.{} needs {{{missing}}}, which this {} event does not have",
                        t.connector, t.action, event.source
                    );
                    return Decision::Review { reason };
                };
                params.insert(k.clone(), value);
            }
            planned.push(PlannedAction {
                connector: t.connector.clone(),
                action: t.action.clone(),
                params,
            });
        }
        Decision::Act(planned)
    }
}

fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// Fill a template; `Err(name)` when the event lacks a value the template needs.
fn render<'t>(template: &'t str, event: &Event, c: &Classification) -> Result<String, &'t str> {
    let mut out = template.to_owned();
    for name in placeholders(template) {
        let value = match name {
            "event.id" => Some(event.id.clone()),
            "event.source" => Some(event.source.to_string()),
            "event.object_id" => event.object_id.clone(),
            "event.subject" => event.subject.clone(),
            "event.text" => event.text.clone(),
            "event.summary" => event.summary(),
            "category" => Some(c.category.clone()),
            "confidence" => Some(format!("{:.2}", c.confidence)),
            _ => None,
        };
        let value = value.ok_or(name)?;
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: Source, subject: &str, object_id: Option<&str>) -> Event {
        Event {
            id: "ev-1".into(),
            source,
            event_type: "t".into(),
            delivery_id: "d".into(),
            object_id: object_id.map(Into::into),
            subject: Some(subject.into()),
            text: None,
            requester: None,
            occurred_at: None,
            received_at: chrono::Utc::now(),
            links: Vec::new(),
            unknown_fields: Vec::new(),
            raw: serde_json::Value::Null,
        }
    }

    #[test]
    fn default_config_loads() {
        let config = RoutingConfig::load(DEFAULT_CONFIG).unwrap();
        assert!(config.categories.len() >= 2);
    }

    #[test]
    fn strong_match_acts_with_rendered_params() {
        let config = RoutingConfig::load(DEFAULT_CONFIG).unwrap();
        let e = event(
            Source::Zendesk,
            "Refund for a double charge on my invoice",
            Some("35436"),
        );
        let c = config.classify(&e);
        assert_eq!(c.category, "billing");
        assert!(c.confidence >= config.review_threshold, "{c:?}");
        let Decision::Act(actions) = config.decide(&e, &c) else {
            panic!("expected act")
        };
        assert_eq!(actions[0].connector, "zendesk");
        assert_eq!(actions[0].params["ticket_id"], "35436");
    }

    #[test]
    fn no_keyword_goes_to_review() {
        let config = RoutingConfig::load(DEFAULT_CONFIG).unwrap();
        let e = event(Source::Slack, "hello there", None);
        let c = config.classify(&e);
        assert_eq!((c.category.as_str(), c.confidence), (UNKNOWN, 0.0));
        assert!(matches!(config.decide(&e, &c), Decision::Review { .. }));
    }

    #[test]
    fn missing_template_value_goes_to_review_with_reason() {
        let config = RoutingConfig::load(DEFAULT_CONFIG).unwrap();
        let e = event(Source::Zendesk, "refund invoice charge", None);
        let c = config.classify(&e);
        let Decision::Review { reason } = config.decide(&e, &c) else {
            panic!("expected review")
        };
        assert!(reason.contains("event.object_id"), "{reason}");
    }

    #[test]
    fn the_embedded_model_can_drive_routing() {
        let rows: Vec<(String, String)> = [
            ("refund for the double charge on my invoice", "billing"),
            ("I was charged twice, refund please", "billing"),
            ("the invoice shows a wrong payment", "billing"),
            ("checkout is down with errors", "outage"),
            ("the site is down, 500 errors everywhere", "outage"),
            ("service unavailable since this morning", "outage"),
        ]
        .iter()
        .map(|(t, l)| (t.to_string(), l.to_string()))
        .collect();
        let cfg = crate::model::TrainConfig {
            min_df: 1,
            ..Default::default()
        };
        let model = crate::model::Model::train(&rows, &cfg).unwrap();
        let config = RoutingConfig::load(DEFAULT_CONFIG).unwrap();
        let e = event(
            Source::Jira,
            "the whole site is down, errors on checkout",
            Some("OPS-1"),
        );
        let c = config.classify_with_model(&model, &e);
        assert_eq!((c.category.as_str(), c.backend), ("outage", "model"));
        assert!(c.scores.contains_key("billing") && c.signals[0].starts_with("model:outage="));
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        let err = RoutingConfig::load("review_threshold = 2.0\ncategories = []").unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let err =
            RoutingConfig::load("review_threshold = 0.5\n[[categories]]\nname = 1\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let bad = r#"review_threshold = 0.5
[[categories]]
name = "a"
keywords = ["x"]
[[routes]]
category = "a"
[[routes.actions]]
connector = "slack"
action = "post_message"
params = { text = "{event.nope}" }
"#;
        let err = RoutingConfig::load(bad).unwrap_err();
        assert!(
            err.to_string().contains("unknown placeholder {event.nope}"),
            "{err}"
        );
    }
}

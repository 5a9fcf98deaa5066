//! The routing config: categories the classifier knows, the confidence needed to act without a
//! human, and which connector actions each category triggers. One TOML file, validated at load.
//!
//! Routes are tried in order; the first whose category (or `*`), source, language (a code, or
//! `other` = reliably detected and not in `languages`) and confidence floor all match, wins.
//! Otherwise: below `review_threshold` → the review route; else the default route, if any.
//! Every classifier (keywords, embedded model, LLM) reads the same categories.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::event::{Event, Source};
pub use messages::ActMessage;
pub(crate) use messages::{
    ApprovalTimer, CardRef, DecidedMessage, GroupClick, ReviewMessage, TimerKind,
};

pub mod approval;
pub mod documents;
mod fill;
mod messages;
pub use approval::{is_group, Choice};
pub(crate) use approval::{Approval, OnExpiry, HUMAN};
pub(crate) use fill::Markup;

/// The config compiled into every binary; `ROUTING_CONFIG` names a file that replaces it.
pub const DEFAULT_CONFIG: &str = include_str!("../../routing.toml");

/// Why a routing config could not be loaded.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// The file cannot be read or its TOML does not fit the schema; holds the message.
    #[error("routing config: {0}")]
    Parse(String),
    /// The TOML reads but breaks a rule (unknown category, placeholder, out-of-range value).
    #[error("routing config: {0}")]
    Invalid(String),
}

/// The routing config: categories, the review threshold, and routes from category to actions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Below this confidence an event goes to human review.
    pub review_threshold: f64,
    /// Languages (ISO 639-3, as detected) the team works in; `language = "other"` routes the rest.
    #[serde(default = "english")]
    pub languages: Vec<String>,
    /// The categories the classifiers choose from.
    pub categories: Vec<Category>,
    /// The routes, in the order they are tried, each with its place in the file for messages.
    #[serde(default)]
    pub routes: Vec<toml::Spanned<Route>>,
    /// Actions for a confident event no route matched (none: it goes to review).
    #[serde(default)]
    pub default: Option<Actions>,
    /// Actions that tell a human an event needs them (may use `{reason}`).
    #[serde(default)]
    pub review: Option<Actions>,
    /// Actions that tell a human the canary found an API change needing them (a new warning or
    /// breaking finding); may use `{finding.id}`, `{finding.line}`, `{finding.routes}`.
    #[serde(default)]
    pub drift: Option<Actions>,
    /// What senders of documents switchyard cannot read are told (see [`documents`]).
    #[serde(default)]
    pub documents: documents::DocumentReplies,
}

fn english() -> Vec<String> {
    vec!["eng".into()]
}

/// The actions of the default, review or drift route, with the review route's options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    /// The actions to plan.
    pub actions: Vec<ActionTemplate>,
    /// Review notices only: post the customer's subject and text as they are. By default a
    /// notice carries them PII-redacted (e-mail addresses, phone numbers, long digit runs) and
    /// `{event.link}` points the human to the source.
    #[serde(default)]
    pub full_text: bool,
    /// Review route only: who may decide on events no approving route names (see [`approval`]).
    #[serde(default)]
    pub approval: Option<Approval>,
}

/// A category the classifiers can give an event.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// The name classifiers answer with and routes match on.
    pub name: String,
    /// What the category covers, in words (the LLM's prompt shows it); empty when not given.
    #[serde(default)]
    pub description: String,
    /// Lower-case words or phrases that signal this category (for the keyword classifier; a
    /// category the embedded model predicts may have none).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// A few example messages (the LLM's prompt shows them).
    #[serde(default)]
    pub examples: Vec<String>,
}

/// A rule sending events of a category (optionally also a source, language and confidence
/// floor) to actions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A category name, or `*` for any.
    pub category: String,
    /// Only events from this source; any source when absent.
    #[serde(default)]
    pub source: Option<Source>,
    /// Only events in this language (ISO 639-3 code), or `other`: reliably detected and not one of
    /// `languages`. Any language when absent.
    #[serde(default)]
    pub language: Option<String>,
    /// The confidence this route needs; `review_threshold` when absent.
    #[serde(default)]
    pub min_confidence: Option<f64>,
    /// A route whose writes matter (a legal case, a payment): taken on the LLM's word alone it
    /// goes to a person instead, unless the embedded model agrees.
    #[serde(default)]
    pub sensitive: bool,
    /// Ask a person before writing (see [`approval`]).
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The actions to plan when this route matches.
    pub actions: Vec<ActionTemplate>,
}

/// One action as the config writes it: its parameter values are templates filled per event.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionTemplate {
    /// The connector that carries it out, e.g. `zendesk`, `slack`, or a declared connector.
    pub connector: String,
    /// The connector's action, e.g. `update_ticket` or `post_message`.
    pub action: String,
    /// Values may use `{event.id}`, `{event.source}`, `{event.object_id}`, `{event.subject}`,
    /// `{event.text}`, `{event.summary}` (subject, else the start of the text), `{event.link}` (the
    /// source object's link, else source and object id), `{category}` and
    /// `{confidence}`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// An action with its parameters filled in from one event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// The connector that carries it out, e.g. `zendesk` or `slack`.
    pub connector: String,
    /// The connector's action, e.g. `update_ticket`.
    pub action: String,
    /// Parameter values with every placeholder filled in.
    pub params: BTreeMap<String, String>,
    /// Parameters the route wrote as JSON (Slack `blocks`, a Jira object field): only these are
    /// read as JSON by a connector; every other value is text, whatever it looks like.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub json: BTreeSet<String>,
}

impl PlannedAction {
    /// An action whose parameters are all text.
    pub fn new(connector: &str, action: &str, params: BTreeMap<String, String>) -> Self {
        PlannedAction {
            connector: connector.to_owned(),
            action: action.to_owned(),
            params,
            json: BTreeSet::new(),
        }
    }

    /// The parameter `name` as the JSON the route wrote, if it wrote it as JSON.
    pub(crate) fn json_param(
        &self,
        name: &str,
    ) -> Option<Result<serde_json::Value, serde_json::Error>> {
        self.json
            .contains(name)
            .then(|| self.params.get(name))
            .flatten()
            .map(|v| serde_json::from_str(v))
    }
}

/// What the classifier concluded, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Classification {
    /// The chosen category's name; `unknown` when nothing fits.
    pub category: String,
    /// How sure the deciding backend is of `category`, from 0 to 1.
    pub confidence: f64,
    /// Scores by category in the backend's own terms: keyword hits for `rules`, the five most
    /// likely categories' probabilities for `model`, the chosen one alone for `llm`.
    pub scores: BTreeMap<String, f64>,
    /// The evidence, e.g. the keywords that matched.
    pub signals: Vec<String>,
    /// Which classifier decided: `rules`, `model` or `llm`.
    pub backend: &'static str,
    /// The detected language (ISO 639-3) when the detector is reliably sure.
    pub language: Option<String>,
    /// Why the preferred backend did not decide (LLM down, slow, rate limited).
    pub fallback: Option<String>,
    /// A reason to ask a human whatever the confidence (e.g. the LLM and the model disagree).
    pub flag: Option<String>,
    /// What the embedded model (or the rules) said when the LLM decided: a sensitive route needs
    /// it to agree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_opinion: Option<Opinion>,
}

/// One classifier's answer, kept beside another's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Opinion {
    /// Which classifier answered: `model` or `rules`.
    pub backend: &'static str,
    /// The category it chose.
    pub category: String,
    /// Its confidence in `category`, from 0 to 1.
    pub confidence: f64,
}

impl Classification {
    /// Whether a route marked `sensitive` may act on this without a person: the LLM's word is
    /// not enough (text can be written to steer it); the embedded model, or the rules, must
    /// have chosen the same category at `threshold` or above.
    pub(crate) fn corroborated(&self, threshold: f64) -> bool {
        match (self.backend, &self.second_opinion) {
            ("llm", Some(o)) => o.category == self.category && o.confidence >= threshold,
            ("llm", None) => false,
            _ => true,
        }
    }
}

impl Classification {
    /// A classification with no evidence: confidence 0, so it goes to review.
    pub fn unknown(backend: &'static str, signal: String) -> Self {
        Classification {
            category: UNKNOWN.to_owned(),
            confidence: 0.0,
            scores: BTreeMap::new(),
            signals: vec![signal],
            backend,
            language: None,
            fallback: None,
            second_opinion: None,
            flag: None,
        }
    }
}

/// Where a classified event goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Carry out these actions, filled in from the event (empty for a smoke event).
    Act(Vec<PlannedAction>),
    /// A human decides; `notify` tells them (the review route's actions).
    Review {
        /// Why a person must decide, in words (a notice's `{reason}`).
        reason: String,
        /// The review route's actions filled in for this event; any that cannot be filled are
        /// left out.
        notify: Vec<PlannedAction>,
    },
}

/// The category an event gets when nothing matches.
pub(crate) const UNKNOWN: &str = "unknown";

const PLACEHOLDERS: &[&str] = &[
    "event.id",
    "event.source",
    "event.object_id",
    "event.subject",
    "event.text",
    "event.summary",
    "event.link",
    "category",
    "confidence",
    "language",
    "reason",
    "decision.links",
];

impl RoutingConfig {
    /// Parse a config from its TOML text and validate it.
    pub fn load(text: &str) -> Result<Self, ConfigError> {
        // toml's message carries the line and column of the problem.
        let config: RoutingConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate(text)?;
        Ok(config)
    }

    /// Every action any route (and the default and review routes) can plan, per connector: what
    /// each connection's credential must be allowed to do (`switchyard doctor` checks it).
    pub fn planned_actions(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut out: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        let templates = self
            .routes
            .iter()
            .flat_map(|r| r.get_ref().actions.iter())
            .chain(self.default.iter().flat_map(|a| a.actions.iter()))
            .chain(self.review.iter().flat_map(|a| a.actions.iter()))
            .cloned()
            .chain(self.documents.templates());
        for t in templates {
            out.entry(t.connector.clone())
                .or_default()
                .insert(t.action.clone());
        }
        out
    }

    /// The file named by the `ROUTING_CONFIG` setting, or the compiled-in default.
    pub fn from_settings(s: &crate::settings::Settings) -> Result<Self, ConfigError> {
        match s.optional("ROUTING_CONFIG") {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Parse(format!("cannot read {path}: {e}")))?;
                Self::load(&text)
            }
            None => Self::load(DEFAULT_CONFIG),
        }
    }

    /// The file named by `ROUTING_CONFIG` in the environment, or the compiled-in default.
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

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        let line =
            |span: std::ops::Range<usize>| text[..span.start.min(text.len())].lines().count() + 1;
        if !(0.0..=1.0).contains(&self.review_threshold) {
            return Err(ConfigError::Invalid(format!(
                "review_threshold {} is outside 0..=1",
                self.review_threshold
            )));
        }
        for spanned in &self.routes {
            let route = spanned.get_ref();
            let at = format!("line {}: route {:?}", line(spanned.span()), route.category);
            if route.category != "*" && !self.categories.iter().any(|c| c.name == route.category) {
                return Err(ConfigError::Invalid(format!("{at}: no such category")));
            }
            if let Some(lang) = &route.language {
                let code = lang.len() == 3 && lang.bytes().all(|b| b.is_ascii_lowercase());
                if lang != "other" && !code {
                    return Err(ConfigError::Invalid(format!(
                        "{at}: language {lang:?} is neither an ISO 639-3 code (e.g. \"spa\") nor \"other\""
                    )));
                }
            }
            if let Some(m) = route.min_confidence.filter(|m| !(0.0..=1.0).contains(m)) {
                return Err(ConfigError::Invalid(format!(
                    "{at}: min_confidence {m} is outside 0..=1"
                )));
            }
            check_placeholders(&at, &route.actions)?;
            if let Some(a) = &route.approval {
                a.validate(&at)?;
            }
        }
        if let Some(d) = &self.default {
            check_placeholders("default route", &d.actions)?;
        }
        if let Some(r) = &self.review {
            check_placeholders("review route", &r.actions)?;
            if let Some(a) = &r.approval {
                a.validate("review route")?;
            }
        }
        self.documents.validate()?;
        for a in self.drift.iter().flat_map(|d| &d.actions) {
            for name in a.params.values().flat_map(|v| template_names(v)) {
                if !DRIFT_PLACEHOLDERS.contains(&name.as_str()) {
                    return Err(ConfigError::Invalid(format!(
                        "drift route action {}.{}: unknown placeholder {{{name}}} (one of {})",
                        a.connector,
                        a.action,
                        DRIFT_PLACEHOLDERS.join(", ")
                    )));
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
            language: None,
            fallback: None,
            second_opinion: None,
            flag: None,
        }
    }

    /// Classify with the embedded model; scores are its five most likely categories.
    pub(crate) fn classify_with_model(
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
            language: None,
            fallback: None,
            second_opinion: None,
            flag: None,
        }
    }

    /// Choose the route for a classified event (first matching route wins).
    pub fn decide(&self, event: &Event, c: &Classification) -> Decision {
        // A smoke test proves the path, not a route: nothing to do, and done.
        if event.source == crate::event::Source::Smoke {
            return Decision::Act(Vec::new());
        }
        if let Some(flag) = &c.flag {
            return self.review(event, c, flag.clone());
        }
        let matched = self.matching_route(event, c);
        let actions = match (matched, &self.default) {
            (Some((_, route)), _) if route.sensitive && !c.corroborated(self.review_threshold) => {
                return self.review(event, c, sensitive_guard(route, c));
            }
            (Some((i, route)), _) => {
                if let Some(asks) = route.approval.as_ref().and_then(|a| self.asks(i, a, c)) {
                    return self.review(event, c, asks);
                }
                &route.actions
            }
            // Nothing the classifiers know: never acted on, whatever the threshold.
            (None, _) if c.category == UNKNOWN && c.confidence >= self.review_threshold => {
                let reason = format!(
                    "category {UNKNOWN:?} is never acted on (confidence {:.2})",
                    c.confidence
                );
                return self.review(event, c, reason);
            }
            (None, _) if c.confidence < self.review_threshold => {
                let reason = format!(
                    "confidence {:.2} for {:?} is below the review threshold {:.2}",
                    c.confidence, c.category, self.review_threshold
                );
                return self.review(event, c, reason);
            }
            (None, Some(default)) => &default.actions,
            (None, None) => {
                let reason = format!(
                    "no route for category {:?} from {}",
                    c.category, event.source
                );
                return self.review(event, c, reason);
            }
        };
        match plan(actions, event, c, None, Text::AsIs) {
            Ok(planned) => Decision::Act(planned),
            Err(reason) => self.review(event, c, reason),
        }
    }

    /// The first route whose conditions all hold, with its position.
    fn matching_route(&self, event: &Event, c: &Classification) -> Option<(usize, &Route)> {
        self.route_matching(event.source, c)
    }

    /// [`matching_route`](Self::matching_route) for an event known by its source only.
    fn route_matching(&self, source: Source, c: &Classification) -> Option<(usize, &Route)> {
        let other_language = c
            .language
            .as_ref()
            .is_some_and(|l| !self.languages.contains(l));
        self.routes
            .iter()
            .map(|s| s.get_ref())
            .enumerate()
            .find(|(_, r)| {
                // `*` is any category the classifiers know, never `unknown`.
                ((r.category == "*" && c.category != UNKNOWN) || r.category == c.category)
                    && r.source.is_none_or(|s| s == source)
                    && match r.language.as_deref() {
                        None => true,
                        Some("other") => other_language,
                        Some(code) => c.language.as_deref() == Some(code),
                    }
                    && c.confidence >= r.min_confidence.unwrap_or(self.review_threshold)
            })
    }

    /// Which way [`decide`](Self::decide) goes and why, in words for the decision record and
    /// `switchyard explain`.
    pub(crate) fn route_taken(&self, event: &Event, c: &Classification) -> String {
        if let Some(flag) = &c.flag {
            return format!("flagged for review: {flag}");
        }
        if let Some((i, r)) = self.matching_route(event, c) {
            if r.sensitive && !c.corroborated(self.review_threshold) {
                return format!(
                    "guard: route {} is sensitive; {}",
                    i + 1,
                    sensitive_guard(r, c)
                );
            }
            if let Some(asks) = r.approval.as_ref().and_then(|a| self.asks(i, a, c)) {
                return format!("approval: {asks}");
            }
            let mut when = vec![format!("category {}", r.category)];
            if let Some(s) = r.source {
                when.push(format!("source {s}"));
            }
            if let Some(l) = &r.language {
                when.push(format!("language {l}"));
            }
            let min = r.min_confidence.unwrap_or(self.review_threshold);
            return format!(
                "route {} ({}): confidence {:.2} >= {:.2}",
                i + 1,
                when.join(", "),
                c.confidence,
                min
            );
        }
        if c.confidence < self.review_threshold {
            return format!(
                "no route matched and confidence {:.2} is below the review threshold {:.2}",
                c.confidence, self.review_threshold
            );
        }
        match self.default {
            Some(_) => "no route matched: the [default] route".into(),
            None => "no route matched and there is no [default] route".into(),
        }
    }

    /// Review, with the review route's actions that this event can fill in (a Zendesk tag needs a
    /// ticket; a Slack post does not).
    /// Send to review for `reason`, with the review route's notices.
    pub fn review(&self, event: &Event, c: &Classification, reason: String) -> Decision {
        self.review_with_links(event, c, reason, None)
    }

    /// [`review`](Self::review), with `links` (one signed decision link per choice, a line each)
    /// for the notices' `{decision.links}`.
    pub(crate) fn review_with_links(
        &self,
        event: &Event,
        c: &Classification,
        reason: String,
        links: Option<&str>,
    ) -> Decision {
        let notify = self
            .review
            .iter()
            .flat_map(|r| &r.actions)
            .filter_map(|t| {
                let full_text = self.review.as_ref().is_some_and(|r| r.full_text);
                let text = if full_text {
                    Text::AsIs
                } else {
                    Text::Redacted
                };
                let value = |name: &str| match name {
                    "decision.links" => Some(links.map(str::to_owned).unwrap_or_else(|| {
                        format!("(decide with `switchyard review resolve {}`)", event.id)
                    })),
                    _ => placeholder_value(name, event, c, Some(&reason), text),
                };
                fill_action(t, &value).ok().map(|a| vec![a])
            })
            .flatten()
            .collect();
        Decision::Review { reason, notify }
    }
}

/// Why a sensitive route was not taken: the LLM alone chose it.
fn sensitive_guard(route: &Route, c: &Classification) -> String {
    let second = match &c.second_opinion {
        Some(o) => format!(
            "the {} says {:?} ({:.2})",
            o.backend, o.category, o.confidence
        ),
        None => "nothing else was asked".into(),
    };
    format!(
        "sensitive route for {:?} chosen on the LLM's word alone ({:.2}); {second}: a person decides",
        route.category, c.confidence
    )
}

const DRIFT_PLACEHOLDERS: &[&str] = &["finding.id", "finding.line", "finding.routes"];

impl RoutingConfig {
    /// The drift route's notices for one finding: `id` as `switchyard canary ack` takes it,
    /// `line` the finding as one line, `routes` the routes it affects.
    pub(crate) fn drift_notices(
        &self,
        id: &str,
        line: &str,
        routes: &[String],
    ) -> Vec<PlannedAction> {
        let routes = if routes.is_empty() {
            "no configured route".to_owned()
        } else {
            routes.join("; ")
        };
        let line = line.to_owned();
        let value = |name: &str| match name {
            "finding.id" => Some(id.to_owned()),
            "finding.line" => Some(line.clone()),
            "finding.routes" => Some(routes.clone()),
            _ => None,
        };
        self.drift
            .iter()
            .flat_map(|d| &d.actions)
            .filter_map(|t| fill_action(t, &value).ok())
            .collect()
    }
}

fn check_placeholders(at: &str, actions: &[ActionTemplate]) -> Result<(), ConfigError> {
    for action in actions {
        for value in action.params.values() {
            for name in template_names(value) {
                if !PLACEHOLDERS.contains(&name.as_str()) {
                    return Err(ConfigError::Invalid(format!(
                        "{at} action {}.{}: unknown placeholder {{{name}}}",
                        action.connector, action.action
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The placeholders a parameter template uses (in the strings of one written as JSON).
fn template_names(template: &str) -> Vec<String> {
    match fill::as_structure(template) {
        Some(structure) => fill::strings(&structure)
            .into_iter()
            .flat_map(fill::names)
            .map(str::to_owned)
            .collect(),
        None => fill::names(template).map(str::to_owned).collect(),
    }
}

/// One action's parameters filled: text escaped for the parameter's markup, JSON parameters
/// built from the template's structure. `Err(name)` names a placeholder without a value.
fn fill_action(
    t: &ActionTemplate,
    value: &dyn Fn(&str) -> Option<String>,
) -> Result<PlannedAction, String> {
    let mut action = PlannedAction::new(&t.connector, &t.action, BTreeMap::new());
    for (k, v) in &t.params {
        let markup = Markup::of(&t.connector, k);
        let filled = match fill::as_structure(v) {
            Some(structure) => {
                action.json.insert(k.clone());
                fill::fill_structure(&structure, value, markup)?.to_string()
            }
            None => fill::fill(v, value, markup).map_err(str::to_owned)?,
        };
        action.params.insert(k.clone(), filled);
    }
    Ok(action)
}

/// Render a route's actions for one event; `Err(reason)` when the event lacks a value.
fn plan(
    templates: &[ActionTemplate],
    event: &Event,
    c: &Classification,
    reason: Option<&str>,
    text: Text,
) -> Result<Vec<PlannedAction>, String> {
    let value = |name: &str| placeholder_value(name, event, c, reason, text);
    templates
        .iter()
        .map(|t| {
            fill_action(t, &value).map_err(|missing| {
                format!(
                    "action {}.{} needs {{{missing}}}, which this {} event does not have",
                    t.connector, t.action, event.source
                )
            })
        })
        .collect()
}

/// Whether the customer's words go into an action as they are (a vendor write) or redacted (a
/// notice to humans).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Text {
    AsIs,
    Redacted,
}

/// One placeholder's value for an event (`None`: the event has none).
fn placeholder_value(
    name: &str,
    event: &Event,
    c: &Classification,
    reason: Option<&str>,
    text: Text,
) -> Option<String> {
    let words = |v: Option<String>| match text {
        Text::AsIs => v,
        Text::Redacted => v.map(|v| crate::redact::redact(&v)),
    };
    match name {
        "event.id" => Some(event.id.clone()),
        "event.source" => Some(event.source.to_string()),
        "event.object_id" => event.object_id.clone(),
        "event.subject" => words(event.subject.clone()),
        "event.text" => words(event.text.clone()),
        "event.summary" => words(event.summary()),
        // Always has a value, so a notice is never dropped for want of a link.
        "event.link" => Some(event.links.first().cloned().unwrap_or_else(|| {
            format!(
                "{} {}",
                event.source,
                event.object_id.as_deref().unwrap_or("(no object id)")
            )
        })),
        "category" => Some(c.category.clone()),
        "confidence" => Some(format!("{:.2}", c.confidence)),
        "language" => Some(c.language.clone().unwrap_or_else(|| "und".into())),
        "reason" => reason.map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

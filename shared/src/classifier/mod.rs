//! The classifier classify uses: an LLM when one is configured, the embedded model always (it is
//! the fallback and the second opinion), the language as a signal.
//!
//! Degrading gracefully: LLM down, slow or over its budget → the embedded model decides and the
//! record says why (`fallback`); the LLM's answer malformed, refused or off-list → confidence 0
//! (review); the LLM and a confident model disagree → review (`flag`).

pub mod llm;

use std::sync::Arc;

use crate::event::Event;
use crate::model::Model;
use crate::routing::{Classification, RoutingConfig};

/// The labelled examples the built-in model learns from (the demo's support-desk categories).
pub(crate) const BUILTIN_EXAMPLES: &str = include_str!("../../examples/support-desk.csv");

/// Decides an event's category: with the LLM when configured, else (and as its fallback and
/// second opinion) the embedded model or the routing config's keyword rules.
#[derive(Clone, Debug)]
pub struct Classifier {
    /// The embedded model; without one, the routing config's keyword rules.
    pub model: Option<Arc<Model>>,
    /// The LLM, whose answer wins when it gives one; `None` keeps classification offline.
    pub llm: Option<llm::Llm>,
}

impl Classifier {
    /// Classifies `event` with the LLM when set (falling back to the local result), else locally,
    /// and adds the detected language; a smoke event skips both.
    pub async fn classify(&self, routing: &RoutingConfig, event: &Event) -> Classification {
        // `switchyard smoke`'s event: no model, no LLM call (no cost, no vendor in the way).
        if event.source == crate::event::Source::Smoke {
            return Classification {
                category: "smoke".into(),
                confidence: 1.0,
                scores: Default::default(),
                signals: vec!["source:smoke".into()],
                backend: "smoke",
                language: None,
                fallback: None,
                flag: None,
                second_opinion: None,
            };
        }
        let text = event.content();
        let local = match &self.model {
            Some(model) => routing.classify_with_model(model, event),
            None => routing.classify(event),
        };
        let mut c = match &self.llm {
            None => local,
            Some(llm) => match llm.classify(routing, &text).await {
                Ok(mut c) => {
                    let t = routing.review_threshold;
                    if local.backend == "model"
                        && local.confidence >= t
                        && c.confidence >= t
                        && local.category != c.category
                    {
                        c.flag = Some(format!(
                            "the LLM says {:?} ({:.2}) but the embedded model says {:?} ({:.2})",
                            c.category, c.confidence, local.category, local.confidence
                        ));
                    }
                    c.signals.push(format!(
                        "{}:{}={:.3}",
                        local.backend, local.category, local.confidence
                    ));
                    c.second_opinion = Some(crate::routing::Opinion {
                        backend: local.backend,
                        category: local.category.clone(),
                        confidence: local.confidence,
                    });
                    c
                }
                Err(e) => {
                    let mut c = local;
                    c.signals.push("llm:unavailable".into());
                    c.fallback = Some(e.to_string());
                    c
                }
            },
        };
        if let Some((code, confidence)) = detect_language(&text) {
            c.signals.push(format!("lang:{code}={confidence:.2}"));
            c.language = Some(code.to_owned());
        }
        c
    }
}

/// The built-in model, trained from [`BUILTIN_EXAMPLES`] ahead of time (`switchyard model
/// builtin`): loading it costs a fraction of a millisecond at start, training it ~13 ms.
pub(crate) const BUILTIN_MODEL: &[u8] = include_bytes!("../../examples/support-desk.model");

/// The built-in model, unless `MODEL_PATH` names a model file shipped with the function.
pub fn embedded_model() -> Result<Arc<Model>, crate::model::ModelError> {
    if let Some(model) = Model::from_env()? {
        return Ok(model);
    }
    Ok(Arc::new(Model::from_bytes(BUILTIN_MODEL)?))
}

/// Train the built-in model from [`BUILTIN_EXAMPLES`] (deterministic: the same bytes as
/// [`BUILTIN_MODEL`] while the examples are unchanged; a test holds them equal).
pub fn train_builtin() -> Result<Model, crate::model::ModelError> {
    let rows =
        crate::model::eval::read_labelled(BUILTIN_EXAMPLES.as_bytes(), "the built-in examples")?;
    let config = crate::model::TrainConfig {
        min_df: 1,
        ..Default::default()
    };
    // No held-out temperature fit: 8 held-out rows would only add noise (and a second fit).
    Model::fit(&rows, &config, 1.0)
}

pub use crate::model::detect_language;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_detected_when_sure() {
        assert_eq!(
            detect_language("No puedo entrar en mi cuenta, la contraseña no funciona desde ayer")
                .map(|l| l.0),
            Some("spa")
        );
        assert_eq!(
            detect_language("I was charged twice for the same month and need a refund")
                .map(|l| l.0),
            Some("eng")
        );
        assert_eq!(detect_language("ok"), None);
        assert_eq!(detect_language("Checkout is down"), None);
    }

    #[test]
    fn the_shipped_builtin_model_is_what_the_examples_train() {
        let trained = train_builtin().unwrap().to_bytes();
        assert!(
            trained == BUILTIN_MODEL,
            "shared/examples/support-desk.model is stale: after changing support-desk.csv, run \
             `cargo run --bin switchyard -- model builtin --out shared/examples/support-desk.model`"
        );
    }

    #[test]
    fn the_builtin_model_learns_the_demo_categories() {
        let model = embedded_model().unwrap();
        let mut labels = model.labels.clone();
        labels.sort();
        assert_eq!(
            labels,
            [
                "access",
                "billing",
                "feature_request",
                "legal",
                "other",
                "outage"
            ]
        );
        let p = model.predict("the reset email for my password never came");
        assert_eq!(model.labels[p.label], "access");
        let routing = RoutingConfig::load(crate::routing::DEFAULT_CONFIG).unwrap();
        for label in &model.labels {
            assert!(
                routing.categories.iter().any(|c| &c.name == label),
                "{label} is not a routing category"
            );
        }
    }
}

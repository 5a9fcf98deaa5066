//! The embedded offline classifier: TF-IDF features ([`features`]) and a multinomial logistic
//! regression trained with AdaGrad, with temperature-scaled probabilities so that its confidence
//! can be used as a routing threshold. Deterministic: same data and settings, same model.

pub mod eval;
pub mod features;

use std::io::{Read, Write};
use std::path::Path;

use thiserror::Error;

use features::Vocabulary;

/// Why a model or its training data could not be read, or a model could not be trained.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A file could not be opened, read or written (a model file, or training data).
    #[error("cannot read model {path}: {message}")]
    Io {
        /// The file's path, as displayed.
        path: String,
        /// The I/O error's message.
        message: String,
    },
    /// The bytes do not start with the model magic; holds the path (empty from `from_bytes`).
    #[error("model file {0} is not a switchyard model (bad header)")]
    BadHeader(String),
    /// The model is cut short or its sizes do not add up; holds the path (empty from `from_bytes`).
    #[error("model file {0} is truncated or corrupt")]
    Corrupt(String),
    /// The training data cannot be used: unreadable CSV, a missing column, too few examples or
    /// categories.
    #[error("training data: {0}")]
    Data(String),
}

/// Training settings; defaults were chosen by 5-fold cross-validation on BANKING77.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training data (default 40).
    pub epochs: usize,
    /// AdaGrad's base step size (default 0.1).
    pub learning_rate: f32,
    /// Features found in fewer training texts than this are dropped (default 2).
    pub min_df: u32,
    /// Seeds the shuffles, so the same data and settings give the same model (default 7).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 40,
            learning_rate: 0.1,
            min_df: 2,
            seed: 7,
        }
    }
}

/// A trained model.
#[derive(Clone, Debug)]
pub struct Model {
    /// The category names, sorted; a prediction's `label` indexes this list.
    pub labels: Vec<String>,
    /// The features the model knows, with their IDF weights.
    pub vocab: Vocabulary,
    /// Row-major by feature: `weights[feature * labels + label]`.
    pub weights: Vec<f32>,
    /// One bias per label, in the order of `labels`.
    pub bias: Vec<f32>,
    /// Softmax temperature fitted on held-out data (calibration).
    pub temperature: f32,
}

/// One prediction: the best label, its calibrated probability, and every label's probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Index into the model's `labels` of the most probable category.
    pub label: usize,
    /// The calibrated probability of `label`, from 0 to 1.
    pub confidence: f32,
    /// Every label's calibrated probability, in the order of the model's `labels`.
    pub probabilities: Vec<f32>,
}

impl Model {
    /// Classify `text`: its TF-IDF features through the weights, then a temperature-scaled softmax.
    pub fn predict(&self, text: &str) -> Prediction {
        let x = self.vocab.vectorize(text);
        let mut logits = self.logits(&x);
        softmax(&mut logits, self.temperature);
        let (label, confidence) = argmax(&logits);
        Prediction {
            label,
            confidence,
            probabilities: logits,
        }
    }

    fn logits(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let l = self.labels.len();
        let mut out = self.bias.clone();
        for &(f, v) in x {
            let row = &self.weights[f as usize * l..(f as usize + 1) * l];
            for (o, w) in out.iter_mut().zip(row) {
                *o += v * w;
            }
        }
        out
    }

    /// Train on `(text, label)` pairs: 90 % fits the weights that calibrate the temperature on the
    /// other 10 %, then the final weights are fitted on everything.
    pub fn train(examples: &[(String, String)], config: &TrainConfig) -> Result<Model, ModelError> {
        if examples.len() < 2 {
            return Err(ModelError::Data(
                "need at least two labelled examples".into(),
            ));
        }
        let mut order: Vec<usize> = (0..examples.len()).collect();
        shuffle(&mut order, config.seed);
        let cut = examples.len() - (examples.len() / 10).max(1);
        let (fit_idx, hold_idx) = order.split_at(cut);
        let fit: Vec<(String, String)> = fit_idx.iter().map(|&i| examples[i].clone()).collect();
        let probe = Self::fit(&fit, config, 1.0)?;
        let held: Vec<(Vec<f32>, usize)> = hold_idx
            .iter()
            .filter_map(|&i| {
                let y = probe.labels.iter().position(|l| *l == examples[i].1)?;
                Some((probe.logits(&probe.vocab.vectorize(&examples[i].0)), y))
            })
            .collect();
        let temperature = fit_temperature(&held);
        Self::fit(examples, config, temperature)
    }

    /// Fit weights on all `examples` with a given temperature.
    pub fn fit(
        examples: &[(String, String)],
        config: &TrainConfig,
        temperature: f32,
    ) -> Result<Model, ModelError> {
        let mut labels: Vec<String> = examples.iter().map(|(_, l)| l.clone()).collect();
        labels.sort_unstable();
        labels.dedup();
        if labels.len() < 2 {
            return Err(ModelError::Data("need at least two categories".into()));
        }
        let vocab = Vocabulary::fit(examples.iter().map(|(t, _)| t.as_str()), config.min_df);
        let data: Vec<(Vec<(u32, f32)>, usize)> = examples
            .iter()
            .map(|(t, l)| {
                (
                    vocab.vectorize(t),
                    labels.binary_search(l).expect("label is in the list"),
                )
            })
            .collect();
        let l = labels.len();
        let mut weights = vec![0.0f32; vocab.len() * l];
        let mut bias = vec![0.0f32; l];
        // AdaGrad accumulators: rare features keep large steps, frequent ones settle.
        let mut g2w = vec![1e-6f32; weights.len()];
        let mut g2b = vec![1e-6f32; l];
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut logits = vec![0.0f32; l];
        for epoch in 0..config.epochs {
            shuffle(&mut order, config.seed.wrapping_add(epoch as u64 + 1));
            for &i in &order {
                let (x, y) = &data[i];
                logits.copy_from_slice(&bias);
                for &(f, v) in x {
                    let row = &weights[f as usize * l..(f as usize + 1) * l];
                    for (o, w) in logits.iter_mut().zip(row) {
                        *o += v * w;
                    }
                }
                softmax(&mut logits, 1.0);
                logits[*y] -= 1.0; // now the gradient of the loss w.r.t. the logits
                for (c, g) in logits.iter().enumerate() {
                    g2b[c] += g * g;
                    bias[c] -= config.learning_rate * g / g2b[c].sqrt();
                }
                for &(f, v) in x {
                    let base = f as usize * l;
                    for (c, g) in logits.iter().enumerate() {
                        let grad = g * v;
                        if grad == 0.0 {
                            continue;
                        }
                        let k = base + c;
                        g2w[k] += grad * grad;
                        weights[k] -= config.learning_rate * grad / g2w[k].sqrt();
                    }
                }
            }
        }
        Ok(Model {
            labels,
            vocab,
            weights,
            bias,
            temperature,
        })
    }

    /// Binary format: magic, label list, vocabulary, IDF, weights, bias, temperature (all LE).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let io = |e: std::io::Error| ModelError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::File::create(path)
            .and_then(|mut f| f.write_all(&self.to_bytes()))
            .map_err(io)
    }

    /// The model in the file format [`save`](Self::save) writes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.weights.len() * 4 + self.vocab.len() * 16);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, self.labels.len() as u32);
        for l in &self.labels {
            put_str(&mut out, l);
        }
        let mut vocab: Vec<(&String, &u32)> = self.vocab.index.iter().collect();
        vocab.sort_unstable_by_key(|(_, id)| **id);
        put_u32(&mut out, vocab.len() as u32);
        for (f, _) in &vocab {
            put_str(&mut out, f);
        }
        for v in self.vocab.idf.iter().chain(&self.weights).chain(&self.bias) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.temperature.to_le_bytes());
        out
    }

    /// The model named by `MODEL_PATH`, if any.
    pub fn from_env() -> Result<Option<std::sync::Arc<Model>>, ModelError> {
        match std::env::var("MODEL_PATH") {
            Ok(p) if !p.is_empty() => Ok(Some(std::sync::Arc::new(Model::load(Path::new(&p))?))),
            _ => Ok(None),
        }
    }

    /// Read a model file in the [`save`](Self::save) format; errors name the file.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let name = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| ModelError::Io {
                path: name.clone(),
                message: e.to_string(),
            })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            ModelError::BadHeader(_) => ModelError::BadHeader(name.clone()),
            _ => ModelError::Corrupt(name.clone()),
        })
    }

    /// Parse a model in the [`save`](Self::save) format (`BadHeader` and `Corrupt` carry no name).
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let corrupt = || ModelError::Corrupt(String::new());
        let mut r = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| ModelError::BadHeader(String::new()))?;
        let n_labels = get_u32(&mut r).ok_or_else(corrupt)? as usize;
        let labels = (0..n_labels)
            .map(|_| get_str(&mut r))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(corrupt)?;
        let n_vocab = get_u32(&mut r).ok_or_else(corrupt)? as usize;
        let mut index = features::FnvMap::with_capacity_and_hasher(n_vocab, Default::default());
        for id in 0..n_vocab {
            index.insert(get_str(&mut r).ok_or_else(corrupt)?, id as u32);
        }
        let floats = n_vocab + n_vocab * n_labels + n_labels + 1;
        if r.len() != floats * 4 {
            return Err(corrupt());
        }
        let mut all: Vec<f32> = r
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let temperature = all.pop().ok_or_else(corrupt)?;
        let bias = all.split_off(n_vocab + n_vocab * n_labels);
        let weights = all.split_off(n_vocab);
        Ok(Model {
            labels,
            vocab: Vocabulary { index, idf: all },
            weights,
            bias,
            temperature,
        })
    }
}

const MAGIC: &[u8; 8] = b"SYMODEL1";

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

fn get_u32(r: &mut &[u8]) -> Option<u32> {
    let (head, rest) = r.split_first_chunk::<4>()?;
    *r = rest;
    Some(u32::from_le_bytes(*head))
}

fn get_str(r: &mut &[u8]) -> Option<String> {
    let len = get_u32(r)? as usize;
    if r.len() < len {
        return None;
    }
    let (s, rest) = r.split_at(len);
    *r = rest;
    String::from_utf8(s.to_vec()).ok()
}

pub(crate) fn softmax(v: &mut [f32], temperature: f32) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = ((*x - max) / temperature).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

pub(crate) fn argmax(v: &[f32]) -> (usize, f32) {
    v.iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
}

/// The temperature minimizing held-out negative log-likelihood (a grid is plenty for one scalar).
pub(crate) fn fit_temperature(held: &[(Vec<f32>, usize)]) -> f32 {
    if held.is_empty() {
        return 1.0;
    }
    let nll = |t: f32| -> f32 {
        held.iter()
            .map(|(logits, y)| {
                let mut p = logits.clone();
                softmax(&mut p, t);
                -(p[*y].max(1e-12)).ln()
            })
            .sum()
    };
    let grid = (1..=60).map(|i| i as f32 * 0.05);
    grid.min_by(|a, b| nll(*a).total_cmp(&nll(*b)))
        .unwrap_or(1.0)
}

/// A tiny deterministic shuffle (xorshift64*), so training is reproducible without a crate.
pub(crate) fn shuffle(v: &mut [usize], seed: u64) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let j = (s.wrapping_mul(0x2545_F491_4F6C_DD1D) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// The text's language (ISO 639-3) when the detector is fairly sure — short or mixed texts give
/// `None`, and then no language route applies. whatlang's own `is_reliable` refuses most
/// one-sentence tickets (a clear Spanish sentence scores 0.68), so the floor is 0.5, which still
/// keeps three-word English snippets (0.04–0.11, often misread as Danish or French) out.
pub fn detect_language(text: &str) -> Option<(&'static str, f64)> {
    const FLOOR: f64 = 0.5;
    let info = whatlang::detect(text)?;
    (info.confidence() >= FLOOR).then(|| (info.lang().code(), info.confidence()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Vec<(String, String)> {
        let mut v = Vec::new();
        for (t, l) in [
            ("my card has not arrived", "card_arrival"),
            ("when will my new card arrive", "card_arrival"),
            ("still waiting for the card in the post", "card_arrival"),
            ("card delivery is taking too long", "card_arrival"),
            ("I want a refund for this charge", "refund"),
            ("please refund my payment", "refund"),
            ("how do I get my money back", "refund"),
            ("refund the duplicate transaction", "refund"),
            ("I forgot my password", "passcode"),
            ("reset my passcode please", "passcode"),
            ("cannot log in, password wrong", "passcode"),
            ("locked out after too many password attempts", "passcode"),
        ] {
            v.push((t.to_owned(), l.to_owned()));
        }
        v
    }

    #[test]
    fn learns_a_toy_task_and_round_trips_through_a_file() {
        let model = Model::train(
            &toy(),
            &TrainConfig {
                min_df: 1,
                ..TrainConfig::default()
            },
        )
        .unwrap();
        let p = model.predict("where is my card, it has not arrived yet");
        assert_eq!(model.labels[p.label], "card_arrival");
        assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        let dir = std::env::temp_dir().join(format!("sy-model-{}", std::process::id()));
        model.save(&dir).unwrap();
        let loaded = Model::load(&dir).unwrap();
        assert_eq!(
            loaded.predict("refund please"),
            model.predict("refund please")
        );
        std::fs::remove_file(&dir).ok();
    }

    #[test]
    fn training_is_deterministic() {
        let cfg = TrainConfig {
            min_df: 1,
            ..TrainConfig::default()
        };
        let a = Model::train(&toy(), &cfg).unwrap();
        let b = Model::train(&toy(), &cfg).unwrap();
        assert_eq!(a.weights, b.weights);
    }

    #[test]
    fn corrupt_files_are_refused_with_a_reason() {
        assert!(matches!(
            Model::from_bytes(b"nope"),
            Err(ModelError::BadHeader(_))
        ));
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&5u32.to_le_bytes());
        assert!(matches!(
            Model::from_bytes(&bytes),
            Err(ModelError::Corrupt(_))
        ));
        assert!(matches!(
            Model::train(&toy()[..1], &TrainConfig::default()),
            Err(ModelError::Data(_))
        ));
    }
}

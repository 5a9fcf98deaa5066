//! Reading labelled CSV (`text,category`), evaluating a model, and k-fold cross-validation.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use super::{Model, ModelError, TrainConfig};

/// `(text, category)` rows from a CSV whose header names `text` and `category`.
pub fn read_csv(path: &Path) -> Result<Vec<(String, String)>, ModelError> {
    let file = std::fs::File::open(path).map_err(|e| ModelError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    read_labelled(file, &path.display().to_string())
}

/// The same from any reader; `name` is what errors call it.
pub(crate) fn read_labelled(
    input: impl std::io::Read,
    name: &str,
) -> Result<Vec<(String, String)>, ModelError> {
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ModelError::Data(format!("{name}: {e}")))?
        .clone();
    let col = |col: &str| {
        headers
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == col)
            .ok_or_else(|| {
                ModelError::Data(format!(
                    "{name} has no {col:?} column (header: {headers:?})"
                ))
            })
    };
    let (t, c) = (col("text")?, col("category")?);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ModelError::Data(format!("{name} line {}: {e}", i + 2)))?;
        let (Some(text), Some(cat)) = (record.get(t), record.get(c)) else {
            return Err(ModelError::Data(format!(
                "{name} line {}: missing field",
                i + 2
            )));
        };
        if !text.trim().is_empty() && !cat.trim().is_empty() {
            rows.push((text.to_owned(), cat.trim().to_owned()));
        }
    }
    if rows.is_empty() {
        return Err(ModelError::Data(format!("{name} has no labelled rows")));
    }
    Ok(rows)
}

/// How a model did on labelled data.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Labelled messages evaluated.
    pub n: usize,
    /// Share of messages predicted correctly, from 0 to 1.
    pub accuracy: f64,
    /// F1 averaged over the categories present in the data, from 0 to 1.
    pub macro_f1: f64,
    /// (threshold, share of messages at or above it, accuracy on those).
    pub coverage: Vec<(f32, f64, f64)>,
    /// Mean prediction time per message, in microseconds (single-threaded).
    pub mean_latency_us: f64,
}

pub(crate) const THRESHOLDS: [f32; 7] = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Metrics from (gold, predicted, confidence) triples over `labels`.
pub fn report(outcomes: &[(usize, usize, f32)], n_labels: usize, mean_latency_us: f64) -> Report {
    let n = outcomes.len();
    let correct = outcomes.iter().filter(|(g, p, _)| g == p).count();
    let mut f1_sum = 0.0;
    let mut present = 0;
    for label in 0..n_labels {
        let tp = outcomes
            .iter()
            .filter(|(g, p, _)| *g == label && *p == label)
            .count() as f64;
        let fp = outcomes
            .iter()
            .filter(|(g, p, _)| *g != label && *p == label)
            .count() as f64;
        let fn_ = outcomes
            .iter()
            .filter(|(g, p, _)| *g == label && *p != label)
            .count() as f64;
        if tp + fn_ == 0.0 {
            continue; // label absent from this data: not part of the macro average
        }
        present += 1;
        if tp > 0.0 {
            f1_sum += 2.0 * tp / (2.0 * tp + fp + fn_);
        }
    }
    let coverage = THRESHOLDS
        .iter()
        .map(|&t| {
            let above: Vec<_> = outcomes.iter().filter(|(_, _, c)| *c >= t).collect();
            let acc = if above.is_empty() {
                0.0
            } else {
                above.iter().filter(|(g, p, _)| g == p).count() as f64 / above.len() as f64
            };
            (t, above.len() as f64 / n.max(1) as f64, acc)
        })
        .collect();
    Report {
        n,
        accuracy: correct as f64 / n.max(1) as f64,
        macro_f1: if present == 0 {
            0.0
        } else {
            f1_sum / present as f64
        },
        coverage,
        mean_latency_us,
    }
}

/// Evaluate `model` on labelled rows; rows whose category the model does not know count as errors.
pub fn evaluate(model: &Model, data: &[(String, String)]) -> Report {
    let started = Instant::now();
    let predictions: Vec<_> = data.iter().map(|(t, _)| model.predict(t)).collect();
    let latency = started.elapsed().as_secs_f64() * 1e6 / data.len().max(1) as f64;
    let outcomes: Vec<(usize, usize, f32)> = data
        .iter()
        .zip(&predictions)
        .map(|((_, gold), p)| {
            (
                model
                    .labels
                    .iter()
                    .position(|l| l == gold)
                    .unwrap_or(usize::MAX),
                p.label,
                p.confidence,
            )
        })
        .collect();
    report(&outcomes, model.labels.len(), latency)
}

/// k-fold cross-validation: every row is predicted by a model that never saw it.
pub fn cross_validate(
    data: &[(String, String)],
    folds: usize,
    config: &TrainConfig,
) -> Result<(Report, Vec<f64>), ModelError> {
    let folds = folds.max(2);
    let mut order: Vec<usize> = (0..data.len()).collect();
    super::shuffle(&mut order, config.seed ^ 0xC0FFEE);
    let mut labels: Vec<String> = data.iter().map(|(_, l)| l.clone()).collect();
    labels.sort_unstable();
    labels.dedup();
    let mut outcomes = Vec::with_capacity(data.len());
    let mut fold_acc = Vec::with_capacity(folds);
    let mut latency = 0.0;
    for k in 0..folds {
        let (test, train): (Vec<usize>, Vec<usize>) = order.iter().partition(|&&i| i % folds == k);
        let train_rows: Vec<_> = train.iter().map(|&i| data[i].clone()).collect();
        let model = Model::train(&train_rows, config)?;
        let test_rows: Vec<_> = test.iter().map(|&i| data[i].clone()).collect();
        let r = evaluate(&model, &test_rows);
        fold_acc.push(r.accuracy);
        latency += r.mean_latency_us / folds as f64;
        for (text, gold) in &test_rows {
            let p = model.predict(text);
            let g = labels.binary_search(gold).unwrap_or(usize::MAX);
            let predicted = labels
                .binary_search(&model.labels[p.label])
                .unwrap_or(usize::MAX);
            outcomes.push((g, predicted, p.confidence));
        }
    }
    Ok((report(&outcomes, labels.len(), latency), fold_acc))
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut o = String::new();
        let _ = writeln!(o, "messages          {}", self.n);
        let _ = writeln!(o, "accuracy          {:.4}", self.accuracy);
        let _ = writeln!(o, "macro-F1          {:.4}", self.macro_f1);
        let _ = writeln!(
            o,
            "latency           {:.1} µs per message (mean, single-threaded)",
            self.mean_latency_us
        );
        let _ = writeln!(o, "threshold  coverage  accuracy");
        for (t, cov, acc) in &self.coverage {
            let _ = writeln!(
                o,
                "  {t:>5.2}    {:>6.2}%   {:>6.2}%",
                cov * 100.0,
                acc * 100.0
            );
        }
        f.write_str(&o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_accuracy_f1_and_coverage() {
        // gold, predicted, confidence
        let r = report(
            &[(0, 0, 0.9), (0, 1, 0.4), (1, 1, 0.8), (1, 1, 0.2)],
            2,
            1.0,
        );
        assert_eq!(r.accuracy, 0.75);
        let at_07 = r.coverage.iter().find(|(t, _, _)| *t == 0.7).unwrap();
        assert_eq!((at_07.1, at_07.2), (0.5, 1.0));
        // F1: label 0 = 2·1/(2+0+1) = 0.667; label 1 = 2·2/(4+1+0) = 0.8
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn csv_needs_text_and_category_columns() {
        let dir = std::env::temp_dir().join(format!("sy-csv-{}.csv", std::process::id()));
        std::fs::write(&dir, "text,label\nhello,x\n").unwrap();
        assert!(read_csv(&dir)
            .unwrap_err()
            .to_string()
            .contains("no \"category\" column"));
        std::fs::write(&dir, "text,category\n\"hi, there\",greet\n").unwrap();
        assert_eq!(
            read_csv(&dir).unwrap(),
            vec![("hi, there".to_owned(), "greet".to_owned())]
        );
        std::fs::remove_file(&dir).ok();
    }
}

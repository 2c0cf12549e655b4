//! Synthetic run and dataset directories in the formats of docs/FORMATS.md, written with
//! arrow-rs. The tests and the benchmark make their fixtures with these; they are also handy
//! to try the report without training.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, UInt16Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use lt_format::dataset::{DatasetMeta, FORMAT_VERSION, ManifestMeta};
use lt_format::run::{DatasetRef, RunHeader, RunRecord};
use lt_format::tables::{METRICS_FILE, MetricsRow, PREDICTIONS_FILE, Predictions, write_metrics, write_predictions};

use crate::ReportError;

/// The deterministic generator of the fixtures (lt-format's SplitMix64), so they need no RNG
/// crate.
pub use lt_format::hash::SplitMix;

/// What a synthetic run looks like.
#[derive(Debug, Clone)]
pub struct SyntheticRun {
    pub class_names: Vec<String>,
    pub train_counts: Vec<u64>,
    pub test_per_class: usize,
    pub epochs: u32,
    /// Final accuracy of the head class; tail classes get less, scaled by their count.
    pub skill: f64,
    /// How much the accuracy falls from head to tail (0 = flat).
    pub tail_drop: f64,
    pub config: serde_json::Value,
    pub label: Option<String>,
    pub seed: u64,
}

impl SyntheticRun {
    /// A run over `class_names` with CIFAR-10-LT-like counts (imbalance factor 100).
    pub fn long_tailed(class_names: Vec<String>, seed: u64) -> Self {
        let c = class_names.len();
        let train_counts =
            (0..c).map(|i| (5000.0 * (0.01f64).powf(i as f64 / (c.max(2) - 1) as f64)).floor() as u64).collect();
        Self {
            class_names,
            train_counts,
            test_per_class: 100,
            epochs: 10,
            skill: 0.9,
            tail_drop: 0.5,
            config: serde_json::json!({}),
            label: None,
            seed,
        }
    }

    /// Expected final accuracy of class `c`.
    pub fn class_accuracy(&self, c: usize) -> f64 {
        let max = self.train_counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let share = (self.train_counts[c].max(1) as f64 / max).ln() / (max.ln().max(1.0));
        (self.skill * (1.0 + self.tail_drop * share)).clamp(0.0, 1.0)
    }
}

/// Class names `class-00`, `class-01`, ...
pub fn class_names(c: usize) -> Vec<String> {
    let width = c.saturating_sub(1).to_string().len().max(2);
    (0..c).map(|i| format!("class-{i:0width$}")).collect()
}

fn write_parquet(path: &Path, schema: Schema, columns: Vec<ArrayRef>) -> Result<(), ReportError> {
    Ok(lt_format::tables::write_table(path, schema, columns)?)
}

/// Writes `run.json`, `metrics.parquet` and `predictions.parquet` of a synthetic run.
pub fn write_run(dir: &Path, run: &SyntheticRun) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    let c = run.class_names.len();
    let mut rng = SplitMix::new(run.seed);
    let final_acc: Vec<f64> = (0..c).map(|k| run.class_accuracy(k)).collect();

    // Predictions: each test image is right with its class's accuracy, else a random class
    // biased towards the head (as long-tailed models are).
    let n = c * run.test_per_class;
    let mut predictions = Predictions { num_classes: c, ..Predictions::default() };
    let mut row = vec![0f32; c];
    for i in 0..n {
        let t = i % c;
        let p = if rng.unit() < final_acc[t] {
            t
        } else {
            let k = rng.below(c).min(rng.below(c));
            if k == t { (t + 1) % c } else { k }
        };
        let conf = (0.35 + 0.6 * rng.unit()) as f32;
        row.fill((1.0 - conf) / (c.max(2) - 1) as f32);
        row[p] = conf;
        predictions.scores.extend_from_slice(&row);
        predictions.index.push(i as u32);
        predictions.label.push(t as u16);
        predictions.prediction.push(p as u16);
    }
    write_predictions(&dir.join(PREDICTIONS_FILE), &predictions)?;

    // Metrics: accuracy rising towards the final value, loss falling; train above test.
    let mut rows = Vec::new();
    for e in 1..=run.epochs {
        let progress = 1.0 - (-3.0 * f64::from(e) / f64::from(run.epochs.max(1))).exp();
        for (split, boost) in [("train", 1.08), ("test", 1.0)] {
            let pc: Vec<f64> = final_acc.iter().map(|a| (a * progress * boost).min(1.0)).collect();
            let mean = pc.iter().sum::<f64>() / c as f64;
            rows.push(MetricsRow {
                epoch: e,
                split: split.into(),
                loss: 2.3 * (1.0 - progress) + 0.3 / boost + 0.02 * rng.unit(),
                accuracy: mean,
                balanced_accuracy: mean,
                per_class_accuracy: pc,
            });
        }
    }
    write_metrics(&dir.join(METRICS_FILE), &rows)?;

    let header = RunHeader {
        label: run.label.clone(),
        config: run.config.clone(),
        dataset: Some(DatasetRef { dir: "synthetic".into(), content_hash: "0".into() }),
        class_names: run.class_names.clone(),
        train_counts: run.train_counts.clone(),
        val_counts: Vec::new(),
        selection: None,
    };
    crate::write_atomic(&dir.join(RunRecord::FILE), header.to_json().as_bytes())
}

/// Writes a dataset directory's `dataset.json`, `subset.parquet` and one manifest per
/// `(strategy, epochs)`: `oversample` draws classes uniformly, anything else visits the
/// subset as it is.
pub fn write_dataset(
    dir: &Path,
    class_names: &[String],
    source_counts: &[u64],
    subset_counts: &[u64],
    manifests: &[(&str, u32)],
) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    let c = class_names.len();
    // Train-split indices: class k's images are k, k + c, k + 2c, ...
    let mut subset: Vec<(u32, u16)> = Vec::new();
    for (k, &n) in subset_counts.iter().enumerate() {
        subset.extend((0..n).map(|j| ((j as usize * c + k) as u32, k as u16)));
    }
    subset.sort_unstable();
    write_parquet(
        &dir.join("subset.parquet"),
        Schema::new(vec![Field::new("index", DataType::UInt32, false), Field::new("label", DataType::UInt16, false)]),
        vec![
            Arc::new(UInt32Array::from_iter_values(subset.iter().map(|s| s.0))),
            Arc::new(UInt16Array::from_iter_values(subset.iter().map(|s| s.1))),
        ],
    )?;
    let by_class: Vec<Vec<u32>> =
        (0..c).map(|k| subset.iter().filter(|s| usize::from(s.1) == k).map(|s| s.0).collect()).collect();
    let mut rng = SplitMix::new(7);
    let mut entries = BTreeMap::new();
    for &(strategy, epochs) in manifests {
        let (mut epoch, mut position, mut index) = (vec![], vec![], vec![]);
        let mut class_counts = vec![0u64; c];
        for e in 0..epochs {
            for (pos, &(own, _)) in subset.iter().enumerate() {
                let i = if strategy == "oversample" {
                    let k = rng.below(c);
                    by_class[k][rng.below(by_class[k].len())]
                } else {
                    own
                };
                class_counts[i as usize % c] += 1;
                epoch.push(e);
                position.push(pos as u32);
                index.push(i);
            }
        }
        let file = format!("manifest-{strategy}.parquet");
        write_parquet(
            &dir.join(&file),
            Schema::new(vec![
                Field::new("epoch", DataType::UInt32, false),
                Field::new("position", DataType::UInt32, false),
                Field::new("index", DataType::UInt32, false),
            ]),
            vec![
                Arc::new(UInt32Array::from(epoch)),
                Arc::new(UInt32Array::from(position)),
                Arc::new(UInt32Array::from(index)),
            ],
        )?;
        let epoch_len = vec![subset.len() as u64; epochs as usize];
        entries.insert(strategy.to_string(), ManifestMeta { file, epochs, epoch_len, beta: None, class_counts });
    }
    let meta = DatasetMeta {
        format_version: FORMAT_VERSION,
        source: serde_json::json!({"spec": "synthetic", "kind": "synthetic"}),
        profile: serde_json::json!({"kind": "exp", "imbalance_factor": 100}),
        seed: 0,
        class_names: class_names.to_vec(),
        image_shape: [3, 32, 32],
        source_counts: source_counts.to_vec(),
        subset_counts: subset_counts.to_vec(),
        test_counts: vec![100; c],
        validation_counts: Vec::new(),
        validation: None,
        manifests: entries,
        files: BTreeMap::new(),
    };
    crate::write_atomic(&dir.join(DatasetMeta::FILE), meta.to_json().as_bytes())
}

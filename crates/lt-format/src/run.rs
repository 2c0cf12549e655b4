//! run.json, the record of one training run (docs/FORMATS.md). lt-train writes it; lt-train's
//! `--resume` and `eval`, lt-pipeline and lt-report read it, all through [`RunRecord`].
//!
//! Compatibility: fields added after the first release are `#[serde(default)]`, so a run.json
//! written by an older lt still reads; unknown fields are ignored, so a newer one does too.

use std::path::{Path, PathBuf};

use lt_eval::{ShotGroups, nan_null};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::json::JsonReadError;

/// The whole run.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The name the user gave the run (`--label`), for reports.
    #[serde(default)]
    pub label: Option<String>,
    /// Every setting, resolved.
    pub config: TrainConfig,
    pub dataset: DatasetRef,
    pub seed: u64,
    pub onnxruntime: RuntimeInfo,
    pub execution_provider: String,
    pub class_names: Vec<String>,
    /// Training images per class the network saw (after a `--val-fraction` carve).
    pub train_counts: Vec<u64>,
    #[serde(default)]
    pub val_counts: Vec<u64>,
    #[serde(default)]
    pub test_counts: Vec<u64>,
    pub class_weights: ClassWeights,
    pub normalization: Normalization,
    pub graph: GraphInfo,
    pub timings: Timings,
    /// How the epoch behind `final` was chosen. Absent in runs written before it existed,
    /// which chose as [`Selection::legacy`] describes.
    #[serde(default)]
    pub selection: Option<Selection>,
    /// The test metrics of the chosen epoch: the run's result.
    #[serde(rename = "final")]
    pub final_metrics: TestMetrics,
    /// The test metrics of the last epoch, when validation chose another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<TestMetrics>,
}

/// The part of run.json every reader of runs relies on (lt-report): the run's name, its
/// settings as a JSON tree, its classes and their training counts, and how its result was
/// chosen. Read leniently: `config` may hold any keys (a report compares whatever settings
/// the runs have), and a record from another lt version still reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetRef>,
    pub class_names: Vec<String>,
    pub train_counts: Vec<u64>,
    #[serde(default)]
    pub val_counts: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

impl RunHeader {
    /// Reads the header of `DIR/run.json`; `class_names` and `train_counts` must agree.
    pub fn read(run_dir: &Path) -> Result<RunHeader, RunRecordError> {
        let path = run_dir.join(RunRecord::FILE);
        let header: RunHeader = read_json(&path)?;
        let c = header.class_names.len();
        let invalid = |message: String| RunRecordError::Invalid { path: path.clone(), message };
        if c == 0 {
            return Err(invalid("class_names is empty; the run must name its classes".into()));
        }
        if header.train_counts.len() != c {
            return Err(invalid(format!(
                "train_counts has {} entries but class_names has {c}",
                header.train_counts.len()
            )));
        }
        Ok(header)
    }

    /// How the reported epoch was chosen, as far as the header tells.
    pub fn selection_rule(&self) -> SelectionRule {
        match &self.selection {
            Some(s) => s.rule,
            None if self.val_counts.iter().any(|&n| n > 0) => SelectionRule::BestValidationBalancedAccuracy,
            None => SelectionRule::LastEpoch,
        }
    }

    /// The record as written: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a RunHeader always serialises");
        text.push('\n');
        text
    }
}

/// Where the dataset was and what it held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    pub dir: PathBuf,
    pub content_hash: String,
}

/// The onnxruntime library that ran the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub version: String,
    pub library: PathBuf,
}

/// The loss's class weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassWeights {
    /// The weights before the DRW epoch (all ones), when `--drw` is set.
    pub before_drw: Option<Vec<f32>>,
    pub drw_epoch: Option<usize>,
    /// The scheme's weights (from the DRW epoch on, with `--drw`).
    pub weights: Vec<f32>,
}

/// Per-channel normalisation of the input images, computed on the training images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// The training graph and its sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphInfo {
    pub nodes: usize,
    pub session_seconds: f64,
    /// How the CUDA training step ran (`off`, `captured`, or the fallback's reason).
    pub cuda_graph: serde_json::Value,
}

/// Wall-clock times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub total_s: f64,
    pub per_epoch_s: Vec<f64>,
}

/// The rule that chose the reported epoch. The test split never chooses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub rule: SelectionRule,
    /// The chosen epoch (1-based).
    pub epoch: usize,
    /// The validation split the rule read: `dataset` (the dataset's own validation split),
    /// `carved` (`--val-fraction`), or absent for the last epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
}

impl Selection {
    /// What a run.json without `selection` chose: the best validation epoch when it has
    /// validation counts, else the last.
    pub fn legacy(record: &RunRecord) -> Selection {
        let rule = if record.val_counts.iter().any(|&n| n > 0) {
            SelectionRule::BestValidationBalancedAccuracy
        } else {
            SelectionRule::LastEpoch
        };
        Selection { rule, epoch: record.final_metrics.epoch, validation: None }
    }
}

/// How an epoch is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectionRule {
    /// No validation data: the last epoch is the result.
    LastEpoch,
    /// The epoch with the highest balanced accuracy on validation (the first on ties).
    BestValidationBalancedAccuracy,
}

impl SelectionRule {
    /// Words for a report's protocol line.
    pub fn describe(self) -> &'static str {
        match self {
            SelectionRule::LastEpoch => "last epoch",
            SelectionRule::BestValidationBalancedAccuracy => "best validation balanced accuracy",
        }
    }
}

/// Test metrics of one epoch's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    pub epoch: usize,
    #[serde(deserialize_with = "nan_null::f64")]
    pub loss: f64,
    #[serde(deserialize_with = "nan_null::f64")]
    pub overall: f64,
    #[serde(deserialize_with = "nan_null::f64")]
    pub balanced: f64,
    #[serde(deserialize_with = "nan_null::vec")]
    pub per_class: Vec<f64>,
    #[serde(deserialize_with = "nan_null::vec")]
    pub precision: Vec<f64>,
    #[serde(deserialize_with = "nan_null::vec")]
    pub f1: Vec<f64>,
    #[serde(deserialize_with = "nan_null::f64")]
    pub macro_f1: f64,
    #[serde(deserialize_with = "nan_null::f64")]
    pub gmean: f64,
    #[serde(deserialize_with = "nan_null::f64")]
    pub ece: f64,
    /// many/medium/few by the standard thresholds (100/20 training images).
    pub shots: ShotGroups,
    /// head/mid/tail thirds.
    pub thirds: ShotGroups,
    /// Row-major C x C counts, row = true class.
    pub confusion: Vec<u64>,
}

/// Errors reading run.json.
#[derive(Debug, thiserror::Error)]
pub enum RunRecordError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a run.json lt can read: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The largest run.json read (a record of 10k classes with its confusion matrix is ~1 GiB;
/// real ones are kilobytes to a few megabytes).
pub const MAX_RUN_JSON_BYTES: u64 = 1 << 30;

impl RunRecord {
    /// The file name inside a run directory.
    pub const FILE: &'static str = "run.json";

    /// Reads `DIR/run.json` and checks that its per-class lists agree in length.
    pub fn read(run_dir: &Path) -> Result<RunRecord, RunRecordError> {
        let path = run_dir.join(Self::FILE);
        Self::read_file(&path)
    }

    /// Reads a run.json at `path`.
    pub fn read_file(path: &Path) -> Result<RunRecord, RunRecordError> {
        let record: RunRecord = read_json(path)?;
        record.check().map_err(|message| RunRecordError::Invalid { path: path.to_path_buf(), message })?;
        Ok(record)
    }

    /// The record as written: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        crate::json::to_pretty_json(self)
    }

    /// How the result's epoch was chosen (for older records: as they chose).
    pub fn selection(&self) -> Selection {
        self.selection.clone().unwrap_or_else(|| Selection::legacy(self))
    }

    /// Per-class lists agree with `class_names`.
    fn check(&self) -> Result<(), String> {
        let c = self.class_names.len();
        if c == 0 {
            return Err("class_names is empty; the run must name its classes".into());
        }
        let lists: [(&str, usize); 3] = [
            ("train_counts", self.train_counts.len()),
            ("final.per_class", self.final_metrics.per_class.len()),
            ("class_weights.weights", self.class_weights.weights.len()),
        ];
        for (name, len) in lists {
            if len != c {
                return Err(format!("{name} has {len} entries but class_names has {c}"));
            }
        }
        Ok(())
    }
}

/// Reads and parses a JSON file of at most [`MAX_RUN_JSON_BYTES`].
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RunRecordError> {
    let path = path.to_path_buf();
    crate::json::read_bounded(&path, MAX_RUN_JSON_BYTES).map_err(|e| match e {
        JsonReadError::Io(source) => RunRecordError::Io { path, source },
        JsonReadError::TooLarge => RunRecordError::Invalid {
            path,
            message: format!("more than the {MAX_RUN_JSON_BYTES} bytes a run.json may have"),
        },
        JsonReadError::Parse(source) => RunRecordError::Json { path, source },
    })
}

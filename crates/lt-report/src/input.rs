//! Reading run and dataset directories (docs/FORMATS.md) with arrow-rs.

use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::{DataType, UInt16Type, UInt32Type};
use lt_eval::{ClassificationReport, ConfusionMatrix};
use lt_format::RunHeader;
use lt_format::dataset::{DatasetHeader, DatasetMeta};
use lt_format::run::SelectionRule;
use lt_format::tables::{METRICS_FILE, PREDICTIONS_FILE, column, read_batches, read_metrics, read_predictions};

use crate::ReportError;

pub use lt_format::tables::{MetricsRow, Predictions};

/// A run directory, read and evaluated.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    /// The run's `label` from run.json, if it has one.
    pub label: Option<String>,
    /// The rule that chose the epoch of the run's predictions (never the test split).
    pub selection: SelectionRule,
    /// The validation split the rule read: `dataset` (the dataset's own) or `carved`
    /// (`--val-fraction`); `None` for the last epoch or where run.json does not say.
    pub validation: Option<String>,
    /// run.json `config` (the fully resolved options).
    pub config: serde_json::Value,
    pub class_names: Vec<String>,
    pub train_counts: Vec<u64>,
    pub metrics: Vec<MetricsRow>,
    pub predictions: Predictions,
    pub confusion: ConfusionMatrix,
    pub report: ClassificationReport,
    /// Expected calibration error of the final predictions (15 bins).
    pub ece: f64,
}

impl Run {
    /// The directory's last path component, for labels.
    pub fn dir_name(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| self.dir.display().to_string())
    }

    /// How the reported epoch was chosen, in words for the report's protocol note.
    pub fn protocol(&self) -> String {
        let on = match self.validation.as_deref() {
            Some("dataset") => " on the dataset's validation split",
            Some("carved") => " on validation images carved from the training subset (--val-fraction)",
            _ => "",
        };
        format!("{}{on}", self.selection.describe())
    }

    /// The highest epoch in metrics.parquet (0 without rows).
    pub fn epochs(&self) -> u32 {
        self.metrics.iter().map(|m| m.epoch).max().unwrap_or(0)
    }
}

/// Bins of the expected calibration error in the report.
pub use lt_eval::ECE_BINS;

/// Reads `run.json`, `metrics.parquet` and `predictions.parquet` of one run directory and
/// evaluates the predictions with lt-eval.
pub fn read_run(dir: &Path) -> Result<Run, ReportError> {
    let header = RunHeader::read(dir)?;
    let num_classes = header.class_names.len();
    let metrics = read_metrics(&dir.join(METRICS_FILE), num_classes)?;
    let pred_path = dir.join(PREDICTIONS_FILE);
    let predictions = read_predictions(&pred_path, num_classes)?;
    let (labels, preds) = (predictions.labels(), predictions.predictions());
    let confusion = ConfusionMatrix::try_from_predictions(&labels, &preds, num_classes)
        .map_err(|e| ReportError::invalid(&pred_path, e.to_string()))?;
    let report = lt_eval::classification_report(&confusion);
    let ece = lt_eval::calibration(&predictions.scores, &labels, num_classes, ECE_BINS)
        .map_err(|e| ReportError::invalid(&pred_path, e.to_string()))?
        .ece;
    Ok(Run {
        dir: dir.to_path_buf(),
        selection: header.selection_rule(),
        validation: header.selection.as_ref().and_then(|s| s.validation.clone()),
        label: header.label.filter(|l| !l.trim().is_empty()),
        config: header.config,
        class_names: header.class_names,
        train_counts: header.train_counts,
        metrics,
        predictions,
        confusion,
        report,
        ece,
    })
}

/// The run directories directly under `dir` (those holding a run.json), sorted by name.
pub fn find_runs(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ReportError::io(dir, e))?;
    let mut runs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| ReportError::io(dir, e))?.path();
        if path.join("run.json").is_file() {
            runs.push(path);
        }
    }
    runs.sort();
    Ok(runs)
}

/// Class counts of a dataset directory: source, long-tailed subset, test split, and the mean
/// images per epoch of each resampled manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetCounts {
    pub dir: PathBuf,
    pub class_names: Vec<String>,
    pub source: Vec<u64>,
    pub subset: Vec<u64>,
    pub test: Vec<u64>,
    /// (strategy, mean images per class per epoch), sorted by strategy.
    pub manifests: Vec<(String, Vec<f64>)>,
}

/// Reads `dataset.json`, `subset.parquet` and every `manifest-*.parquet` it lists.
pub fn read_dataset(dir: &Path) -> Result<DatasetCounts, ReportError> {
    let json_path = dir.join(DatasetMeta::FILE);
    // Leniently, as lt-train reads it: a hand-made dataset directory need not carry lt-data's
    // provenance fields.
    let json = DatasetHeader::read(dir)?;
    let c = json.class_names.len();
    for (what, counts) in [("source_counts", &json.source_counts), ("subset_counts", &json.subset_counts)] {
        if counts.len() != c {
            return Err(ReportError::invalid(
                &json_path,
                format!("{what} has {} entries but class_names has {c}", counts.len()),
            ));
        }
    }
    let mut manifests = Vec::new();
    if !json.manifests.is_empty() {
        let subset_path = dir.join("subset.parquet");
        // (index, label) pairs as read, sorted for lookup: memory follows the rows in the
        // file, never the largest index in it.
        let mut label_of: Vec<(u32, u16)> = Vec::new();
        for batch in read_batches(&subset_path)? {
            let index = column(&batch, &subset_path, "index", &DataType::UInt32, "u32")?;
            let label = column(&batch, &subset_path, "label", &DataType::UInt16, "u16")?;
            label_of.extend(
                index
                    .as_primitive::<UInt32Type>()
                    .values()
                    .iter()
                    .copied()
                    .zip(label.as_primitive::<UInt16Type>().values().iter().copied()),
            );
        }
        label_of.sort_unstable_by_key(|&(i, _)| i);
        for strategy in json.manifests.keys() {
            let entry = json
                .manifest(strategy)
                .unwrap_or_else(|| Err(format!("manifests.{strategy}: missing")))
                .map_err(|e| ReportError::invalid(&json_path, e))?;
            if Path::new(&entry.file).file_name().is_none_or(|f| f != entry.file.as_str()) {
                return Err(ReportError::invalid(
                    &json_path,
                    format!("manifests.{strategy}.file `{}` is not a file name of the dataset directory", entry.file),
                ));
            }
            let path = dir.join(&entry.file);
            let mut counts = vec![0u64; c];
            for batch in read_batches(&path)? {
                let index = column(&batch, &path, "index", &DataType::UInt32, "u32")?;
                for &i in index.as_primitive::<UInt32Type>().values() {
                    let label = label_of.binary_search_by_key(&i, |&(j, _)| j).map_or(u16::MAX, |k| label_of[k].1);
                    let slot = counts.get_mut(usize::from(label)).ok_or_else(|| {
                        ReportError::invalid(
                            &path,
                            format!("index {i} is not in subset.parquet (or has a label >= {c}); rebuild the dataset with lt-data build"),
                        )
                    })?;
                    *slot += 1;
                }
            }
            let epochs = f64::from(entry.epochs.max(1));
            manifests.push((strategy.clone(), counts.iter().map(|&n| n as f64 / epochs).collect()));
        }
    }
    Ok(DatasetCounts {
        dir: dir.to_path_buf(),
        class_names: json.class_names,
        source: json.source_counts,
        subset: json.subset_counts,
        test: json.test_counts,
        manifests,
    })
}

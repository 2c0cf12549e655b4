//! Reading run and dataset directories (docs/FORMATS.md) with arrow-rs.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, UInt16Type, UInt32Type};
use lt_eval::{ClassificationReport, ConfusionMatrix};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;

use crate::ReportError;

/// One row of `metrics.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub epoch: u32,
    pub split: String,
    pub loss: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub per_class_accuracy: Vec<f64>,
}

/// `predictions.parquet`: final test predictions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    pub index: Vec<u32>,
    pub label: Vec<usize>,
    pub prediction: Vec<usize>,
    /// Row-major N x C softmax scores.
    pub scores: Vec<f32>,
}

/// The fields of `run.json` the report uses; the rest is kept in `raw`.
#[derive(Debug, Clone, Deserialize)]
struct RunJson {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    config: serde_json::Value,
    class_names: Vec<String>,
    train_counts: Vec<u64>,
}

/// A run directory, read and evaluated.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    /// The run's `label` from run.json, if it has one.
    pub label: Option<String>,
    /// run.json `config` (the fully resolved options).
    pub config: serde_json::Value,
    pub class_names: Vec<String>,
    pub train_counts: Vec<u64>,
    pub metrics: Vec<MetricRow>,
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

    /// The highest epoch in metrics.parquet (0 without rows).
    pub fn epochs(&self) -> u32 {
        self.metrics.iter().map(|m| m.epoch).max().unwrap_or(0)
    }
}

/// Bins of the expected calibration error in the report.
pub const ECE_BINS: usize = 15;

/// Reads `run.json`, `metrics.parquet` and `predictions.parquet` of one run directory and
/// evaluates the predictions with lt-eval.
pub fn read_run(dir: &Path) -> Result<Run, ReportError> {
    let json_path = dir.join("run.json");
    let text = std::fs::read_to_string(&json_path).map_err(|e| ReportError::io(&json_path, e))?;
    let json: RunJson =
        serde_json::from_str(&text).map_err(|source| ReportError::Json { path: json_path.clone(), source })?;
    let num_classes = json.class_names.len();
    if num_classes == 0 {
        return Err(ReportError::invalid(&json_path, "class_names is empty; the run must name its classes"));
    }
    if json.train_counts.len() != num_classes {
        return Err(ReportError::invalid(
            &json_path,
            format!("train_counts has {} entries but class_names has {num_classes}", json.train_counts.len()),
        ));
    }
    let metrics = read_metrics(&dir.join("metrics.parquet"), num_classes)?;
    let pred_path = dir.join("predictions.parquet");
    let predictions = read_predictions(&pred_path, num_classes)?;
    let confusion = ConfusionMatrix::try_from_predictions(&predictions.label, &predictions.prediction, num_classes)
        .map_err(|e| ReportError::invalid(&pred_path, e.to_string()))?;
    let report = lt_eval::classification_report(&confusion);
    let ece = lt_eval::calibration(&predictions.scores, &predictions.label, num_classes, ECE_BINS)
        .map_err(|e| ReportError::invalid(&pred_path, e.to_string()))?
        .ece;
    Ok(Run {
        dir: dir.to_path_buf(),
        label: json.label.filter(|l| !l.trim().is_empty()),
        config: json.config,
        class_names: json.class_names,
        train_counts: json.train_counts,
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

fn read_metrics(path: &Path, num_classes: usize) -> Result<Vec<MetricRow>, ReportError> {
    let mut rows = Vec::new();
    for batch in read_batches(path)? {
        let epoch = column(&batch, path, "epoch", &DataType::UInt32, "u32")?;
        let split = column(&batch, path, "split", &DataType::Utf8, "utf8")?;
        let loss = column(&batch, path, "loss", &DataType::Float64, "f64")?;
        let accuracy = column(&batch, path, "accuracy", &DataType::Float64, "f64")?;
        let balanced = column(&batch, path, "balanced_accuracy", &DataType::Float64, "f64")?;
        let per_class = column(&batch, path, "per_class_accuracy", &list_of(DataType::Float64), "list<f64>")?;
        let (epoch, split) = (epoch.as_primitive::<UInt32Type>(), split.as_string::<i32>());
        let (loss, accuracy) = (loss.as_primitive::<Float64Type>(), accuracy.as_primitive::<Float64Type>());
        let (balanced, per_class) = (balanced.as_primitive::<Float64Type>(), per_class.as_list::<i32>());
        for r in 0..batch.num_rows() {
            let values = per_class.value(r);
            let values = values.as_primitive::<Float64Type>();
            // A null inside the list is a class without samples: NaN, as lt-eval defines it.
            let per_class_accuracy: Vec<f64> =
                (0..values.len()).map(|i| if values.is_null(i) { f64::NAN } else { values.value(i) }).collect();
            if per_class_accuracy.len() != num_classes {
                return Err(ReportError::invalid(
                    path,
                    format!(
                        "row {r} (epoch {}, {}): per_class_accuracy has {} values but run.json has {num_classes} classes",
                        epoch.value(r),
                        split.value(r),
                        per_class_accuracy.len()
                    ),
                ));
            }
            let value = |a: &arrow::array::Float64Array| if a.is_null(r) { f64::NAN } else { a.value(r) };
            rows.push(MetricRow {
                epoch: epoch.value(r),
                split: split.value(r).to_string(),
                loss: value(loss),
                accuracy: value(accuracy),
                balanced_accuracy: value(balanced),
                per_class_accuracy,
            });
        }
    }
    Ok(rows)
}

fn read_predictions(path: &Path, num_classes: usize) -> Result<Predictions, ReportError> {
    let mut p = Predictions::default();
    for batch in read_batches(path)? {
        let index = column(&batch, path, "index", &DataType::UInt32, "u32")?;
        let label = column(&batch, path, "label", &DataType::UInt16, "u16")?;
        let prediction = column(&batch, path, "prediction", &DataType::UInt16, "u16")?;
        let scores = column(&batch, path, "scores", &list_of(DataType::Float32), "list<f32>")?;
        p.index.extend(index.as_primitive::<UInt32Type>().values().iter().copied());
        p.label.extend(label.as_primitive::<UInt16Type>().values().iter().map(|&v| usize::from(v)));
        p.prediction.extend(prediction.as_primitive::<UInt16Type>().values().iter().map(|&v| usize::from(v)));
        let scores = scores.as_list::<i32>();
        for r in 0..batch.num_rows() {
            let row = scores.value(r);
            if row.len() != num_classes {
                return Err(ReportError::invalid(
                    path,
                    format!("row {r}: scores has {} values but run.json has {num_classes} classes", row.len()),
                ));
            }
            let row = row.as_primitive::<Float32Type>();
            p.scores.extend((0..row.len()).map(|i| if row.is_null(i) { f32::NAN } else { row.value(i) }));
        }
    }
    Ok(p)
}

/// The fields of `dataset.json` the report uses.
#[derive(Debug, Clone, Deserialize)]
struct DatasetJson {
    class_names: Vec<String>,
    source_counts: Vec<u64>,
    subset_counts: Vec<u64>,
    #[serde(default)]
    test_counts: Vec<u64>,
    #[serde(default)]
    manifests: BTreeMap<String, ManifestEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct ManifestEntry {
    file: String,
    epochs: u32,
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
    let json_path = dir.join("dataset.json");
    let text = std::fs::read_to_string(&json_path).map_err(|e| ReportError::io(&json_path, e))?;
    let json: DatasetJson =
        serde_json::from_str(&text).map_err(|source| ReportError::Json { path: json_path.clone(), source })?;
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
        for (strategy, entry) in &json.manifests {
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

fn list_of(item: DataType) -> DataType {
    DataType::List(std::sync::Arc::new(Field::new("item", item, true)))
}

fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, ReportError> {
    let parquet_err =
        |e: &dyn std::fmt::Display| ReportError::Parquet { path: path.to_path_buf(), message: e.to_string() };
    let file = File::open(path).map_err(|e| ReportError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| ReportError::io(path, e))?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(&e))?;
    // The reader trusts the footer's byte ranges (a negative one panics inside it): check
    // that every column chunk lies inside the file first.
    for (g, group) in builder.metadata().row_groups().iter().enumerate() {
        if group.num_rows() < 0 {
            return Err(parquet_err(&format!("row group {g} has a negative row count")));
        }
        for col in group.columns() {
            let start = col.dictionary_page_offset().unwrap_or(col.data_page_offset());
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(col.compressed_size()).ok())
                .and_then(|(s, n)| s.checked_add(n))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(parquet_err(&format!(
                    "row group {g}: column `{}` claims bytes {start}+{} of a {file_len}-byte file",
                    col.column_path(),
                    col.compressed_size()
                )));
            }
        }
    }
    let reader = builder.with_batch_size(64 * 1024).build().map_err(|e| parquet_err(&e))?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| parquet_err(&e))
}

/// Families of types that may stand for each other (a writer may pick a wider integer or a
/// view/large string); anything else is a format error, not a silent conversion.
fn same_family(found: &DataType, want: &DataType) -> bool {
    use DataType::*;
    match (found, want) {
        (a, b) if a.is_integer() && b.is_integer() => true,
        (Float32 | Float64, Float32 | Float64) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8) => true,
        (List(a) | LargeList(a) | ListView(a) | LargeListView(a), List(b)) => same_family(a.data_type(), b.data_type()),
        _ => false,
    }
}

fn column(
    batch: &RecordBatch,
    path: &Path,
    name: &'static str,
    want: &DataType,
    expected: &'static str,
) -> Result<ArrayRef, ReportError> {
    let col = batch.column_by_name(name).ok_or_else(|| ReportError::MissingColumn {
        path: path.to_path_buf(),
        column: name,
        expected,
    })?;
    let type_err = || ReportError::ColumnType {
        path: path.to_path_buf(),
        column: name,
        found: col.data_type().to_string(),
        expected,
    };
    let col = if col.data_type() == want {
        col.clone()
    } else if same_family(col.data_type(), want) {
        let before = col.null_count();
        let out = cast(col, want).map_err(|_| type_err())?;
        if out.null_count() != before {
            return Err(ReportError::invalid(path, format!("column `{name}` has values that do not fit {expected}")));
        }
        out
    } else {
        return Err(type_err());
    };
    if col.null_count() > 0 {
        return Err(ReportError::invalid(
            path,
            format!("column `{name}` has {} null values; every row needs a value", col.null_count()),
        ));
    }
    Ok(col)
}

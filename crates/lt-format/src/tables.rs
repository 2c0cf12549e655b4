//! The run directory's tables (docs/FORMATS.md): metrics.parquet and predictions.parquet, each
//! with one schema, one writer (through `lt_fs::write_atomic_with`, so a table appears whole or
//! not at all) and one reader, through arrow-rs. The readers accept a writer's wider integer or
//! float types and view/large strings, refuse nulls where a value is required, and check every
//! column chunk's byte range before trusting the footer.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Builder, Float64Array, Float64Builder, ListBuilder, RecordBatch, StringArray,
    UInt16Array, UInt32Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema, UInt16Type, UInt32Type};
use lt_eval::nan_null;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;

/// Why a table could not be read or written; each names the file and the column.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read or write Parquet ({message})")]
    Parquet { path: PathBuf, message: String },
    #[error("{path}: column `{column}` is missing; docs/FORMATS.md lists it as {expected}")]
    MissingColumn { path: PathBuf, column: &'static str, expected: &'static str },
    #[error("{path}: column `{column}` has type {found}, expected {expected} (docs/FORMATS.md)")]
    ColumnType { path: PathBuf, column: &'static str, found: String, expected: &'static str },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl TableError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_path_buf(), message: message.into() }
    }
}

/// One row of metrics.parquet: one split's evaluation after one epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricsRow {
    pub epoch: u32,
    /// `train`, `test` or `val`.
    pub split: String,
    // NaN (a class without images in the split, a batch without a class) is written to JSON
    // (checkpoints) as null and must read back.
    #[serde(deserialize_with = "nan_null::f64")]
    pub loss: f64,
    #[serde(deserialize_with = "nan_null::f64")]
    pub accuracy: f64,
    #[serde(deserialize_with = "nan_null::f64")]
    pub balanced_accuracy: f64,
    /// NaN for a class without images in the split.
    #[serde(deserialize_with = "nan_null::vec")]
    pub per_class_accuracy: Vec<f64>,
}

/// predictions.parquet: the chosen epoch's test predictions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    pub index: Vec<u32>,
    pub label: Vec<u16>,
    pub prediction: Vec<u16>,
    /// Row-major `[n, C]` softmax scores.
    pub scores: Vec<f32>,
    pub num_classes: usize,
}

impl Predictions {
    /// Labels as lt-eval takes them.
    pub fn labels(&self) -> Vec<usize> {
        self.label.iter().map(|&l| usize::from(l)).collect()
    }

    /// Predictions as lt-eval takes them.
    pub fn predictions(&self) -> Vec<usize> {
        self.prediction.iter().map(|&p| usize::from(p)).collect()
    }

    /// Appends one image's logits: softmax scores and argmax prediction, as every tool
    /// computes them ([`crate::scores`]). Returns the image's probabilities in f64.
    pub fn push_logits(&mut self, index: u32, label: u16, logits: &[f32]) -> Vec<f64> {
        let p = crate::scores::softmax64(logits);
        self.scores.extend(p.iter().map(|&v| v as f32));
        self.index.push(index);
        self.label.push(label);
        self.prediction.push(crate::scores::argmax(logits) as u16);
        p
    }
}

pub const METRICS_FILE: &str = "metrics.parquet";
pub const PREDICTIONS_FILE: &str = "predictions.parquet";

fn metrics_schema() -> Schema {
    Schema::new(vec![
        Field::new("epoch", DataType::UInt32, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("loss", DataType::Float64, false),
        Field::new("accuracy", DataType::Float64, false),
        Field::new("balanced_accuracy", DataType::Float64, false),
        Field::new("per_class_accuracy", list_of(DataType::Float64), false),
    ])
}

fn predictions_schema() -> Schema {
    Schema::new(vec![
        Field::new("index", DataType::UInt32, false),
        Field::new("label", DataType::UInt16, false),
        Field::new("prediction", DataType::UInt16, false),
        Field::new("scores", list_of(DataType::Float32), false),
    ])
}

pub fn write_metrics(path: &Path, rows: &[MetricsRow]) -> Result<(), TableError> {
    let mut per_class = ListBuilder::new(Float64Builder::new());
    for r in rows {
        per_class.values().append_slice(&r.per_class_accuracy);
        per_class.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.epoch))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.split.as_str()))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.loss))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.accuracy))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.balanced_accuracy))),
        Arc::new(per_class.finish()),
    ];
    write_table(path, metrics_schema(), columns)
}

pub fn write_predictions(path: &Path, p: &Predictions) -> Result<(), TableError> {
    let mut scores = ListBuilder::new(Float32Builder::new());
    for row in p.scores.chunks(p.num_classes.max(1)) {
        scores.values().append_slice(row);
        scores.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(p.index.clone())),
        Arc::new(UInt16Array::from(p.label.clone())),
        Arc::new(UInt16Array::from(p.prediction.clone())),
        Arc::new(scores.finish()),
    ];
    write_table(path, predictions_schema(), columns)
}

/// Writes one record batch as a Parquet file, atomically. No `created_by` timestamp exists in
/// Parquet metadata, so equal rows give equal bytes.
pub fn write_table(path: &Path, schema: Schema, columns: Vec<ArrayRef>) -> Result<(), TableError> {
    let parquet_err =
        |e: &dyn std::fmt::Display| TableError::Parquet { path: path.to_path_buf(), message: e.to_string() };
    let batch = RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| parquet_err(&e))?;
    lt_fs::write_atomic_with(path, |file| {
        let props = WriterProperties::builder().build();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(std::io::Error::other)?;
        writer.write(&batch).map_err(std::io::Error::other)?;
        writer.close().map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(|e| match e {
        lt_fs::FsError::Io { source, .. } => TableError::io(path, source),
        other => TableError::io(path, std::io::Error::other(other.to_string())),
    })
}

/// Reads metrics.parquet; every row must have `num_classes` per-class values.
pub fn read_metrics(path: &Path, num_classes: usize) -> Result<Vec<MetricsRow>, TableError> {
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
                return Err(TableError::invalid(
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
            rows.push(MetricsRow {
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

/// Reads predictions.parquet; every row must have `num_classes` scores.
pub fn read_predictions(path: &Path, num_classes: usize) -> Result<Predictions, TableError> {
    let mut p = Predictions { num_classes, ..Predictions::default() };
    for batch in read_batches(path)? {
        let index = column(&batch, path, "index", &DataType::UInt32, "u32")?;
        let label = column(&batch, path, "label", &DataType::UInt16, "u16")?;
        let prediction = column(&batch, path, "prediction", &DataType::UInt16, "u16")?;
        let scores = column(&batch, path, "scores", &list_of(DataType::Float32), "list<f32>")?;
        p.index.extend(index.as_primitive::<UInt32Type>().values().iter().copied());
        p.label.extend(label.as_primitive::<UInt16Type>().values().iter().copied());
        p.prediction.extend(prediction.as_primitive::<UInt16Type>().values().iter().copied());
        let scores = scores.as_list::<i32>();
        for r in 0..batch.num_rows() {
            let row = scores.value(r);
            if row.len() != num_classes {
                return Err(TableError::invalid(
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

/// A list of `item` as lt's tables write it.
pub fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// Every record batch of a Parquet file, after checking each column chunk lies inside the file.
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, TableError> {
    let parquet_err =
        |e: &dyn std::fmt::Display| TableError::Parquet { path: path.to_path_buf(), message: e.to_string() };
    let file = File::open(path).map_err(|e| TableError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| TableError::io(path, e))?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(&e))?;
    footer_rows(builder.metadata(), file_len).map_err(|m| parquet_err(&m))?;
    let reader = builder.with_batch_size(64 * 1024).build().map_err(|e| parquet_err(&e))?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| parquet_err(&e))
}

/// The rows a Parquet footer declares, after checking it can be trusted: arrow-rs reads the
/// byte ranges of its column chunks as they are (a negative one panics inside it), so every
/// chunk must lie inside the file of `file_len` bytes and no row group may count below zero.
/// The error names the row group and column.
pub fn footer_rows(metadata: &ParquetMetaData, file_len: u64) -> Result<u64, String> {
    let mut total = 0u64;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        let rows = u64::try_from(group.num_rows()).map_err(|_| format!("row group {g} has a negative row count"))?;
        total = total.saturating_add(rows);
        for col in group.columns() {
            let start = col.dictionary_page_offset().unwrap_or(col.data_page_offset());
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(col.compressed_size()).ok())
                .and_then(|(s, n)| s.checked_add(n))
                .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(format!(
                    "row group {g}: column `{}` claims bytes {start}+{} of a {file_len}-byte file",
                    col.column_path(),
                    col.compressed_size()
                ));
            }
        }
    }
    Ok(total)
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

/// The column `name` of `batch` as type `want` (`expected` names it in errors): a type of the
/// same family is cast when every value fits; nulls are refused.
pub fn column(
    batch: &RecordBatch,
    path: &Path,
    name: &'static str,
    want: &DataType,
    expected: &'static str,
) -> Result<ArrayRef, TableError> {
    let col = batch.column_by_name(name).ok_or_else(|| TableError::MissingColumn {
        path: path.to_path_buf(),
        column: name,
        expected,
    })?;
    let type_err = || TableError::ColumnType {
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
            return Err(TableError::invalid(path, format!("column `{name}` has values that do not fit {expected}")));
        }
        out
    } else {
        return Err(type_err());
    };
    if col.null_count() > 0 {
        return Err(TableError::invalid(
            path,
            format!("column `{name}` has {} null values; every row needs a value", col.null_count()),
        ));
    }
    Ok(col)
}

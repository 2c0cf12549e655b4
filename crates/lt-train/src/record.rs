//! The run directory's tables (docs/FORMATS.md): metrics.parquet and predictions.parquet,
//! written with arrow-rs through a temporary file renamed when complete.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Builder, Float64Array, Float64Builder, ListBuilder, RecordBatch, StringArray, UInt16Array,
    UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RecordError {
    pub path: PathBuf,
    pub message: String,
}

/// One row of metrics.parquet.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricsRow {
    pub epoch: u32,
    pub split: String,
    pub loss: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub per_class_accuracy: Vec<f64>,
}

/// Final test predictions.
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    pub index: Vec<u32>,
    pub label: Vec<u16>,
    pub prediction: Vec<u16>,
    /// Row-major `[n, C]` softmax scores.
    pub scores: Vec<f32>,
    pub num_classes: usize,
}

pub fn write_metrics(path: &Path, rows: &[MetricsRow]) -> Result<(), RecordError> {
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
    let schema = Schema::new(vec![
        Field::new("epoch", DataType::UInt32, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("loss", DataType::Float64, false),
        Field::new("accuracy", DataType::Float64, false),
        Field::new("balanced_accuracy", DataType::Float64, false),
        Field::new("per_class_accuracy", DataType::List(Arc::new(Field::new("item", DataType::Float64, true))), false),
    ]);
    write_table(path, schema, columns)
}

pub fn write_predictions(path: &Path, p: &Predictions) -> Result<(), RecordError> {
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
    let schema = Schema::new(vec![
        Field::new("index", DataType::UInt32, false),
        Field::new("label", DataType::UInt16, false),
        Field::new("prediction", DataType::UInt16, false),
        Field::new("scores", DataType::List(Arc::new(Field::new("item", DataType::Float32, true))), false),
    ]);
    write_table(path, schema, columns)
}

fn write_table(path: &Path, schema: Schema, columns: Vec<ArrayRef>) -> Result<(), RecordError> {
    let err = |e: &dyn std::fmt::Display| RecordError { path: path.to_path_buf(), message: e.to_string() };
    let batch = RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| err(&e))?;
    let tmp = path.with_extension("parquet.partial");
    let file = std::fs::File::create(&tmp).map_err(|e| err(&e))?;
    // No `created_by` timestamp exists in Parquet metadata, so equal rows give equal bytes.
    let props = WriterProperties::builder().build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(|e| err(&e))?;
    writer.write(&batch).map_err(|e| err(&e))?;
    writer.close().map_err(|e| err(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(&e))
}

/// Writes JSON through a temporary file.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), RecordError> {
    let err = |e: &dyn std::fmt::Display| RecordError { path: path.to_path_buf(), message: e.to_string() };
    let mut text = serde_json::to_string_pretty(value).map_err(|e| err(&e))?;
    text.push('\n');
    lt_fs::write_atomic(path, text.as_bytes()).map_err(|e| err(&e))
}

//! The run directory's tables (metrics.parquet, predictions.parquet): their schemas, writers
//! and readers are lt-format's, shared with lt-report.

pub use lt_format::tables::{MetricsRow, Predictions, TableError as RecordError, write_metrics, write_predictions};

//! `dataset.json`: its types are lt-format's (shared with lt-train and lt-report).

pub use lt_format::dataset::{DatasetMeta, DatasetMetaError, FORMAT_VERSION, ManifestMeta, ValidationMeta};

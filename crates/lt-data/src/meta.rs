//! `dataset.json`: the self-description of a dataset directory (pure serde; no polars).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// Version of the dataset directory layout written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// One manifest of a dataset directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestMeta {
    /// File name inside the directory, `manifest-<strategy>.parquet`.
    pub file: String,
    /// Number of epochs in the file (`epoch` runs 0..epochs).
    pub epochs: u32,
    /// Rows per epoch.
    pub epoch_len: Vec<u64>,
    /// Parameter of `effective-number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Visits per class over all epochs (indexed by label).
    pub class_counts: Vec<u64>,
}

/// The balanced validation split of a dataset directory (`lt-data build --val-per-class N`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationMeta {
    /// File name inside the directory, `validation.parquet` (`index`, `label`).
    pub file: String,
    /// Images held out of every class (N).
    pub per_class: u64,
    /// How they were chosen: `per-class-before-cut` ([`crate::validation::RULE`]).
    pub rule: String,
}

/// The content of `dataset.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    pub format_version: u32,
    /// `{spec, kind, options}` of the source read.
    pub source: serde_json::Value,
    /// `{kind, ...parameters}` of the long-tail profile.
    pub profile: serde_json::Value,
    pub seed: u64,
    pub class_names: Vec<String>,
    /// [C, H, W].
    pub image_shape: [usize; 3],
    pub source_counts: Vec<u64>,
    pub subset_counts: Vec<u64>,
    pub test_counts: Vec<u64>,
    /// Images per class of the validation split; absent (empty) without one, so the
    /// dataset.json of a build without `--val-per-class` reads and writes as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_counts: Vec<u64>,
    /// The validation split, when the dataset has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationMeta>,
    /// strategy name -> manifest.
    pub manifests: BTreeMap<String, ManifestMeta>,
    /// file name -> sha256 (hex) of its bytes.
    pub files: BTreeMap<String, String>,
}

impl DatasetMeta {
    /// Read `DIR/dataset.json`.
    pub fn read(dir: &Path) -> Result<Self, DataError> {
        let path = dir.join("dataset.json");
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| DataError::Read {
            path,
            message: format!("{e}; is this a dataset directory written by `lt-data build`?"),
        })
    }

    /// The JSON text written to disk (pretty, keys in a fixed order, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("dataset.json serialises");
        s.push('\n');
        s
    }
}

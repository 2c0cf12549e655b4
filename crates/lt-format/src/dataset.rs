//! dataset.json, the self-description of a dataset directory (docs/FORMATS.md): lt-data
//! writes it, lt-train, lt-report and `lt-data inspect` read it, all through [`DatasetMeta`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::json::JsonReadError;
use serde::{Deserialize, Serialize};

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
    /// How they were chosen: `per-class-before-cut` (lt-data's `validation::RULE`).
    #[serde(default)]
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

/// The parts of dataset.json that lt-train reads, leniently: a hand-made dataset directory
/// (a list of images and labels in the documented Parquet layout, with counts and hashes)
/// need not carry lt-data's provenance fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetHeader {
    /// Absent in hand-made directories; when present it must be [`FORMAT_VERSION`].
    #[serde(default)]
    pub format_version: Option<u32>,
    pub class_names: Vec<String>,
    pub image_shape: [usize; 3],
    /// Images per class of the whole train split.
    pub source_counts: Vec<u64>,
    /// Images per class of the long-tailed training subset.
    pub subset_counts: Vec<u64>,
    /// Images per class of the test split.
    pub test_counts: Vec<u64>,
    /// The seed of the subset and manifests; a manifest the directory lacks is computed with
    /// it. Absent in hand-made directories.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Images per class of the validation split (`lt-data build --val-per-class`); empty
    /// without one.
    #[serde(default)]
    pub validation_counts: Vec<u64>,
    /// The validation split's description, when the dataset has one.
    #[serde(default)]
    pub validation: Option<ValidationMeta>,
    #[serde(default)]
    pub manifests: BTreeMap<String, serde_json::Value>,
    /// File name -> sha256 (hex) of its bytes, as `lt-data build` wrote them.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

impl DatasetHeader {
    /// Reads `DIR/dataset.json` leniently (at most [`MAX_DATASET_JSON_BYTES`]); a
    /// `format_version` other than [`FORMAT_VERSION`] is refused.
    pub fn read(dir: &Path) -> Result<Self, DatasetMetaError> {
        let header: DatasetHeader = read_bounded(dir)?;
        match header.format_version {
            Some(v) if v != FORMAT_VERSION => Err(DatasetMetaError::Invalid {
                path: dir.join(DatasetMeta::FILE),
                message: format!("format_version {v}; this lt reads version {FORMAT_VERSION}"),
            }),
            _ => Ok(header),
        }
    }

    /// The `manifests` entry of `strategy`, parsed: `None` when dataset.json has none, the
    /// parse error when it is malformed.
    pub fn manifest(&self, strategy: &str) -> Option<Result<ManifestHeader, String>> {
        let value = self.manifests.get(strategy)?;
        Some(serde_json::from_value(value.clone()).map_err(|e| format!("manifests.{strategy}: {e}")))
    }
}

/// What a reader needs of a manifest's entry in dataset.json (lenient: [`ManifestMeta`]'s
/// other fields may be absent).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ManifestHeader {
    /// File name inside the directory, `manifest-<strategy>.parquet`.
    pub file: String,
    /// Number of epochs in the file.
    pub epochs: u32,
    /// Rows per epoch (may be absent).
    #[serde(default)]
    pub epoch_len: Vec<u64>,
}

/// `DIR/dataset.json`, at most [`MAX_DATASET_JSON_BYTES`], as `T`.
fn read_bounded<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T, DatasetMetaError> {
    let path = dir.join(DatasetMeta::FILE);
    crate::json::read_bounded(&path, MAX_DATASET_JSON_BYTES).map_err(|e| match e {
        JsonReadError::Io(source) => DatasetMetaError::Io { path, source },
        JsonReadError::TooLarge => DatasetMetaError::Invalid {
            path,
            message: format!("larger than the {MAX_DATASET_JSON_BYTES} bytes a dataset.json may have"),
        },
        JsonReadError::Parse(e) => DatasetMetaError::Invalid { path, message: e.to_string() },
    })
}

/// Why dataset.json could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetMetaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}; is this a dataset directory written by `lt-data build`?")]
    Invalid { path: PathBuf, message: String },
}

/// Largest dataset.json read by any lt tool (docs/FORMATS.md: 64 MiB): names, counts and
/// hashes, kilobytes in practice.
pub const MAX_DATASET_JSON_BYTES: u64 = 64 << 20;

impl DatasetMeta {
    /// The file name inside a dataset directory.
    pub const FILE: &'static str = "dataset.json";

    /// Reads `DIR/dataset.json` (at most [`MAX_DATASET_JSON_BYTES`]).
    pub fn read(dir: &Path) -> Result<Self, DatasetMetaError> {
        read_bounded(dir)
    }

    /// The JSON text written to disk (pretty, keys in a fixed order, trailing newline).
    pub fn to_json(&self) -> String {
        crate::json::to_pretty_json(self)
    }
}

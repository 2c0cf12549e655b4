//! Reading a dataset directory written by `lt-data build` (docs/FORMATS.md) with arrow-rs.
//!
//! All images of both splits are held in memory as the raw bytes of the Parquet `image`
//! column (channel-planar u8): CIFAR's 60k images are 184 MB, and the loader converts only
//! the batch at hand to f32.
//!
//! A balanced validation split held out by `lt-data build --val-per-class` (`validation.parquet`)
//! is read with the subset; a manifest the directory lacks is computed in memory
//! (`on_demand.rs`), and `holdout.rs` picks a run's validation images.
//!
//! Nothing read is trusted: before training, every file `dataset.json` lists is checked
//! against its recorded sha256 (unless the user opts out with `--no-verify`), and every size,
//! label and index is checked against the class count and the split sizes `dataset.json`
//! declares, before anything is allocated from it. A bad directory is an error that names the
//! file, the row and the value, never a panic or an unbounded allocation.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, BinaryArray, BinaryViewArray, LargeBinaryArray, LargeStringArray, RecordBatch, StringArray, StringViewArray,
    UInt16Array, UInt32Array,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, TrainConfig};

mod holdout;
mod on_demand;

pub use holdout::{TrainingSplit, ValidationSource, carve_validation};

/// The `format_version` of dataset directories this reader understands.
pub use lt_format::dataset::FORMAT_VERSION;
/// Largest `dataset.json` read: lt-format's one bound for it.
pub use lt_format::dataset::MAX_DATASET_JSON_BYTES as MAX_JSON_BYTES;
/// Most classes: labels are u16.
pub const MAX_CLASSES: usize = 1 << 16;
/// Most channels of an image (grey, RGB, RGBA).
pub const MAX_CHANNELS: usize = 4;
/// Longest image side, in pixels.
pub const MAX_IMAGE_SIDE: usize = 4096;
/// Most images of one split: indices are u32.
pub const MAX_SPLIT_IMAGES: u64 = u32::MAX as u64;
/// Most image visits of a run (epochs × training images per epoch): at 10,000 images/s,
/// about four months of training. Anything above is a typo, e.g. `--epochs 4294967295`.
pub const MAX_IMAGE_VISITS: u128 = 100_000_000_000;
/// Largest batch of f32 images handed to onnxruntime (batch size × C·H·W × 4 bytes).
pub const MAX_BATCH_BYTES: u128 = 16 << 30;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: {message}; rebuild the dataset with `lt-data build`")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{path}: sha256 {found} does not match {expected} recorded in dataset.json: the file changed after `lt-data build` wrote it; rebuild the dataset with `lt-data build`, or pass --no-verify to use it as it is"
    )]
    Checksum { path: PathBuf, expected: String, found: String },
    #[error(
        "{path}: {message}, so the dataset cannot be verified; rebuild it with `lt-data build`, or pass --no-verify to use it unchecked"
    )]
    Unverifiable { path: PathBuf, message: String },
    #[error(
        "{dir}: the dataset has no manifest `{strategy}` (it has: {available}); rebuild it with `lt-data build --resample {strategy}`"
    )]
    NoManifest { dir: PathBuf, strategy: String, available: String },
    #[error(
        "{dir}: the dataset has no manifest `{strategy}` and lt-train cannot compute it: {reason}; rebuild it with `lt-data build --resample {strategy}`"
    )]
    ManifestNotComputable { dir: PathBuf, strategy: String, reason: String },
    #[error("unknown resampler `{strategy}`; the resamplers of `lt-data build --resample` are: {names}")]
    UnknownResampler { strategy: String, names: String },
    #[error("{path}: {message}")]
    Unusable { path: PathBuf, message: String },
    #[error(transparent)]
    Setting(#[from] ConfigError),
}

use lt_format::dataset::ManifestHeader;
/// The parts of `dataset.json` lt-train uses: lt-format's lenient view of it.
pub use lt_format::dataset::{DatasetHeader as DatasetInfo, ValidationMeta as ValidationInfo};

/// The file name of the validation split; no other name is read.
pub const VALIDATION_FILE: &str = "validation.parquet";

/// One split's images and labels, addressed by the split's `index` column: lt-data's own
/// type (from its pure, polars-free part), so both crates hold a split the same way.
pub use lt_data::source::Split;

/// A loaded dataset directory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    pub info: DatasetInfo,
    /// sha256 of `dataset.json`, which itself holds the hash of every file: one hash for all.
    pub content_hash: String,
    /// Whether every file `dataset.json` lists matched its sha256 when the directory was opened.
    pub verified: bool,
    pub train: Split,
    pub test: Split,
    /// Indices into `train` of the long-tailed training subset, ascending.
    pub subset: Vec<u32>,
    /// Indices into `train` of the validation split held out before the long-tail cut,
    /// ascending, disjoint from `subset`; empty when the dataset has none.
    pub validation: Vec<u32>,
    /// Manifests computed in memory because the directory lacks them (strategy -> epochs).
    computed_manifests: BTreeMap<String, Vec<Vec<u32>>>,
}

impl Dataset {
    pub fn num_classes(&self) -> usize {
        self.info.class_names.len()
    }

    /// Bytes per image (C·H·W).
    pub fn image_len(&self) -> usize {
        self.info.image_shape.iter().product()
    }

    /// Reads `dataset.json`, `samples.parquet` and `subset.parquet`, checking their structure
    /// but not their sha256 (see [`Dataset::open_checked`]).
    pub fn open(dir: &Path) -> Result<Self, DatasetError> {
        Self::open_checked(dir, false)
    }

    /// As [`Dataset::open`]; with `verify`, first checks every file `dataset.json` lists
    /// against its recorded sha256 (streamed, 1 MiB at a time) and refuses a directory whose
    /// `files` do not cover what lt-train reads.
    pub fn open_checked(dir: &Path, verify: bool) -> Result<Self, DatasetError> {
        let json_path = dir.join("dataset.json");
        let json = read_limited(&json_path, MAX_JSON_BYTES)?;
        let info: DatasetInfo = serde_json::from_slice(&json).map_err(|e| DatasetError::Invalid {
            path: json_path.clone(),
            message: format!("{e}; is this a directory written by `lt-data build`?"),
        })?;
        let layout = Layout::of(&info, &json_path)?;
        if verify {
            verify_files(dir, &json_path, &info)?;
        }
        let content_hash = hex::encode(Sha256::digest(&json));
        let (train, test) = read_samples(&dir.join("samples.parquet"), &layout)?;
        let subset_table = IndexTable { name: "subset", counts: &layout.subset_counts, field: "subset_counts" };
        let subset = read_index_table(&dir.join("subset.parquet"), &subset_table, &layout, &train.labels)?;
        let validation = match &layout.validation_counts {
            Some(counts) => {
                let table = IndexTable { name: "validation", counts, field: "validation_counts" };
                let path = dir.join(VALIDATION_FILE);
                let validation = read_index_table(&path, &table, &layout, &train.labels)?;
                if let Some(i) = first_common(&subset, &validation) {
                    return Err(invalid(
                        &path,
                        format!("train image {i} is in both the validation split and the subset"),
                    ));
                }
                validation
            }
            None => Vec::new(),
        };
        Ok(Dataset {
            dir: dir.to_path_buf(),
            info,
            content_hash,
            verified: verify,
            train,
            test,
            subset,
            validation,
            computed_manifests: BTreeMap::new(),
        })
    }

    /// Opens `cfg.data` for a training run: verified unless `cfg.no_verify`; the manifest of
    /// `--resample` computed when the directory lacks it (said on stderr); then
    /// [`Dataset::check_training`].
    pub fn open_for_training(cfg: &TrainConfig) -> Result<Self, DatasetError> {
        let mut data = Self::open_checked(&cfg.data, !cfg.no_verify)?;
        if let Some(strategy) = &cfg.resample {
            data.compute_missing_manifest(strategy, cfg.epochs, cfg.beta)?;
        }
        data.check_training(cfg)?;
        Ok(data)
    }

    /// What a run of `cfg` needs of this dataset beyond a well-formed directory: a test split
    /// to evaluate on, a manifest for `--resample`, and a run size within
    /// [`MAX_IMAGE_VISITS`] and batches within [`MAX_BATCH_BYTES`].
    pub fn check_training(&self, cfg: &TrainConfig) -> Result<(), DatasetError> {
        if self.test.is_empty() {
            return Err(DatasetError::Unusable {
                path: self.dir.join("samples.parquet"),
                message: "the dataset has no test split (0 test images), and lt-train evaluates every epoch on it; \
                          rebuild it with a test split (`lt-data build` with a source that has one, \
                          `--test-per-class N` for synthetic sources, `--test-list FILE` for folder lists)"
                    .into(),
            });
        }
        if self.subset.is_empty() {
            return Err(DatasetError::Unusable {
                path: self.dir.join("subset.parquet"),
                message: "the training subset is empty; rebuild the dataset with `lt-data build`".into(),
            });
        }
        let mut per_epoch = self.subset.len() as u128;
        if let Some(strategy) = &cfg.resample {
            check_strategy_name(strategy)?;
            let longest = match self.computed_manifests.get(strategy) {
                Some(epochs) => epochs.iter().map(|e| e.len() as u64).max().unwrap_or(0),
                None => self.manifest_entry(strategy)?.epoch_len.iter().copied().max().unwrap_or(0),
            };
            per_epoch = per_epoch.max(u128::from(longest));
        }
        let visits = cfg.epochs as u128 * per_epoch;
        if visits > MAX_IMAGE_VISITS {
            return Err(ConfigError {
                field: "epochs",
                value: cfg.epochs.to_string(),
                hint: format!(
                    "{} epochs × {per_epoch} training images = {visits} image visits, above the limit of \
                     {MAX_IMAGE_VISITS} (months of training); lower --epochs",
                    cfg.epochs
                ),
            }
            .into());
        }
        let image_bytes = self.image_len() as u128 * 4;
        for (field, batch) in [("batch_size", cfg.batch_size), ("eval_batch_size", cfg.eval_batch_size)] {
            let bytes = batch as u128 * image_bytes;
            if bytes > MAX_BATCH_BYTES {
                return Err(ConfigError {
                    field,
                    value: batch.to_string(),
                    hint: format!(
                        "a batch of {batch} images of {:?} is {bytes} bytes of f32, above the limit of \
                         {MAX_BATCH_BYTES} bytes; lower it",
                        self.info.image_shape
                    ),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The training indices of every epoch of a resampled manifest, `epochs[e]` in position
    /// order: the one computed by [`Dataset::open_for_training`] when the directory lacks it,
    /// else the directory's file.
    pub fn manifest(&self, strategy: &str) -> Result<Vec<Vec<u32>>, DatasetError> {
        check_strategy_name(strategy)?;
        if let Some(epochs) = self.computed_manifests.get(strategy) {
            return Ok(epochs.clone());
        }
        let entry = self.manifest_entry(strategy)?;
        let path = self.dir.join(&entry.file);
        if self.verified && !self.info.files.contains_key(&entry.file) {
            return Err(DatasetError::Unverifiable {
                path,
                message: "dataset.json's `files` has no sha256 of this manifest".into(),
            });
        }
        let epochs = entry.epochs;
        // Bounds before reading: the rows dataset.json declares, else the most any resampler
        // writes (random-over: C·max n_c per epoch).
        let max_class = self.info.subset_counts.iter().copied().max().unwrap_or(0);
        let per_epoch = (self.num_classes() as u64).saturating_mul(max_class).max(self.subset.len() as u64);
        let expected = if entry.epoch_len.is_empty() {
            RowCount::AtMost(per_epoch.saturating_mul(u64::from(epochs)))
        } else {
            RowCount::Exactly(entry.epoch_len.iter().fold(0u64, |a, &n| a.saturating_add(n)))
        };
        let mut rows: Vec<(u32, u32, u32)> = Vec::new();
        let mut row = 0u64;
        open_batches(&path, expected, 3 * 4)?.for_each(|batch| {
            let epoch = column::<UInt32Array>(batch, "epoch", &path)?;
            let position = column::<UInt32Array>(batch, "position", &path)?;
            let index = column::<UInt32Array>(batch, "index", &path)?;
            for r in 0..batch.num_rows() {
                let (e, p, i) = (epoch.value(r), position.value(r), index.value(r));
                if e >= epochs {
                    return Err(invalid(&path, format!("row {row}: epoch {e}, but dataset.json says {epochs} epochs")));
                }
                if i as usize >= self.train.len() {
                    return Err(invalid(
                        &path,
                        format!("row {row}: index {i} is outside the train split ({} images)", self.train.len()),
                    ));
                }
                rows.push((e, p, i));
                row += 1;
            }
            Ok(())
        })?;
        if u64::from(epochs) > rows.len() as u64 {
            return Err(invalid(&path, format!("{} rows for {epochs} epochs: some epoch has no rows", rows.len())));
        }
        rows.sort_unstable();
        let mut out = vec![Vec::new(); epochs as usize];
        for (epoch, position, index) in rows {
            let visits = &mut out[epoch as usize];
            if position as usize != visits.len() {
                return Err(invalid(
                    &path,
                    format!(
                        "epoch {epoch}: position {position} where {} was expected (positions run 0..n once each)",
                        visits.len()
                    ),
                ));
            }
            visits.push(index);
        }
        for (e, visits) in out.iter().enumerate() {
            let declared = entry.epoch_len.get(e).copied();
            if visits.is_empty() || declared.is_some_and(|n| n != visits.len() as u64) {
                return Err(invalid(
                    &path,
                    format!(
                        "epoch {e} has {} rows, dataset.json says {}",
                        visits.len(),
                        declared.map_or("at least one".to_string(), |n| n.to_string())
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// The `manifests` entry of `strategy` in dataset.json, read defensively.
    fn manifest_entry(&self, strategy: &str) -> Result<ManifestHeader, DatasetError> {
        let file = format!("manifest-{strategy}.parquet");
        let Some(parsed) = self.info.manifest(strategy) else {
            if !self.dir.join(&file).is_file() {
                let available = self.info.manifests.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err(DatasetError::NoManifest {
                    dir: self.dir.clone(),
                    strategy: strategy.to_string(),
                    available,
                });
            }
            return Err(invalid(
                &self.dir.join("dataset.json"),
                format!("`manifests` does not describe {file}, which is in the directory"),
            ));
        };
        let json_path = self.dir.join("dataset.json");
        let entry = parsed.map_err(|e| invalid(&json_path, e))?;
        if entry.file != file {
            return Err(invalid(
                &json_path,
                format!("manifests.{strategy}.file is `{}`, expected `{file}`", entry.file),
            ));
        }
        if entry.epochs == 0 || !(entry.epoch_len.is_empty() || entry.epoch_len.len() == entry.epochs as usize) {
            return Err(invalid(
                &json_path,
                format!("manifests.{strategy}: {} epochs with {} epoch lengths", entry.epochs, entry.epoch_len.len()),
            ));
        }
        if !self.dir.join(&file).is_file() {
            return Err(DatasetError::Io {
                path: self.dir.join(&file),
                message: "missing, though dataset.json lists it; rebuild the dataset with `lt-data build`".into(),
            });
        }
        Ok(entry)
    }
}

/// An unknown resampler name is a typo, not a missing manifest (and never a path).
fn check_strategy_name(strategy: &str) -> Result<(), DatasetError> {
    if <lt_format::vocab::Resampler as lt_format::Vocab>::parse_name(strategy).is_ok() {
        Ok(())
    } else {
        Err(DatasetError::UnknownResampler {
            strategy: strategy.to_string(),
            names: <lt_format::vocab::Resampler as lt_format::Vocab>::names().join(", "),
        })
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> DatasetError {
    DatasetError::Invalid { path: path.to_path_buf(), message: message.into() }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Io { path: path.to_path_buf(), message: e.to_string() }
}

/// A file's bytes, refused beyond `limit`.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, DatasetError> {
    let file = File::open(path).map_err(|e| DatasetError::Io {
        path: path.to_path_buf(),
        message: format!("{e}; is this a directory written by `lt-data build`?"),
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| io_err(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(invalid(path, format!("larger than {limit} bytes, the most lt-train reads")));
    }
    Ok(bytes)
}

/// What dataset.json declares, checked against lt-train's limits before anything is read.
struct Layout {
    image_len: usize,
    num_classes: usize,
    train_len: usize,
    test_len: usize,
    source_counts: Vec<u64>,
    test_counts: Vec<u64>,
    subset_counts: Vec<u64>,
    /// Per class, when the dataset has a validation split.
    validation_counts: Option<Vec<u64>>,
}

impl Layout {
    fn of(info: &DatasetInfo, json_path: &Path) -> Result<Self, DatasetError> {
        if let Some(v) = info.format_version
            && v != FORMAT_VERSION
        {
            return Err(invalid(
                json_path,
                format!("format_version {v}; this lt-train reads version {FORMAT_VERSION}"),
            ));
        }
        let c = info.class_names.len();
        if c == 0 || c > MAX_CLASSES {
            return Err(invalid(json_path, format!("{c} class_names; a dataset has 1 to {MAX_CLASSES} classes")));
        }
        for (what, counts) in [
            ("source_counts", &info.source_counts),
            ("subset_counts", &info.subset_counts),
            ("test_counts", &info.test_counts),
        ] {
            if counts.len() != c {
                return Err(invalid(json_path, format!("class_names has {c} entries but {what} has {}", counts.len())));
            }
        }
        let [channels, h, w] = info.image_shape;
        if !(1..=MAX_CHANNELS).contains(&channels)
            || !(1..=MAX_IMAGE_SIDE).contains(&h)
            || !(1..=MAX_IMAGE_SIDE).contains(&w)
        {
            return Err(invalid(
                json_path,
                format!(
                    "image_shape {:?}: expected [C, H, W] with 1 <= C <= {MAX_CHANNELS} and sides 1 to {MAX_IMAGE_SIDE}",
                    info.image_shape
                ),
            ));
        }
        let total = |what: &str, counts: &[u64]| -> Result<usize, DatasetError> {
            let sum = counts.iter().try_fold(0u64, |a, &n| a.checked_add(n)).filter(|&s| s <= MAX_SPLIT_IMAGES);
            sum.map(|s| s as usize).ok_or_else(|| {
                invalid(json_path, format!("{what} add up to more than {MAX_SPLIT_IMAGES} images, the most of a split"))
            })
        };
        let train_len = total("source_counts", &info.source_counts)?;
        let test_len = total("test_counts", &info.test_counts)?;
        total("subset_counts", &info.subset_counts)?;
        if let Some(k) = (0..c).find(|&k| info.subset_counts[k] > info.source_counts[k]) {
            return Err(invalid(
                json_path,
                format!(
                    "class {k}: subset_counts {} is more than source_counts {}",
                    info.subset_counts[k], info.source_counts[k]
                ),
            ));
        }
        let validation_counts = Self::validation_counts(info, json_path)?;
        if let Some(counts) = &validation_counts {
            total("validation_counts", counts)?;
            if let Some(k) = (0..c).find(|&k| info.subset_counts[k].saturating_add(counts[k]) > info.source_counts[k]) {
                return Err(invalid(
                    json_path,
                    format!(
                        "class {k}: subset_counts {} and validation_counts {} add up to more than source_counts {}",
                        info.subset_counts[k], counts[k], info.source_counts[k]
                    ),
                ));
            }
        }
        Ok(Layout {
            validation_counts,
            image_len: channels * h * w,
            num_classes: c,
            train_len,
            test_len,
            source_counts: info.source_counts.clone(),
            test_counts: info.test_counts.clone(),
            subset_counts: info.subset_counts.clone(),
        })
    }
}

impl Layout {
    /// `validation_counts` when `validation` describes a split, checked: one count per
    /// class, and the one file name lt-data writes.
    fn validation_counts(info: &DatasetInfo, json_path: &Path) -> Result<Option<Vec<u64>>, DatasetError> {
        let c = info.class_names.len();
        let Some(v) = &info.validation else {
            if !info.validation_counts.is_empty() {
                return Err(invalid(json_path, "`validation_counts` without `validation` describing the split"));
            }
            return Ok(None);
        };
        if v.file != VALIDATION_FILE {
            return Err(invalid(json_path, format!("validation.file is `{}`, expected `{VALIDATION_FILE}`", v.file)));
        }
        if info.validation_counts.len() != c {
            return Err(invalid(
                json_path,
                format!("class_names has {c} entries but validation_counts has {}", info.validation_counts.len()),
            ));
        }
        Ok(Some(info.validation_counts.clone()))
    }
}

/// Checks every file of `info.files` against its sha256, and that the files lt-train reads
/// are among them.
fn verify_files(dir: &Path, json_path: &Path, info: &DatasetInfo) -> Result<(), DatasetError> {
    let mut needed = vec!["samples.parquet".to_string(), "subset.parquet".to_string()];
    if info.validation.is_some() {
        needed.push(VALIDATION_FILE.to_string());
    }
    needed.extend(info.manifests.keys().map(|s| format!("manifest-{s}.parquet")));
    for name in needed {
        if !info.files.contains_key(&name) {
            return Err(DatasetError::Unverifiable {
                path: json_path.to_path_buf(),
                message: format!("`files` has no sha256 of {name}"),
            });
        }
    }
    for (name, expected) in &info.files {
        let plain = Path::new(name).file_name().is_some_and(|f| f == name.as_str()) && !name.starts_with('.');
        if !plain {
            return Err(invalid(json_path, format!("`files` names `{name}`, which is not a file of the directory")));
        }
        if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DatasetError::Unverifiable {
                path: json_path.to_path_buf(),
                message: format!("`files`.{name} is `{expected}`, not a sha256 in hex"),
            });
        }
        let path = dir.join(name);
        let found = sha256_of_file(&path)?;
        if !found.eq_ignore_ascii_case(expected) {
            return Err(DatasetError::Checksum { path, expected: expected.clone(), found });
        }
    }
    Ok(())
}

/// sha256 (hex) of a file: lt-data's streaming digest, the one `lt-data build` recorded with.
fn sha256_of_file(path: &Path) -> Result<String, DatasetError> {
    lt_data::hash::hex_digest_of_file::<Sha256>(path).map_err(|e| match e {
        lt_data::DataError::Io { source, .. } => io_err(path, source),
        other => io_err(path, other),
    })
}

/// How many rows a Parquet file must hold.
#[derive(Debug, Clone, Copy)]
enum RowCount {
    Exactly(u64),
    AtMost(u64),
}

/// An open Parquet file whose footer has been checked: its row count against what
/// dataset.json declares, and every column chunk inside the file (the reader allocates what
/// they claim).
struct Batches {
    path: PathBuf,
    file_len: u64,
    rows: u64,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
}

/// Opens a Parquet file for reading batch by batch; `row_bytes` sizes the batches so one
/// holds about 64 MiB.
fn open_batches(path: &Path, rows: RowCount, row_bytes: usize) -> Result<Batches, DatasetError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| invalid(path, e.to_string()))?;
    let total = lt_format::tables::footer_rows(builder.metadata(), file_len).map_err(|m| invalid(path, m))?;
    match rows {
        RowCount::Exactly(n) if total != n => {
            return Err(invalid(path, format!("{total} rows, dataset.json's counts say {n}")));
        }
        RowCount::AtMost(n) if total > n => {
            return Err(invalid(path, format!("{total} rows, more than the {n} dataset.json allows")));
        }
        _ => {}
    }
    let batch_rows = ((64usize << 20) / row_bytes.max(1)).clamp(1, 8192);
    let reader = builder.with_batch_size(batch_rows).build().map_err(|e| invalid(path, e.to_string()))?;
    Ok(Batches { path: path.to_path_buf(), file_len, rows: total, reader })
}

impl Batches {
    /// Calls `f` on every batch, refusing more rows than the footer declared.
    fn for_each(self, mut f: impl FnMut(&RecordBatch) -> Result<(), DatasetError>) -> Result<(), DatasetError> {
        let mut seen = 0u64;
        for batch in self.reader {
            let batch = batch.map_err(|e| invalid(&self.path, e.to_string()))?;
            seen += batch.num_rows() as u64;
            if seen > self.rows {
                return Err(invalid(&self.path, format!("more rows than the {} its footer declares", self.rows)));
            }
            f(&batch)?;
        }
        Ok(())
    }
}

fn column<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T, DatasetError> {
    let col = batch.column_by_name(name).ok_or_else(|| invalid(path, format!("no column `{name}`")))?;
    if col.null_count() > 0 {
        return Err(invalid(path, format!("column `{name}` has {} null values", col.null_count())));
    }
    col.as_any().downcast_ref::<T>().ok_or_else(|| {
        invalid(path, format!("column `{name}` has type {}, expected {}", col.data_type(), std::any::type_name::<T>()))
    })
}

/// The split column as 0 (`train`) / 1 (`test`), whichever string layout the writer chose.
fn split_values(batch: &RecordBatch, path: &Path, first_row: u64) -> Result<Vec<u8>, DatasetError> {
    let col = batch.column_by_name("split").ok_or_else(|| invalid(path, "no column `split`"))?;
    if col.null_count() > 0 {
        return Err(invalid(path, format!("column `split` has {} null values", col.null_count())));
    }
    let which = |r: usize, s: &str| match s {
        "train" => Ok(0),
        "test" => Ok(1),
        other => Err(invalid(
            path,
            format!("row {}: split `{}` is neither `train` nor `test`", first_row + r as u64, other.escape_debug()),
        )),
    };
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<StringArray>() {
        return (0..a.len()).map(|r| which(r, a.value(r))).collect();
    }
    if let Some(a) = any.downcast_ref::<LargeStringArray>() {
        return (0..a.len()).map(|r| which(r, a.value(r))).collect();
    }
    if let Some(a) = any.downcast_ref::<StringViewArray>() {
        return (0..a.len()).map(|r| which(r, a.value(r))).collect();
    }
    if let Some(dict) = any.downcast_ref::<arrow::array::DictionaryArray<arrow::datatypes::UInt32Type>>()
        && let Some(values) = dict.values().as_any().downcast_ref::<StringArray>()
    {
        return (0..dict.len())
            .map(|r| {
                let k = dict.keys().value(r) as usize;
                if k >= values.len() || values.is_null(k) {
                    return Err(invalid(
                        path,
                        format!("row {}: split dictionary key {k} is not a value", first_row + r as u64),
                    ));
                }
                which(r, values.value(k))
            })
            .collect();
    }
    Err(invalid(path, format!("column `split` has type {}", col.data_type())))
}

/// The image column as byte slices, whichever binary layout the writer chose.
fn image_values<'a>(batch: &'a RecordBatch, path: &Path) -> Result<Vec<&'a [u8]>, DatasetError> {
    let col = batch.column_by_name("image").ok_or_else(|| invalid(path, "no column `image`"))?;
    if col.null_count() > 0 {
        return Err(invalid(path, format!("column `image` has {} null values", col.null_count())));
    }
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<BinaryArray>() {
        return Ok((0..a.len()).map(|i| a.value(i)).collect());
    }
    if let Some(a) = any.downcast_ref::<LargeBinaryArray>() {
        return Ok((0..a.len()).map(|i| a.value(i)).collect());
    }
    if let Some(a) = any.downcast_ref::<BinaryViewArray>() {
        return Ok((0..a.len()).map(|i| a.value(i)).collect());
    }
    Err(invalid(path, format!("column `image` has type {}", col.data_type())))
}

/// A split of `len` images, its memory reserved up front (an error, not an abort, when the
/// machine cannot hold it).
fn empty_split(path: &Path, name: &str, len: usize, image_len: usize) -> Result<Split, DatasetError> {
    let bytes = len.saturating_mul(image_len);
    let mut images = Vec::new();
    images.try_reserve_exact(bytes).map_err(|_| {
        invalid(path, format!("the {name} split needs {bytes} bytes of memory ({len} images), more than is available"))
    })?;
    images.resize(bytes, 0);
    let mut labels = Vec::new();
    labels
        .try_reserve_exact(len)
        .map_err(|_| invalid(path, format!("the {name} split of {len} images does not fit in memory")))?;
    labels.resize(len, 0);
    Ok(Split { labels, images })
}

fn read_samples(path: &Path, layout: &Layout) -> Result<(Split, Split), DatasetError> {
    const NAMES: [&str; 2] = ["train", "test"];
    let image_len = layout.image_len;
    let lens = [layout.train_len, layout.test_len];
    let batches = open_batches(path, RowCount::Exactly((lens[0] + lens[1]) as u64), image_len + 16)?;
    // lt-data stores images uncompressed; far more image bytes than file bytes is a
    // decompression bomb, not a dataset.
    let image_bytes = (batches.rows as u128) * image_len as u128;
    if image_bytes > u128::from(batches.file_len) * 64 + (1 << 20) {
        return Err(invalid(
            path,
            format!(
                "{} rows of {image_len}-byte images are {image_bytes} bytes, more than 64 times the file's {} bytes",
                batches.rows, batches.file_len
            ),
        ));
    }
    let mut splits = [empty_split(path, "train", lens[0], image_len)?, empty_split(path, "test", lens[1], image_len)?];
    let mut seen = [vec![false; lens[0]], vec![false; lens[1]]];
    let mut row = 0u64;
    batches.for_each(|batch| {
        let which = split_values(batch, path, row)?;
        let index = column::<UInt32Array>(batch, "index", path)?;
        let label = column::<UInt16Array>(batch, "label", path)?;
        let images = image_values(batch, path)?;
        for (r, image) in images.into_iter().enumerate() {
            let (s, i, l) = (which[r] as usize, index.value(r) as usize, label.value(r));
            let at = format!("row {row} ({} image {i})", NAMES[s]);
            if i >= lens[s] {
                return Err(invalid(
                    path,
                    format!("{at}: index {i} is outside the {} split ({} images in dataset.json)", NAMES[s], lens[s]),
                ));
            }
            if std::mem::replace(&mut seen[s][i], true) {
                return Err(invalid(path, format!("{at}: index {i} appears twice")));
            }
            if image.len() != image_len {
                return Err(invalid(path, format!("{at}: {} bytes, expected {image_len}", image.len())));
            }
            if l as usize >= layout.num_classes {
                return Err(invalid(path, format!("{at}: label {l} but only {} classes", layout.num_classes)));
            }
            splits[s].labels[i] = l;
            splits[s].images[i * image_len..(i + 1) * image_len].copy_from_slice(image);
            row += 1;
        }
        Ok(())
    })?;
    // Every index was seen once (rows = train + test, none twice, none out of range).
    for (s, want) in [&layout.source_counts, &layout.test_counts].into_iter().enumerate() {
        let found = count_labels(&splits[s].labels, layout.num_classes);
        if let Some(k) = (0..layout.num_classes).find(|&k| found[k] != want[k]) {
            let field = if s == 0 { "source_counts" } else { "test_counts" };
            return Err(invalid(
                path,
                format!(
                    "the {} split has {} images of class {k}, dataset.json's {field} says {}",
                    NAMES[s], found[k], want[k]
                ),
            ));
        }
    }
    let [train, test] = splits;
    Ok((train, test))
}

fn count_labels(labels: &[u16], num_classes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; num_classes];
    for &l in labels {
        counts[l as usize] += 1;
    }
    counts
}

/// A table of train-split indices (`index`, `label`): the subset or the validation split.
struct IndexTable<'a> {
    name: &'a str,
    /// Per class, as dataset.json declares them.
    counts: &'a [u64],
    /// The field of dataset.json `counts` come from, for errors.
    field: &'a str,
}

/// The smallest value in both ascending lists.
fn first_common(a: &[u32], b: &[u32]) -> Option<u32> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return Some(a[i]),
        }
    }
    None
}

/// Reads an index table, checking each row against the train split and the per-class counts
/// against dataset.json; returns the indices ascending.
fn read_index_table(
    path: &Path,
    table: &IndexTable<'_>,
    layout: &Layout,
    train_labels: &[u16],
) -> Result<Vec<u32>, DatasetError> {
    // The counts were summed within MAX_SPLIT_IMAGES by Layout::of.
    let len = table.counts.iter().sum::<u64>();
    let mut subset = Vec::with_capacity(len as usize);
    let mut row = 0u64;
    open_batches(path, RowCount::Exactly(len), 8)?.for_each(|batch| {
        let index = column::<UInt32Array>(batch, "index", path)?;
        let label = column::<UInt16Array>(batch, "label", path)?;
        for r in 0..batch.num_rows() {
            let (i, l) = (index.value(r), label.value(r));
            if l as usize >= layout.num_classes {
                return Err(invalid(path, format!("row {row}: label {l} but only {} classes", layout.num_classes)));
            }
            let Some(&train_label) = train_labels.get(i as usize) else {
                return Err(invalid(
                    path,
                    format!("row {row}: index {i} is outside the train split ({} images)", train_labels.len()),
                ));
            };
            if l != train_label {
                return Err(invalid(
                    path,
                    format!("row {row}: index {i} has label {l}, but samples.parquet gives it label {train_label}"),
                ));
            }
            subset.push(i);
            row += 1;
        }
        Ok(())
    })?;
    subset.sort_unstable();
    if let Some(w) = subset.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(path, format!("index {} appears twice", w[0])));
    }
    let mut counts = vec![0u64; layout.num_classes];
    for &i in &subset {
        counts[train_labels[i as usize] as usize] += 1;
    }
    if let Some(k) = (0..layout.num_classes).find(|&k| counts[k] != table.counts[k]) {
        return Err(invalid(
            path,
            format!(
                "{} images of class {k} in the {} table, dataset.json's {} says {}",
                counts[k], table.name, table.field, table.counts[k]
            ),
        ));
    }
    Ok(subset)
}

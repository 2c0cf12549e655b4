//! The one error type of the library. Every message names the file, record, class or value
//! involved and says what to do next.

use std::path::PathBuf;

/// Errors of lt-data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source} (check that the path exists and is readable)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: missing; {hint}")]
    Missing { path: PathBuf, hint: String },
    #[error(
        "{path}: size {size} bytes is not a multiple of the {record_size}-byte record; the file is truncated or \
         not in this format (re-download it with `lt-data fetch`)"
    )]
    RecordSize { path: PathBuf, size: u64, record_size: usize },
    #[error(
        "{path}: record {record} has {field} {value}, outside 0..{classes}; the file is corrupt or of another format"
    )]
    LabelRange { path: PathBuf, record: usize, field: &'static str, value: u64, classes: usize },
    #[error("{path}: pickle byte offset {offset}: {message}")]
    Pickle { path: PathBuf, offset: usize, message: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: cannot decode image: {message} (remove or replace the file)")]
    Image { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Line { path: PathBuf, line: usize, message: String },
    #[error("source `{spec}`: {message}")]
    Source { spec: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "class {class} ({name}): {requested} images requested but the source has only {available}; lower the count"
    )]
    CountTooLarge { class: usize, name: String, requested: u64, available: u64 },
    #[error(
        "class {class} ({name}): {requested} training images requested, but --val-per-class holds out {held_out} of \
         its {total} train-split images before the long-tail cut, leaving {available}; lower the count or \
         --val-per-class"
    )]
    CountTooLargeAfterValidation {
        class: usize,
        name: String,
        requested: u64,
        available: u64,
        held_out: u64,
        total: u64,
    },
    #[error(
        "class {class} ({name}): --val-per-class {per_class} needs {per_class} validation images plus \
         {keep_for_training} for training, but {pool} has {available} images of it; lower --val-per-class to at most \
         {max}",
        max = available.saturating_sub(*keep_for_training)
    )]
    ValidationTooLarge {
        class: usize,
        name: String,
        per_class: u64,
        keep_for_training: u64,
        available: u64,
        pool: &'static str,
    },
    #[error(
        "class {class} ({name}) has 0 training images: {reason}. A class without training images cannot be \
         learned (its recall is 0 by construction and its loss weight undefined), so lt-data refuses it"
    )]
    EmptyClass { class: usize, name: String, reason: String },
    /// Output directories: refusals (not empty, not lt's, protected) and write errors.
    #[error(transparent)]
    Output(#[from] lt_fs::FsError),
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("download {url}: {message}")]
    Http { url: String, message: String },
    #[error("{path}: MD5 {actual} does not match the expected {expected}; delete the file and fetch again")]
    Md5Mismatch { path: PathBuf, expected: String, actual: String },
    #[error("archive {archive}: entry `{entry}` refused: {reason}")]
    UnsafeEntry { archive: PathBuf, entry: String, reason: &'static str },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// Shorthand result type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl From<lt_format::dataset::DatasetMetaError> for DataError {
    fn from(e: lt_format::dataset::DatasetMetaError) -> Self {
        use lt_format::dataset::DatasetMetaError as M;
        match e {
            M::Io { path, source } => DataError::Io { path, source },
            M::Invalid { path, message } => DataError::Read {
                path,
                message: format!("{message}; is this a dataset directory written by `lt-data build`?"),
            },
        }
    }
}

use std::path::PathBuf;

/// Why a report could not be made. Each message names the file (and column, field or value)
/// and says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}; check the path (a run directory holds run.json, metrics.parquet, predictions.parquet)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON for this report ({source}); the file must follow docs/FORMATS.md")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A run's or dataset's table (metrics, predictions, subset, manifest) could not be read;
    /// the message names the file and the column.
    #[error("{0}; the file must be written completely and follow docs/FORMATS.md (rerun lt-train or lt-data build)")]
    Table(lt_format::tables::TableError),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "run {a} has {a_classes} classes but run {b} has {b_classes}: a report compares runs on the same dataset; pass runs of one dataset"
    )]
    ClassesDiffer { a: PathBuf, a_classes: usize, b: PathBuf, b_classes: usize },
    #[error("no runs to report: pass --runs RUN [RUN ...] or a --runs-dir that holds run directories (with run.json)")]
    NoRuns,
    #[error("{labels} labels for {runs} runs: give at most one --label per run, in the order of the runs")]
    TooManyLabels { labels: usize, runs: usize },
    #[error(transparent)]
    Literature(#[from] crate::literature::LiteratureError),
    #[error("drawing {figure}: {message}")]
    Plot { figure: &'static str, message: String },
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Invalid { path: path.into(), message: message.into() }
    }
}

impl From<lt_format::run::RunRecordError> for ReportError {
    fn from(e: lt_format::run::RunRecordError) -> Self {
        use lt_format::run::RunRecordError as R;
        match e {
            R::Io { path, source } => Self::Io { path, source },
            R::Json { path, source } => Self::Json { path, source },
            R::Invalid { path, message } => Self::Invalid { path, message },
        }
    }
}

impl From<lt_format::dataset::DatasetMetaError> for ReportError {
    fn from(e: lt_format::dataset::DatasetMetaError) -> Self {
        use lt_format::dataset::DatasetMetaError as D;
        match e {
            D::Io { path, source } => Self::Io { path, source },
            D::Invalid { path, message } => Self::Invalid { path, message },
        }
    }
}

impl From<lt_format::tables::TableError> for ReportError {
    /// A missing or unreadable file is an I/O error that names the path; the rest are table errors.
    fn from(e: lt_format::tables::TableError) -> Self {
        match e {
            lt_format::tables::TableError::Io { path, source } => Self::Io { path, source },
            other => Self::Table(other),
        }
    }
}

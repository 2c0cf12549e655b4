//! lt-report: SVG figures and the HTML report comparing lt runs.
//!
//! [`generate`] reads run directories (and optionally the dataset directory) in the formats of
//! docs/FORMATS.md through arrow-rs, evaluates the final predictions with lt-eval, and writes
//! into the report directory:
//!
//! - `class-distribution.svg`, `curves-accuracy.svg`, `curves-loss.svg`, `confusion.svg`,
//!   `per-class-accuracy.svg`, `shot-groups.svg`, `precision-recall.svg`;
//! - `index.html` (the summary table and every figure inlined), `summary.md`, `summary.json`.
//!
//! Runs that share a given name and their settings but the seed are one experiment
//! ([`experiments`]): the table shows mean ± sample std over its seeds and the figures one
//! series per experiment. A literature file ([`literature`]) adds published numbers beside
//! the table.
//!
//! Every file is written to a temporary name and renamed when complete.

mod compare;
mod error;
pub mod experiments;
pub mod figures;
mod html;
pub mod input;
pub mod literature;
mod style;
pub mod synthetic;

use std::path::{Path, PathBuf};

pub use compare::{ReportData, Settings, differing_settings, run_labels};
pub use error::ReportError;
pub use experiments::{Experiment, Spread};
pub use html::{ExperimentSummary, Headline, RunSummary, Summary};
pub use literature::{Literature, LiteratureError, LiteratureRow};
pub use style::{ClassAxisLabels, class_axis_labels, truncate};

/// How classes are grouped into shot groups (three per split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShotChoice {
    /// head/mid/tail thirds and, beside them, many/medium/few by these thresholds (the
    /// literature's are 100 and 20: CIFAR-10-LT at IF 100 has no class under 50 images, so
    /// its "few" group is empty and only the thirds split its tail).
    Both { many_above: u64, few_below: u64 },
    /// many: more than `many_above` training images, few: fewer than `few_below`, medium: the rest.
    Thresholds { many_above: u64, few_below: u64 },
    /// head/mid/tail: classes sorted by training images, cut into thirds.
    Thirds,
}

impl Default for ShotChoice {
    /// Both splits, many/medium/few at the literature's thresholds (> 100, 20..=100, < 20).
    fn default() -> Self {
        Self::Both { many_above: 100, few_below: 20 }
    }
}

/// What to report on and where.
#[derive(Debug, Clone)]
pub struct Options {
    pub runs: Vec<PathBuf>,
    /// Dataset directory for the class-distribution figure; `None`: the first run's recorded
    /// dataset directory if it exists, else the runs' training counts only.
    pub data: Option<PathBuf>,
    pub out: PathBuf,
    pub shots: ShotChoice,
    /// Class counts on a log axis.
    pub log_counts: bool,
    pub title: String,
    /// `labels[i]` names `runs[i]` (`--label`); a run without one is named by its run.json
    /// `label`, else its directory's name.
    pub labels: Vec<String>,
    /// A literature file (`--literature`): published numbers printed beside lt's.
    pub literature: Option<PathBuf>,
}

impl Options {
    pub fn new(runs: Vec<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            runs,
            data: None,
            out: out.into(),
            shots: ShotChoice::default(),
            log_counts: true,
            title: "lt report".to_string(),
            labels: Vec::new(),
            literature: None,
        }
    }
}

/// Writes `bytes` to `path` through `path.partial`, renamed when complete.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    lt_fs::write_atomic(path, bytes).map_err(|e| match e {
        lt_fs::FsError::Io { source, .. } => ReportError::io(path, source),
        other => ReportError::io(path, std::io::Error::other(other.to_string())),
    })
}

/// The dataset directory recorded in run.json (`dataset.dir`), if it holds a dataset.json.
fn recorded_dataset(run_dir: &Path) -> Option<PathBuf> {
    let dir = lt_format::RunHeader::read(run_dir).ok()?.dataset?.dir;
    [dir.clone(), run_dir.join(&dir)].into_iter().find(|d| d.join("dataset.json").is_file())
}

/// Reads the runs and the dataset, draws every figure and writes the report; returns the
/// summary also written to `summary.json`.
pub fn generate(options: &Options) -> Result<Summary, ReportError> {
    if options.runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    // Runs are independent: read and evaluate them in parallel.
    let runs: Vec<input::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = options.runs.iter().map(|dir| s.spawn(move || input::read_run(dir))).collect();
        handles.into_iter().map(|h| h.join().expect("reading a run panicked")).collect::<Result<_, _>>()
    })?;
    let literature = options.literature.as_deref().map(Literature::read).transpose()?.unwrap_or_default();
    let data_dir = options.data.clone().or_else(|| recorded_dataset(&options.runs[0]));
    let dataset = data_dir.as_deref().map(input::read_dataset).transpose()?;
    let data = ReportData::new(runs, dataset, options.shots, options.log_counts, &options.labels)?;
    let figures = figures::all_figures(&data)?;
    let summary = html::summary(&data, &options.title, &figures, literature);

    std::fs::create_dir_all(&options.out).map_err(|e| ReportError::io(&options.out, e))?;
    for f in &figures {
        write_atomic(&options.out.join(f.file), f.svg.as_bytes())?;
    }
    let json_path = options.out.join("summary.json");
    let mut json = serde_json::to_string_pretty(&summary)
        .map_err(|source| ReportError::Json { path: json_path.clone(), source })?;
    json.push('\n');
    write_atomic(&json_path, json.as_bytes())?;
    write_atomic(&options.out.join("summary.md"), html::markdown(&summary).as_bytes())?;
    write_atomic(&options.out.join("index.html"), html::index_html(&summary, &figures).as_bytes())?;
    Ok(summary)
}

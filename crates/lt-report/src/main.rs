//! `lt-report`: compare lt runs in SVG figures, an HTML page and Markdown/JSON summaries.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use lt_report::{Options, ShotChoice};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shots {
    /// head/mid/tail thirds and, beside them, many/medium/few by --many-above and --few-below
    /// (`auto`, what `lt run` passes, is accepted for it).
    #[value(alias = "auto")]
    Both,
    /// Only many/medium/few by --many-above and --few-below.
    Thresholds,
    /// Only head/mid/tail: classes sorted by training images, cut into thirds.
    Thirds,
}

/// Compare lt runs (runs that share a name and differ only in the seed are one experiment,
/// shown as mean ± std): seven SVG figures, REPORT/index.html with a summary table, summary.md and
/// summary.json.
#[derive(Debug, Parser)]
#[command(name = "lt-report", version, about, long_about = None)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["runs", "runs_dir"]))]
struct Cli {
    /// Run directories written by lt-train (each holds run.json, metrics.parquet,
    /// predictions.parquet). Runs must share the dataset's classes. A run is named by its
    /// run.json `label` (lt run: the experiment's name), else by its directory's name.
    #[arg(long, num_args = 1.., value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// Name of a run in the figures and tables, overriding its own; repeat it, one per run,
    /// in the order of --runs (then of --runs-dir's runs).
    #[arg(long = "label", value_name = "NAME")]
    labels: Vec<String>,
    /// A directory whose subdirectories with a run.json are the runs (sorted by name).
    #[arg(long, value_name = "DIR")]
    runs_dir: Option<PathBuf>,
    /// Report directory to write (created if missing; existing report files are replaced).
    #[arg(long, value_name = "REPORT")]
    out: PathBuf,
    /// Dataset directory written by lt-data build, for the class-distribution figure (source,
    /// long-tail subset, resampled manifests). Default: the dataset recorded in the first
    /// run's run.json, if that directory exists; otherwise the figure shows training counts.
    #[arg(long, value_name = "DATASET")]
    data: Option<PathBuf>,
    /// How classes are grouped into shot groups.
    #[arg(long, value_enum, default_value = "both")]
    shots: Shots,
    /// "many" classes have more training images than this (--shots both or thresholds).
    #[arg(long, default_value_t = 100, value_name = "N")]
    many_above: u64,
    /// "few" classes have fewer training images than this (--shots both or thresholds).
    #[arg(long, default_value_t = 20, value_name = "N")]
    few_below: u64,
    /// Draw class counts on a linear axis instead of the default log axis.
    #[arg(long)]
    linear_counts: bool,
    /// Published results to print beside lt's table, from the papers and not re-run: a TOML
    /// file of `[[row]]` tables with method, dataset, imbalance (the imbalance factor),
    /// accuracy (top-1, percent) and source (the citation).
    #[arg(long, value_name = "FILE.toml")]
    literature: Option<PathBuf>,
    /// Title of index.html and summary.md.
    #[arg(long, default_value = "lt report")]
    title: String,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lt-report: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runs = cli.runs;
    if let Some(dir) = &cli.runs_dir {
        let found = lt_report::input::find_runs(dir)?;
        anyhow::ensure!(
            !found.is_empty(),
            "{}: no subdirectory holds a run.json; pass the directory lt-train wrote runs into",
            dir.display()
        );
        runs.extend(found);
    }
    let shots = match cli.shots {
        Shots::Both => ShotChoice::Both { many_above: cli.many_above, few_below: cli.few_below },
        Shots::Thresholds => ShotChoice::Thresholds { many_above: cli.many_above, few_below: cli.few_below },
        Shots::Thirds => ShotChoice::Thirds,
    };
    let options = Options {
        runs,
        data: cli.data,
        out: cli.out.clone(),
        shots,
        log_counts: !cli.linear_counts,
        title: cli.title,
        labels: cli.labels,
        literature: cli.literature,
    };
    let started = std::time::Instant::now();
    let summary =
        lt_report::generate(&options).with_context(|| format!("writing the report to {}", cli.out.display()))?;
    eprintln!(
        "lt-report: {} runs ({} experiments), {} classes -> {} ({} figures) in {:.2} s",
        summary.runs.len(),
        summary.experiments.len(),
        summary.class_names.len(),
        cli.out.join("index.html").display(),
        summary.figures.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

//! `lt`: run a pipeline file (build -> every experiment -> report), skipping up-to-date steps.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use lt_pipeline::run::{Only, Options, Tools};
use lt_pipeline::{Overrides, load};

#[derive(Parser)]
#[command(name = "lt", version, about = "lt pipelines: one TOML file from raw data to the per-class report")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a pipeline: lt-data build, lt-train per experiment, lt-report. Steps whose stamps
    /// (hashes of their settings and inputs) match are skipped; interrupted training resumes.
    Run(RunArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Step {
    /// The dataset build (and fetch) only.
    Build,
    /// The experiments only (the dataset must be built and up to date).
    Train,
    /// The report only (every experiment must be up to date).
    Report,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The pipeline file, e.g. pipelines/demo.toml.
    pipeline: PathBuf,
    /// Print the fully resolved settings as TOML and exit without running anything.
    #[arg(long)]
    show_config: bool,
    /// Run one step only.
    #[arg(long, value_enum)]
    only: Option<Step>,
    /// Use this source (KIND:ARG, e.g. cifar10:/data/cifar-10-batches-bin) instead of the
    /// file's data.source; nothing is downloaded.
    #[arg(long, value_name = "KIND:ARG")]
    source: Option<String>,
    /// Write outputs under DIR instead of the file's `out`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Change one setting: KEY=VALUE, data.KEY=VALUE, train.KEY=VALUE (every experiment),
    /// report.KEY=VALUE or experiment.NAME.KEY=VALUE; VALUE is TOML (2, 0.1, "cuda", [1,2]).
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Ask lt-data and lt-train for log lines instead of progress bars (the default when
    /// stderr is not a terminal).
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> Result<()> {
    let Cmd::Run(a) = Cli::parse().cmd;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let overrides = Overrides { source: a.source.clone(), out: a.out.clone(), set: a.set.clone() };
    let pipeline = load(&a.pipeline, &overrides, &cwd)?;
    if a.show_config {
        print!("{}", pipeline.to_toml());
        return Ok(());
    }
    let exe = std::env::current_exe().context("finding the lt executable")?;
    let tools = Tools::find(&exe)?;
    let only = a.only.map(|s| match s {
        Step::Build => Only::Build,
        Step::Train => Only::Train,
        Step::Report => Only::Report,
    });
    let opts = Options { only, quiet_tools: a.quiet || !std::io::stderr().is_terminal() };
    eprintln!(
        "lt: pipeline {} ({} experiments) -> {}",
        pipeline.name,
        pipeline.experiment.len(),
        pipeline.out.display()
    );
    let started = std::time::Instant::now();
    let summary = lt_pipeline::run::run(&pipeline, &tools, &opts, &mut |line| eprintln!("{line}"))?;
    eprintln!("lt: finished in {:.1}s", started.elapsed().as_secs_f64());
    if let Some(report) = summary.report {
        println!("report: {}", report.display());
    }
    Ok(())
}

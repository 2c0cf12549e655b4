//! `lt-data`: build long-tailed dataset directories, print class weights, inspect, fetch.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lt_data::build::{BuildConfig, ProfileSpec, build};
use lt_data::profile::SEED_COUNTS;
use lt_data::{DatasetMeta, Normalize, Profile, Progress, SourceOptions, SourceSpec, Strategy, WeightScheme};
use lt_format::cli::vocab;
use lt_format::vocab::{Profile as ProfileKind, WeightsKind};

#[derive(Parser)]
#[command(
    name = "lt-data",
    version,
    about = "Long-tailed datasets: sources, subsets, resampled manifests, class weights"
)]
struct Cli {
    /// Do not draw progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Print how long each stage took (to stderr).
    #[arg(long, global = true)]
    timings: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Read a source, take a long-tailed subset, write samples, subset and manifests as Parquet.
    Build(BuildArgs),
    /// Print class weights for the loss, from a dataset directory's subset counts, as JSON.
    Weights(WeightsArgs),
    /// Print a per-class table (source, subset, test, each manifest) with bars; verify hashes.
    Inspect {
        /// The dataset directory.
        dir: PathBuf,
        /// Width of the bars in characters.
        #[arg(long, default_value_t = 30)]
        width: usize,
    },
    /// Download and extract an official CIFAR archive (resumes, verifies the MD5).
    Fetch(FetchArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// Source as KIND:ARG: cifar10:DIR, cifar100:DIR, cifar10-py:DIR, folder:DIR|LISTFILE,
    /// synthetic:N (N training images per class).
    #[arg(long)]
    source: String,
    /// Long-tail profile of the training subset (the test split is never subsampled).
    #[arg(long, value_parser = vocab::<ProfileKind>())]
    profile: ProfileKind,
    /// Imbalance factor IF >= 1: largest / smallest class (exp, step).
    #[arg(long)]
    imbalance: Option<f64>,
    /// Images of the largest class (exp, step); default: the smallest source class size.
    #[arg(long)]
    n_max: Option<u64>,
    /// Assign the profile's counts to a seeded permutation of the classes (exp, step).
    #[arg(long)]
    shuffle_classes: bool,
    /// Comma-separated per-class counts (counts), or `seed` for the course project's
    /// 1865,2677,3602,916,4354,4061,892,1718,3417,152.
    #[arg(long)]
    counts: Option<String>,
    /// File with one train-split index per line (indices).
    #[arg(long)]
    indices: Option<PathBuf>,
    /// Comma-separated resamplers, one manifest each: instance, random-over, random-under,
    /// class-balanced, sqrt, progressive, effective-number.
    #[arg(long, default_value = "instance")]
    resample: String,
    /// Epochs per manifest (each epoch drawn with its own seeded stream).
    #[arg(long, default_value_t = 1)]
    epochs: u32,
    /// beta in [0, 1) of the effective-number resampler (weight (1-beta)/(1-beta^n_c)).
    #[arg(long)]
    beta: Option<f64>,
    /// Seed of the subset and manifests; the same inputs and seed give byte-identical files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hold out N images of every class as a balanced validation split, before the long-tail
    /// cut (seeded; disjoint from the subset; written as validation.parquet). A class with
    /// fewer than N + 1 training images (N outside the list with --profile indices) is an
    /// error. lt-train uses it instead of carving --val-fraction out of the subset.
    #[arg(long, value_name = "N", default_value_t = 0)]
    val_per_class: u64,
    /// Output directory (written as OUT.partial, swapped in when complete; a kill leaves the
    /// old or the new directory whole).
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing non-empty output directory, only if lt-data wrote it (it holds
    /// .lt-output.json, or an older lt-data's dataset.json). Anything else is refused, as are
    /// /, the home directory and the current directory or its ancestors.
    #[arg(long)]
    force: bool,
    /// cifar100: use the 20 coarse labels instead of the 100 fine labels.
    #[arg(long)]
    coarse: bool,
    /// folder: side of the output images (shorter side resized, then center-cropped).
    #[arg(long, default_value_t = 32)]
    size: u32,
    /// folder (list form): list file (`path label` per line) of the test split.
    #[arg(long)]
    test_list: Option<PathBuf>,
    /// folder (list form): directory the listed paths are relative to (default: the list's).
    #[arg(long)]
    image_root: Option<PathBuf>,
    /// synthetic: test images per class.
    #[arg(long, default_value_t = 1000)]
    test_per_class: u64,
    /// synthetic: seed of the image generator (independent of --seed).
    #[arg(long, default_value_t = 0)]
    synthetic_seed: u64,
    /// Most bytes of images the source may load into memory (train + test), checked before
    /// reading: synthetic counts, folder images x 3 x size^2, CIFAR file sizes. A number with
    /// an optional K, M, G or T suffix (powers of 1024). Default 8G, or the environment
    /// variable LT_MAX_SOURCE_BYTES; raise it for a larger source on a machine with the memory.
    #[arg(long, value_name = "SIZE")]
    max_source_bytes: Option<String>,
}

#[derive(Args)]
struct WeightsArgs {
    /// The dataset directory (its dataset.json `subset_counts` are used).
    dir: PathBuf,
    /// Weighting scheme.
    #[arg(long, value_parser = vocab::<WeightsKind>())]
    scheme: WeightsKind,
    /// beta in [0, 1) for effective-number, e.g. 0.9999 (Cui et al.) or (N-1)/N.
    #[arg(long)]
    beta: Option<f64>,
    /// Normalisation of the weights.
    #[arg(long, value_parser = vocab::<Normalize>(), default_value = "classes")]
    normalize: Normalize,
}

#[derive(Args)]
struct FetchArgs {
    /// cifar10, cifar100 or cifar10-py.
    name: String,
    /// Directory to download and extract into.
    #[arg(long, default_value = "data")]
    dir: PathBuf,
    /// Download from this URL instead of the official one (a mirror).
    #[arg(long)]
    url: Option<String>,
    /// Expected MD5 (hex) instead of the official archive's published one.
    #[arg(long)]
    md5: Option<String>,
    /// Refuse an archive that expands to more bytes than this (the CIFAR archives expand to
    /// about 180 MB). Existing directories are replaced only when an earlier fetch wrote them.
    #[arg(long, default_value_t = lt_data::fetch::ExtractLimits::default().max_bytes)]
    max_extract_bytes: u64,
}

/// Progress bars on stderr (hidden when stderr is not a terminal, or with --quiet).
struct Bars {
    quiet: bool,
    timings: bool,
    bar: Mutex<Option<ProgressBar>>,
    stage: Mutex<Option<(String, Instant)>>,
}

impl Bars {
    fn end_stage(&self) {
        if let Some((name, t)) = self.stage.lock().expect("stage lock").take()
            && self.timings
        {
            eprintln!("{name}: {:.3} s", t.elapsed().as_secs_f64());
        }
    }
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: u64) {
        self.end_stage();
        *self.stage.lock().expect("stage lock") = Some((name.to_string(), Instant::now()));
        if self.quiet {
            return;
        }
        let bar = if total > 0 {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{msg:>22} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}")
                    .expect("template")
                    .progress_chars("=> "),
            );
            b
        } else {
            let b = ProgressBar::new_spinner();
            b.enable_steady_tick(std::time::Duration::from_millis(100));
            b
        };
        bar.set_message(name.to_string());
        if let Some(old) = self.bar.lock().expect("bar lock").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &*self.bar.lock().expect("bar lock") {
            b.inc(n);
        }
    }

    fn finish(&self) {
        self.end_stage();
        if let Some(b) = self.bar.lock().expect("bar lock").take() {
            b.finish_and_clear();
        }
    }
}

/// A byte count: `1000`, `512M`, `8G`, `1T` (K/M/G/T: powers of 1024; `KiB`, `GB`... accepted).
fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches('B').trim_end_matches('I') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => bail!("`{text}` is not a size: use a number of bytes with an optional K, M, G or T suffix, e.g. 16G"),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(1u64 << shift)).with_context(|| {
        format!("`{text}` is not a size: use a number of bytes with an optional K, M, G or T suffix, e.g. 16G")
    })
}

fn parse_counts(s: &str) -> Result<Vec<u64>> {
    if s.trim() == "seed" {
        return Ok(SEED_COUNTS.to_vec());
    }
    s.split(',')
        .map(|x| x.trim().parse::<u64>().with_context(|| format!("--counts: `{x}` is not a non-negative integer")))
        .collect()
}

fn run_build(a: BuildArgs, progress: &Bars) -> Result<()> {
    let source = SourceSpec::parse(&a.source)?;
    let need_if = || a.imbalance.context("--profile exp/step needs --imbalance IF (e.g. 100)");
    let profile = match a.profile {
        ProfileKind::Exp => ProfileSpec::Ready(Profile::Exp {
            imbalance: need_if()?,
            n_max: a.n_max,
            shuffle_classes: a.shuffle_classes,
        }),
        ProfileKind::Step => ProfileSpec::Ready(Profile::Step {
            imbalance: need_if()?,
            n_max: a.n_max,
            shuffle_classes: a.shuffle_classes,
        }),
        ProfileKind::Counts => ProfileSpec::Ready(Profile::Counts(parse_counts(
            a.counts.as_deref().context("--profile counts needs --counts a,b,... (or --counts seed)")?,
        )?)),
        ProfileKind::Indices => {
            ProfileSpec::IndicesFile(a.indices.clone().context("--profile indices needs --indices FILE")?)
        }
        ProfileKind::Balanced => ProfileSpec::Ready(Profile::Balanced),
    };
    let strategies = Strategy::parse_list(&a.resample, a.beta)?;
    let max_source_bytes = match (&a.max_source_bytes, std::env::var("LT_MAX_SOURCE_BYTES")) {
        (Some(v), _) => parse_size(v).context("--max-source-bytes")?,
        (None, Ok(v)) => parse_size(&v).context("environment variable LT_MAX_SOURCE_BYTES")?,
        (None, Err(_)) => lt_data::source::DEFAULT_MAX_SOURCE_BYTES,
    };
    let cfg = BuildConfig {
        source_text: a.source.clone(),
        source,
        source_options: SourceOptions {
            coarse: a.coarse,
            size: a.size,
            test_list: a.test_list,
            image_root: a.image_root,
            test_per_class: a.test_per_class,
            synthetic_seed: a.synthetic_seed,
            max_source_bytes,
        },
        profile,
        seed: a.seed,
        val_per_class: a.val_per_class,
        strategies,
        epochs: a.epochs,
        out: a.out.clone(),
        force: a.force,
    };
    let meta = build(&cfg, progress)?;
    let total: u64 = meta.subset_counts.iter().sum();
    eprintln!(
        "wrote {}: subset {} of {} training images, subset_counts {:?}, manifests [{}]",
        a.out.display(),
        total,
        meta.source_counts.iter().sum::<u64>(),
        meta.subset_counts,
        meta.manifests.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    if let Some(v) = &meta.validation {
        eprintln!(
            "validation: {} images per class held out before the long-tail cut ({}, {} in all)",
            v.per_class,
            v.file,
            meta.validation_counts.iter().sum::<u64>()
        );
    }
    Ok(())
}

fn run_weights(a: WeightsArgs) -> Result<()> {
    let meta = DatasetMeta::read(&a.dir)?;
    let scheme = WeightScheme::from_kind(a.scheme, a.beta)?;
    let normalize = a.normalize;
    let weights = lt_data::class_weights(&meta.subset_counts, &scheme, normalize)?;
    let beta = match scheme {
        WeightScheme::EffectiveNumber { beta } => Some(beta),
        _ => None,
    };
    let out = serde_json::json!({
        "scheme": a.scheme,
        "beta": beta,
        "normalize": normalize,
        "counts": meta.subset_counts,
        "weights": weights,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn run_fetch(a: FetchArgs, progress: &Bars) -> Result<()> {
    let known = lt_data::fetch::known(&a.name)?;
    let url = a.url.as_deref().unwrap_or(known.url);
    let md5 = a.md5.as_deref().unwrap_or(known.md5);
    let limits = lt_data::fetch::ExtractLimits { max_bytes: a.max_extract_bytes, ..Default::default() };
    let paths = lt_data::fetch::fetch(url, md5, &a.dir, &limits, progress)?;
    for p in &paths {
        eprintln!("extracted {}", p.display());
    }
    eprintln!("use it with: lt-data build --source {}:{}", a.name, a.dir.join(known.dir).display());
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let bars = Bars { quiet: cli.quiet, timings: cli.timings, bar: Mutex::new(None), stage: Mutex::new(None) };
    let start = Instant::now();
    let result = match cli.cmd {
        Cmd::Build(a) => run_build(a, &bars),
        Cmd::Weights(a) => run_weights(a),
        Cmd::Inspect { dir, width } => {
            let ins = lt_data::inspect::inspect(&dir)?;
            print!("{}", lt_data::inspect::render(&ins, width));
            if ins.files_ok.iter().any(|f| !f.1) {
                bail!("some files of {} do not match their sha256 in dataset.json", dir.display());
            }
            Ok(())
        }
        Cmd::Fetch(a) => run_fetch(a, &bars),
    };
    if cli.timings {
        eprintln!("total: {:.3} s", start.elapsed().as_secs_f64());
    }
    result
}

//! `lt-train [options]`: the training run's flags, mapped onto `TrainConfig`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lt_format::cli::vocab;
use lt_format::config::HeadKind;
use lt_train::config::{Ep, LossKind, TrainConfig, WeightsKind, WeightsNormalize};
use lt_train::loader::Augment;
use lt_train::schedule::Schedule;
use lt_train::train::{EpochSummary, Progress};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Read every setting from a TOML file (keys as the flags, `_` for `-`); --out, --data,
    /// --resume, --force and --quiet may still be given.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// A short name for the run, shown by lt-report (default: the settings that differ between runs).
    #[arg(long)]
    pub label: Option<String>,
    /// Dataset directory written by `lt-data build`.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[arg(long, value_name = "NAME", conflicts_with = "model", help = arch_help())]
    pub arch: Option<String>,
    /// Classifier of --arch.
    #[arg(long, value_parser = vocab::<HeadKind>())]
    pub head: Option<HeadKind>,
    /// Scale s of the cosine head (default: 1 with --loss ldam, whose --ldam-scale multiplies
    /// cos − margin as LDAM-DRW does; else 30).
    #[arg(long, allow_negative_numbers = true)]
    pub cosine_scale: Option<f64>,
    /// Start from an ONNX image classifier instead (its initializer names are kept).
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// Run directory to write (run.json, metrics.parquet, predictions.parquet, model.onnx, checkpoints/).
    #[arg(long, value_name = "RUN")]
    pub out: Option<PathBuf>,
    /// Execution provider; cuda without a usable GPU is an error, auto says what it picked.
    #[arg(long, value_parser = vocab::<Ep>())]
    pub ep: Option<Ep>,
    // Numeric settings take a leading `-` as part of the value, so `--lr -1` is refused by
    // TrainConfig::validate naming the setting and its range, not read as an unknown flag.
    /// CUDA device index.
    #[arg(long, allow_negative_numbers = true)]
    pub device: Option<i32>,
    /// Allow TF32 math on CUDA (faster, ~1e-3 relative precision).
    #[arg(long)]
    pub tf32: bool,
    /// On CUDA, run each training step as plain kernel launches instead of replaying a
    /// captured CUDA graph (capture falls back to this by itself when it fails).
    #[arg(long)]
    pub no_cuda_graph: bool,
    /// On CUDA, pick cuDNN convolution algorithms by heuristics instead of timing every
    /// candidate when the session starts (faster start, possibly slower steps).
    #[arg(long)]
    pub cudnn_heuristic: bool,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training batch size (the training graph is built for it; the last partial batch of an epoch is dropped).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Evaluation batch size.
    #[arg(long)]
    pub eval_batch_size: Option<usize>,
    /// Base learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Nesterov momentum (as torch.optim.SGD).
    #[arg(long)]
    pub nesterov: bool,
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// No weight decay on BatchNorm parameters and biases.
    #[arg(long)]
    pub no_decay_bn_bias: bool,
    /// Learning-rate schedule: constant, cosine, step:E1,E2 (x0.1 from each epoch on) or
    /// step:E1,E2*F (xF; LDAM-DRW: step:162,182*0.01).
    #[arg(long)]
    pub schedule: Option<Schedule>,
    /// Linear warm-up epochs.
    #[arg(long, value_name = "E")]
    pub warmup: Option<usize>,
    #[arg(long, value_parser = vocab::<LossKind>())]
    pub loss: Option<LossKind>,
    /// Focal loss γ.
    #[arg(long, allow_negative_numbers = true)]
    pub focal_gamma: Option<f64>,
    /// LDAM's largest margin.
    #[arg(long, allow_negative_numbers = true)]
    pub ldam_max_margin: Option<f64>,
    /// LDAM's logit scale s.
    #[arg(long, allow_negative_numbers = true)]
    pub ldam_scale: Option<f64>,
    /// Balanced-softmax / logit-adjustment τ, and the VS loss's τ (its additive τ·log prior).
    #[arg(long, allow_negative_numbers = true)]
    pub tau: Option<f64>,
    /// The VS loss's γ: class c's logit is multiplied by (n_c/n_max)^γ (Kini et al. 2021).
    #[arg(long, allow_negative_numbers = true)]
    pub vs_gamma: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub label_smoothing: Option<f64>,
    /// Class weights in the loss.
    #[arg(long, value_parser = vocab::<WeightsKind>())]
    pub weights: Option<WeightsKind>,
    /// β of the effective-number weights, in [0, 1).
    #[arg(long, allow_negative_numbers = true)]
    pub beta: Option<f64>,
    /// classes: rescale weights to sum to C (Cui et al.); none: raw values (the seed project).
    #[arg(long, value_parser = vocab::<WeightsNormalize>())]
    pub weights_normalize: Option<WeightsNormalize>,
    /// Deferred re-weighting: class weights off before this epoch (1-based), on from it.
    #[arg(long, value_name = "EPOCH")]
    pub drw: Option<usize>,
    /// Visit training images in the order of the dataset's manifest-STRATEGY.parquet.
    #[arg(long, value_name = "STRATEGY")]
    pub resample: Option<String>,
    /// Training augmentation.
    #[arg(long, value_parser = vocab::<Augment>())]
    pub augment: Option<Augment>,
    /// Same as --augment none.
    #[arg(long, conflicts_with = "augment")]
    pub no_augment: bool,
    /// RandAugment's N (Cubuk et al. 2020): operations per image, each drawn uniformly from 14
    /// (default 2, torchvision's). Acts with --augment randaugment.
    #[arg(long, value_name = "N")]
    pub randaugment_n: Option<usize>,
    /// RandAugment's M: the magnitude bin, 0 to 30 (default 9, torchvision's; 30 = AutoAugment's
    /// largest). Acts with --augment randaugment.
    #[arg(long, value_name = "M")]
    pub randaugment_m: Option<usize>,
    /// Cutout (DeVries & Taylor 2017): zero a SIZE×SIZE square at a random centre (clipped at
    /// the edges) of the normalised image, i.e. the channel mean; after any augmentation.
    #[arg(long, value_name = "SIZE")]
    pub cutout: Option<usize>,
    /// Mixup (Zhang et al. 2018): images λ·x_i + (1−λ)·x_j (j a permutation of the batch),
    /// λ ~ Beta(A, A), loss λ·L(y_i) + (1−λ)·L(y_j). Typical A: 0.2 to 1.
    #[arg(long, value_name = "A", allow_negative_numbers = true)]
    pub mixup: Option<f64>,
    /// CutMix (Yun et al. 2019): a box of x_j pasted into x_i, λ ~ Beta(A, A) sets its area
    /// 1−λ, λ then corrected to the pasted area. With --mixup too, each batch picks one (as timm).
    #[arg(long, value_name = "A", allow_negative_numbers = true)]
    pub cutmix: Option<f64>,
    /// Probability that a batch is mixed by --mixup/--cutmix (default 1).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub mix_prob: Option<f64>,
    /// SAM (sharpness-aware minimisation, Foret et al. 2021): every step takes the gradient at
    /// the weights moved by RHO·g/‖g‖ and applies it to the original weights; two forward and
    /// backward passes per step, BatchNorm statistics updated by the first. Long-tail papers
    /// (Rangwani et al. 2022) use 0.05 to 0.8 on top of LDAM-DRW or VS. Stage 1 only.
    #[arg(long, value_name = "RHO", allow_negative_numbers = true)]
    pub sam: Option<f64>,
    /// Adaptive SAM (Kwon et al. 2021): the ascent step scaled per weight by |w| (use a larger
    /// RHO, e.g. 2). Needs --sam.
    #[arg(long)]
    pub sam_adaptive: bool,
    /// Visit each epoch's images in index order (no shuffling; manifests are sorted too).
    #[arg(long)]
    pub no_shuffle: bool,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Carve this fraction of the training subset (per class) as a validation split; the best
    /// validation epoch is then the result. The test split never selects.
    #[arg(long, allow_negative_numbers = true)]
    pub val_fraction: Option<f64>,
    /// onnxruntime intra-op threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Two-stage training (Kang et al. 2020), after --epochs: crt retrains a re-initialised
    /// head on the frozen backbone; lws learns only a per-class scale of the frozen model's
    /// logits (same loop); tau-norm rescales the head's class vectors post hoc.
    #[arg(long, value_parser = vocab::<lt_format::config::Stage2>())]
    pub stage2: Option<lt_format::config::Stage2>,
    /// Epochs of --stage2 crt or lws (default 10); its metrics rows are numbered after --epochs.
    #[arg(long, value_name = "E2")]
    pub stage2_epochs: Option<usize>,
    /// Peak learning rate of --stage2 crt or lws (the same --schedule over its epochs, no warmup;
    /// default --lr).
    #[arg(long, value_name = "LR2")]
    pub stage2_lr: Option<f64>,
    /// Resampler of --stage2 crt or lws (default class-balanced; computed if the dataset lacks it).
    #[arg(long, value_name = "STRATEGY")]
    pub stage2_resample: Option<String>,
    /// τ of --stage2 tau-norm: each class vector w_c becomes w_c / ‖w_c‖^τ (default 1).
    #[arg(long, value_name = "T")]
    pub tau_norm: Option<f64>,
    /// MaxNorm (weight balancing, Alshammari et al. 2022): after every SGD step, each class's
    /// head weight vector is projected onto the ball of radius R (in both stages).
    #[arg(long, value_name = "R")]
    pub max_norm: Option<f64>,
    /// Do not check the dataset's files against the sha256 hashes `lt-data build` recorded in
    /// its dataset.json before training. By default a file that changed since the build (a
    /// flipped byte, an edited label, a copy cut short) stops the run; use this only for a
    /// directory you changed on purpose. Labels, indices and sizes are checked either way.
    #[arg(long)]
    pub no_verify: bool,
    /// Continue a run from RUN/checkpoints/last.ckpt.
    #[arg(long)]
    pub resume: bool,
    /// Overwrite a non-empty run directory.
    #[arg(long)]
    pub force: bool,
    /// No progress bars; one log line per epoch.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The resolved configuration: defaults, then the TOML file, then flags.
    pub fn resolve(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = read_config(path)?;
                toml::from_str::<TrainConfig>(&text)
                    .with_context(|| format!("{}: invalid training config", path.display()))?
            }
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { c.$field = v.clone(); } )* };
        }
        set!(data, out, ep, device, epochs, batch_size, eval_batch_size, lr, momentum, weight_decay, schedule, warmup);
        set!(loss, focal_gamma, ldam_max_margin, ldam_scale, tau, vs_gamma, label_smoothing);
        set!(weights, beta, weights_normalize);
        set!(randaugment_n, randaugment_m);
        if self.cutout.is_some() {
            c.cutout = self.cutout;
        }
        set!(augment, seed, val_fraction, head, mix_prob);
        if self.mixup.is_some() {
            c.mixup = self.mixup;
        }
        if self.cutmix.is_some() {
            c.cutmix = self.cutmix;
        }
        if self.cosine_scale.is_some() {
            c.cosine_scale = self.cosine_scale;
        }
        if self.arch.is_some() || self.model.is_some() {
            c.arch = self.arch.clone();
            c.model = self.model.clone();
        }
        if self.label.is_some() {
            c.label = self.label.clone();
        }
        if self.drw.is_some() {
            c.drw = self.drw;
        }
        if self.resample.is_some() {
            c.resample = self.resample.clone();
        }
        if self.threads.is_some() {
            c.threads = self.threads;
        }
        macro_rules! set_some {
            ($($field:ident),*) => { $( if self.$field.is_some() { c.$field = self.$field.clone(); } )* };
        }
        set_some!(stage2, stage2_epochs, stage2_lr, stage2_resample, tau_norm, max_norm, sam);
        c.tf32 |= self.tf32;
        c.no_cuda_graph |= self.no_cuda_graph;
        c.cudnn_heuristic |= self.cudnn_heuristic;
        c.nesterov |= self.nesterov;
        c.no_decay_bn_bias |= self.no_decay_bn_bias;
        c.no_verify |= self.no_verify;
        c.sam_adaptive |= self.sam_adaptive;
        if self.no_augment {
            c.augment = Augment::None;
        }
        if self.no_shuffle {
            c.shuffle = false;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Largest `--config` file read: a training config is a few hundred bytes of TOML.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The text of a `--config` file, refused beyond [`MAX_CONFIG_BYTES`] (`--config /dev/zero`
/// must not grow memory without bound).
fn read_config(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        anyhow::bail!(
            "{}: larger than {MAX_CONFIG_BYTES} bytes; a training config is a short TOML file",
            path.display()
        );
    }
    String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let cfg = args.resolve()?;
    let progress = BarProgress::new(args.quiet);
    let record = lt_train::train::run(&cfg, args.resume, args.force, &progress)?;
    progress.finish();
    let f = &record.final_metrics;
    println!(
        "done: {} (epoch {}, {}): test accuracy {:.4}, balanced {:.4}, G-mean {:.4}, macro-F1 {:.4}",
        cfg.out.display(),
        f.epoch,
        record.selection().rule.describe(),
        f.overall,
        f.balanced,
        f.gmean,
        f.macro_f1,
    );
    Ok(())
}

/// indicatif bars with images/s and ETA, or plain log lines with --quiet.
pub struct BarProgress {
    quiet: bool,
    bar: std::cell::RefCell<Option<ProgressBar>>,
    started: std::cell::Cell<Option<Instant>>,
    images: std::cell::Cell<usize>,
}

impl BarProgress {
    pub fn new(quiet: bool) -> Self {
        BarProgress { quiet, bar: Default::default(), started: Default::default(), images: Default::default() }
    }

    pub fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for BarProgress {
    fn message(&self, text: &str) {
        match &*self.bar.borrow() {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn epoch_start(&self, epoch: usize, epochs: usize, steps: usize) {
        self.started.set(Some(Instant::now()));
        self.images.set(0);
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} steps {msg} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        *self.bar.borrow_mut() = Some(bar);
    }

    fn step(&self, _step: usize, loss: f32, images: usize) {
        self.images.set(self.images.get() + images);
        if let Some(bar) = &*self.bar.borrow() {
            let secs = self.started.get().map_or(1.0, |t| t.elapsed().as_secs_f64()).max(1e-9);
            bar.set_message(format!("loss {loss:.4}, {:.0} img/s", self.images.get() as f64 / secs));
            bar.inc(1);
        }
    }

    fn epoch_end(&self, s: &EpochSummary) {
        self.finish();
        let val = s.val_balanced_accuracy.map(|v| format!(" val_balanced={v:.4}")).unwrap_or_default();
        eprintln!(
            "epoch={} train_loss={:.4} train_acc={:.4} test_acc={:.4} test_balanced={:.4}{val} seconds={:.1} images_per_s={:.0}",
            s.epoch,
            s.train_loss,
            s.train_accuracy,
            s.test_accuracy,
            s.test_balanced_accuracy,
            s.seconds,
            s.images_per_second
        );
    }
}

/// `--arch`'s help: the presets of lt-graph's table.
pub fn arch_help() -> String {
    let names = lt_graph::models::preset_names().join(", ");
    format!("Built-in network (weights drawn from --seed): {names}")
}

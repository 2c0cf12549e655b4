//! `lt-train bench`: training-step throughput with device-resident state.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lt_format::cli::vocab;
use lt_train::config::Ep;
use lt_train::config::TrainConfig;
use lt_train::loader::Augment;

/// The network whose training step `bench` and `agree` run.
#[derive(Args, Debug)]
struct StepNetwork {
    #[arg(long, default_value = "densenet-bc-40-k12", help = network_help())]
    arch: String,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 10)]
    classes: usize,
}

fn network_help() -> String {
    format!("Built-in network: {}", lt_graph::models::preset_names().join(", "))
}

/// How onnxruntime runs, besides the execution provider.
#[derive(Args, Debug)]
struct RuntimeOptions {
    /// CUDA device index.
    #[arg(long, default_value_t = 0)]
    device: i32,
    /// Allow TF32 on CUDA (faster; `agree` then matches to ~1e-2 instead of ~1e-4).
    #[arg(long)]
    tf32: bool,
    /// onnxruntime intra-op threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

impl RuntimeOptions {
    /// The device `ep` names (said on stderr) and the intra-op thread count; `cfg` adds the
    /// CUDA settings a bench varies.
    fn resolve(&self, ep: Ep, cfg: TrainConfig) -> Result<(lt_train::device::Device, usize)> {
        let cfg = TrainConfig { ep, device: self.device, tf32: self.tf32, ..cfg };
        let device = lt_train::train::resolve_device(&cfg, &super::train_cmd::BarProgress::new(true))?;
        Ok((device, self.threads.unwrap_or_else(lt_train::device::default_threads)))
    }
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    network: StepNetwork,
    /// Timed steps (after the warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, value_parser = vocab::<Ep>(), default_value = "cpu")]
    ep: Ep,
    #[command(flatten)]
    runtime: RuntimeOptions,
    /// On CUDA, time plain runs instead of replaying captured CUDA graphs.
    #[arg(long)]
    no_cuda_graph: bool,
    /// On CUDA, cuDNN algorithms by heuristics instead of exhaustive timing.
    #[arg(long)]
    cudnn_heuristic: bool,
    /// Write onnxruntime's profile with this prefix and print the top operators by time per
    /// timed step (the warm-up runs, ~2x slower than a steady step, are left out of the ranking).
    #[arg(long, value_name = "PREFIX")]
    profile: Option<PathBuf>,
    /// Time the head-only step of two-stage training (--stage2 crt: frozen backbone in eval
    /// mode, gradients for the head alone) instead of the full step.
    #[arg(long, conflicts_with = "sam")]
    head_only: bool,
    /// Time SAM's step with this rho (two forward and backward passes).
    #[arg(long, value_name = "RHO")]
    sam: Option<f32>,
    /// Also time evaluation (the inference graph on the live state) at this batch size.
    #[arg(long)]
    eval_batch_size: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let cuda = TrainConfig {
        no_cuda_graph: args.no_cuda_graph,
        cudnn_heuristic: args.cudnn_heuristic,
        ..TrainConfig::default()
    };
    let (device, threads) = args.runtime.resolve(args.ep, cuda)?;
    let opts = lt_graph::train::StepOptions {
        trainable: if args.head_only { lt_graph::train::Trainable::Head } else { lt_graph::train::Trainable::All },
        sam: args.sam.map(|rho| lt_graph::train::Sam { rho, adaptive: false }),
        ..Default::default()
    };
    let r = lt_train::bench::bench(
        &args.network.arch,
        &opts,
        args.network.classes,
        args.network.batch_size,
        args.steps,
        args.warmup,
        &device,
        threads,
        args.profile.as_deref(),
        args.eval_batch_size,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{} {} step, batch {} on {} ({} threads): {:.1} images/s, {:.1} ms/step over {} steps",
        r.arch, r.step, r.batch_size, r.device, threads, r.images_per_second, r.ms_per_step, r.steps
    );
    println!(
        "training graph: {} nodes ({} as built, before CSE and dead-node removal), built in {:.3}s; sessions created in {:.2}s",
        r.graph_nodes, r.graph_nodes_as_built, r.graph_build_seconds, r.session_seconds
    );
    if let (Some(n), Some(ips)) = (r.eval_batch_size, r.eval_images_per_second) {
        println!("evaluation batch {n}: {ips:.1} images/s");
    }
    match &r.cuda_graph {
        lt_train::engine::CudaGraph::Off => {}
        lt_train::engine::CudaGraph::Captured => println!("CUDA graphs: captured, steps replay them"),
        lt_train::engine::CudaGraph::Fallback(why) => println!("CUDA graphs: capture failed ({why}); plain runs"),
    }
    if !r.top_ops.is_empty() {
        println!("top operators, ms per timed step (warm-up runs excluded):");
        for (op, ms, share) in r.top_ops.iter().take(12) {
            println!("  {op:<24} {ms:>10.1} ms  {:>5.1}%", share * 100.0);
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct LoaderBenchArgs {
    /// Dataset directory written by `lt-data build`.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Epochs over the training subset (shuffled, as in training).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, value_parser = vocab::<Augment>(), default_value = "crop-flip")]
    augment: Augment,
    /// RandAugment's N (with --augment randaugment), as in training.
    #[arg(long, value_name = "N", default_value_t = 2)]
    randaugment_n: usize,
    /// RandAugment's M, the magnitude bin 0 to 30 (with --augment randaugment).
    #[arg(long, value_name = "M", default_value_t = 9)]
    randaugment_m: usize,
    /// Cutout's square side in pixels, after any augmentation (default: none).
    #[arg(long, value_name = "SIZE")]
    cutout: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run_loader(args: &LoaderBenchArgs) -> Result<()> {
    if args.batch_size == 0 || args.epochs == 0 {
        anyhow::bail!("--batch-size and --epochs must be at least 1");
    }
    // The same checks as a training run's settings.
    let settings = TrainConfig {
        randaugment_n: args.randaugment_n,
        randaugment_m: args.randaugment_m,
        cutout: args.cutout,
        ..TrainConfig::default()
    };
    settings.validate_augment()?;
    let params = lt_train::augment::Params::of(&settings);
    let r = lt_train::bench::loader(&args.data, args.batch_size, args.epochs, args.augment, params, args.seed)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "loader ({:?} {:?}, batch {}, {} rayon threads): {:.0} images/s ({} images in {:.3}s); dataset read + normalisation statistics {:.3}s",
        r.augment,
        r.params,
        r.batch_size,
        rayon::current_num_threads(),
        r.images_per_second,
        r.images,
        r.seconds,
        r.open_seconds
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct AgreeArgs {
    #[command(flatten)]
    network: StepNetwork,
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// cuda: CUDA (CUDA formulation) against CPU (CPU formulation). cpu: both formulations
    /// on the CPU, which checks the CUDA formulation where no GPU is.
    #[arg(long, value_parser = vocab::<Ep>(), default_value = "cuda")]
    ep: Ep,
    #[command(flatten)]
    runtime: RuntimeOptions,
    /// Fail (exit 1) when the largest relative loss difference exceeds this.
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run_agree(args: &AgreeArgs) -> Result<()> {
    use lt_graph::train::Lowering;
    let (other, threads) = args.runtime.resolve(args.ep, TrainConfig::default())?;
    let cpu = lt_train::device::Device::Cpu;
    let r = lt_train::bench::agreement(
        &args.network.arch,
        args.network.classes,
        args.network.batch_size,
        args.steps,
        [(&cpu, Lowering::Cpu), (&other, Lowering::Cuda)],
        threads,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} batch {}: loss of {} ({}) vs {} ({}), {} steps",
            r.arch, r.batch_size, r.sides[0].0, r.sides[0].1, r.sides[1].0, r.sides[1].1, args.steps
        );
        for (k, (a, b)) in r.losses[0].iter().zip(&r.losses[1]).enumerate() {
            println!("  step {:>3}: {a:.6} {b:.6}", k + 1);
        }
        println!("max relative difference {:.2e} (tolerance {:.0e})", r.max_relative_difference, args.tolerance);
    }
    // A NaN difference (a diverged side) fails too.
    if r.max_relative_difference.is_nan() || r.max_relative_difference > args.tolerance {
        anyhow::bail!(
            "the loss curves differ by {:.2e} relative, above the tolerance {:.0e}",
            r.max_relative_difference,
            args.tolerance
        );
    }
    Ok(())
}

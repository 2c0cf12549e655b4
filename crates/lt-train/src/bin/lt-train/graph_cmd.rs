//! `lt-train graph`: writes the training-step and evaluation graphs of a model so users can
//! inspect them (Netron, onnx.checker) without training.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use lt_format::cli::vocab;
use lt_format::vocab::{LossKind, LoweringName};
use lt_graph::models::{Head, build, preset_names};
use lt_graph::train::{Lowering, Sam, Sgd, StateKind, StepOptions, TrainingGraphSpec, training_graph_with};
use lt_train::config::TrainConfig;

/// Options of `lt-train graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    #[arg(long, conflicts_with = "model", required_unless_present = "model", help = crate::train_cmd::arch_help())]
    pub arch: Option<String>,
    /// Classifier of --arch: linear, or cosine (LDAM's NormedLinear).
    #[arg(long, default_value = "linear", value_parser = ["linear", "cosine"])]
    pub head: String,
    /// Scale s of the cosine head.
    #[arg(long, default_value_t = 30.0)]
    pub cosine_scale: f32,
    #[arg(long, value_name = "FILE.onnx", help = model_help())]
    pub model: Option<PathBuf>,
    /// Number of classes of the head (--arch); --model takes it from the model's output.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// The loss of the training step.
    #[arg(long, default_value = "ce", value_parser = vocab::<LossKind>())]
    pub loss: LossKind,
    /// Label smoothing of the ce loss (0 = none).
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f32,
    /// Focusing parameter gamma of the focal loss.
    #[arg(long, default_value_t = 2.0)]
    pub focal_gamma: f32,
    /// Largest LDAM margin (the rarest class gets it; margins scale as n_c^-1/4).
    #[arg(long, default_value_t = 0.5)]
    pub ldam_max_margin: f32,
    /// LDAM logit scale s.
    #[arg(long, default_value_t = 30.0)]
    pub ldam_scale: f32,
    /// Balanced-softmax / logit-adjustment strength tau (logits + tau·log prior); VS's τ too.
    #[arg(long, default_value_t = 1.0)]
    pub tau: f32,
    /// The VS loss's γ (logit c multiplied by (n_c/n_max)^γ).
    #[arg(long, default_value_t = 0.3)]
    pub vs_gamma: f32,
    /// The step for mixed batches (--mixup/--cutmix): two more inputs, `labels_mix` and
    /// `mix_lambda`, and the loss λ·L(labels) + (1−λ)·L(labels_mix).
    #[arg(long)]
    pub mixed_labels: bool,
    /// SAM's ρ: the step runs a second forward and backward pass at the weights moved by
    /// ρ·g/‖g‖ and updates with that gradient (about twice the nodes).
    #[arg(long, value_name = "RHO")]
    pub sam: Option<f32>,
    /// Adaptive SAM (the ascent step scaled per weight by |w|); needs --sam.
    #[arg(long, requires = "sam")]
    pub sam_adaptive: bool,
    /// Training examples per class, comma-separated (LDAM margins and the balanced-softmax
    /// prior); default: the same count for every class.
    #[arg(long, value_delimiter = ',')]
    pub class_counts: Vec<u64>,
    /// Images per step; the training graph has static shapes.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Use Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// L2 weight decay added to the gradient, as torch.optim.SGD.
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f32,
    /// Do not decay BatchNorm weights and biases.
    #[arg(long)]
    pub no_decay_bn_bias: bool,
    /// The per-provider form of convolution gradients, BatchNorm and the ReLU mask.
    #[arg(long, default_value = "cpu", value_parser = vocab::<LoweringName>())]
    pub conv_grad: LoweringName,
    /// Output directory (created): train.onnx and eval.onnx.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the initial weights of --arch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Builds and writes the graphs, printing a short summary.
pub fn run(args: &GraphArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let (inference, classes) = match (&args.arch, &args.model) {
        (Some(arch), None) => {
            let head = if args.head == "cosine" { Head::Cosine { scale: args.cosine_scale } } else { Head::Linear };
            (build(arch, args.classes, head, args.seed)?, args.classes)
        }
        (None, Some(path)) => {
            let model = lt_graph::import::import(&lt_graph::onnx::load(path)?)
                .with_context(|| format!("importing {}", path.display()))?;
            let classes = lt_graph::import::output_classes(&model)?;
            (model, classes)
        }
        _ => bail!("pass exactly one of --arch ({}) or --model FILE.onnx", preset_names().join(", ")),
    };
    let class_counts = if args.class_counts.is_empty() {
        vec![1; classes]
    } else if args.class_counts.len() != classes {
        bail!("--class-counts has {} values but the model has {classes} classes", args.class_counts.len());
    } else {
        args.class_counts.clone()
    };
    // The loss as lt-train builds it for a run with these settings.
    let loss = lt_train::train::loss_of(&TrainConfig {
        loss: args.loss,
        label_smoothing: args.label_smoothing.into(),
        focal_gamma: args.focal_gamma.into(),
        ldam_max_margin: args.ldam_max_margin.into(),
        ldam_scale: args.ldam_scale.into(),
        tau: args.tau.into(),
        vs_gamma: args.vs_gamma.into(),
        ..TrainConfig::default()
    });
    let spec = TrainingGraphSpec {
        batch_size: args.batch_size,
        loss,
        sgd: Sgd {
            momentum: args.momentum,
            nesterov: args.nesterov,
            weight_decay: args.weight_decay,
            decay_bn_and_bias: !args.no_decay_bn_bias,
        },
        class_counts,
        lowering: match args.conv_grad {
            LoweringName::Cpu => Lowering::Cpu,
            LoweringName::Cuda => Lowering::Cuda,
        },
        mixed_labels: args.mixed_labels,
    };
    let opts =
        StepOptions { sam: args.sam.map(|rho| Sam { rho, adaptive: args.sam_adaptive }), ..StepOptions::default() };
    let tg = training_graph_with(&inference, &spec, &opts)?;
    let built = started.elapsed();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let train_path = args.out.join("train.onnx");
    let eval_path = args.out.join("eval.onnx");
    lt_graph::onnx::save(&tg.model, &train_path)?;
    lt_graph::onnx::save(&inference, &eval_path)?;
    let params: usize = tg.state.iter().filter(|s| s.kind == StateKind::Parameter).map(|s| s.init.len()).sum();
    let nodes = |m: &lt_graph::onnx::proto::ModelProto| m.graph.as_ref().map_or(0, |g| g.node.len());
    println!(
        "training graph: {} ({} nodes, built in {:.2}s)",
        train_path.display(),
        nodes(&tg.model),
        built.as_secs_f64()
    );
    println!("evaluation graph: {} ({} nodes)", eval_path.display(), nodes(&inference));
    println!(
        "parameters: {params}; state tensors: {}; classes: {}; images: [{}, {}, {}, {}]",
        tg.state.len(),
        tg.num_classes,
        args.batch_size,
        tg.image_shape[0],
        tg.image_shape[1],
        tg.image_shape[2]
    );
    Ok(())
}

/// `--model`'s help, listing the ops from lt-graph's rule table.
fn model_help() -> String {
    format!(
        "An ONNX image classifier to make trainable instead of --arch (its initializer names are kept; ops: {})",
        lt_graph::train::supported_ops().join(", ")
    )
}

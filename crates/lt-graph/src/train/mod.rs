//! The training-step graph: forward (BatchNorm in training mode, decomposed), loss, a
//! hand-written reverse-mode backward pass and the SGD update, as ONE ONNX model of standard
//! `ai.onnx` ops (opset 17) that stock onnxruntime runs on CPU and CUDA.
//!
//! The step's inputs are `images` [B, C, H, W], `labels` [B] (int64), `class_weights`
//! [classes], `lr` (a scalar) and the state ([`TrainingGraph::state`]: parameters, running
//! statistics, momenta); its outputs are `loss`, `logits` [B, classes] and the updated state,
//! `<name>.new` for every state tensor.
//!
//! [`training_graph`] is the orchestration: `model.rs` reads the inference model, the
//! forward sweep (`tape.rs`) runs each node's rule from `ops/` (one file per op: roles,
//! validation, forward per lowering, backward), `loss.rs` adds the loss and its gradient,
//! the backward sweep replays the tape in reverse, `sgd.rs` emits the update and
//! `weights.rs` moves values between initializers and the host. Everything is wired through
//! the typed emitter (`emit.rs`, output shapes inferred by `infer.rs`).

use std::collections::HashMap;

use crate::GraphError;
use crate::onnx::Tensor;
use crate::onnx::proto::{DataType, ModelProto, TensorProto};

mod emit;
mod head;
pub(crate) mod infer;
mod loss;
mod model;
mod ops;
mod sam;
mod sgd;
mod stats;
mod tape;
mod weights;

use emit::{Emitter, Value};
pub use head::{HeadInfo, LOGIT_SCALES, StepOptions, Trainable, head_of, with_logit_scales};
use loss::emit_loss;
use model::Source;
pub use sam::Sam;
use sgd::{Param, emit_sgd};
use tape::{Ctx, Forward};
pub use weights::{tensor_f32, tensor_i64, with_weights};

/// The names of the training step's inputs and outputs: the contract between the graph
/// lt-graph writes and the engine lt-train binds (and `lt-train graph`'s users read).
pub mod step_io {
    /// `[B, C, H, W]` float: the normalised batch.
    pub const IMAGES: &str = "images";
    /// `[B]` int64: the true classes.
    pub const LABELS: &str = "labels";
    /// `[C]` float: the loss's per-class weights.
    pub const CLASS_WEIGHTS: &str = "class_weights";
    /// Scalar float: this step's learning rate.
    pub const LR: &str = "lr";
    /// `[B]` int64: the partner classes of a mixed batch (mixup/cutmix graphs only).
    pub const LABELS_MIX: &str = "labels_mix";
    /// Scalar float: the mixing weight λ of `labels` (mixup/cutmix graphs only).
    pub const MIX_LAMBDA: &str = "mix_lambda";
    /// Scalar float output: the batch's loss.
    pub const LOSS: &str = "loss";
    /// `[B, C]` float output: the batch's logits (before the update).
    pub const LOGITS: &str = "logits";
}

/// The loss minimised by the training step. Every loss takes the per-class `class_weights`
/// input with PyTorch's weighted-mean semantics: `Σ_n w[y_n]·l_n / Σ_n w[y_n]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    /// Softmax cross-entropy, optionally label-smoothed (PyTorch's `label_smoothing`).
    CrossEntropy { label_smoothing: f32 },
    /// Focal loss `-(1-p_y)^γ·log p_y` (with class weights: class-balanced focal).
    Focal { gamma: f32 },
    /// LDAM: the true-class logit minus a margin `∝ n_c^(-1/4)` (largest = `max_margin`),
    /// everything scaled by `scale`, then cross-entropy.
    Ldam { max_margin: f32, scale: f32 },
    /// Balanced softmax, which is also the logit-adjusted loss of Menon et al. 2021 (one
    /// loss, two names): cross-entropy on `logits + tau·log(prior)`, prior π_c = n_c / Σ n.
    BalancedSoftmax { tau: f32 },
    /// VS loss (vector scaling, Kini et al. 2021): cross-entropy on `z_c·(n_c/n_max)^γ +
    /// tau·log π_c`, i.e. the reference code's `z_c / Δ_c + ι_c` with `Δ_c = (n_max/n_c)^γ`:
    /// the largest class's logit is kept, rarer classes' are shrunk.
    Vs { gamma: f32, tau: f32 },
}

/// `torch.optim.SGD` (dampening 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd {
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
    /// When false, BatchNorm weights/biases and every 1-D bias get no weight decay.
    pub decay_bn_and_bias: bool,
}

/// How ops are formulated for an execution provider (every form is exact; their speed
/// differs per provider). The op rules in `ops/` say what each lowering changes: convolution
/// gradients (`conv.rs`), BatchNorm (`batch_norm.rs`) and the ReLU mask (`relu.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lowering {
    /// For onnxruntime's CPU provider: conv dX by a Conv with the flipped, transposed
    /// kernel, dW by one batched MatMul over shifted copies; BatchNorm as a depthwise 1x1
    /// Conv; the ReLU mask as a float Mul.
    Cpu,
    /// For CUDA: conv dX by ConvTranspose (cuDNN backward-data), dW by a Conv on
    /// batch-transposed tensors (1x1 convs by MatMul); BatchNorm as one inference-form
    /// BatchNormalization node; the ReLU mask as one Where.
    Cuda,
}

/// What to build.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingGraphSpec {
    pub batch_size: usize,
    pub loss: Loss,
    pub sgd: Sgd,
    /// Training examples per class (LDAM margins, balanced-softmax prior); its length must be
    /// the number of classes.
    pub class_counts: Vec<u64>,
    pub lowering: Lowering,
    /// Mixed batches (mixup, cutmix): the step takes two more inputs, `labels_mix` [B] (int64,
    /// the partner of each image) and `mix_lambda` (a scalar, the weight of `labels`), and
    /// minimises `λ·L(labels) + (1−λ)·L(labels_mix)` (see `loss.rs`). When false the graph is
    /// exactly the unmixed one.
    pub mixed_labels: bool,
}

/// Role of a state tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKind {
    Parameter,
    Momentum,
    RunningMean,
    RunningVar,
}

/// A tensor fed in each step and returned updated (feed `output` back as `name`).
#[derive(Clone, Debug, PartialEq)]
pub struct StateTensor {
    /// Graph input name.
    pub name: String,
    /// Graph output carrying the updated value.
    pub output: String,
    pub kind: StateKind,
    pub dims: Vec<i64>,
    /// Initial value (from the inference model; zeros for momenta).
    pub init: Vec<f32>,
}

/// The training step and its state.
#[derive(Clone, Debug)]
pub struct TrainingGraph {
    pub model: ModelProto,
    pub state: Vec<StateTensor>,
    pub num_classes: usize,
    /// `[channels, height, width]` of `images`.
    pub image_shape: [usize; 3],
    /// Node counts before and after the graph-level clean-up (CSE, dead nodes).
    pub cleanup: crate::optimize::OptimizeStats,
}

/// The ops [`training_graph`] differentiates (the op types of the rule table `ops::RULES`).
pub fn supported_ops() -> Vec<&'static str> {
    ops::RULES.iter().map(|(op, _)| *op).collect()
}

/// Builds the training step of `inference` (see the module docs for its inputs and outputs).
pub fn training_graph(inference: &ModelProto, spec: &TrainingGraphSpec) -> Result<TrainingGraph, GraphError> {
    training_graph_with(inference, spec, &StepOptions::default())
}

/// [`training_graph`] with [`StepOptions`]: only the head trained (a frozen backbone in eval
/// mode), MaxNorm on the head's class vectors, SAM's two passes (`sam.rs`).
pub fn training_graph_with(
    inference: &ModelProto,
    spec: &TrainingGraphSpec,
    opts: &StepOptions,
) -> Result<TrainingGraph, GraphError> {
    model::graph_of(inference)?;
    let bsz = spec.batch_size as i64;
    if bsz < 2 {
        return Err(GraphError::Config(format!(
            "batch_size {} is too small: BatchNorm in training mode needs at least 2 images",
            spec.batch_size
        )));
    }
    if let Some(sam) = &opts.sam {
        sam.validate()?;
    }
    let mut src = Source::read(inference)?;
    let max_norm = head::apply(&mut src, opts)?;
    if spec.class_counts.is_empty() {
        return Err(GraphError::Config("class_counts is empty: pass the training examples per class".into()));
    }
    let num_classes = spec.class_counts.len();
    let c = num_classes as i64;

    let mut cx = Ctx::new(Emitter::new("lt_train_step"), spec.lowering);
    let [ic, ih, iw] = src.image_shape.map(|d| d as i64);
    let images = cx.input(step_io::IMAGES, DataType::Float, &[bsz, ic, ih, iw])?;
    let labels = cx.input(step_io::LABELS, DataType::Int64, &[bsz])?;
    let cw = cx.input(step_io::CLASS_WEIGHTS, DataType::Float, &[c])?;
    let lr = cx.input(step_io::LR, DataType::Float, &[])?;
    let mix = if spec.mixed_labels {
        let labels_mix = cx.input(step_io::LABELS_MIX, DataType::Int64, &[bsz])?;
        Some((labels_mix, cx.input(step_io::MIX_LAMBDA, DataType::Float, &[])?))
    } else {
        None
    };
    let (state, mut params, inputs) = declare_state(&mut cx, &src)?;
    if let Some((name, axis, r)) = &max_norm {
        params.iter_mut().filter(|p| &p.name == name).for_each(|p| p.max_norm = Some((*axis, *r)));
    }
    let mut values = inputs.clone();
    values.insert(src.image_input.clone(), images);
    let batch = Batch { labels, mix, class_weights: cw, eval_mode: opts.trainable != Trainable::All };
    let first = forward_backward(cx, &src, values.clone(), &batch, spec)?;
    let (mut cx, loss, logits) = (first.cx, first.loss, first.logits);
    if let Some(sam) = opts.sam {
        // The second pass runs at w + ε; its running statistics are dropped (see `sam.rs`).
        let shifted = sam::perturbed_weights(&mut cx, &params, sam)?;
        for (p, &w) in params.iter_mut().zip(&shifted) {
            cx.set_needs_grad(w);
            values.insert(p.name.clone(), w);
            p.grad_of = w;
        }
        cx = forward_backward(cx, &src, values, &batch, spec)?.cx;
    }

    cx.output(loss, step_io::LOSS)?;
    cx.output(logits, step_io::LOGITS)?;
    emit_sgd(&mut cx, &params, spec, lr)?;
    for (name, upd) in &first.running_updates {
        cx.output(*upd, &format!("{name}.new"))?;
    }
    // Running statistics no node updates are passed through unchanged.
    for s in state.iter().filter(|s| matches!(s.kind, StateKind::RunningMean | StateKind::RunningVar)) {
        if !first.running_updates.iter().any(|(n, _)| n == &s.name) {
            cx.output(inputs[&s.name], &s.output)?;
        }
    }
    let mut model = cx.finish().finish();
    let cleanup = crate::optimize::optimize(&mut model);
    Ok(TrainingGraph { model, state, num_classes, image_shape: src.image_shape, cleanup })
}

/// The step's inputs besides the images and the state.
struct Batch {
    labels: Value,
    /// `labels_mix` and λ of a mixed batch.
    mix: Option<(Value, Value)>,
    class_weights: Value,
    /// A frozen backbone: BatchNorm by running statistics, Dropout the identity.
    eval_mode: bool,
}

/// What one forward and backward pass leaves: the gradients are in `cx`.
struct Pass {
    cx: Ctx,
    loss: Value,
    logits: Value,
    /// New running statistics: (state input name, value).
    running_updates: Vec<(String, Value)>,
}

/// One forward sweep from `values` (the image input and the state by source name), the
/// loss, and the backward sweep that pushes every parameter's gradient into the context.
fn forward_backward(
    cx: Ctx,
    src: &Source,
    values: HashMap<String, Value>,
    batch: &Batch,
    spec: &TrainingGraphSpec,
) -> Result<Pass, GraphError> {
    let mut forward = Forward::new(cx, src, values);
    forward.eval_mode = batch.eval_mode;
    let swept = forward.sweep(&src.graph.node)?;
    let mut cx = swept.cx;
    let logits = swept.values.get(&src.logits).copied().ok_or_else(|| GraphError::UnknownValue {
        name: src.logits.clone(),
        hint: "graph output never computed".into(),
    })?;
    let (bsz, c) = (spec.batch_size as i64, spec.class_counts.len() as i64);
    let ls = cx.shape(logits);
    if ls != [bsz, c] {
        return Err(GraphError::Config(format!(
            "the model's output `{}` has shape {ls:?} but class_counts has {c} classes (expected [{bsz}, {c}])",
            src.logits
        )));
    }
    let (loss, dlogits) = emit_loss(&mut cx, logits, batch.labels, batch.mix, batch.class_weights, spec)?;
    cx.seed_grad(logits, dlogits);
    tape::backward(&mut cx, &swept.tape)?;
    Ok(Pass { cx, loss, logits, running_updates: swept.running_updates })
}

/// Declares the state inputs, in initializer order: parameters (which need gradients), then
/// running means and variances, then a momentum per parameter. Returns the state, the
/// parameters for the update, and the input of each state initializer by name.
#[allow(clippy::type_complexity)]
fn declare_state(
    cx: &mut Ctx,
    src: &Source,
) -> Result<(Vec<StateTensor>, Vec<Param>, HashMap<String, Value>), GraphError> {
    let mut state = Vec::new();
    let mut inputs = HashMap::new();
    let ordered: Vec<&TensorProto> = src.graph.initializer.iter().filter(|t| src.roles.contains_key(&t.name)).collect();
    for kind in [StateKind::Parameter, StateKind::RunningMean, StateKind::RunningVar] {
        for t in ordered.iter().filter(|t| src.roles[&t.name] == kind) {
            let init = tensor_f32(t)?;
            let v = cx.input(&t.name, DataType::Float, &t.dims)?;
            inputs.insert(t.name.clone(), v);
            state.push(StateTensor {
                name: t.name.clone(),
                output: format!("{}.new", t.name),
                kind,
                dims: t.dims.clone(),
                init,
            });
            if kind == StateKind::Parameter {
                cx.set_needs_grad(v);
            }
        }
    }
    if let Some(name) = src.roles.keys().find(|n| !inputs.contains_key(*n)) {
        return Err(GraphError::UnknownValue {
            name: name.clone(),
            hint: "a Constant node's output used as a parameter or running statistic; import the model first (lt_graph::import makes Constant nodes initializers)".into(),
        });
    }
    let (mut params, mut momenta) = (Vec::new(), Vec::new());
    for s in state.iter().filter(|s| s.kind == StateKind::Parameter) {
        let name = format!("{}.momentum", s.name);
        let momentum = cx.input(&name, DataType::Float, &s.dims)?;
        let decay = !src.no_decay.contains(&s.name);
        let value = inputs[&s.name];
        params.push(Param { name: s.name.clone(), value, grad_of: value, momentum, decay, max_norm: None });
        let n = s.dims.iter().product::<i64>() as usize;
        momenta.push(StateTensor {
            output: format!("{name}.new"),
            name,
            kind: StateKind::Momentum,
            dims: s.dims.clone(),
            init: vec![0.0; n],
        });
    }
    state.extend(momenta);
    Ok((state, params, inputs))
}

/// A tensor of the source model as a host constant (int64 or float).
fn proto_tensor(t: &TensorProto) -> Result<Tensor, GraphError> {
    if t.data_type == DataType::Int64 as i32 {
        Ok(Tensor::I64 { dims: t.dims.clone(), data: tensor_i64(t)? })
    } else {
        Ok(Tensor::F32 { dims: t.dims.clone(), data: tensor_f32(t)? })
    }
}

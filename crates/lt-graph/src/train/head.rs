//! The classifier head and the step options that act on it: a frozen backbone (only the
//! head is trained: Kang et al. 2020's classifier re-training) and MaxNorm (weight balancing,
//! Alshammari et al. 2022: each class's weight vector projected onto a ball after the update).
//! SAM's option sits with them in [`StepOptions`]; its passes are `sam.rs`.
//!
//! The head is the model's last Gemm or MatMul: its weight (the parameters its second input
//! is computed from, e.g. a cosine head's normalised weight), its Gemm bias, and every
//! parameter a node after it uses (a bias Add).

use std::collections::HashSet;

use super::StateKind;
use super::model::Source;
use crate::GraphError;
use crate::onnx::proto::ModelProto;

/// Which parameters the step trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trainable {
    /// Every parameter; BatchNorm in training mode (the normal step).
    #[default]
    All,
    /// Only the classifier head ([`head_of`]). The backbone is frozen: its parameters and
    /// running statistics are constants of the graph (not state), no gradient or backward
    /// node is emitted for it, and the whole forward runs in eval mode: BatchNorm normalises
    /// by the running statistics (not updated) and Dropout is the identity.
    Head,
    /// Only the per-class logit scales [`LOGIT_SCALES`] that [`with_logit_scales`] appends
    /// (Kang et al. 2020's learnable weight scaling, LWS): backbone and head frozen as
    /// under [`Trainable::Head`], each class's logit (its weight vector and bias) scaled by
    /// a learned f_c.
    LogitScales,
}

/// The initializer [`with_logit_scales`] adds: f [classes], ones at first.
pub const LOGIT_SCALES: &str = "lws.scales";

/// `inference` with its logits multiplied by a per-class scale [`LOGIT_SCALES`] (ones, so
/// the model computes the same function): the last node's output is renamed and a `Mul`
/// writes the original output name.
pub fn with_logit_scales(inference: &ModelProto) -> Result<ModelProto, GraphError> {
    let src = Source::read(inference)?;
    if src.initializer(LOGIT_SCALES).is_some() {
        return Err(GraphError::Model(format!("the model already has `{LOGIT_SCALES}`")));
    }
    let logits = src.logits.clone();
    let classes = crate::import::output_classes(inference)? as i64;
    let mut model = inference.clone();
    let graph = model.graph.as_mut().expect("Source::read checked the graph");
    let unscaled = format!("{logits}.unscaled");
    let producer = graph
        .node
        .iter_mut()
        .rev()
        .find(|n| n.output.contains(&logits))
        .ok_or_else(|| GraphError::Model(format!("no node computes the output `{logits}`")))?;
    producer.output.iter_mut().filter(|o| **o == logits).for_each(|o| o.clone_from(&unscaled));
    for n in graph.node.iter_mut() {
        n.input.iter_mut().filter(|i| **i == logits).for_each(|i| i.clone_from(&unscaled));
    }
    graph.initializer.push(crate::onnx::Tensor::f32(&[classes], vec![1.0; classes as usize]).to_proto(LOGIT_SCALES));
    graph.node.push(crate::onnx::proto::NodeProto {
        name: "lws".into(),
        op_type: "Mul".into(),
        input: vec![unscaled, LOGIT_SCALES.into()],
        output: vec![logits],
        ..Default::default()
    });
    Ok(model)
}

/// Options of the training step beyond [`super::TrainingGraphSpec`]; the default builds
/// exactly the graph [`super::training_graph`] builds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepOptions {
    pub trainable: Trainable,
    /// MaxNorm: after the SGD update each class's head weight vector `w_c` is scaled by
    /// `min(1, R/‖w_c‖)` (projected onto the ball of radius R).
    pub max_norm: Option<f32>,
    /// Sharpness-aware minimisation: the update uses the gradient at `w + ε` (`sam.rs`).
    pub sam: Option<super::Sam>,
}

/// The classifier head of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadInfo {
    /// The head's weight initializer (the class vectors).
    pub weight: String,
    /// The axis of `weight` that indexes classes (0 for a Gemm with transB, else 1).
    pub class_axis: usize,
    /// Every parameter of the head (weight, biases), in initializer order.
    pub params: Vec<String>,
}

/// The classifier head of `inference` (see the module docs).
pub fn head_of(inference: &ModelProto) -> Result<HeadInfo, GraphError> {
    find(&Source::read(inference)?)
}

pub(super) fn find(src: &Source) -> Result<HeadInfo, GraphError> {
    let nodes = &src.graph.node;
    let at = nodes.iter().rposition(|n| n.op_type == "Gemm" || n.op_type == "MatMul").ok_or_else(|| {
        GraphError::Model("the model has no Gemm or MatMul node: no classifier head to train alone".into())
    })?;
    let node = &nodes[at];
    let is_param = |n: &str| src.roles.get(n) == Some(&StateKind::Parameter);
    let mut params: HashSet<String> = HashSet::new();
    // The weight: the parameters its input 1 is computed from (walking back to initializers).
    let mut stack = vec![node.input.get(1).cloned().unwrap_or_default()];
    let mut seen = HashSet::new();
    let mut weight = Vec::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v.clone()) {
            continue;
        }
        if v == src.image_input {
            return Err(GraphError::Model(format!(
                "the weight of the head `{}` ({}) depends on the images: not a classifier head",
                node.name, node.op_type
            )));
        }
        if is_param(&v) {
            weight.push(v.clone());
            params.insert(v);
            continue;
        }
        if let Some(p) = nodes[..at].iter().find(|n| n.output.contains(&v)) {
            stack.extend(p.input.iter().filter(|i| !i.is_empty()).cloned());
        }
    }
    let [weight] = weight.as_slice() else {
        return Err(GraphError::Model(format!(
            "the head `{}` ({}) needs exactly one weight parameter, found {weight:?}",
            node.name, node.op_type
        )));
    };
    let class_axis =
        if node.op_type == "Gemm" && node.attribute.iter().any(|a| a.name == "transB" && a.i != 0) { 0 } else { 1 };
    if node.op_type == "Gemm"
        && let Some(b) = node.input.get(2).filter(|b| is_param(b))
    {
        params.insert(b.clone());
    }
    for n in &nodes[at + 1..] {
        params.extend(n.input.iter().filter(|i| is_param(i)).cloned());
    }
    let params = src.graph.initializer.iter().map(|t| t.name.clone()).filter(|n| params.contains(n)).collect();
    Ok(HeadInfo { weight: weight.clone(), class_axis, params })
}

/// Applies `opts` to the source: under [`Trainable::Head`] only the head's parameters stay
/// state (everything else, running statistics included, becomes a constant). Returns the
/// MaxNorm constraint: (head weight, its class axis, R).
pub(super) fn apply(src: &mut Source, opts: &StepOptions) -> Result<Option<(String, usize, f32)>, GraphError> {
    if opts.trainable == Trainable::All && opts.max_norm.is_none() {
        return Ok(None);
    }
    let head = find(src)?;
    match opts.trainable {
        Trainable::All => {}
        Trainable::Head => src.roles.retain(|name, _| head.params.contains(name)),
        Trainable::LogitScales => {
            if src.initializer(LOGIT_SCALES).is_none() {
                return Err(GraphError::Model(format!(
                    "the model has no `{LOGIT_SCALES}` to train: add them with with_logit_scales"
                )));
            }
            src.roles = [(LOGIT_SCALES.to_string(), StateKind::Parameter)].into();
        }
    }
    match opts.max_norm {
        Some(r) if !(r.is_finite() && r > 0.0) => {
            Err(GraphError::Config(format!("the MaxNorm radius must be a positive number (got {r})")))
        }
        Some(r) => Ok(Some((head.weight, head.class_axis, r))),
        None => Ok(None),
    }
}

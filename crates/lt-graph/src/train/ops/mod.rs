//! One rule per differentiable op of an inference model. Each file holds everything lt knows
//! about its op: which inputs are parameters and their roles, validation, the forward
//! emission (per [`Lowering`](super::Lowering) where they differ) and the backward rule,
//! with the state the forward pass recorded for it (the way burn keeps each op's `Backward`
//! next to its forward).
//!
//! [`RULES`] is the table of rules; the supported ops ([`super::supported_ops`]) are
//! derived from it. Adding an op is one new file here plus one line in the table (see
//! ARCHITECTURE.md, "How to add a differentiable op").

use super::StateKind;
use super::emit::Value;
use super::tape::{Ctx, Forward};
use crate::GraphError;
use crate::onnx::proto::{AttributeProto, NodeProto, TensorProto};

/// Declares each rule's module and lists the rule under its ONNX op type in [`RULES`]: one
/// line per op.
macro_rules! rules {
    ($($module:ident::$rule:ident = $op:literal),* $(,)?) => {
        $(mod $module;)*

        /// Every op the training graph differentiates (ONNX op type, default domain, and its
        /// rule), in the order error messages list them.
        pub(crate) const RULES: &[(&str, &dyn OpRule)] = &[$(($op, &$module::$rule)),*];
    };
}

rules![
    conv::Conv = "Conv",
    batch_norm::BatchNormalization = "BatchNormalization",
    relu::Relu = "Relu",
    concat::Concat = "Concat",
    average_pool::AveragePool = "AveragePool",
    max_pool::MaxPool = "MaxPool",
    global_average_pool::GlobalAveragePool = "GlobalAveragePool",
    reduce_mean::ReduceMean = "ReduceMean",
    flatten::Flatten = "Flatten",
    reshape::Reshape = "Reshape",
    gemm::Gemm = "Gemm",
    matmul::MatMul = "MatMul",
    add::Add = "Add",
    identity::Identity = "Identity",
    constant::Constant = "Constant",
    dropout::Dropout = "Dropout",
    squeeze::Squeeze = "Squeeze",
    slice::Slice = "Slice",
    pad::Pad = "Pad",
    mul::MUL = "Mul",
    div::DIV = "Div",
    max::Max = "Max",
    reduce_l2::ReduceL2 = "ReduceL2",
    clip::Clip = "Clip",
    expand::Expand = "Expand",
];

pub(crate) use constant::constant_value;

/// The rule of `op_type`, if lt differentiates it.
pub(crate) fn rule(op_type: &str) -> Option<&'static dyn OpRule> {
    RULES.iter().find(|(op, _)| *op == op_type).map(|&(_, rule)| rule)
}

/// An input of a node that is trained (or updated) state when it is a float initializer.
pub(crate) struct Role {
    /// Index of the input.
    pub input: usize,
    pub kind: StateKind,
    /// Whether weight decay applies (`Sgd::decay_bn_and_bias` = false exempts the others).
    pub decay: bool,
}

impl Role {
    /// A trained weight: weight decay always applies.
    pub const fn weight(input: usize) -> Self {
        Role { input, kind: StateKind::Parameter, decay: true }
    }

    /// A bias or a BatchNorm scale or shift: decayed only with `Sgd::decay_bn_and_bias`.
    pub const fn bias(input: usize) -> Self {
        Role { input, kind: StateKind::Parameter, decay: false }
    }

    /// A running statistic, updated by the forward pass, never by SGD.
    pub const fn running(input: usize, kind: StateKind) -> Self {
        Role { input, kind, decay: true }
    }
}

/// Input `i`'s initializer, if it is one.
pub(crate) type InitOf<'a> = &'a dyn Fn(usize) -> Option<&'a TensorProto>;

/// Everything lt knows about one ONNX op (see the module docs).
pub(crate) trait OpRule: Sync {
    /// The inputs that are parameters or running statistics when they are float
    /// initializers; `init(i)` is input `i`'s initializer, if it is one.
    fn roles(&self, _node: &NodeProto, _init: InitOf<'_>) -> Vec<Role> {
        Vec::new()
    }

    /// Validates `node`, emits its forward computation and records its backward state on
    /// the tape ([`Forward::record`]). Returns the value of the node's output, or `None`
    /// for a node that defines no value of the training graph (a Constant, read as an
    /// initializer before the sweep).
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError>;
}

/// The backward half of an op: what its forward pass recorded, and the rule that turns the
/// gradient of its output (the value it was recorded for, [`Forward::record`]) into gradients
/// of its inputs.
pub(crate) trait Backward {
    /// Given `dy` = dL/d(output), pushes the gradient of every input that needs one
    /// ([`Ctx::push_grad`]).
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError>;
}

/// What a broadcasting binary op (Add, Mul, Div, Max) records: its operands and output.
#[derive(Clone, Copy)]
pub(crate) struct Operands {
    pub a: Value,
    pub b: Value,
    pub y: Value,
}

/// The whole rule of a broadcasting binary op without parameters or checks of its own (Mul,
/// Div): [`binary`]'s forward, recording the backward `B` its operands make.
pub(crate) struct Binary<B>(pub fn(Operands) -> B);

impl<B: Backward + 'static> OpRule for Binary<B> {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        binary(f, node, self.0)
    }
}

/// The forward rule of a broadcasting binary op: wires `node`'s op on inputs 0 and 1 and
/// records `backward` of its [`Operands`].
fn binary<B: Backward + 'static>(
    f: &mut Forward,
    node: &NodeProto,
    backward: fn(Operands) -> B,
) -> Result<Option<Value>, GraphError> {
    let [a, b] = f.inputs(node)?;
    let y = f.cx.bin(&node.op_type, a, b)?;
    f.record(y, backward(Operands { a, b, y }));
    Ok(Some(y))
}

// ---------------------------------------------------------------------------------------
// Reading nodes

pub(crate) fn unsupported(node: &NodeProto, message: impl Into<String>) -> GraphError {
    GraphError::Unsupported { node: node.name.clone(), op: node.op_type.clone(), message: message.into() }
}

pub(crate) fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

/// Whether optional input `i` is given.
pub(crate) fn has_input(node: &NodeProto, i: usize) -> bool {
    node.input.get(i).is_some_and(|n| !n.is_empty())
}

/// Negative axes counted from the end of a rank-`rank` shape.
fn norm_axis(a: i64, rank: usize) -> i64 {
    if a < 0 { a + rank as i64 } else { a }
}

/// A 2-D window attribute (`kernel_shape`, `strides`, `dilations`), `default` when absent.
fn spatial2(node: &NodeProto, name: &str, default: i64) -> Result<[i64; 2], GraphError> {
    match attr_ints(node, name) {
        None => Ok([default, default]),
        Some(v) if v.len() == 2 => Ok([v[0], v[1]]),
        Some(v) => Err(unsupported(node, format!("`{name}` = {v:?}: only 2-D (NCHW) windows are supported"))),
    }
}

/// The explicit 2-D pads of a window (`auto_pad` other than NOTSET/VALID is refused).
fn pads4(node: &NodeProto) -> Result<[i64; 4], GraphError> {
    if let Some(a) = attr(node, "auto_pad") {
        let s = String::from_utf8_lossy(&a.s);
        if !s.is_empty() && s != "NOTSET" && s != "VALID" {
            return Err(unsupported(node, format!("auto_pad={s}; re-export with explicit pads")));
        }
    }
    match attr_ints(node, "pads") {
        None => Ok([0; 4]),
        Some(v) if v.len() == 4 => Ok([v[0], v[1], v[2], v[3]]),
        Some(v) => Err(unsupported(node, format!("pads = {v:?}: only 2-D (NCHW) windows are supported"))),
    }
}

/// The axes of a reduction given as the `axes` attribute or, since opset 13, a constant
/// second input; `None` when neither is given.
fn axes_of(f: &Forward, node: &NodeProto) -> Result<Option<Vec<i64>>, GraphError> {
    match attr_ints(node, "axes") {
        Some(a) => Ok(Some(a)),
        None if node.input.len() > 1 => {
            let t = f.initializer(node, 1).ok_or_else(|| unsupported(node, "axes must be a constant"))?;
            Ok(Some(super::tensor_i64(t)?))
        }
        None => Ok(None),
    }
}

//! BatchNormalization in training mode: normalised by the batch statistics (shared by every
//! BatchNorm of the same feature map, `stats.rs`), running statistics updated as PyTorch
//! does (unbiased variance). Lowering: on the CPU one per-channel affine map of x − μ (a
//! depthwise 1x1 Conv, into which onnxruntime fuses a following ReLU); on CUDA one
//! inference-form BatchNormalization node fed with the batch statistics.

use super::{Backward, InitOf, OpRule, Role, attr_f};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::onnx::{Attr, Tensor};
use crate::train::emit::{Emitter, Value};
use crate::train::stats::BatchStats;
use crate::train::tape::{Ctx, Forward};
use crate::train::{Lowering, StateKind};

pub(crate) struct BatchNormalization;

impl OpRule for BatchNormalization {
    fn roles(&self, _node: &NodeProto, _init: InitOf<'_>) -> Vec<Role> {
        vec![
            Role::bias(1),
            Role::bias(2),
            Role::running(3, StateKind::RunningMean),
            Role::running(4, StateKind::RunningVar),
        ]
    }

    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let [x, gamma, beta, rm, rv] = f.inputs(node)?;
        let eps = attr_f(node, "epsilon", 1e-5);
        let mom = attr_f(node, "momentum", 0.9);
        if f.eval_mode {
            // A frozen backbone (`Trainable::Head`): normalised by the running statistics,
            // which stay as they are; nothing upstream needs a gradient.
            if [x, gamma, beta].iter().any(|&v| f.cx.needs_grad(v)) {
                return Err(super::unsupported(node, "a BatchNorm after the classifier head cannot run in eval mode"));
            }
            let y = f.cx.wire("BatchNormalization", &[x, gamma, beta, rm, rv], &[("epsilon", Attr::Float(eps))])?;
            return Ok(Some(y));
        }
        let xs = f.cx.shape(x);
        let ch = xs[1];
        let axes: Vec<i64> = (0..xs.len() as i64).filter(|&a| a != 1).collect();
        let m: i64 = axes.iter().map(|&a| xs[a as usize]).product();
        // Two-pass statistics, shared by every BatchNorm that normalises the same feature
        // map (stats.rs). The normalisation is one per-channel affine map of x − μ.
        // Per-channel statistics stay [C] vectors (what γ, β and the running statistics are).
        let BatchStats { mean: mean4, var } = f.stats.stats(&mut f.cx, x)?;
        let xc = f.stats.centred(&mut f.cx, x)?;
        let cx = &mut f.cx;
        let mean1 = cx.reshape(mean4, &[ch])?;
        let epsc = cx.scalar(eps);
        let ve = cx.bin("Add", var, epsc)?;
        let sd = cx.wire("Sqrt", &[ve], &[])?;
        let inv = cx.wire("Reciprocal", &[sd], &[])?;
        let a = cx.bin("Mul", gamma, inv)?;
        let y = if cx.lowering == Lowering::Cuda {
            // One inference-form BatchNormalization node fed with the batch statistics:
            // cuDNN's single pass, and 1 node where the affine map takes 4. It reads x − μ
            // with a zero mean, like the CPU form, so that in a dense block the
            // concatenation of the raw features is dead (stats.rs).
            let zero_mean = cx.constant(Tensor::F32 { dims: vec![ch], data: vec![0.0; ch as usize] });
            cx.wire("BatchNormalization", &[xc, gamma, beta, zero_mean, var], &[("epsilon", Attr::Float(eps))])?
        } else {
            channel_affine(cx, xc, a, Some(beta), Lowering::Cpu)?
        };
        // Running statistics, PyTorch's convention (unbiased variance).
        let rm_a = cx.mul_s(rm, mom)?;
        let rm_b = cx.mul_s(mean1, 1.0 - mom)?;
        let rm_new = cx.bin("Add", rm_a, rm_b)?;
        let rv_a = cx.mul_s(rv, mom)?;
        let unbias = if m > 1 { m as f32 / (m - 1) as f32 } else { 1.0 };
        let rv_b = cx.mul_s(var, (1.0 - mom) * unbias)?;
        let rv_new = cx.bin("Add", rv_a, rv_b)?;
        if f.role(&node.input[3]) == Some(StateKind::RunningMean) {
            f.update_running(&node.input[3], rm_new);
        }
        if f.role(&node.input[4]) == Some(StateKind::RunningVar) {
            f.update_running(&node.input[4], rv_new);
        }
        f.record(y, BatchNormBackward { x, gamma, beta, xc, inv, a, m: m as f32, axes });
        Ok(Some(y))
    }
}

struct BatchNormBackward {
    x: Value,
    gamma: Value,
    beta: Value,
    /// x − μ.
    xc: Value,
    /// 1/σ, [C].
    inv: Value,
    /// γ/σ, [C].
    a: Value,
    /// Elements per channel.
    m: f32,
    /// Every axis but the channel axis.
    axes: Vec<i64>,
}

impl Backward for BatchNormBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let BatchNormBackward { x, gamma, beta, xc, inv, a, m, ref axes, .. } = *self;
        // With x̂ = xc·inv (xc = x − μ):  dβ = Σ dY,  dγ = Σ dY·x̂ = inv·Σ dY·xc,
        // dX = (a·dY − a·dβ/M) − xc·k1,  k1 = a·inv·dγ/M; per-channel values are [C].
        let db = cx.reduce_sum(dy, axes, false)?;
        let dyx = cx.bin("Mul", dy, xc)?;
        let s = cx.reduce_sum(dyx, axes, false)?;
        let dg = cx.bin("Mul", s, inv)?;
        cx.push_grad(gamma, dg);
        cx.push_grad(beta, db);
        if cx.needs_grad(x) {
            let mut cshape = vec![1i64; cx.shape(x).len()];
            cshape[1] = cx.shape(gamma)[0];
            let k1 = cx.bin("Mul", dg, inv)?;
            let k1 = cx.bin("Mul", k1, a)?;
            let k1 = cx.mul_s(k1, 1.0 / m)?;
            let k1 = cx.reshape(k1, &cshape)?;
            let k0 = cx.bin("Mul", db, a)?;
            let k0 = cx.mul_s(k0, -1.0 / m)?;
            let lowering = cx.lowering;
            let t1 = channel_affine(cx, dy, a, Some(k0), lowering)?;
            let t2 = cx.bin("Mul", xc, k1)?;
            let dx = cx.bin("Sub", t1, t2)?;
            cx.push_grad(x, dx);
        }
        Ok(())
    }
}

/// `x·scale + shift` with per-channel `scale`/`shift` of shape [C] (x is [N,C,...]). On the
/// CPU as ONE depthwise 1x1 Conv with bias: a single pass over x, where Mul + Add make two,
/// and onnxruntime fuses a following Relu into it (BatchNorm + ReLU forward in one pass;
/// measured 3x faster than Mul, Add, Relu on a 25 MB activation). On CUDA, Mul + Add.
fn channel_affine(
    cx: &mut Emitter,
    x: Value,
    scale: Value,
    shift: Option<Value>,
    lowering: Lowering,
) -> Result<Value, GraphError> {
    let xs = cx.shape(x);
    let ch = xs[1];
    if lowering == Lowering::Cpu && xs.len() == 4 {
        let w = cx.reshape(scale, &[ch, 1, 1, 1])?;
        let mut inputs = vec![x, w];
        inputs.extend(shift);
        return cx.wire("Conv", &inputs, &[("kernel_shape", Attr::Ints(vec![1, 1])), ("group", Attr::Int(ch))]);
    }
    let mut cshape = vec![1i64; xs.len()];
    cshape[1] = ch;
    let s4 = cx.reshape(scale, &cshape)?;
    let y = cx.bin("Mul", x, s4)?;
    match shift {
        Some(b) => {
            let b4 = cx.reshape(b, &cshape)?;
            cx.bin("Add", y, b4)
        }
        None => Ok(y),
    }
}

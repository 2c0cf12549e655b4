//! The parameter update: torch.optim.SGD over all parameters at once.

use super::TrainingGraphSpec;
use super::emit::Value;
use super::tape::Ctx;
use crate::GraphError;
use crate::onnx::{Attr, Tensor};

/// A parameter with its momentum input.
pub(super) struct Param {
    pub name: String,
    pub value: Value,
    /// The value whose gradient updates this parameter: `value` itself, or under SAM the
    /// perturbed copy `value + ε` the second pass ran with (`sam.rs`).
    pub grad_of: Value,
    pub momentum: Value,
    /// False for BatchNorm weights/biases and 1-D biases (`Sgd::decay_bn_and_bias`).
    pub decay: bool,
    /// MaxNorm after the update: (class axis, radius R), each class vector scaled by
    /// min(1, R/‖w_c‖) (`StepOptions::max_norm`, the head weight only).
    pub max_norm: Option<(usize, f32)>,
}

/// torch.optim.SGD over ALL parameters at once: gradients, parameters and momenta are
/// flattened (Reshape, an alias) and concatenated, updated by a handful of elementwise nodes,
/// and split back into the per-parameter outputs, which are written under their output names
/// directly. Per parameter that leaves three alias nodes instead of six arithmetic nodes and
/// two output Identities: a quarter of densenet-bc-100-k12's nodes were the update, and every
/// node is a kernel launch on CUDA.
pub(super) fn emit_sgd(cx: &mut Ctx, params: &[Param], spec: &TrainingGraphSpec, lr: Value) -> Result<(), GraphError> {
    if params.is_empty() {
        return Ok(());
    }
    let mu = spec.sgd.momentum;
    let sizes: Vec<i64> = params.iter().map(|p| cx.shape(p.value).iter().product()).collect();
    let total: i64 = sizes.iter().sum();
    let mut gs = Vec::with_capacity(params.len());
    for p in params {
        gs.push(cx.take_grad_or_zeros(p.grad_of, p.value)?);
    }
    let values: Vec<Value> = params.iter().map(|p| p.value).collect();
    let momenta: Vec<Value> = params.iter().map(|p| p.momentum).collect();
    let (g, p, v) = (flat_concat(cx, &gs)?, flat_concat(cx, &values)?, flat_concat(cx, &momenta)?);
    // Weight decay: one scalar, or a per-element vector when some parameters are exempt.
    // (The per-element vector is only materialised when parameters differ: for densenet161
    // it would be 26.5M floats.)
    let decay: Vec<f32> = params
        .iter()
        .map(|p| if spec.sgd.decay_bn_and_bias || p.decay { spec.sgd.weight_decay } else { 0.0 })
        .collect();
    let gp = if decay.iter().all(|&d| d == 0.0) {
        g
    } else {
        let d = if decay.iter().all(|&d| d == decay[0]) {
            cx.mul_s(p, decay[0])?
        } else {
            let per_element =
                decay.iter().zip(&sizes).flat_map(|(&wd, &n)| std::iter::repeat_n(wd, n as usize)).collect();
            let w = cx.constant(Tensor::f32(&[total], per_element));
            cx.bin("Mul", p, w)?
        };
        cx.bin("Add", g, d)?
    };
    let v_new = if mu != 0.0 {
        let vm = cx.mul_s(v, mu)?;
        cx.bin("Add", vm, gp)?
    } else {
        gp
    };
    let upd = if spec.sgd.nesterov && mu != 0.0 {
        let mv = cx.mul_s(v_new, mu)?;
        cx.bin("Add", gp, mv)?
    } else {
        v_new
    };
    let step = cx.bin("Mul", upd, lr)?;
    let p_new = cx.bin("Sub", p, step)?;
    for (flat, suffix) in [(p_new, "new"), (v_new, "momentum.new")] {
        for (p, piece) in params.iter().zip(split_flat(cx, flat, &sizes)?) {
            let dims = cx.shape(p.value);
            let shape = cx.ints(&dims);
            let name = format!("{}.{suffix}", p.name);
            let out = match p.max_norm {
                Some((axis, r)) if suffix == "new" => {
                    // R / max(‖w_c‖, R) = min(1, R/‖w_c‖), with no division by zero.
                    let w = cx.wire("Reshape", &[piece, shape], &[])?;
                    let along = 1 - axis as i64;
                    let norms =
                        cx.wire("ReduceL2", &[w], &[("axes", Attr::Ints(vec![along])), ("keepdims", Attr::Int(1))])?;
                    let rv = cx.scalar(r);
                    let m = cx.bin("Max", norms, rv)?;
                    let scale = cx.bin("Div", rv, m)?;
                    cx.wire_named("Mul", &[w, scale], &name)?
                }
                _ => cx.wire_named("Reshape", &[piece, shape], &name)?,
            };
            cx.output(out, &name)?;
        }
    }
    Ok(())
}

/// The values flattened (Reshape, an alias) and concatenated into one vector.
pub(super) fn flat_concat(cx: &mut Ctx, xs: &[Value]) -> Result<Value, GraphError> {
    let mut flat = Vec::with_capacity(xs.len());
    for &x in xs {
        let n = cx.shape(x).iter().product::<i64>();
        flat.push(cx.reshape(x, &[n])?);
    }
    if flat.len() == 1 { Ok(flat[0]) } else { cx.concat(&flat, 0) }
}

/// The inverse of [`flat_concat`]: `flat` split into pieces of `sizes` elements (still flat).
pub(super) fn split_flat(cx: &mut Ctx, flat: Value, sizes: &[i64]) -> Result<Vec<Value>, GraphError> {
    if sizes.len() == 1 {
        return Ok(vec![flat]);
    }
    let sc = cx.ints(sizes);
    cx.wire_n("Split", &[Some(flat), Some(sc)], &[("axis", Attr::Int(0))], sizes.len())
}

//! The losses and their gradients with respect to the logits.

use super::emit::{Emitter, Value};
use super::{Loss, TrainingGraphSpec};
use crate::GraphError;
use crate::onnx::{Attr, Tensor};

/// Emits the loss (a scalar) and dL/dlogits for logits `z` [B, C].
///
/// With `mix = Some((labels_mix, lambda))` (mixup / cutmix, `lambda` a scalar), the loss is
/// `λ·L(z, labels) + (1−λ)·L(z, labels_mix)` and its gradient the same mixture: the reference
/// code's `mixup_criterion` (facebookresearch/mixup-cifar10 `train.py`, reused by MiSLAS
/// `train_stage1.py`): `lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)`. With
/// class weights, `criterion` is PyTorch's weighted mean, so each term is normalised by its
/// own `Σ_n w[y_n]`: `λ·Σ w[a_n]·l(z_n, a_n) / Σ w[a_n] + (1−λ)·Σ w[b_n]·l(z_n, b_n) / Σ w[b_n]`
/// (not one joint normaliser). A pair of labels and λ rather than a [B, C] soft target,
/// because every loss lt has stays defined: LDAM's margin and focal's (1−p_y)^γ need a true
/// class, which a soft target does not name.
pub(super) fn emit_loss(
    cx: &mut Emitter,
    z: Value,
    labels: Value,
    mix: Option<(Value, Value)>,
    cw: Value,
    spec: &TrainingGraphSpec,
) -> Result<(Value, Value), GraphError> {
    let (la, da) = emit_loss_for(cx, z, labels, cw, spec)?;
    let Some((labels_mix, lambda)) = mix else {
        return Ok((la, da));
    };
    let (lb, db) = emit_loss_for(cx, z, labels_mix, cw, spec)?;
    let one = cx.scalar(1.0);
    let mu = cx.bin("Sub", one, lambda)?;
    let (la, lb) = (cx.bin("Mul", la, lambda)?, cx.bin("Mul", lb, mu)?);
    let (da, db) = (cx.bin("Mul", da, lambda)?, cx.bin("Mul", db, mu)?);
    Ok((cx.bin("Add", la, lb)?, cx.bin("Add", da, db)?))
}

/// The loss and dL/dlogits of one set of labels.
fn emit_loss_for(
    cx: &mut Emitter,
    z: Value,
    labels: Value,
    cw: Value,
    spec: &TrainingGraphSpec,
) -> Result<(Value, Value), GraphError> {
    let c = cx.shape(z)[1];
    let depth = cx.ints(&[c]);
    let onoff = cx.constant(Tensor::f32(&[2], vec![0.0, 1.0]));
    let oh = cx.wire("OneHot", &[labels, depth, onoff], &[("axis", Attr::Int(-1))])?;
    let cw2 = cx.reshape(cw, &[c, 1])?;
    let wy2 = cx.matmul(oh, cw2)?; // [B,1]
    let wsum = cx.reduce_sum(wy2, &[0, 1], false)?; // []
    let counts = &spec.class_counts;
    let zero_class = counts.iter().position(|&n| n == 0);
    // The logits the softmax sees, z', and the factor dz'/dz (a scalar, or one per class).
    let (zz, zscale) = match spec.loss {
        Loss::Ldam { max_margin, scale } => {
            if let Some(k) = zero_class {
                return Err(GraphError::Config(format!(
                    "LDAM needs a positive count for every class; class {k} has none (drop empty classes first)"
                )));
            }
            let raw: Vec<f32> = counts.iter().map(|&n| 1.0 / (n as f64).powf(0.25) as f32).collect();
            let mx = raw.iter().cloned().fold(0.0f32, f32::max);
            let margins: Vec<f32> = raw.iter().map(|m| m * max_margin / mx).collect();
            let mc = cx.constant(Tensor::f32(&[1, c], margins));
            let om = cx.bin("Mul", oh, mc)?;
            let zm = cx.bin("Sub", z, om)?;
            (cx.mul_s(zm, scale)?, LogitScale::Scalar(scale))
        }
        Loss::BalancedSoftmax { tau } => {
            if let Some(k) = zero_class {
                return Err(GraphError::Config(format!(
                    "balanced softmax needs a positive count for every class (log prior); class {k} has none"
                )));
            }
            let ac = cx.constant(Tensor::f32(&[1, c], log_prior_times(counts, tau)));
            (cx.bin("Add", z, ac)?, LogitScale::Scalar(1.0))
        }
        Loss::Vs { gamma, tau } => {
            if let Some(k) = zero_class {
                return Err(GraphError::Config(format!(
                    "the VS loss needs a positive count for every class (its scales and log prior); class {k} has none"
                )));
            }
            let inv_delta = cx.constant(Tensor::f32(&[1, c], vs_inverse_deltas(counts, gamma)));
            let iota = cx.constant(Tensor::f32(&[1, c], log_prior_times(counts, tau)));
            let scaled = cx.bin("Mul", z, inv_delta)?;
            (cx.bin("Add", scaled, iota)?, LogitScale::PerClass(inv_delta))
        }
        _ => (z, LogitScale::Scalar(1.0)),
    };
    let ls = cx.wire("LogSoftmax", &[zz], &[("axis", Attr::Int(1))])?;
    let p = cx.wire("Exp", &[ls], &[])?;
    let inv_w = cx.wire("Reciprocal", &[wsum], &[])?;
    let (loss, dz) = match spec.loss {
        Loss::Focal { gamma } => {
            let ohp = cx.bin("Mul", oh, p)?;
            let py = cx.reduce_sum(ohp, &[1], true)?; // [B,1]
            let ohl = cx.bin("Mul", oh, ls)?;
            let lpy = cx.reduce_sum(ohl, &[1], true)?; // [B,1]
            let one = cx.scalar(1.0);
            let q = cx.bin("Sub", one, py)?;
            let tiny = cx.scalar(1e-30);
            let q = cx.wire("Max", &[q, tiny], &[])?;
            let gc = cx.scalar(gamma);
            let qg = cx.wire("Pow", &[q, gc], &[])?;
            let gm1 = cx.scalar(gamma - 1.0);
            let qg1 = cx.wire("Pow", &[q, gm1], &[])?;
            // l_n = -q^γ·log p_y
            let l = cx.bin("Mul", qg, lpy)?;
            let wl = cx.bin("Mul", wy2, l)?;
            let s = cx.reduce_sum(wl, &[0, 1], false)?;
            let sw = cx.bin("Mul", s, inv_w)?;
            let loss = cx.mul_s(sw, -1.0)?;
            // dl/dz = [q^γ − γ·p_y·q^(γ−1)·log p_y]·(p − onehot)
            let t1 = cx.bin("Mul", py, qg1)?;
            let t2 = cx.bin("Mul", t1, lpy)?;
            let t3 = cx.mul_s(t2, gamma)?;
            let gn = cx.bin("Sub", qg, t3)?;
            let gw = cx.bin("Mul", gn, wy2)?;
            let gw = cx.bin("Mul", gw, inv_w)?;
            let pm = cx.bin("Sub", p, oh)?;
            (loss, cx.bin("Mul", pm, gw)?)
        }
        _ => {
            let eps = match spec.loss {
                Loss::CrossEntropy { label_smoothing } => label_smoothing,
                _ => 0.0,
            };
            // Target weights T[n,c]: loss_n = −Σ_c T·log p; dz_n = (Σ_c T)·p − T.
            let ohw = cx.bin("Mul", oh, wy2)?;
            let t = if eps > 0.0 {
                let a = cx.mul_s(ohw, 1.0 - eps)?;
                let cw1 = cx.reshape(cw, &[1, c])?;
                let bsm = cx.mul_s(cw1, eps / c as f32)?;
                cx.bin("Add", a, bsm)?
            } else {
                ohw
            };
            let tl = cx.bin("Mul", t, ls)?;
            let s = cx.reduce_sum(tl, &[0, 1], false)?;
            let sw = cx.bin("Mul", s, inv_w)?;
            let loss = cx.mul_s(sw, -1.0)?;
            let trow = if eps > 0.0 { cx.reduce_sum(t, &[1], true)? } else { wy2 };
            let tp = cx.bin("Mul", p, trow)?;
            let d = cx.bin("Sub", tp, t)?;
            (loss, cx.bin("Mul", d, inv_w)?)
        }
    };
    let dz = match zscale {
        LogitScale::Scalar(s) => cx.mul_s(dz, s)?,
        LogitScale::PerClass(s) => cx.bin("Mul", dz, s)?,
    };
    Ok((loss, dz))
}

/// dz'/dz of the logits the softmax sees: z' is affine in z with this factor.
enum LogitScale {
    Scalar(f32),
    /// A [1, C] constant: class c's logit is multiplied by its entry.
    PerClass(Value),
}

/// `tau·log π_c` with the prior π_c = n_c / Σ n (every count positive).
fn log_prior_times(counts: &[u64], tau: f32) -> Vec<f32> {
    let total: f64 = counts.iter().map(|&n| n as f64).sum();
    counts.iter().map(|&n| (tau as f64 * (n as f64 / total).ln()) as f32).collect()
}

/// The VS loss's multiplicative factors 1/Δ_c = (n_c / n_max)^γ (every count positive).
///
/// Kini et al. 2021, "Label-Imbalanced and Group-Sensitive Classification under
/// Overparameterization": the paper writes the logit as Δ_c·z_c + ι_c with Δ_c = (n_c/n_max)^γ;
/// the reference code (VS-Loss, `utils/losses.py` `VSLoss`) stores the reciprocal,
/// `Delta_list = (1/n_c)^γ / min_k (1/n_k)^γ = (n_max/n_c)^γ`, and computes
/// `x / Delta_list + iota_list`. Either way the largest class keeps its logit (factor 1) and
/// rarer classes' logits are shrunk during training (factor < 1), so the network must make
/// them larger: a multiplicative margin in favour of the tail.
fn vs_inverse_deltas(counts: &[u64], gamma: f32) -> Vec<f32> {
    let n_max = counts.iter().copied().max().unwrap_or(1) as f64;
    counts.iter().map(|&n| (n as f64 / n_max).powf(gamma as f64) as f32).collect()
}

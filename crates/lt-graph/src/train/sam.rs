//! Sharpness-aware minimisation (SAM, Foret et al. 2021) inside one training step: the first
//! pass's gradient `g` gives the ascent step `ε = ρ·g/‖g‖` (adaptive SAM, Kwon et al. 2021:
//! `ε = ρ·w²·g/‖w·g‖`), a second forward and backward pass runs at `w + ε`, and the SGD update
//! of the original `w` uses that second gradient. As in the SAM implementation the long-tail
//! papers use (davda54/sam's `first_step`/`second_step`, in Rangwani et al. 2022's and the DDC
//! repository's training loops):
//! - `‖·‖` is the norm over every trained parameter at once, plus 1e-12 against division by
//!   zero; weight decay is not part of `g` (the base optimiser adds it to the second
//!   gradient, with the original weights).
//! - BatchNorm normalises by the batch statistics in both passes, but only the first pass
//!   updates the running statistics, as davda54/sam's README recommends
//!   (`disable_running_stats` before the second pass). DDC's `cifar_train_sam.py` lets both
//!   passes update them; that changes only the running statistics, not the gradients.
//! - The step's `loss` and `logits` outputs are the first pass's (the unperturbed weights).

use super::emit::Value;
use super::sgd::{Param, flat_concat, split_flat};
use super::tape::Ctx;
use crate::GraphError;
use crate::onnx::Attr;

/// SAM's settings ([`super::StepOptions::sam`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sam {
    /// The radius ρ of the ascent step.
    pub rho: f32,
    /// Adaptive SAM: the step scaled per weight by `|w|` (scale-invariant).
    pub adaptive: bool,
}

impl Sam {
    pub(super) fn validate(&self) -> Result<(), GraphError> {
        if self.rho.is_finite() && self.rho > 0.0 {
            Ok(())
        } else {
            Err(GraphError::Config(format!("SAM's rho must be a positive number (got {})", self.rho)))
        }
    }
}

/// Takes the first pass's gradient of every parameter and emits the perturbed weights
/// `w + ε`, one value per parameter (shaped like it), for the second pass.
pub(super) fn perturbed_weights(cx: &mut Ctx, params: &[Param], sam: Sam) -> Result<Vec<Value>, GraphError> {
    let mut grads = Vec::with_capacity(params.len());
    for p in params {
        grads.push(cx.take_grad_or_zeros(p.value, p.value)?);
    }
    let values: Vec<Value> = params.iter().map(|p| p.value).collect();
    let (g, w) = (flat_concat(cx, &grads)?, flat_concat(cx, &values)?);
    // Adaptive: ‖w·g‖ and ε = ρ·w²·g/‖w·g‖ (|w|·g has the same norm as w·g).
    let (measured, direction) = if sam.adaptive {
        let wg = cx.bin("Mul", w, g)?;
        (wg, cx.bin("Mul", w, wg)?)
    } else {
        (g, g)
    };
    let norm = cx.wire("ReduceL2", &[measured], &[("axes", Attr::Ints(vec![0])), ("keepdims", Attr::Int(0))])?;
    let tiny = cx.scalar(1e-12);
    let denominator = cx.bin("Add", norm, tiny)?;
    let rho = cx.scalar(sam.rho);
    let scale = cx.bin("Div", rho, denominator)?;
    let eps = cx.bin("Mul", direction, scale)?;
    let shifted = cx.bin("Add", w, eps)?;
    let sizes: Vec<i64> = params.iter().map(|p| cx.shape(p.value).iter().product()).collect();
    let mut out = Vec::with_capacity(params.len());
    for (p, piece) in params.iter().zip(split_flat(cx, shifted, &sizes)?) {
        let dims = cx.shape(p.value);
        out.push(cx.reshape(piece, &dims)?);
    }
    Ok(out)
}

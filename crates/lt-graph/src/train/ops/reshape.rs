//! Reshape by a constant target shape (0 copies a dim, -1 is inferred; a batch size baked
//! into an exported shape is replaced by the static batch). Backward (shared with Flatten,
//! Squeeze and ReduceMean): dY reshaped back to x's shape.

use super::{Backward, OpRule, unsupported};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Reshape;

impl OpRule for Reshape {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let xs = f.cx.shape(x);
        let t = f.initializer(node, 1).ok_or_else(|| unsupported(node, "the target shape must be a constant"))?;
        let out = resolve(node, &xs, &crate::train::tensor_i64(t)?)?;
        reshape_to(f, node, x, out).map(Some)
    }
}

/// The target shape of Reshape(x, target).
fn resolve(node: &NodeProto, xs: &[i64], target: &[i64]) -> Result<Vec<i64>, GraphError> {
    let total: i64 = xs.iter().product();
    let mut out: Vec<i64> =
        target.iter().enumerate().map(|(i, &d)| if d == 0 { xs.get(i).copied().unwrap_or(0) } else { d }).collect();
    let known: i64 = out.iter().filter(|&&d| d != -1).product();
    let unknown = out.iter().filter(|&&d| d == -1).count();
    if unknown > 1 || known == 0 {
        return Err(unsupported(node, format!("cannot resolve the reshape of {xs:?} to {target:?}")));
    }
    if unknown == 1 {
        for d in out.iter_mut() {
            if *d == -1 {
                *d = total / known;
            }
        }
    }
    // A batch size baked into the exported shape (e.g. 1) is replaced by the static batch.
    if out.iter().product::<i64>() != total && !out.is_empty() && xs.first().is_some_and(|&b| b > 0) {
        let rest: i64 = out[1..].iter().product();
        if rest > 0 && total % rest == 0 && total / rest == xs[0] {
            out[0] = xs[0];
        }
    }
    Ok(out)
}

/// Reshapes `x` to `out` (checked to hold as many elements) and records the backward; `x`
/// itself when it has that shape.
pub(super) fn reshape_to(f: &mut Forward, node: &NodeProto, x: Value, out: Vec<i64>) -> Result<Value, GraphError> {
    let xs = f.cx.shape(x);
    if out.iter().product::<i64>() != xs.iter().product::<i64>() {
        return Err(unsupported(node, format!("cannot reshape {xs:?} to {out:?}")));
    }
    let y = f.cx.reshape(x, &out)?;
    if y != x {
        f.record(y, ReshapeBackward { x });
    }
    Ok(y)
}

/// dY reshaped to x's shape.
pub(super) struct ReshapeBackward {
    pub x: Value,
}

impl Backward for ReshapeBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let xs = cx.shape(self.x);
        let dx = cx.reshape(dy, &xs)?;
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

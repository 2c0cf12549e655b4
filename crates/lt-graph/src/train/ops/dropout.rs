//! Dropout in training mode (ratio from the attribute or a constant input; ratio 0 is the
//! identity). Forward also outputs the keep mask; backward: dY·1/(1−ratio) where kept.

use super::{Backward, OpRule, attr_f, has_input, unsupported};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};
use crate::train::tensor_f32;

pub(crate) struct Dropout;

impl OpRule for Dropout {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let ratio = if has_input(node, 1) {
            let t = f.initializer(node, 1).ok_or_else(|| unsupported(node, "the ratio must be a constant"))?;
            tensor_f32(t)?.first().copied().unwrap_or(0.5)
        } else {
            attr_f(node, "ratio", 0.5)
        };
        // Eval mode (a frozen backbone): the identity.
        if ratio <= 0.0 || f.eval_mode {
            return Ok(Some(x));
        }
        let r = f.cx.scalar(ratio);
        let training = f.cx.bool_true();
        let outs = f.cx.wire_n("Dropout", &[Some(x), Some(r), Some(training)], &[], 2)?;
        f.record(outs[0], DropoutBackward { x, mask: outs[1], scale: 1.0 / (1.0 - ratio) });
        Ok(Some(outs[0]))
    }
}

struct DropoutBackward {
    x: Value,
    mask: Value,
    scale: f32,
}

impl Backward for DropoutBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let zero = cx.scalar(0.0);
        let ds = cx.mul_s(dy, self.scale)?;
        let dx = cx.wire("Where", &[self.mask, ds, zero], &[])?;
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

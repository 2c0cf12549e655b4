//! ReduceL2 (attribute or constant axes), e.g. `F.normalize`'s ‖x‖₂. A float initializer
//! operand is a parameter (the weight of a cosine classifier, with weight decay). Emitted
//! with keepdims=1 (keepdims=0 adds a Reshape and its backward). Backward: dX = x·dY/y,
//! as (x / y)·dY with y floored at the smallest normal float, so that a zero norm (then
//! x = 0) gives a zero gradient, as PyTorch's norm does, instead of 0/0.

use super::reshape::ReshapeBackward;
use super::{Backward, InitOf, OpRule, Role, attr_i, axes_of, norm_axis};
use crate::GraphError;
use crate::onnx::Attr;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::infer::reduced;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct ReduceL2;

impl OpRule for ReduceL2 {
    fn roles(&self, _node: &NodeProto, _init: InitOf<'_>) -> Vec<Role> {
        vec![Role::weight(0)]
    }

    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let xs = f.cx.shape(x);
        let axes = axes_of(f, node)?.unwrap_or_else(|| (0..xs.len() as i64).collect());
        let axes: Vec<i64> = axes.iter().map(|&a| norm_axis(a, xs.len())).collect();
        let keep = attr_i(node, "keepdims", 1) != 0;
        let n = f.cx.wire("ReduceL2", &[x], &[("axes", Attr::Ints(axes.clone())), ("keepdims", Attr::Int(1))])?;
        f.record(n, L2Backward { x, y: n });
        if keep {
            return Ok(Some(n));
        }
        let y = f.cx.reshape(n, &reduced(&xs, &axes, false))?;
        f.record(y, ReshapeBackward { x: n });
        Ok(Some(y))
    }
}

struct L2Backward {
    x: Value,
    /// The norm, reduced axes kept as 1.
    y: Value,
}

impl Backward for L2Backward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let tiny = cx.scalar(f32::MIN_POSITIVE);
        let floored = cx.bin("Max", self.y, tiny)?;
        let unit = cx.bin("Div", self.x, floored)?;
        let dx = cx.bin("Mul", unit, dy)?;
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

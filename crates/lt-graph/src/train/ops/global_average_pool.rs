//! GlobalAveragePool. Backward (shared with ReduceMean): dY/count expanded back to x's
//! shape.

use super::{Backward, OpRule};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct GlobalAveragePool;

impl OpRule for GlobalAveragePool {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let y = f.cx.wire("GlobalAveragePool", &[x], &[])?;
        let count = f.cx.shape(x)[2..].iter().product::<i64>() as f32;
        f.record(y, MeanBackward { x, count });
        Ok(Some(y))
    }
}

/// The backward of a mean over some axes of x (kept as 1 in y): dY/count, expanded.
pub(super) struct MeanBackward {
    pub x: Value,
    /// Elements averaged into each output.
    pub count: f32,
}

impl Backward for MeanBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let xs = cx.shape(self.x);
        let s = cx.mul_s(dy, 1.0 / self.count)?;
        let ec = cx.ints(&xs);
        let dx = cx.wire("Expand", &[s, ec], &[])?;
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

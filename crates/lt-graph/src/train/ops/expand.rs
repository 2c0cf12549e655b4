//! Expand to a constant shape (broadcasting both ways), e.g. `expand_as` of a norm in
//! `F.normalize`. The importer makes a batch size in the target batch-free (1). Backward:
//! dY summed down to x's shape.

use super::{Backward, OpRule, unsupported};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};
use crate::train::tensor_i64;

pub(crate) struct Expand;

impl OpRule for Expand {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let t = f.initializer(node, 1).ok_or_else(|| unsupported(node, "the target shape must be a constant"))?;
        let shape = tensor_i64(t).map_err(|e| unsupported(node, format!("shape: {e}")))?;
        let xs = f.cx.shape(x);
        let out = crate::train::infer::broadcast(&xs, &shape);
        if out == xs {
            return Ok(Some(x));
        }
        let s = f.cx.ints(&shape);
        let y = f.cx.wire("Expand", &[x, s], &[])?;
        f.record(y, ExpandBackward { x });
        Ok(Some(y))
    }
}

struct ExpandBackward {
    x: Value,
}

impl Backward for ExpandBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        cx.push_grad_unbroadcast(self.x, dy)
    }
}

//! Mul (broadcasting), e.g. the cosine head's scale. Its initializer operands are constants,
//! not parameters (a scale s stays s). Backward: dY·b and dY·a summed down to each operand's
//! shape.

use super::{Backward, OpRule};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Mul;

impl OpRule for Mul {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let a = f.input(node, 0)?;
        let b = f.input(node, 1)?;
        let y = f.cx.bin("Mul", a, b)?;
        f.record(y, MulBackward { a, b });
        Ok(Some(y))
    }
}

struct MulBackward {
    a: Value,
    b: Value,
}

impl Backward for MulBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        for (v, other) in [(self.a, self.b), (self.b, self.a)] {
            if cx.needs_grad(v) {
                let g = cx.bin("Mul", dy, other)?;
                let s = cx.shape(v);
                let g = cx.unbroadcast(g, &s)?;
                cx.push_grad(v, g);
            }
        }
        Ok(())
    }
}

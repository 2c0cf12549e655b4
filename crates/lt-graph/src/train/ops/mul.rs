//! Mul (broadcasting), e.g. the cosine head's scale. Its initializer operands are constants,
//! not parameters (a scale s stays s). Backward: dY·b and dY·a summed down to each operand's
//! shape.

use super::{Backward, OpRule, Operands, binary};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Mul;

impl OpRule for Mul {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        binary(f, node, MulBackward)
    }
}

struct MulBackward(Operands);

impl Backward for MulBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let Operands { a, b, .. } = self.0;
        for (v, other) in [(a, b), (b, a)] {
            if cx.needs_grad(v) {
                let g = cx.bin("Mul", dy, other)?;
                cx.push_grad_unbroadcast(v, g)?;
            }
        }
        Ok(())
    }
}

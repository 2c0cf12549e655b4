//! Mul (broadcasting), e.g. the cosine head's scale. Its initializer operands are constants,
//! not parameters (a scale s stays s). Backward: dY·b and dY·a summed down to each operand's
//! shape.

use super::{Backward, Binary, Operands};
use crate::GraphError;
use crate::train::emit::Value;
use crate::train::tape::Ctx;

pub(crate) const MUL: Binary<MulBackward> = Binary(MulBackward);

pub(crate) struct MulBackward(Operands);

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

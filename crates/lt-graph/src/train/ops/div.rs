//! Div (broadcasting), e.g. `F.normalize`'s x / max(‖x‖, eps). Initializer operands are
//! constants. Backward: da = dY/b, db = −dY·y/b, each summed down to its operand's shape.

use super::{Backward, Binary, Operands};
use crate::GraphError;
use crate::train::emit::Value;
use crate::train::tape::Ctx;

pub(crate) const DIV: Binary<DivBackward> = Binary(DivBackward);

pub(crate) struct DivBackward(Operands);

impl Backward for DivBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let Operands { a, b, y } = self.0;
        let (need_a, need_b) = (cx.needs_grad(a), cx.needs_grad(b));
        if !need_a && !need_b {
            return Ok(());
        }
        let q = cx.bin("Div", dy, b)?;
        cx.push_grad_unbroadcast(a, q)?;
        if need_b {
            let t = cx.bin("Mul", q, y)?;
            let s = cx.shape(b);
            let g = cx.unbroadcast(t, &s)?;
            let g = cx.wire("Neg", &[g], &[])?;
            cx.push_grad(b, g);
        }
        Ok(())
    }
}

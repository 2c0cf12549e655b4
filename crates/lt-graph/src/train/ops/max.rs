//! Max of two operands (broadcasting), e.g. `F.normalize`'s max(‖x‖, eps). Backward: dY to
//! the larger operand, to the first on ties (as torch's `clamp_min`), each summed down to its
//! operand's shape. The mask is a float Mul, not a Where (see relu.rs).

use super::{Backward, OpRule, Operands, binary, unsupported};
use crate::GraphError;
use crate::onnx::Attr;
use crate::onnx::proto::{DataType, NodeProto};
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Max;

impl OpRule for Max {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        if node.input.len() != 2 {
            return Err(unsupported(node, format!("{} operands; only Max of two is differentiated", node.input.len())));
        }
        binary(f, node, MaxBackward)
    }
}

struct MaxBackward(Operands);

impl Backward for MaxBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let Operands { a, b, .. } = self.0;
        // b wins where a < b.
        let less = cx.bin("Less", a, b)?;
        let b_wins = cx.wire("Cast", &[less], &[("to", Attr::Int(DataType::Float as i64))])?;
        if cx.needs_grad(a) {
            let one = cx.scalar(1.0);
            let a_wins = cx.bin("Sub", one, b_wins)?;
            let g = cx.bin("Mul", dy, a_wins)?;
            cx.push_grad_unbroadcast(a, g)?;
        }
        if cx.needs_grad(b) {
            let g = cx.bin("Mul", dy, b_wins)?;
            cx.push_grad_unbroadcast(b, g)?;
        }
        Ok(())
    }
}

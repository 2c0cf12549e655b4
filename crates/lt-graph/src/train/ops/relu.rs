//! Relu. Backward: dY where y > 0. Lowering: on the CPU a float mask and a Mul
//! (onnxruntime's CPU Where is a slow broadcasting kernel: the mask and a same-shape Mul
//! take half its time, one node more, which CUDA would pay for); on CUDA one Where.

use super::{Backward, OpRule};
use crate::GraphError;
use crate::onnx::Attr;
use crate::onnx::proto::{DataType, NodeProto};
use crate::train::Lowering;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Relu;

impl OpRule for Relu {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let y = f.cx.wire("Relu", &[x], &[])?;
        f.record(y, ReluBackward { x, y });
        Ok(Some(y))
    }
}

struct ReluBackward {
    x: Value,
    y: Value,
}

impl Backward for ReluBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let zero = cx.scalar(0.0);
        let m = cx.bin("Greater", self.y, zero)?;
        let dx = if cx.lowering == Lowering::Cpu {
            let mf = cx.wire("Cast", &[m], &[("to", Attr::Int(DataType::Float as i64))])?;
            cx.bin("Mul", dy, mf)?
        } else {
            cx.wire("Where", &[m, dy, zero], &[])?
        };
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

//! Clip with constant bounds (inputs since opset 11, attributes before), e.g. `F.normalize`'s
//! clamp_min(‖x‖, eps), which the TorchScript exporter writes as Clip with a min only.
//! Backward: dY where the input passed unclipped (y == x, i.e. min ≤ x ≤ max, bounds
//! included as in torch's clamp), else 0; the mask is a float Mul, not a Where (see relu.rs).

use super::{Backward, OpRule, attr, has_input, unsupported};
use crate::GraphError;
use crate::onnx::Attr;
use crate::onnx::proto::{DataType, NodeProto};
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};
use crate::train::tensor_f32;

pub(crate) struct Clip;

impl OpRule for Clip {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        // A bound: a constant scalar input, or the opset-6 attribute of the same name.
        let bound = |f: &Forward, i: usize, name: &str| -> Result<Option<f32>, GraphError> {
            if has_input(node, i) {
                let t = f
                    .initializer(node, i)
                    .ok_or_else(|| unsupported(node, format!("the {name} must be a constant")))?;
                match tensor_f32(t)?.as_slice() {
                    [v] => Ok(Some(*v)),
                    v => Err(unsupported(node, format!("the {name} has {} values; a scalar is needed", v.len()))),
                }
            } else {
                Ok(attr(node, name).map(|a| a.f))
            }
        };
        let (lo, hi) = (bound(f, 1, "min")?, bound(f, 2, "max")?);
        let mut y = x;
        if let Some(lo) = lo {
            let c = f.cx.scalar(lo);
            y = f.cx.bin("Max", y, c)?;
        }
        if let Some(hi) = hi {
            let c = f.cx.scalar(hi);
            y = f.cx.bin("Min", y, c)?;
        }
        if lo.is_none() && hi.is_none() {
            return Ok(Some(x));
        }
        f.record(y, ClipBackward { x, y });
        Ok(Some(y))
    }
}

struct ClipBackward {
    x: Value,
    y: Value,
}

impl Backward for ClipBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let same = cx.bin("Equal", self.y, self.x)?;
        let pass = cx.wire("Cast", &[same], &[("to", Attr::Int(DataType::Float as i64))])?;
        let dx = cx.bin("Mul", dy, pass)?;
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

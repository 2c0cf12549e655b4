//! Concat. Backward: one Split of dY into the parts' sizes. A channel concatenation is also
//! remembered for BatchNorm, whose batch statistics of a concatenation are the
//! concatenation of the parts' statistics (`stats.rs`).

use super::{Backward, OpRule, attr_i, norm_axis};
use crate::GraphError;
use crate::onnx::Attr;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Concat;

impl OpRule for Concat {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let mut parts = vec![f.input(node, 0)?];
        for i in 1..node.input.len() {
            parts.push(f.input(node, i)?);
        }
        let axis = norm_axis(attr_i(node, "axis", 1), f.cx.shape(parts[0]).len());
        let y = f.cx.concat(&parts, axis)?;
        f.stats.record_concat(y, &parts, axis);
        f.record(y, ConcatBackward { parts, axis });
        Ok(Some(y))
    }
}

struct ConcatBackward {
    parts: Vec<Value>,
    axis: i64,
}

impl Backward for ConcatBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let sizes: Vec<i64> = self.parts.iter().map(|&v| cx.shape(v)[self.axis as usize]).collect();
        let sc = cx.ints(&sizes);
        let outs = cx.wire_n("Split", &[Some(dy), Some(sc)], &[("axis", Attr::Int(self.axis))], self.parts.len())?;
        for (&v, o) in self.parts.iter().zip(outs) {
            cx.push_grad(v, o);
        }
        Ok(())
    }
}

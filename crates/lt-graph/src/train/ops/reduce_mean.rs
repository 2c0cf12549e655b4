//! ReduceMean over non-batch axes (attribute or constant axes). Emitted with keepdims=1 and
//! the mean's backward (global_average_pool.rs); keepdims=0 adds a Reshape and its
//! backward.

use super::global_average_pool::MeanBackward;
use super::reshape::ReshapeBackward;
use super::{OpRule, attr_i, axes_of, norm_axis, unsupported};
use crate::GraphError;
use crate::onnx::Attr;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::infer::reduced;
use crate::train::tape::Forward;

pub(crate) struct ReduceMean;

impl OpRule for ReduceMean {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let xs = f.cx.shape(x);
        let axes = axes_of(f, node)?.unwrap_or_else(|| (0..xs.len() as i64).collect());
        let axes: Vec<i64> = axes.iter().map(|&a| norm_axis(a, xs.len())).collect();
        if axes.contains(&0) {
            return Err(unsupported(node, "ReduceMean over the batch axis is not supported"));
        }
        let keep = attr_i(node, "keepdims", 1) != 0;
        let count = axes.iter().map(|&a| xs[a as usize]).product::<i64>() as f32;
        let m = f.cx.wire("ReduceMean", &[x], &[("axes", Attr::Ints(axes.clone())), ("keepdims", Attr::Int(1))])?;
        f.record(m, MeanBackward { x, count });
        if keep {
            return Ok(Some(m));
        }
        let y = f.cx.reshape(m, &reduced(&xs, &axes, false))?;
        f.record(y, ReshapeBackward { x: m });
        Ok(Some(y))
    }
}

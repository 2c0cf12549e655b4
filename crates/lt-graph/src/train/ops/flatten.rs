//! Flatten: a reshape to [prod(dims before axis), prod(dims from axis)] (backward in
//! reshape.rs).

use super::reshape::reshape_to;
use super::{OpRule, attr_i, norm_axis};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::Forward;

pub(crate) struct Flatten;

impl OpRule for Flatten {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let xs = f.cx.shape(x);
        let a = norm_axis(attr_i(node, "axis", 1), xs.len()) as usize;
        let out = vec![xs[..a].iter().product(), xs[a..].iter().product()];
        reshape_to(f, node, x, out).map(Some)
    }
}

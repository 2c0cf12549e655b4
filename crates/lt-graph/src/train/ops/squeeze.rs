//! Squeeze (attribute or constant axes; without axes every 1): a reshape (backward in
//! reshape.rs).

use super::reshape::reshape_to;
use super::{OpRule, axes_of, norm_axis};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::Forward;

pub(crate) struct Squeeze;

impl OpRule for Squeeze {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let xs = f.cx.shape(x);
        let axes = axes_of(f, node)?;
        let out = xs
            .iter()
            .enumerate()
            .filter(|&(i, &d)| match &axes {
                Some(a) => !a.iter().any(|&a| norm_axis(a, xs.len()) == i as i64),
                None => d != 1,
            })
            .map(|(_, &d)| d)
            .collect();
        reshape_to(f, node, x, out).map(Some)
    }
}

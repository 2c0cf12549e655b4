//! Constant (with a `value` tensor): read as an initializer of the model before the sweep
//! (so it can be a Reshape's shape, a reduction's axes or a Dropout ratio); defines no value
//! during the sweep.

use super::{OpRule, attr};
use crate::GraphError;
use crate::onnx::proto::{NodeProto, TensorProto};
use crate::train::emit::Value;
use crate::train::tape::Forward;

pub(crate) struct Constant;

impl OpRule for Constant {
    fn forward(&self, _f: &mut Forward, _node: &NodeProto) -> Result<Option<Value>, GraphError> {
        Ok(None)
    }
}

/// The value of a Constant node, named after its output.
pub(crate) fn constant_value(node: &NodeProto) -> Option<TensorProto> {
    let mut t = attr(node, "value")?.t.clone()?;
    t.name = node.output.first()?.clone();
    Some(t)
}

//! Identity: its input, no node, no backward.

use super::OpRule;
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::Forward;

pub(crate) struct Identity;

impl OpRule for Identity {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        f.input(node, 0).map(Some)
    }
}

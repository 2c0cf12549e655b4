//! MatMul of two 2-D values, emitted as a Gemm without attributes (backward in gemm.rs).

use super::gemm::{Gemm, GemmBackward};
use super::{InitOf, OpRule, Role, unsupported};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::Forward;

pub(crate) struct MatMul;

impl OpRule for MatMul {
    /// Gemm's: A and B are weights (a MatMul has no C).
    fn roles(&self, node: &NodeProto, init: InitOf<'_>) -> Vec<Role> {
        Gemm.roles(node, init)
    }

    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let [a, b] = f.inputs(node)?;
        let (xs, bs) = (f.cx.shape(a), f.cx.shape(b));
        if xs.len() != 2 || bs.len() != 2 {
            return Err(unsupported(node, format!("only 2-D MatMul is supported ({xs:?} x {bs:?})")));
        }
        let y = f.cx.wire("Gemm", &[a, b], &[])?;
        f.record(y, GemmBackward { a, b, c: None, alpha: 1.0, beta: 1.0, ta: false, tb: false });
        Ok(Some(y))
    }
}

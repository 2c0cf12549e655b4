//! Add (broadcasting). An initializer operand is a parameter: a bias (rank ≤ 1, no weight
//! decay unless `Sgd::decay_bn_and_bias`) or a weight. Backward: dY summed down to each
//! operand's shape.

use super::{Backward, InitOf, OpRule, Operands, Role, binary};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Add;

impl OpRule for Add {
    fn roles(&self, _node: &NodeProto, init: InitOf<'_>) -> Vec<Role> {
        (0..2)
            .map(|i| {
                let rank1 = init(i).is_some_and(|t| t.dims.len() <= 1);
                if rank1 { Role::bias(i) } else { Role::weight(i) }
            })
            .collect()
    }

    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        binary(f, node, AddBackward)
    }
}

struct AddBackward(Operands);

impl Backward for AddBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let Operands { a, b, .. } = self.0;
        cx.push_grad_unbroadcast(a, dy)?;
        cx.push_grad_unbroadcast(b, dy)
    }
}

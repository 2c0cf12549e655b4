//! Add (broadcasting). An initializer operand is a parameter: a bias (rank ≤ 1, no weight
//! decay unless `Sgd::decay_bn_and_bias`) or a weight. Backward: dY summed down to each
//! operand's shape.

use super::{Backward, InitOf, OpRule, Role};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::StateKind;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Add;

impl OpRule for Add {
    fn roles(&self, _node: &NodeProto, init: InitOf<'_>) -> Vec<Role> {
        (0..2)
            .map(|i| {
                let rank1 = init(i).is_some_and(|t| t.dims.len() <= 1);
                Role::new(i, StateKind::Parameter, !rank1)
            })
            .collect()
    }

    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let a = f.input(node, 0)?;
        let b = f.input(node, 1)?;
        let y = f.cx.bin("Add", a, b)?;
        f.record(y, AddBackward { a, b });
        Ok(Some(y))
    }
}

struct AddBackward {
    a: Value,
    b: Value,
}

impl Backward for AddBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        for v in [self.a, self.b] {
            if cx.needs_grad(v) {
                let s = cx.shape(v);
                let g = cx.unbroadcast(dy, &s)?;
                cx.push_grad(v, g);
            }
        }
        Ok(())
    }
}

//! MaxPool (2-D, no ceil_mode, no dilation). Forward also outputs the argmax indices;
//! backward scatters dY (ScatterElements with add) to them in a flat zero tensor.

use super::average_pool::Window;
use super::{Backward, OpRule};
use crate::GraphError;
use crate::onnx::Attr;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct MaxPool;

impl OpRule for MaxPool {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let w = Window::of(node)?;
        let outs = f.cx.wire_n("MaxPool", &[Some(x)], &w.attrs(), 2)?;
        f.record(outs[0], MaxPoolBackward { x, idx: outs[1] });
        Ok(Some(outs[0]))
    }
}

struct MaxPoolBackward {
    x: Value,
    /// Flat indices of the maxima into x.
    idx: Value,
}

impl Backward for MaxPoolBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let xs = cx.shape(self.x);
        let total: i64 = xs.iter().product();
        let n_out: i64 = cx.shape(dy).iter().product();
        let zshape = cx.ints(&[total]);
        let zeros = cx.wire("ConstantOfShape", &[zshape], &[])?;
        let fi = cx.reshape(self.idx, &[n_out])?;
        let fd = cx.reshape(dy, &[n_out])?;
        let sc = cx.wire(
            "ScatterElements",
            &[zeros, fi, fd],
            &[("axis", Attr::Int(0)), ("reduction", Attr::String("add".into()))],
        )?;
        let dx = cx.reshape(sc, &xs)?;
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

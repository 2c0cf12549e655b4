//! Pad, constant mode, with constant non-negative pads (e.g. the option-A shortcut's zero
//! channels). Backward: dY sliced back to x's window.

use super::{Backward, OpRule, attr, attr_ints, has_input, unsupported};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};
use crate::train::tensor_i64;

pub(crate) struct Pad;

impl OpRule for Pad {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let rank = f.cx.shape(x).len();
        if let Some(a) = attr(node, "mode") {
            let mode = String::from_utf8_lossy(&a.s);
            if mode != "constant" {
                return Err(unsupported(node, format!("mode {mode}: only constant padding is differentiated")));
            }
        }
        if has_input(node, 3) {
            return Err(unsupported(node, "the axes input (opset 18); re-export with opset 17"));
        }
        // Opset >= 11 gives the pads as input 1, older opsets as an attribute.
        let pads = if has_input(node, 1) {
            let t = f.initializer(node, 1).ok_or_else(|| unsupported(node, "the pads must be a constant"))?;
            tensor_i64(t).map_err(|e| unsupported(node, format!("pads: {e}")))?
        } else {
            attr_ints(node, "pads").ok_or_else(|| unsupported(node, "no pads"))?
        };
        if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
            return Err(unsupported(node, format!("pads {pads:?}: need {} non-negative values", 2 * rank)));
        }
        let pc = f.cx.ints(&pads);
        let mut ins = vec![x, pc];
        if let Some(v) = f.optional_input(node, 2)? {
            ins.push(v);
        }
        let y = f.cx.wire("Pad", &ins, &[])?;
        f.record(y, PadBackward { x, pads });
        Ok(Some(y))
    }
}

struct PadBackward {
    x: Value,
    pads: Vec<i64>,
}

impl Backward for PadBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let xs = cx.shape(self.x);
        let rank = xs.len();
        let axes: Vec<usize> = (0..rank).filter(|&a| self.pads[a] != 0 || self.pads[rank + a] != 0).collect();
        let dx = if axes.is_empty() {
            dy
        } else {
            let st = cx.ints(&axes.iter().map(|&a| self.pads[a]).collect::<Vec<_>>());
            let en = cx.ints(&axes.iter().map(|&a| self.pads[a] + xs[a]).collect::<Vec<_>>());
            let ax = cx.ints(&axes.iter().map(|&a| a as i64).collect::<Vec<_>>());
            cx.wire("Slice", &[dy, st, en, ax], &[])?
        };
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

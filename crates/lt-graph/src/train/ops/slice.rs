//! Slice with constant starts, ends, axes and positive steps (e.g. the option-A shortcut's
//! `x[:, :, ::2, ::2]`). Backward: dY put back at the sliced positions of a zero tensor: a
//! unit axis after each strided axis padded to the step and merged (zeros between the
//! kept elements), then one Slice for any tail past x's end and one Pad for the offsets.

use super::{Backward, OpRule, has_input, norm_axis, unsupported};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};
use crate::train::tensor_i64;

pub(crate) struct Slice;

/// What a Slice keeps of one axis: `len` elements from `start`, every `step`-th.
#[derive(Clone, Copy)]
struct Kept {
    axis: usize,
    start: i64,
    step: i64,
    len: i64,
}

impl OpRule for Slice {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let xs = f.cx.shape(x);
        let constant = |i: usize, what: &str| -> Result<Option<Vec<i64>>, GraphError> {
            if !has_input(node, i) {
                return Ok(None);
            }
            let t = f.initializer(node, i).ok_or_else(|| unsupported(node, format!("{what} must be a constant")))?;
            tensor_i64(t).map(Some).map_err(|e| unsupported(node, format!("{what}: {e}")))
        };
        let (Some(starts), Some(ends)) = (constant(1, "starts")?, constant(2, "ends")?) else {
            return Err(unsupported(node, "Slice needs starts and ends inputs (opset >= 10)"));
        };
        let axes = constant(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = constant(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
        if [ends.len(), axes.len(), steps.len()].iter().any(|&n| n != starts.len()) {
            return Err(unsupported(node, "starts, ends, axes and steps differ in length"));
        }
        let mut kept = Vec::new();
        for i in 0..starts.len() {
            let axis = norm_axis(axes[i], xs.len());
            if !(0..xs.len() as i64).contains(&axis) || kept.iter().any(|k: &Kept| k.axis == axis as usize) {
                return Err(unsupported(node, format!("axes {axes:?} of a rank-{} input", xs.len())));
            }
            if steps[i] <= 0 {
                return Err(unsupported(node, format!("step {} (only positive steps are differentiated)", steps[i])));
            }
            let dim = xs[axis as usize];
            let clamp = |v: i64| if v < 0 { v.saturating_add(dim) } else { v }.clamp(0, dim);
            let (start, end) = (clamp(starts[i]), clamp(ends[i]));
            let len = if end > start { (end - start + steps[i] - 1) / steps[i] } else { 0 };
            kept.push(Kept { axis: axis as usize, start, step: steps[i], len });
        }
        if kept.iter().any(|k| k.len == 0) {
            return Err(unsupported(node, "the slice is empty"));
        }
        let st = f.cx.ints(&kept.iter().map(|k| k.start).collect::<Vec<_>>());
        let en = f.cx.ints(&kept.iter().map(|k| k.start + (k.len - 1) * k.step + 1).collect::<Vec<_>>());
        let ax = f.cx.ints(&kept.iter().map(|k| k.axis as i64).collect::<Vec<_>>());
        let y = if kept.iter().all(|k| k.step == 1) {
            f.cx.wire("Slice", &[x, st, en, ax], &[])?
        } else {
            let sp = f.cx.ints(&kept.iter().map(|k| k.step).collect::<Vec<_>>());
            f.cx.wire("Slice", &[x, st, en, ax, sp], &[])?
        };
        f.record(y, SliceBackward { x, kept });
        Ok(Some(y))
    }
}

struct SliceBackward {
    x: Value,
    kept: Vec<Kept>,
}

impl Backward for SliceBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let xs = cx.shape(self.x);
        let mut g = dy;
        let mut cur = cx.shape(dy);
        let strided: Vec<Kept> = self.kept.iter().copied().filter(|k| k.step > 1).collect();
        if !strided.is_empty() {
            // [.., len, ..] -> [.., len, 1, ..] -> pad to [.., len, step, ..] -> [.., len·step, ..]
            let mut split = Vec::new();
            let mut pads_after = Vec::new();
            for (a, &d) in cur.iter().enumerate() {
                split.push(d);
                pads_after.push(0);
                if let Some(k) = strided.iter().find(|k| k.axis == a) {
                    split.push(1);
                    pads_after.push(k.step - 1);
                }
            }
            let r = cx.reshape(g, &split)?;
            let mut pads = vec![0; split.len()];
            pads.extend(pads_after);
            let pc = cx.ints(&pads);
            let p = cx.wire("Pad", &[r, pc], &[])?;
            for k in &strided {
                cur[k.axis] = k.len * k.step;
            }
            g = cx.reshape(p, &cur)?;
        }
        // Elements past x's end (the last step's zeros): cropped.
        let over: Vec<&Kept> = self.kept.iter().filter(|k| k.start + cur[k.axis] > xs[k.axis]).collect();
        if !over.is_empty() {
            let st = cx.ints(&vec![0; over.len()]);
            let en = cx.ints(&over.iter().map(|k| xs[k.axis] - k.start).collect::<Vec<_>>());
            let ax = cx.ints(&over.iter().map(|k| k.axis as i64).collect::<Vec<_>>());
            g = cx.wire("Slice", &[g, st, en, ax], &[])?;
            cur = cx.shape(g);
        }
        let rank = xs.len();
        let mut pads = vec![0; 2 * rank];
        for k in &self.kept {
            pads[k.axis] = k.start;
            pads[rank + k.axis] = xs[k.axis] - k.start - cur[k.axis];
        }
        let dx = if pads.iter().all(|&p| p == 0) {
            g
        } else {
            let pc = cx.ints(&pads);
            cx.wire("Pad", &[g, pc], &[])?
        };
        cx.push_grad(self.x, dx);
        Ok(())
    }
}

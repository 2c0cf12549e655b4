//! AveragePool over non-overlapping windows without padding (what DenseNet transitions
//! use). Backward: dY/k², upsampled by the window with a nearest-neighbour Resize (one fast
//! pass: Expand or a broadcasting Mul over a 6-D view are several times slower on the CPU),
//! then zero-padded over the rows and columns no window covered.

use super::{Backward, OpRule, attr_i, pads4, spatial2, unsupported};
use crate::GraphError;
use crate::onnx::proto::NodeProto;
use crate::onnx::{Attr, Tensor};
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct AveragePool;

impl OpRule for AveragePool {
    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let x = f.input(node, 0)?;
        let w = Window::of(node)?;
        let (k, s, p) = (w.k, w.s, w.p);
        if p != [0; 4] || k != s {
            return Err(unsupported(
                node,
                format!(
                    "AveragePool is differentiated for non-overlapping windows without padding only (kernel {k:?}, strides {s:?}, pads {p:?})"
                ),
            ));
        }
        let y = f.cx.wire("AveragePool", &[x], &w.attrs())?;
        f.record(y, AveragePoolBackward { x, k });
        Ok(Some(y))
    }
}

/// The window of a 2-D pool (shared with MaxPool): no ceil_mode, no dilation.
pub(super) struct Window {
    pub k: [i64; 2],
    pub s: [i64; 2],
    pub p: [i64; 4],
}

impl Window {
    pub fn of(node: &NodeProto) -> Result<Window, GraphError> {
        let k = spatial2(node, "kernel_shape", 0)?;
        let s = spatial2(node, "strides", 1)?;
        let p = pads4(node)?;
        if attr_i(node, "ceil_mode", 0) != 0 {
            return Err(unsupported(node, "ceil_mode=1 is not supported; re-export with ceil_mode=0"));
        }
        if spatial2(node, "dilations", 1)? != [1, 1] {
            return Err(unsupported(node, "dilated pooling is not supported"));
        }
        Ok(Window { k, s, p })
    }

    pub fn attrs(&self) -> [(&'static str, Attr); 3] {
        [
            ("kernel_shape", Attr::Ints(self.k.to_vec())),
            ("strides", Attr::Ints(self.s.to_vec())),
            ("pads", Attr::Ints(self.p.to_vec())),
        ]
    }
}

struct AveragePoolBackward {
    x: Value,
    k: [i64; 2],
}

impl Backward for AveragePoolBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let (x, k) = (self.x, self.k);
        let xs = cx.shape(x);
        let scaled = cx.mul_s(dy, 1.0 / (k[0] * k[1]) as f32)?;
        let scales = cx.constant(Tensor::f32(&[4], vec![1.0, 1.0, k[0] as f32, k[1] as f32]));
        let mut dx = cx.wire_n(
            "Resize",
            &[Some(scaled), None, Some(scales)],
            &[
                ("mode", Attr::String("nearest".into())),
                ("coordinate_transformation_mode", Attr::String("asymmetric".into())),
                ("nearest_mode", Attr::String("floor".into())),
            ],
            1,
        )?[0];
        let full = cx.shape(dx);
        if full[2] != xs[2] || full[3] != xs[3] {
            let pc = cx.ints(&[0, 0, 0, 0, 0, 0, xs[2] - full[2], xs[3] - full[3]]);
            dx = cx.wire("Pad", &[dx, pc], &[])?;
        }
        cx.push_grad(x, dx);
        Ok(())
    }
}

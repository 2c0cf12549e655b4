//! Gemm: y = alpha·op(A)·op(B) + beta·C. Backward (shared with MatMul): dA and dB by Gemms
//! with the transposes swapped, dC by summing dY over the broadcast axes.

use super::{Backward, InitOf, OpRule, Role, attr_f, attr_i};
use crate::GraphError;
use crate::onnx::Attr;
use crate::onnx::proto::NodeProto;
use crate::train::emit::Value;
use crate::train::tape::{Ctx, Forward};

pub(crate) struct Gemm;

impl OpRule for Gemm {
    fn roles(&self, _node: &NodeProto, _init: InitOf<'_>) -> Vec<Role> {
        vec![Role::weight(0), Role::weight(1), Role::bias(2)]
    }

    fn forward(&self, f: &mut Forward, node: &NodeProto) -> Result<Option<Value>, GraphError> {
        let [a, b] = f.inputs(node)?;
        let c = f.optional_input(node, 2)?;
        let alpha = attr_f(node, "alpha", 1.0);
        let beta = attr_f(node, "beta", 1.0);
        let ta = attr_i(node, "transA", 0) != 0;
        let tb = attr_i(node, "transB", 0) != 0;
        let mut ins = vec![a, b];
        ins.extend(c);
        let y = f.cx.wire(
            "Gemm",
            &ins,
            &[
                ("alpha", Attr::Float(alpha)),
                ("beta", Attr::Float(beta)),
                ("transA", Attr::Int(ta as i64)),
                ("transB", Attr::Int(tb as i64)),
            ],
        )?;
        f.record(y, GemmBackward { a, b, c, alpha, beta, ta, tb });
        Ok(Some(y))
    }
}

pub(super) struct GemmBackward {
    pub a: Value,
    pub b: Value,
    pub c: Option<Value>,
    pub alpha: f32,
    pub beta: f32,
    pub ta: bool,
    pub tb: bool,
}

impl Backward for GemmBackward {
    fn backward(&self, cx: &mut Ctx, dy: Value) -> Result<(), GraphError> {
        let GemmBackward { a, b, c, alpha, beta, ta, tb, .. } = *self;
        let gemm = |cx: &mut Ctx, p: Value, q: Value, tp: bool, tq: bool| {
            cx.wire(
                "Gemm",
                &[p, q],
                &[("alpha", Attr::Float(alpha)), ("transA", Attr::Int(tp as i64)), ("transB", Attr::Int(tq as i64))],
            )
        };
        if cx.needs_grad(a) {
            let da = if ta { gemm(cx, b, dy, tb, true)? } else { gemm(cx, dy, b, false, !tb)? };
            cx.push_grad(a, da);
        }
        if cx.needs_grad(b) {
            let db = if tb { gemm(cx, dy, a, true, ta)? } else { gemm(cx, a, dy, !ta, false)? };
            cx.push_grad(b, db);
        }
        if let Some(c) = c
            && cx.needs_grad(c)
        {
            let s = cx.shape(c);
            let g = cx.unbroadcast(dy, &s)?;
            let g = cx.mul_s(g, beta)?;
            cx.push_grad(c, g);
        }
        Ok(())
    }
}

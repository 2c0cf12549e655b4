//! The parameter update: torch.optim.SGD over all parameters at once.

use super::*;

/// torch.optim.SGD over ALL parameters at once: gradients, parameters and momenta are
/// flattened (Reshape, an alias) and concatenated, updated by a handful of elementwise nodes,
/// and split back into the per-parameter outputs, which are written under their output names
/// directly. Per parameter that leaves three alias nodes instead of six arithmetic nodes and
/// two output Identities: a quarter of densenet-bc-100-k12's nodes were the update, and every
/// node is a kernel launch on CUDA.
pub(super) fn emit_sgd(
    cx: &mut Ctx,
    params: &[String],
    no_decay: &HashSet<String>,
    spec: &TrainingGraphSpec,
    lr: &str,
) -> Result<(), GraphError> {
    if params.is_empty() {
        return Ok(());
    }
    let mu = spec.sgd.momentum;
    let sizes: Vec<i64> = params.iter().map(|p| cx.shape(p).iter().product()).collect();
    let total: i64 = sizes.iter().sum();
    let (mut gs, mut ps, mut vs) = (Vec::new(), Vec::new(), Vec::new());
    for (p, &n) in params.iter().zip(&sizes) {
        let g = match cx.take_grad(p)? {
            Some(g) => g,
            None => cx.mul_s(p, 0.0)?,
        };
        gs.push(cx.reshape(&g, &[n])?);
        ps.push(cx.reshape(p, &[n])?);
        vs.push(cx.reshape(&format!("{p}.momentum"), &[n])?);
    }
    let concat = |cx: &mut Ctx, xs: &[String]| -> Result<String, GraphError> {
        if xs.len() == 1 {
            return Ok(xs[0].clone());
        }
        let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
        cx.op("Concat", &refs, &[("axis", Attr::Int(0))], vec![total])
    };
    let (g, p, v) = (concat(cx, &gs)?, concat(cx, &ps)?, concat(cx, &vs)?);
    // Weight decay: one scalar, or a per-element vector when some parameters are exempt.
    // (The per-element vector is only materialised when parameters differ: for densenet161
    // it would be 26.5M floats.)
    let decay: Vec<f32> = params
        .iter()
        .map(|name| if spec.sgd.decay_bn_and_bias || !no_decay.contains(name) { spec.sgd.weight_decay } else { 0.0 })
        .collect();
    let gp = if decay.iter().all(|&d| d == 0.0) {
        g
    } else {
        let d = if decay.iter().all(|&d| d == decay[0]) {
            cx.mul_s(&p, decay[0])?
        } else {
            let per_element =
                decay.iter().zip(&sizes).flat_map(|(&wd, &n)| std::iter::repeat_n(wd, n as usize)).collect();
            let w = cx.tensor_const(Tensor::f32(&[total], per_element));
            cx.bin("Mul", &p, &w)?
        };
        cx.bin("Add", &g, &d)?
    };
    let v_new = if mu != 0.0 {
        let vm = cx.mul_s(&v, mu)?;
        cx.bin("Add", &vm, &gp)?
    } else {
        gp.clone()
    };
    let upd = if spec.sgd.nesterov && mu != 0.0 {
        let mv = cx.mul_s(&v_new, mu)?;
        cx.bin("Add", &gp, &mv)?
    } else {
        v_new.clone()
    };
    let step = cx.bin("Mul", &upd, lr)?;
    let p_new = cx.bin("Sub", &p, &step)?;
    for (flat, suffix) in [(p_new, "new"), (v_new, "momentum.new")] {
        let pieces = if params.len() == 1 {
            vec![flat]
        } else {
            let sc = cx.i64c(&sizes);
            cx.g.node("Split", &[&flat, &sc], &[("axis", Attr::Int(0))], params.len())?
        };
        for ((name, piece), &n) in params.iter().zip(pieces).zip(&sizes) {
            cx.shapes.insert(piece.clone(), vec![n]);
            let dims = cx.shape(name);
            let out = format!("{name}.{suffix}");
            let shape = cx.i64c(&dims);
            cx.g.node_named("Reshape", &[&piece, &shape], &[&out], vec![])?;
            cx.g.output(&out, &out, DataType::Float, Some(&dims))?;
        }
    }
    Ok(())
}

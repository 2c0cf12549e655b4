//! The reverse-mode rules: one per recorded forward op, consumed in reverse order.

use super::*;

pub(super) fn backward(cx: &mut Ctx, rec: &Rec, mode: ConvGrad) -> Result<(), GraphError> {
    let y = rec_output(rec).to_string();
    let Some(dy) = cx.take_grad(&y)? else { return Ok(()) };
    backward_rule(cx, rec, dy, y, mode)
}

pub(super) fn rec_output(rec: &Rec) -> &str {
    match rec {
        Rec::Conv { y, .. }
        | Rec::Bn { y, .. }
        | Rec::Relu { y, .. }
        | Rec::Concat { y, .. }
        | Rec::AvgPool { y, .. }
        | Rec::MaxPool { y, .. }
        | Rec::Mean { y, .. }
        | Rec::Reshape { y, .. }
        | Rec::Gemm { y, .. }
        | Rec::Add { y, .. }
        | Rec::Dropout { y, .. } => y,
    }
}

pub(super) fn backward_rule(cx: &mut Ctx, rec: &Rec, dy: String, y: String, mode: ConvGrad) -> Result<(), GraphError> {
    match rec {
        Rec::Relu { x, y } => {
            let zero = cx.f32c(0.0);
            let sh = cx.shape(y);
            let m = cx.op("Greater", &[y, &zero], &[], sh.clone())?;
            let dx = if mode == ConvGrad::Cpu {
                // onnxruntime's CPU Where is a slow broadcasting kernel: a float mask and a
                // same-shape Mul take half the time (one node more, which CUDA would pay for).
                let mf = cx.op("Cast", &[&m], &[("to", Attr::Int(DataType::Float as i64))], sh.clone())?;
                cx.op("Mul", &[&dy, &mf], &[], sh)?
            } else {
                cx.op("Where", &[&m, &dy, &zero], &[], sh)?
            };
            cx.push_grad(x, dx);
        }
        Rec::Dropout { x, mask, scale, .. } => {
            let zero = cx.f32c(0.0);
            let ds = cx.mul_s(&dy, *scale)?;
            let sh = cx.shape(&dy);
            let dx = cx.op("Where", &[mask, &ds, &zero], &[], sh)?;
            cx.push_grad(x, dx);
        }
        Rec::Reshape { x, .. } => {
            let xs = cx.shape(x);
            let dx = cx.reshape(&dy, &xs)?;
            cx.push_grad(x, dx);
        }
        Rec::Concat { xs, axis, .. } => {
            let sizes: Vec<i64> = xs.iter().map(|v| cx.shape(v)[*axis as usize]).collect();
            let sc = cx.i64c(&sizes);
            let outs = cx.g.node("Split", &[&dy, &sc], &[("axis", Attr::Int(*axis))], xs.len())?;
            for (v, o) in xs.iter().zip(outs) {
                let s = cx.shape(v);
                cx.shapes.insert(o.clone(), s);
                cx.push_grad(v, o);
            }
        }
        Rec::AvgPool { x, k, .. } => {
            let xs = cx.shape(x);
            let ds = cx.shape(&dy);
            let scaled = cx.mul_s(&dy, 1.0 / (k[0] * k[1]) as f32)?;
            // Nearest-neighbour upsampling by the window: Resize is one fast pass (Expand or
            // a broadcasting Mul over a 6-D view are several times slower on the CPU).
            let scales = cx.tensor_const(Tensor::f32(&[4], vec![1.0, 1.0, k[0] as f32, k[1] as f32]));
            let full = [ds[0], ds[1], ds[2] * k[0], ds[3] * k[1]];
            let e = cx.op(
                "Resize",
                &[&scaled, "", &scales],
                &[
                    ("mode", Attr::String("nearest".into())),
                    ("coordinate_transformation_mode", Attr::String("asymmetric".into())),
                    ("nearest_mode", Attr::String("floor".into())),
                ],
                full.to_vec(),
            )?;
            let mut dx = e;
            if full[2] != xs[2] || full[3] != xs[3] {
                let pc = cx.i64c(&[0, 0, 0, 0, 0, 0, xs[2] - full[2], xs[3] - full[3]]);
                dx = cx.op("Pad", &[&dx, &pc], &[], xs.clone())?;
            }
            cx.push_grad(x, dx);
        }
        Rec::MaxPool { x, idx, .. } => {
            let xs = cx.shape(x);
            let total: i64 = xs.iter().product();
            let n_out: i64 = cx.shape(&dy).iter().product();
            let zshape = cx.i64c(&[total]);
            let zeros = cx.op("ConstantOfShape", &[&zshape], &[], vec![total])?;
            let fi = cx.reshape(idx, &[n_out])?;
            let fd = cx.reshape(&dy, &[n_out])?;
            let sc = cx.op(
                "ScatterElements",
                &[&zeros, &fi, &fd],
                &[("axis", Attr::Int(0)), ("reduction", Attr::String("add".into()))],
                vec![total],
            )?;
            let dx = cx.reshape(&sc, &xs)?;
            cx.push_grad(x, dx);
        }
        Rec::Mean { x, count, .. } => {
            let xs = cx.shape(x);
            let s = cx.mul_s(&dy, 1.0 / count)?;
            let ec = cx.i64c(&xs);
            let dx = cx.op("Expand", &[&s, &ec], &[], xs)?;
            cx.push_grad(x, dx);
        }
        Rec::Add { a, b, .. } => {
            for v in [a, b] {
                if cx.needs_grad.contains(v) {
                    let s = cx.shape(v);
                    let g = unbroadcast(cx, &dy, &s)?;
                    cx.push_grad(v, g);
                }
            }
        }
        Rec::Gemm { a, b, c, alpha, beta, ta, tb, .. } => {
            let (sa, sb) = (cx.shape(a), cx.shape(b));
            let gemm = |cx: &mut Ctx, p: &str, q: &str, tp: bool, tq: bool, out: Vec<i64>| {
                cx.op(
                    "Gemm",
                    &[p, q],
                    &[
                        ("alpha", Attr::Float(*alpha)),
                        ("transA", Attr::Int(tp as i64)),
                        ("transB", Attr::Int(tq as i64)),
                    ],
                    out,
                )
            };
            if cx.needs_grad.contains(a) {
                let da = if *ta { gemm(cx, b, &dy, *tb, true, sa)? } else { gemm(cx, &dy, b, false, !*tb, sa)? };
                cx.push_grad(a, da);
            }
            if cx.needs_grad.contains(b) {
                let db = if *tb { gemm(cx, &dy, a, true, *ta, sb)? } else { gemm(cx, a, &dy, !*ta, false, sb)? };
                cx.push_grad(b, db);
            }
            if let Some(c) = c
                && cx.needs_grad.contains(c)
            {
                let s = cx.shape(c);
                let g = unbroadcast(cx, &dy, &s)?;
                let g = cx.mul_s(&g, *beta)?;
                cx.push_grad(c, g);
            }
        }
        Rec::Bn { x, gamma, beta, xc, inv, a, m, axes, .. } => {
            // With x̂ = xc·inv (xc = x − μ):  dβ = Σ dY,  dγ = Σ dY·x̂ = inv·Σ dY·xc,
            // dX = (a·dY − a·dβ/M) − xc·k1,  k1 = a·inv·dγ/M; per-channel values are [C].
            let db = cx.reduce_sum(&dy, axes, false)?;
            let dyx = cx.bin("Mul", &dy, xc)?;
            let s = cx.reduce_sum(&dyx, axes, false)?;
            let dg = cx.bin("Mul", &s, inv)?;
            cx.push_grad(gamma, dg.clone());
            cx.push_grad(beta, db.clone());
            if cx.needs_grad.contains(x) {
                let mut cshape = vec![1i64; cx.shape(x).len()];
                cshape[1] = cx.shape(gamma)[0];
                let k1 = cx.bin("Mul", &dg, inv)?;
                let k1 = cx.bin("Mul", &k1, a)?;
                let k1 = cx.mul_s(&k1, 1.0 / m)?;
                let k1 = cx.reshape(&k1, &cshape)?;
                let k0 = cx.bin("Mul", &db, a)?;
                let k0 = cx.mul_s(&k0, -1.0 / m)?;
                let t1 = channel_affine(cx, &dy, a, Some(&k0), mode)?;
                let t2 = cx.bin("Mul", xc, &k1)?;
                let dx = cx.bin("Sub", &t1, &t2)?;
                cx.push_grad(x, dx);
            }
        }
        Rec::Conv { x, w, b, k, s, p, d, .. } => {
            if let Some(b) = b {
                let ch = cx.shape(b);
                let g = cx.reduce_sum(&dy, &[0, 2, 3], false)?;
                let g = cx.reshape(&g, &ch)?;
                cx.push_grad(b, g);
            }
            let xs = cx.shape(x);
            let ws = cx.shape(w);
            let ds = cx.shape(&dy);
            let unit = *s == [1, 1] && *d == [1, 1];
            if cx.needs_grad.contains(x) {
                let flip_ok = p[0] < k[0] && p[1] < k[1] && p[2] < k[0] && p[3] < k[1];
                let dx = if mode == ConvGrad::Cpu && unit && flip_ok {
                    let wt = cx.transpose(w, &[1, 0, 2, 3])?;
                    let wf = if *k != [1, 1] {
                        let st = cx.i64c(&[-1, -1]);
                        let en = cx.i64c(&[-i64::MAX, -i64::MAX]);
                        let ax = cx.i64c(&[2, 3]);
                        let sp = cx.i64c(&[-1, -1]);
                        let sh = cx.shape(&wt);
                        cx.op("Slice", &[&wt, &st, &en, &ax, &sp], &[], sh)?
                    } else {
                        wt
                    };
                    let pads = [k[0] - 1 - p[0], k[1] - 1 - p[1], k[0] - 1 - p[2], k[1] - 1 - p[3]];
                    cx.op("Conv", &[&dy, &wf], &[("kernel_shape", ints(k)), ("pads", ints(&pads))], xs.clone())?
                } else {
                    if p[0] != p[2] || p[1] != p[3] {
                        return Err(GraphError::Unsupported {
                            node: y.clone(),
                            op: "Conv".into(),
                            message: format!(
                                "asymmetric pads {p:?} with strides {s:?}: the input gradient needs a ConvTranspose with symmetric pads"
                            ),
                        });
                    }
                    let op: Vec<i64> = (0..2)
                        .map(|i| xs[2 + i] - ((ds[2 + i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - 2 * p[i]))
                        .collect();
                    cx.op(
                        "ConvTranspose",
                        &[&dy, w],
                        &[
                            ("kernel_shape", ints(k)),
                            ("strides", ints(s)),
                            ("dilations", ints(d)),
                            ("pads", ints(p)),
                            ("output_padding", ints(&op)),
                        ],
                        xs.clone(),
                    )?
                };
                cx.push_grad(x, dx);
            }
            let dw = if unit && (mode == ConvGrad::Cpu || *k == [1, 1] && *p == [0; 4]) {
                shifted_weight_grad(cx, x, &dy, k, p, &ws)?
            } else {
                transposed_conv_weight_grad(cx, x, &dy, k, s, p, d, &ws)?
            };
            cx.push_grad(w, dw);
        }
    }
    Ok(())
}

/// dW for a stride-1, dilation-1 conv: dW[o,c,i,j] = Σ_{n,h,w} dY[n,o,h,w]·Xpad[n,c,h+i,w+j].
/// Works in X's own frame (no padded copy of the large X): the shifted dY for tap (i, j) is
/// D[h, w] = dY[h − i + p_top, w − j + p_left] (zero outside), and the shifted copies of the
/// small dY, stacked along channels, are contracted with X in ONE batched MatMul.
pub(super) fn shifted_weight_grad(
    cx: &mut Ctx,
    x: &str,
    dy: &str,
    k: &[i64; 2],
    p: &[i64; 4],
    ws: &[i64],
) -> Result<String, GraphError> {
    let xs = cx.shape(x);
    let ds = cx.shape(dy);
    let (n, c, o) = (xs[0], xs[1], ds[1]);
    let (hp, wp) = (xs[2], xs[3]);
    let taps = k[0] * k[1];
    if c < o && taps > 1 {
        return shifted_input_weight_grad(cx, x, dy, k, p, ws);
    }
    let (stacked, tap_major) = shifted_taps(cx, dy, k, p, [hp, wp])?;
    let x3 = cx.reshape(x, &[n, c, hp * wp])?;
    let d3 = cx.reshape(&stacked, &[n, taps * o, hp * wp])?;
    // The stacked rows are (tap, o) when tap-major, else (o, tap).
    if c <= taps * o {
        // [N, T·O, P] x [N, P, C] -> [N, T·O, C]
        let xt = cx.transpose(&x3, &[0, 2, 1])?;
        let r = cx.matmul(&d3, &xt)?;
        let r = cx.reduce_sum(&r, &[0], false)?;
        if taps == 1 {
            cx.reshape(&r, ws)
        } else if tap_major {
            let r = cx.reshape(&r, &[k[0], k[1], o, c])?;
            cx.transpose(&r, &[2, 3, 0, 1])
        } else {
            let r = cx.reshape(&r, &[o, k[0], k[1], c])?;
            cx.transpose(&r, &[0, 3, 1, 2])
        }
    } else {
        // [N, C, P] x [N, P, T·O] -> [N, C, T·O]
        let dt = cx.transpose(&d3, &[0, 2, 1])?;
        let r = cx.matmul(&x3, &dt)?;
        let r = cx.reduce_sum(&r, &[0], false)?;
        if tap_major {
            let r = cx.reshape(&r, &[c, k[0], k[1], o])?;
            cx.transpose(&r, &[3, 0, 1, 2])
        } else {
            let r = cx.reshape(&r, &[c, o, k[0], k[1]])?;
            cx.transpose(&r, &[1, 0, 2, 3])
        }
    }
}

/// dW as above with the shifted copies taken of X instead, when X has fewer channels than dY
/// (a stem conv on 3-channel images: 27 copies of X, not 9·24 of dY). The copy for tap (i, j)
/// in dY's frame is Xpad[h + i, w + j]: a grouped Conv of X (group C, one-hot kernels, the
/// conv's own pads), whose rows (c, tap) contract with dY straight into dW's layout.
fn shifted_input_weight_grad(
    cx: &mut Ctx,
    x: &str,
    dy: &str,
    k: &[i64; 2],
    p: &[i64; 4],
    ws: &[i64],
) -> Result<String, GraphError> {
    let c = cx.shape(x)[1];
    let ds = cx.shape(dy);
    let (n, o, ho, wo) = (ds[0], ds[1], ds[2], ds[3]);
    let taps = k[0] * k[1];
    let copies = one_hot_copies(cx, x, k, p, false, [ho, wo])?;
    let e3 = cx.reshape(&copies, &[n, c * taps, ho * wo])?;
    let d3 = cx.reshape(dy, &[n, o, ho * wo])?;
    // [N, O, P] x [N, P, C·T] -> [N, O, C·T]
    let et = cx.transpose(&e3, &[0, 2, 1])?;
    let r = cx.matmul(&d3, &et)?;
    let r = cx.reduce_sum(&r, &[0], false)?;
    cx.reshape(&r, ws)
}

/// The k·k shifted copies of dY [N, O, Ho, Wo] in X's [H, W] frame, and whether they are
/// stacked tap-major ([N, T·O, H, W], rows (tap, o)) or not ([N, O·T, H, W], rows (o, tap)).
/// One grouped Conv of dY (group O, T one-hot kernels per channel) makes all the copies in
/// one node. Measured on the CPU (onnxruntime 1.31, 2 threads, dY [64,12,32,32]) against a
/// Pad per tap and a Concat: 2.0 ms against 5.3-6.2, with 8 nodes fewer per conv; the same
/// one-hot Conv over N·O one-channel images took 8.7 ms, its 9 output channels laid out in
/// blocks of 16 and reordered back. Pads a Conv cannot express (p ≥ k, a crop) keep the Pad
/// form.
fn shifted_taps(
    cx: &mut Ctx,
    dy: &str,
    k: &[i64; 2],
    p: &[i64; 4],
    frame: [i64; 2],
) -> Result<(String, bool), GraphError> {
    let ds = cx.shape(dy);
    let (n, o, ho, wo) = (ds[0], ds[1], ds[2], ds[3]);
    let [hp, wp] = frame;
    let taps = k[0] * k[1];
    if taps == 1 && [ho, wo] == frame {
        return Ok((dy.to_string(), true));
    }
    // Conv pads k−1−p: output row h reads input row h − (k−1−p_top) + a for kernel row a, so
    // the one at a = k−1−i picks dY[h − i + p_top].
    let conv_pads = [k[0] - 1 - p[0], k[1] - 1 - p[1], k[0] - 1 - p[2], k[1] - 1 - p[3]];
    if conv_pads.iter().all(|&q| q >= 0) {
        return Ok((one_hot_copies(cx, dy, k, &conv_pads, true, frame)?, false));
    }
    let mut parts = Vec::new();
    for i in 0..k[0] {
        for j in 0..k[1] {
            let (top, left) = (i - p[0], j - p[1]);
            let (bottom, right) = (hp - ho - top, wp - wo - left);
            if [top, left, bottom, right] == [0; 4] {
                parts.push(dy.to_string());
            } else {
                let pc = cx.i64c(&[0, 0, top, left, 0, 0, bottom, right]);
                parts.push(cx.op("Pad", &[dy, &pc], &[], vec![n, o, hp, wp])?);
            }
        }
    }
    if parts.len() == 1 {
        return Ok((parts.pop().unwrap_or_default(), true));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok((cx.op("Concat", &refs, &[("axis", Attr::Int(1))], vec![n, taps * o, hp, wp])?, true))
}

/// k·k shifted copies of every channel of `input` [N, G, ...] in one grouped Conv (group G,
/// one one-hot kernel per tap): output channel (g, t), t = (i, j), reads the padded input at
/// (h + i, w + j), or at (h + k−1−i, w + k−1−j) when `flipped`. Output [N, G·T, out_hw].
fn one_hot_copies(
    cx: &mut Ctx,
    input: &str,
    k: &[i64; 2],
    pads: &[i64; 4],
    flipped: bool,
    out_hw: [i64; 2],
) -> Result<String, GraphError> {
    let s = cx.shape(input);
    let (n, g) = (s[0], s[1]);
    let taps = k[0] * k[1];
    let mut onehot = vec![0f32; (taps * taps) as usize];
    for i in 0..k[0] {
        for j in 0..k[1] {
            let (a, b) = if flipped { (k[0] - 1 - i, k[1] - 1 - j) } else { (i, j) };
            onehot[((i * k[1] + j) * taps + a * k[1] + b) as usize] = 1.0;
        }
    }
    let w = cx.tensor_const(Tensor::F32 { dims: vec![g * taps, 1, k[0], k[1]], data: onehot.repeat(g as usize) });
    cx.op(
        "Conv",
        &[input, &w],
        &[("kernel_shape", ints(k)), ("pads", ints(pads)), ("group", Attr::Int(g))],
        vec![n, g * taps, out_hw[0], out_hw[1]],
    )
}

/// dW as a Conv over batch-transposed tensors: X^T [C,N,H,W] convolved with dY^T [O,N,Ho,Wo]
/// (strides and dilations swapped), giving [C,O,kh,kw].
#[allow(clippy::too_many_arguments)]
pub(super) fn transposed_conv_weight_grad(
    cx: &mut Ctx,
    x: &str,
    dy: &str,
    k: &[i64; 2],
    s: &[i64; 2],
    p: &[i64; 4],
    d: &[i64; 2],
    ws: &[i64],
) -> Result<String, GraphError> {
    let mut xs = cx.shape(x);
    let ds = cx.shape(dy);
    let mut xin = x.to_string();
    let mut hi = [0i64; 2];
    for i in 0..2 {
        hi[i] = (ds[2 + i] - 1) * s[i] + 1 - xs[2 + i] + (k[i] - 1) * d[i] - p[i];
    }
    if hi.iter().any(|&h| h < 0) {
        // Rows the forward conv never reached: crop them instead of a negative pad.
        let ends = [xs[2] + hi[0].min(0), xs[3] + hi[1].min(0)];
        let st = cx.i64c(&[0, 0]);
        let en = cx.i64c(&ends);
        let ax = cx.i64c(&[2, 3]);
        let sh = vec![xs[0], xs[1], ends[0], ends[1]];
        xin = cx.op("Slice", &[&xin, &st, &en, &ax], &[], sh.clone())?;
        xs = sh;
        hi = [hi[0].max(0), hi[1].max(0)];
    }
    let _ = xs;
    let xt = cx.transpose(&xin, &[1, 0, 2, 3])?;
    let dt = cx.transpose(dy, &[1, 0, 2, 3])?;
    let r = cx.op(
        "Conv",
        &[&xt, &dt],
        &[
            ("kernel_shape", ints(&[ds[2], ds[3]])),
            ("strides", ints(d)),
            ("dilations", ints(s)),
            ("pads", ints(&[p[0], p[1], hi[0], hi[1]])),
        ],
        vec![ws[1], ws[0], k[0], k[1]],
    )?;
    cx.transpose(&r, &[1, 0, 2, 3])
}

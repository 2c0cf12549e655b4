//! Output facts (shape and element type) of every op the training graph wires, computed from
//! the input facts, the attributes and the values of constant inputs, as onnxruntime's
//! shape inference would (opset 17). The emitter calls [`infer`] for each node, so no call
//! site computes an output shape by hand.

use crate::onnx::Attr;
use crate::onnx::Tensor;
use crate::onnx::proto::DataType;

/// What the emitter knows about one input: its shape, its element type and, for a constant,
/// its value.
#[derive(Clone, Copy)]
pub struct InputFact<'a> {
    pub shape: &'a [i64],
    pub dtype: DataType,
    pub value: Option<&'a Tensor>,
}

/// Shape and element type of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub shape: Vec<i64>,
    pub dtype: DataType,
}

impl Fact {
    fn new(shape: Vec<i64>, dtype: DataType) -> Self {
        Fact { shape, dtype }
    }
}

fn attr<'a>(attrs: &'a [(&str, Attr)], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
}

fn attr_int(attrs: &[(&str, Attr)], name: &str, default: i64) -> i64 {
    match attr(attrs, name) {
        Some(Attr::Int(v)) => *v,
        _ => default,
    }
}

fn attr_ints(attrs: &[(&str, Attr)], name: &str) -> Option<Vec<i64>> {
    match attr(attrs, name) {
        Some(Attr::Ints(v)) => Some(v.clone()),
        _ => None,
    }
}

/// `i` normalised against `rank` (negative axes count from the end).
fn axis(i: i64, rank: usize) -> usize {
    if i < 0 { (i + rank as i64) as usize } else { i as usize }
}

/// Numpy broadcasting of two shapes.
pub fn broadcast(a: &[i64], b: &[i64]) -> Vec<i64> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
            let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
            da.max(db)
        })
        .collect()
}

/// `s` reduced over `axes` (negative axes allowed), keeping them as 1 or dropping them.
pub fn reduced(s: &[i64], axes: &[i64], keep: bool) -> Vec<i64> {
    let norm: Vec<usize> = axes.iter().map(|&a| axis(a, s.len())).collect();
    s.iter()
        .enumerate()
        .filter_map(|(i, &d)| if norm.contains(&i) { if keep { Some(1) } else { None } } else { Some(d) })
        .collect()
}

/// Output size of a conv/pool window along one axis.
pub fn window_out(h: i64, k: i64, s: i64, p0: i64, p1: i64, d: i64) -> i64 {
    (h + p0 + p1 - d * (k - 1) - 1) / s + 1
}

/// The i64 values of a constant input.
fn const_i64(inputs: &[Option<InputFact>], i: usize, what: &str) -> Result<Vec<i64>, String> {
    match inputs.get(i).copied().flatten().and_then(|f| f.value) {
        Some(Tensor::I64 { data, .. }) => Ok(data.clone()),
        _ => Err(format!("{what} (input {i}) must be an int64 constant")),
    }
}

fn const_f32(inputs: &[Option<InputFact>], i: usize, what: &str) -> Result<Vec<f32>, String> {
    match inputs.get(i).copied().flatten().and_then(|f| f.value) {
        Some(Tensor::F32 { data, .. }) => Ok(data.clone()),
        _ => Err(format!("{what} (input {i}) must be a float constant")),
    }
}

/// Window parameters of Conv, ConvTranspose and the pools, defaults filled in.
struct Window {
    k: Vec<i64>,
    s: Vec<i64>,
    p: Vec<i64>,
    d: Vec<i64>,
}

fn window(attrs: &[(&str, Attr)], spatial: usize, kernel: Option<&[i64]>) -> Result<Window, String> {
    let k = attr_ints(attrs, "kernel_shape")
        .or_else(|| kernel.map(<[i64]>::to_vec))
        .ok_or_else(|| "kernel_shape is required".to_string())?;
    let s = attr_ints(attrs, "strides").unwrap_or_else(|| vec![1; spatial]);
    let p = attr_ints(attrs, "pads").unwrap_or_else(|| vec![0; 2 * spatial]);
    let d = attr_ints(attrs, "dilations").unwrap_or_else(|| vec![1; spatial]);
    if k.len() != spatial || s.len() != spatial || p.len() != 2 * spatial || d.len() != spatial {
        return Err(format!("window attributes do not match {spatial} spatial axes"));
    }
    Ok(Window { k, s, p, d })
}

/// The output facts of `op` over `inputs` (`None`: an omitted optional input) with `attrs`;
/// `n_outputs` is how many outputs the node declares. An error names what is missing.
///
/// Long on purpose: one short arm per op the emitter wires, so the whole table of shape
/// rules reads in one place (as in ONNX's operator docs); splitting it would scatter them.
pub fn infer(
    op: &str,
    inputs: &[Option<InputFact>],
    attrs: &[(&str, Attr)],
    n_outputs: usize,
) -> Result<Vec<Fact>, String> {
    let x = |i: usize| -> Result<InputFact, String> {
        inputs.get(i).copied().flatten().ok_or_else(|| format!("input {i} is required"))
    };
    let one = |shape: Vec<i64>, dtype: DataType| Ok(vec![Fact::new(shape, dtype)]);
    let x0 = x(0)?;
    let rank = x0.shape.len();
    match op {
        // Elementwise unary ops (and those whose output is shaped like input 0).
        "Relu" | "Sqrt" | "Reciprocal" | "Exp" | "Log" | "Neg" | "Abs" | "Sigmoid" | "Tanh" | "Erf" | "Softplus"
        | "LeakyRelu" | "Elu" | "Clip" | "Identity" | "LogSoftmax" | "Softmax" | "BatchNormalization" => {
            one(x0.shape.to_vec(), x0.dtype)
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Sum" => {
            let mut s = x0.shape.to_vec();
            for i in 1..inputs.len() {
                s = broadcast(&s, x(i)?.shape);
            }
            one(s, x0.dtype)
        }
        "Greater" | "Less" | "Equal" => one(broadcast(x0.shape, x(1)?.shape), DataType::Bool),
        "Where" => {
            let s = broadcast(&broadcast(x0.shape, x(1)?.shape), x(2)?.shape);
            one(s, x(1)?.dtype)
        }
        "Cast" => {
            let to = attr_int(attrs, "to", 0);
            let dtype = DataType::try_from(to as i32).map_err(|_| format!("unknown Cast target {to}"))?;
            one(x0.shape.to_vec(), dtype)
        }
        "Conv" => {
            let w = x(1)?.shape;
            if rank < 3 || w.len() != rank {
                return Err(format!("Conv of {:?} with a weight {w:?}", x0.shape));
            }
            let win = window(attrs, rank - 2, Some(&w[2..]))?;
            let mut out = vec![x0.shape[0], w[0]];
            for i in 0..rank - 2 {
                out.push(window_out(x0.shape[2 + i], win.k[i], win.s[i], win.p[i], win.p[rank - 2 + i], win.d[i]));
            }
            one(out, x0.dtype)
        }
        "ConvTranspose" => {
            let w = x(1)?.shape;
            if rank < 3 || w.len() != rank {
                return Err(format!("ConvTranspose of {:?} with a weight {w:?}", x0.shape));
            }
            let win = window(attrs, rank - 2, Some(&w[2..]))?;
            let out_pad = attr_ints(attrs, "output_padding").unwrap_or_else(|| vec![0; rank - 2]);
            let mut out = vec![x0.shape[0], w[1] * attr_int(attrs, "group", 1)];
            out.extend((0..rank - 2).map(|i| {
                let full = (x0.shape[2 + i] - 1) * win.s[i] + (win.k[i] - 1) * win.d[i] + 1;
                full - win.p[i] - win.p[rank - 2 + i] + out_pad[i]
            }));
            one(out, x0.dtype)
        }
        "AveragePool" | "MaxPool" => {
            if attr_int(attrs, "ceil_mode", 0) != 0 {
                return Err("ceil_mode=1".into());
            }
            let win = window(attrs, rank - 2, None)?;
            let mut out = x0.shape[..2].to_vec();
            for i in 0..rank - 2 {
                out.push(window_out(x0.shape[2 + i], win.k[i], win.s[i], win.p[i], win.p[rank - 2 + i], win.d[i]));
            }
            let mut facts = vec![Fact::new(out.clone(), x0.dtype)];
            if op == "MaxPool" && n_outputs > 1 {
                facts.push(Fact::new(out, DataType::Int64));
            }
            Ok(facts)
        }
        "GlobalAveragePool" => {
            let mut out = x0.shape.to_vec();
            out[2..].fill(1);
            one(out, x0.dtype)
        }
        "ReduceMean" | "ReduceL2" => {
            // Axes: an attribute up to opset 17, a constant input from opset 18 (imports).
            let axes = match (attr_ints(attrs, "axes"), inputs.get(1).copied().flatten()) {
                (Some(a), _) => a,
                (None, Some(_)) => const_i64(inputs, 1, "axes")?,
                (None, None) => (0..rank as i64).collect(),
            };
            one(reduced(x0.shape, &axes, attr_int(attrs, "keepdims", 1) != 0), x0.dtype)
        }
        "ReduceSum" => {
            let axes = match inputs.get(1).copied().flatten() {
                Some(_) => const_i64(inputs, 1, "axes")?,
                None => (0..rank as i64).collect(),
            };
            one(reduced(x0.shape, &axes, attr_int(attrs, "keepdims", 1) != 0), x0.dtype)
        }
        "Reshape" => {
            let target = const_i64(inputs, 1, "the shape")?;
            let total: i64 = x0.shape.iter().product();
            let mut out: Vec<i64> =
                target.iter().enumerate().map(|(i, &d)| if d == 0 { x0.shape[i] } else { d }).collect();
            let known: i64 = out.iter().filter(|&&d| d != -1).product();
            if let Some(u) = out.iter().position(|&d| d == -1) {
                out[u] = if known == 0 { 0 } else { total / known };
            }
            if out.iter().product::<i64>() != total {
                return Err(format!("cannot reshape {:?} to {target:?}", x0.shape));
            }
            one(out, x0.dtype)
        }
        "Transpose" => {
            let perm = attr_ints(attrs, "perm").unwrap_or_else(|| (0..rank as i64).rev().collect());
            one(perm.iter().map(|&p| x0.shape[p as usize]).collect(), x0.dtype)
        }
        "Concat" => {
            let a = axis(attr_int(attrs, "axis", 0), rank);
            let mut out = x0.shape.to_vec();
            out[a] = (0..inputs.len()).map(|i| x(i).map(|f| f.shape[a])).sum::<Result<i64, String>>()?;
            one(out, x0.dtype)
        }
        "Split" => {
            let a = axis(attr_int(attrs, "axis", 0), rank);
            let sizes = match inputs.get(1).copied().flatten() {
                Some(_) => const_i64(inputs, 1, "split")?,
                None => vec![x0.shape[a] / n_outputs as i64; n_outputs],
            };
            if sizes.len() != n_outputs || sizes.iter().sum::<i64>() != x0.shape[a] {
                return Err(format!("split {sizes:?} of axis {a} of {:?} into {n_outputs}", x0.shape));
            }
            Ok(sizes
                .iter()
                .map(|&n| {
                    let mut s = x0.shape.to_vec();
                    s[a] = n;
                    Fact::new(s, x0.dtype)
                })
                .collect())
        }
        "Gemm" => {
            let b = x(1)?.shape;
            let m = if attr_int(attrs, "transA", 0) != 0 { x0.shape[1] } else { x0.shape[0] };
            let n = if attr_int(attrs, "transB", 0) != 0 { b[0] } else { b[1] };
            one(vec![m, n], x0.dtype)
        }
        "MatMul" => {
            let b = x(1)?.shape;
            if rank < 2 || b.len() < 2 {
                return Err(format!("MatMul of {:?} and {b:?}", x0.shape));
            }
            let mut out = broadcast(&x0.shape[..rank - 2], &b[..b.len() - 2]);
            out.push(x0.shape[rank - 2]);
            out.push(b[b.len() - 1]);
            one(out, x0.dtype)
        }
        "Resize" => {
            let scales = const_f32(inputs, 2, "scales")?;
            one(x0.shape.iter().zip(&scales).map(|(&d, &s)| (d as f32 * s).floor() as i64).collect(), x0.dtype)
        }
        "Pad" => {
            let pads = const_i64(inputs, 1, "pads")?;
            one(x0.shape.iter().enumerate().map(|(i, &d)| d + pads[i] + pads[rank + i]).collect(), x0.dtype)
        }
        "ConstantOfShape" => one(const_i64(inputs, 0, "the shape")?, DataType::Float),
        "ScatterElements" => one(x0.shape.to_vec(), x0.dtype),
        "Expand" => one(broadcast(x0.shape, &const_i64(inputs, 1, "the shape")?), x0.dtype),
        "Slice" => {
            let starts = const_i64(inputs, 1, "starts")?;
            let ends = const_i64(inputs, 2, "ends")?;
            let axes = match inputs.get(3).copied().flatten() {
                Some(_) => const_i64(inputs, 3, "axes")?,
                None => (0..starts.len() as i64).collect(),
            };
            let steps = match inputs.get(4).copied().flatten() {
                Some(_) => const_i64(inputs, 4, "steps")?,
                None => vec![1; starts.len()],
            };
            let mut out = x0.shape.to_vec();
            for (((&st, &en), &ax), &step) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
                let a = axis(ax, rank);
                out[a] = slice_len(x0.shape[a], st, en, step);
            }
            one(out, x0.dtype)
        }
        "OneHot" => {
            let depth = const_i64(inputs, 1, "depth")?;
            let values = x(2)?;
            let a = attr_int(attrs, "axis", -1);
            let a = if a < 0 { (a + rank as i64 + 1) as usize } else { a as usize };
            let mut out = x0.shape.to_vec();
            out.insert(a, depth[0]);
            one(out, values.dtype)
        }
        "Dropout" => {
            let mut facts = vec![Fact::new(x0.shape.to_vec(), x0.dtype)];
            if n_outputs > 1 {
                facts.push(Fact::new(x0.shape.to_vec(), DataType::Bool));
            }
            Ok(facts)
        }
        other => Err(format!("no shape inference for {other}")),
    }
}

/// Elements a Slice of an axis of length `dim` keeps (ONNX clamping rules).
fn slice_len(dim: i64, start: i64, end: i64, step: i64) -> i64 {
    let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (s, e) = (norm(start), norm(end));
    if step > 0 {
        let (s, e) = (s.clamp(0, dim), e.clamp(0, dim));
        if e > s { (e - s + step - 1) / step } else { 0 }
    } else {
        let (s, e) = (s.clamp(-1, dim - 1), e.clamp(-1, dim - 1));
        if s > e { (s - e + (-step) - 1) / (-step) } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[i64]) -> InputFact<'_> {
        InputFact { shape, dtype: DataType::Float, value: None }
    }

    #[test]
    fn conv_and_conv_transpose_are_inverse_in_shape() {
        let attrs = [
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ];
        let y = infer("Conv", &[Some(f(&[2, 3, 9, 9])), Some(f(&[5, 3, 3, 3]))], &attrs, 1).unwrap();
        assert_eq!(y[0].shape, [2, 5, 5, 5]);
        let mut t = attrs.to_vec();
        t.push(("output_padding", Attr::Ints(vec![0, 0])));
        let x = infer("ConvTranspose", &[Some(f(&[2, 5, 5, 5])), Some(f(&[5, 3, 3, 3]))], &t, 1).unwrap();
        assert_eq!(x[0].shape, [2, 3, 9, 9]);
    }

    #[test]
    fn constant_inputs_drive_reshape_slice_and_split() {
        let shape = Tensor::i64(&[3], vec![0, -1, 2]);
        let s = InputFact { shape: &[3], dtype: DataType::Int64, value: Some(&shape) };
        let y = infer("Reshape", &[Some(f(&[4, 3, 2, 2])), Some(s)], &[], 1).unwrap();
        assert_eq!(y[0].shape, [4, 6, 2]);
        let (st, en) = (Tensor::i64(&[1], vec![-1]), Tensor::i64(&[1], vec![-i64::MAX]));
        let (ax, sp) = (Tensor::i64(&[1], vec![1]), Tensor::i64(&[1], vec![-1]));
        let c = |t| Some(InputFact { shape: &[1], dtype: DataType::Int64, value: Some(t) });
        let y = infer("Slice", &[Some(f(&[2, 7])), c(&st), c(&en), c(&ax), c(&sp)], &[], 1).unwrap();
        assert_eq!(y[0].shape, [2, 7]);
        let sizes = Tensor::i64(&[2], vec![3, 4]);
        let y = infer("Split", &[Some(f(&[2, 7])), c(&sizes)], &[("axis", Attr::Int(1))], 2).unwrap();
        assert_eq!((y[0].shape.clone(), y[1].shape.clone()), (vec![2, 3], vec![2, 4]));
    }

    #[test]
    fn masks_and_indices_have_their_element_types() {
        let y = infer("Greater", &[Some(f(&[2, 3])), Some(f(&[]))], &[], 1).unwrap();
        assert_eq!(y[0], Fact { shape: vec![2, 3], dtype: DataType::Bool });
        let attrs = [("kernel_shape", Attr::Ints(vec![2, 2])), ("strides", Attr::Ints(vec![2, 2]))];
        let y = infer("MaxPool", &[Some(f(&[1, 2, 4, 4]))], &attrs, 2).unwrap();
        assert_eq!(y[1], Fact { shape: vec![1, 2, 2, 2], dtype: DataType::Int64 });
        assert!(infer("NonMaxSuppression", &[Some(f(&[1]))], &[], 1).is_err());
    }
}

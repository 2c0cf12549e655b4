//! Folding of shape subgraphs to constants on import.
//!
//! PyTorch's exporters compute some constant inputs at run time from shapes: the TorchScript
//! exporter writes `F.pad`'s pads as Shape/Gather/Unsqueeze/Concat/ConstantOfShape/Reshape/
//! Slice/Transpose/Cast, a `view(x.size(0), -1)` as Shape/Gather/Unsqueeze/Concat feeding a
//! Reshape, `expand_as` as Shape feeding Expand. The image input's shape is static in an
//! export, so every such value is a constant; this module evaluates them (int64 only) and
//! leaves the graph with initializers in their place.
//!
//! The one thing an export fixes that training must not: the batch size. The graph is
//! evaluated twice, with the exported batch `B` and with `B + 1`; a folded value that differs
//! between the two depends on the batch. Where such a value (or a batch size the dynamo
//! exporter baked into a literal) is the target shape of a Reshape or an Expand at an axis
//! whose input dim is the batch, it is replaced by what copies the input's dim (0 for Reshape,
//! 1 for Expand); any other batch-dependent constant is refused, naming its node.

use std::collections::{HashMap, HashSet};

use crate::GraphError;
use crate::onnx::proto::{
    AttributeProto, DataType, GraphProto, NodeProto, TensorProto, tensor_shape_proto, type_proto,
};
use crate::onnx::{Attr, Tensor};
use crate::train::infer::{InputFact, infer};
use crate::train::tensor_i64;

/// An int64 tensor being folded.
#[derive(Clone, Debug, PartialEq)]
struct Ints {
    dims: Vec<i64>,
    data: Vec<i64>,
}

impl Ints {
    fn new(dims: Vec<i64>, data: Vec<i64>) -> Self {
        Ints { dims, data }
    }

    fn tensor(&self) -> Tensor {
        Tensor::I64 { dims: self.dims.clone(), data: self.data.clone() }
    }
}

/// What one evaluation (one batch size) knows: value shapes and folded int64 values.
#[derive(Default)]
struct World {
    shapes: HashMap<String, (Vec<i64>, DataType)>,
    ints: HashMap<String, Ints>,
}

/// The ops whose int64 results are folded when all their inputs are known.
const FOLDABLE: &[&str] = &[
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "ConstantOfShape",
    "Cast",
    "Reshape",
    "Transpose",
    "Slice",
    "Add",
    "Sub",
    "Mul",
    "Div",
];

fn err(node: &NodeProto, message: impl Into<String>) -> GraphError {
    GraphError::Unsupported { node: node.name.clone(), op: node.op_type.clone(), message: message.into() }
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

/// Node attributes in the form `infer` reads (the kinds shape rules use).
fn attrs_of(node: &NodeProto) -> Vec<(&str, Attr)> {
    use crate::onnx::proto::AttributeType as T;
    node.attribute
        .iter()
        .filter_map(|a| {
            let v = match T::try_from(a.r#type).ok()? {
                T::Int => Attr::Int(a.i),
                T::Ints => Attr::Ints(a.ints.clone()),
                T::Float => Attr::Float(a.f),
                T::Floats => Attr::Floats(a.floats.clone()),
                T::String => Attr::String(String::from_utf8_lossy(&a.s).into_owned()),
                _ => return None,
            };
            Some((a.name.as_str(), v))
        })
        .collect()
}

/// The two worlds folding runs in: the model's input at its exported batch and at one more
/// (so a value computed from the batch size shows as two different constants), with every
/// initializer's shape and the values of the int64 ones.
fn worlds_at_two_batches(graph: &GraphProto) -> Result<[World; 2], GraphError> {
    let input = graph.input.first().ok_or_else(|| GraphError::Model("the model has no input".into()))?;
    let Some(type_proto::Value::TensorType(tt)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(GraphError::Model(format!("input `{}` is not a tensor", input.name)));
    };
    let dims: Option<Vec<i64>> = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(v)) => v,
                _ => -1,
            })
            .collect()
    });
    // Without a static image shape nothing depends on it; symbolic dims are left unknown.
    let dims = dims.filter(|d| d.iter().skip(1).all(|&v| v > 0));
    let batch = dims.as_ref().and_then(|d| d.first().copied()).filter(|&b| b > 0).unwrap_or(1);
    let mut worlds = [World::default(), World::default()];
    for (w, b) in worlds.iter_mut().zip([batch, batch + 1]) {
        if let Some(d) = &dims {
            let mut d = d.clone();
            d[0] = b;
            w.shapes.insert(input.name.clone(), (d, DataType::Float));
        }
        for t in &graph.initializer {
            let dt = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
            w.shapes.insert(t.name.clone(), (t.dims.clone(), dt));
            if dt == DataType::Int64 {
                w.ints.insert(t.name.clone(), Ints::new(t.dims.clone(), tensor_i64(t)?));
            }
        }
    }
    Ok(worlds)
}

/// Folds the shape subgraphs of `graph` (after Constant nodes became initializers and
/// Identity nodes were bypassed). Nodes that cannot be folded are kept as they are.
pub(super) fn fold(graph: &mut GraphProto) -> Result<(), GraphError> {
    let mut worlds = worlds_at_two_batches(graph)?;
    let mut folded: HashSet<String> = HashSet::new();
    let mut kept = Vec::new();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    // Casts to the type their input already has (the exporter casts float constants to
    // float), bypassed: output name -> input name.
    let mut alias: HashMap<String, String> = HashMap::new();
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    for mut node in std::mem::take(&mut graph.node) {
        for i in node.input.iter_mut() {
            if let Some(a) = alias.get(i) {
                *i = a.clone();
            }
        }
        if node.op_type == "Cast"
            && !outputs.contains(&node.output[0])
            && let Some((_, dt)) = worlds[0].shapes.get(&node.input[0])
            && *dt as i64 == attr_i(&node, "to", -1)
        {
            alias.insert(node.output[0].clone(), node.input[0].clone());
            continue;
        }
        // A double constant cast to float (TorchScript writes F.normalize's eps so) becomes
        // a float initializer; lt trains float tensors only, so a double is never state.
        if node.op_type == "Cast"
            && attr_i(&node, "to", -1) == DataType::Float as i64
            && let Some(v) =
                graph.initializer.iter().chain(&new_inits).find(|t| t.name == node.input[0]).and_then(doubles)
        {
            let t = graph.initializer.iter().chain(&new_inits).find(|t| t.name == node.input[0]).unwrap();
            let cast = Tensor::f32(&t.dims, v.iter().map(|&x| x as f32).collect()).to_proto(&node.output[0]);
            for w in worlds.iter_mut() {
                w.shapes.insert(node.output[0].clone(), (t.dims.clone(), DataType::Float));
            }
            new_inits.push(cast);
            continue;
        }
        if FOLDABLE.contains(&node.op_type.as_str()) {
            let results: Vec<Option<Ints>> = worlds.iter().map(|w| eval(&node, w)).collect();
            if let [Some(a), Some(b)] = &results[..] {
                for (w, v) in worlds.iter_mut().zip([a.clone(), b.clone()]) {
                    w.shapes.insert(node.output[0].clone(), (v.dims.clone(), DataType::Int64));
                    w.ints.insert(node.output[0].clone(), v);
                }
                folded.insert(node.output[0].clone());
                continue;
            }
        }
        if matches!(node.op_type.as_str(), "Reshape" | "Expand") {
            batch_free_target(&mut node, &mut worlds, &mut new_inits)?;
        }
        // A constant input that differs between the two batch sizes cannot stay a constant.
        for i in &node.input {
            if let (Some(a), Some(b)) = (worlds[0].ints.get(i), worlds[1].ints.get(i))
                && a != b
            {
                return Err(err(
                    &node,
                    format!("input `{i}` is computed from the batch size; export with a batch-free expression"),
                ));
            }
        }
        for w in worlds.iter_mut() {
            let facts: Vec<Option<InputFact>> = node
                .input
                .iter()
                .map(|i| w.shapes.get(i).map(|(s, dt)| InputFact { shape: s, dtype: *dt, value: None }))
                .collect();
            let values: Vec<Option<Tensor>> = node.input.iter().map(|i| w.ints.get(i).map(Ints::tensor)).collect();
            let facts: Vec<Option<InputFact>> =
                facts.into_iter().zip(&values).map(|(f, v)| f.map(|f| InputFact { value: v.as_ref(), ..f })).collect();
            // An op without a shape rule leaves its outputs unknown: only a Shape of them
            // would need it, and that Shape then stays (and is refused by name).
            if let Ok(out) = infer(&node.op_type, &facts, &attrs_of(&node), node.output.len()) {
                for (o, f) in node.output.iter().zip(out) {
                    w.shapes.insert(o.clone(), (f.shape, f.dtype));
                }
            }
        }
        kept.push(node);
    }
    // Folded values read by the remaining nodes become initializers; int64 initializers that
    // only fed folded nodes go.
    let used: HashSet<&String> = kept.iter().flat_map(|n| n.input.iter()).collect();
    let mut have: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    for name in &used {
        if folded.contains(*name) && have.insert((*name).clone()) {
            new_inits.push(worlds[0].ints[*name].tensor().to_proto(name));
        }
    }
    graph.initializer.retain(|t| t.data_type != DataType::Int64 as i32 || used.contains(&t.name));
    graph.initializer.extend(new_inits);
    graph.node = kept;
    Ok(())
}

/// The values of a double tensor.
fn doubles(t: &TensorProto) -> Option<Vec<f64>> {
    if t.data_type != DataType::Double as i32 {
        return None;
    }
    if t.raw_data.is_empty() {
        return Some(t.double_data.clone());
    }
    Some(t.raw_data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
}

/// Makes the constant target shape of a Reshape or Expand batch-free: an entry equal to the
/// input's dim at an axis whose dim is the batch becomes 0 (Reshape: copy the dim) or 1
/// (Expand: keep the dim). The new target is a fresh initializer, since the exporter may
/// share the old one.
fn batch_free_target(
    node: &mut NodeProto,
    worlds: &mut [World; 2],
    inits: &mut Vec<TensorProto>,
) -> Result<(), GraphError> {
    let (Some(x), Some(t)) = (node.input.first(), node.input.get(1)) else { return Ok(()) };
    let (Some((x0, _)), Some((x1, _))) = (worlds[0].shapes.get(x), worlds[1].shapes.get(x)) else { return Ok(()) };
    let (Some(t0), Some(t1)) = (worlds[0].ints.get(t), worlds[1].ints.get(t)) else { return Ok(()) };
    let expand = node.op_type == "Expand";
    let mut target = t0.data.clone();
    // Reshape's 0 copies the dim at the same index; Expand broadcasts right-aligned.
    let off = if expand { target.len() as i64 - x0.len() as i64 } else { 0 };
    for (i, v) in target.iter_mut().enumerate() {
        let xi = i as i64 - off;
        if xi < 0 || xi as usize >= x0.len() {
            continue;
        }
        let xi = xi as usize;
        if x0[xi] != x1[xi] && *v == x0[xi] {
            *v = if expand { 1 } else { 0 };
        }
    }
    let changed = target != t0.data;
    if !changed && t0 == t1 {
        return Ok(());
    }
    let fixed_elsewhere = t0.data.iter().zip(&t1.data).zip(&target).any(|((a, b), n)| a != b && *n == *a);
    if fixed_elsewhere {
        return Err(err(
            node,
            format!("the target shape {:?} depends on the batch size at an axis that is not the batch", t0.data),
        ));
    }
    let name = format!("{}_batch_free", node.output[0]);
    let v = Ints::new(t0.dims.clone(), target);
    inits.push(v.tensor().to_proto(&name));
    for w in worlds.iter_mut() {
        w.shapes.insert(name.clone(), (v.dims.clone(), DataType::Int64));
        w.ints.insert(name.clone(), v.clone());
    }
    node.input[1] = name;
    if !expand {
        // 0 means "copy" only without allowzero.
        node.attribute.retain(|a| a.name != "allowzero");
    }
    Ok(())
}

/// Evaluates a foldable node in `w`; `None` when an input is unknown or the form is not one
/// this folder evaluates (the node then stays in the graph).
///
/// Long on purpose: one short arm per foldable op (the `FOLDABLE` list), so what the folder
/// computes for each reads in one place, as `infer` does for shapes.
fn eval(node: &NodeProto, w: &World) -> Option<Ints> {
    let get = |i: usize| -> Option<&Ints> { node.input.get(i).filter(|n| !n.is_empty()).and_then(|n| w.ints.get(n)) };
    let given = |i: usize| node.input.get(i).is_some_and(|n| !n.is_empty());
    match node.op_type.as_str() {
        "Shape" => {
            let (s, _) = w.shapes.get(node.input.first()?)?;
            let r = s.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (a, b) = (clamp(attr_i(node, "start", 0)), clamp(attr_i(node, "end", r)));
            let data = s.get(a..b.max(a))?.to_vec();
            Some(Ints::new(vec![data.len() as i64], data))
        }
        "Cast" => (attr_i(node, "to", 0) == DataType::Int64 as i64).then(|| get(0).cloned()).flatten(),
        "ConstantOfShape" => {
            let shape = get(0)?;
            let fill = match attr(node, "value").and_then(|a| a.t.as_ref()) {
                Some(t) => *tensor_i64(t).ok()?.first()?,
                None => return None, // float zeros: not a shape value
            };
            let n: i64 = shape.data.iter().product();
            Some(Ints::new(shape.data.clone(), vec![fill; n.max(0) as usize]))
        }
        "Unsqueeze" => {
            let x = get(0)?;
            let axes = if given(1) { get(1)?.data.clone() } else { attr(node, "axes")?.ints.clone() };
            let r = (x.dims.len() + axes.len()) as i64;
            let mut axes: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + r } else { a }).collect();
            axes.sort();
            let mut dims = x.dims.clone();
            for a in axes {
                dims.insert(a as usize, 1);
            }
            Some(Ints::new(dims, x.data.clone()))
        }
        "Squeeze" => {
            let x = get(0)?;
            let r = x.dims.len() as i64;
            let axes: Vec<i64> = if given(1) {
                get(1)?.data.iter().map(|&a| if a < 0 { a + r } else { a }).collect()
            } else if let Some(a) = attr(node, "axes") {
                a.ints.iter().map(|&a| if a < 0 { a + r } else { a }).collect()
            } else {
                (0..r).filter(|&i| x.dims[i as usize] == 1).collect()
            };
            let dims =
                x.dims.iter().enumerate().filter(|(i, _)| !axes.contains(&(*i as i64))).map(|(_, &d)| d).collect();
            Some(Ints::new(dims, x.data.clone()))
        }
        "Reshape" => {
            let x = get(0)?;
            let t = get(1)?;
            let allowzero = attr_i(node, "allowzero", 0) != 0;
            let mut dims: Vec<i64> = t
                .data
                .iter()
                .enumerate()
                .map(|(i, &d)| if d == 0 && !allowzero { x.dims.get(i).copied().unwrap_or(0) } else { d })
                .collect();
            let known: i64 = dims.iter().filter(|&&d| d != -1).product();
            if let Some(u) = dims.iter().position(|&d| d == -1) {
                dims[u] = if known == 0 { 0 } else { x.data.len() as i64 / known };
            }
            (dims.iter().product::<i64>() == x.data.len() as i64).then(|| Ints::new(dims, x.data.clone()))
        }
        "Concat" => {
            let parts: Vec<&Ints> = (0..node.input.len()).map(get).collect::<Option<_>>()?;
            let r = parts.first()?.dims.len() as i64;
            let a = attr_i(node, "axis", 0);
            let a = if a < 0 { a + r } else { a } as usize;
            let outer: i64 = parts[0].dims[..a].iter().product();
            let mut dims = parts[0].dims.clone();
            dims[a] = parts.iter().map(|p| p.dims[a]).sum();
            let mut data = Vec::new();
            for o in 0..outer as usize {
                for p in &parts {
                    let chunk = p.data.len() / outer as usize;
                    data.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
                }
            }
            Some(Ints::new(dims, data))
        }
        "Gather" => {
            let x = get(0)?;
            let idx = get(1)?;
            let r = x.dims.len() as i64;
            let a = attr_i(node, "axis", 0);
            let a = if a < 0 { a + r } else { a } as usize;
            let n = x.dims[a];
            let outer: i64 = x.dims[..a].iter().product();
            let inner: i64 = x.dims[a + 1..].iter().product();
            let mut data = Vec::new();
            for o in 0..outer {
                for &k in &idx.data {
                    let k = if k < 0 { k + n } else { k };
                    if !(0..n).contains(&k) {
                        return None;
                    }
                    let s = ((o * n + k) * inner) as usize;
                    data.extend_from_slice(&x.data[s..s + inner as usize]);
                }
            }
            let dims = [&x.dims[..a], &idx.dims[..], &x.dims[a + 1..]].concat();
            Some(Ints::new(dims, data))
        }
        "Transpose" => {
            let x = get(0)?;
            let r = x.dims.len();
            let perm: Vec<usize> = match attr(node, "perm") {
                Some(p) => p.ints.iter().map(|&v| v as usize).collect(),
                None => (0..r).rev().collect(),
            };
            let dims: Vec<i64> = perm.iter().map(|&p| x.dims[p]).collect();
            let strides = strides(&x.dims);
            let data = indices(&dims)
                .map(|ix| x.data[ix.iter().zip(&perm).map(|(&i, &p)| i * strides[p]).sum::<i64>() as usize])
                .collect();
            Some(Ints::new(dims, data))
        }
        "Slice" => {
            let x = get(0)?;
            let r = x.dims.len() as i64;
            let starts = &get(1)?.data;
            let ends = &get(2)?.data;
            let axes: Vec<i64> = if given(3) { get(3)?.data.clone() } else { (0..starts.len() as i64).collect() };
            let steps: Vec<i64> = if given(4) { get(4)?.data.clone() } else { vec![1; starts.len()] };
            let mut first = vec![0i64; x.dims.len()];
            let mut step = vec![1i64; x.dims.len()];
            let mut dims = x.dims.clone();
            for k in 0..starts.len() {
                let a = axes[k];
                let a = if a < 0 { a + r } else { a } as usize;
                let (d, s) = (x.dims[a], steps[k]);
                if s == 0 {
                    return None;
                }
                let norm = |v: i64| if v < 0 { v + d } else { v };
                let (st, en) = if s > 0 {
                    (norm(starts[k]).clamp(0, d), norm(ends[k]).clamp(0, d))
                } else {
                    (norm(starts[k]).clamp(-1, d - 1), norm(ends[k]).clamp(-1, d - 1))
                };
                let len = if s > 0 { (en - st + s - 1) / s } else { (st - en - s - 1) / -s };
                dims[a] = len.max(0);
                first[a] = st;
                step[a] = s;
            }
            let strides = strides(&x.dims);
            let data = indices(&dims)
                .map(|ix| {
                    x.data[ix.iter().enumerate().map(|(a, &i)| (first[a] + i * step[a]) * strides[a]).sum::<i64>()
                        as usize]
                })
                .collect();
            Some(Ints::new(dims, data))
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            let (a, b) = (get(0)?, get(1)?);
            let dims = crate::train::infer::broadcast(&a.dims, &b.dims);
            let at = |t: &Ints, ix: &[i64]| {
                let off = ix.len() - t.dims.len();
                let s = strides(&t.dims);
                t.data[(0..t.dims.len()).map(|i| if t.dims[i] == 1 { 0 } else { ix[off + i] * s[i] }).sum::<i64>()
                    as usize]
            };
            let mut data = Vec::new();
            for ix in indices(&dims) {
                let (u, v) = (at(a, &ix), at(b, &ix));
                data.push(match node.op_type.as_str() {
                    "Add" => u.checked_add(v)?,
                    "Sub" => u.checked_sub(v)?,
                    "Mul" => u.checked_mul(v)?,
                    _ => u.checked_div(v)?,
                });
            }
            Some(Ints::new(dims, data))
        }
        _ => None,
    }
}

/// Row-major strides of `dims`.
fn strides(dims: &[i64]) -> Vec<i64> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Every multi-index of `dims`, in row-major order.
fn indices(dims: &[i64]) -> impl Iterator<Item = Vec<i64>> + '_ {
    let n: i64 = dims.iter().product();
    (0..n.max(0)).map(move |mut k| {
        let mut ix = vec![0; dims.len()];
        for a in (0..dims.len()).rev() {
            ix[a] = k % dims[a];
            k /= dims[a];
        }
        ix
    })
}
